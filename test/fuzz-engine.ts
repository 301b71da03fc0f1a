/**
 * The fuzzer behind test/fuzz-*.test.ts (short runs) and `npm run fuzz` (long runs, scripts/fuzz.mjs).
 *
 * A run is one runtime (`start()` on the driver asked for) that keeps up to `concurrency` scenarios
 * going until `ops` API calls have been made. Each scenario draws its choices from its own generator,
 * seeded from the run's seed and the scenario's index, so a seed reproduces every choice (the
 * interleaving between scenarios is the kernel's). Scenarios:
 *
 *  - byte streams (a pipe, a UnixStream pair, TCP and Unix listener/connect): both directions at once
 *    (one for a pipe), random chunk sizes, write / writeAll / writev, reads into short buffers and
 *    windows, random aborts of reads and writes, and on some runs a fault: one side closes with ops in
 *    flight, or with unread data (a TCP peer then sees a reset);
 *  - datagrams (UdpSocket, UnixDatagram.pair): numbered datagrams, short receive buffers (truncation),
 *    aborted receives, a receiver closed with a receive in flight;
 *  - files: writes and truncates against a model of the file, concurrent reads (some aborted, some
 *    cut short by close) checked against the model;
 *  - timers (sleep, timeout, interval), channels (aborted sends and receives, close while waiting),
 *    spawnBlocking (results, thrown errors, aborts while queued or running), tasks aborted at random;
 *  - accept and connect aborted while in flight.
 *
 * Checks: the data each stream or datagram socket delivered equals (a prefix of, after a fault) what was
 * sent, byte for byte; every promise the fuzzer made settled; stats().opsInFlight, timers and
 * blockingJobs are 0 once the scenarios are done; /proc/self/fd is back to its count before start();
 * no unhandled rejection. An error outside the expected set for the situation is a failure. A failure
 * throws a FuzzFailure whose message names the seed and the command that reproduces it.
 */
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  channel,
  close as closeFd,
  interval,
  pipe,
  read as readFd,
  sleep,
  spawn,
  spawnBlocking,
  start,
  stats,
  timeout,
  write as writeFd,
  yieldNow,
} from '@ringio/runtime';
import { TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream } from '@ringio/net';
import { File } from '@ringio/fs';

export interface FuzzOptions {
  /** API calls to make in this run. */
  ops: number;
  seed: number;
  driver: 'uring' | 'epoll' | 'auto';
  /** Scenarios running at once (default 6). */
  concurrency?: number;
  /** Called every `progressEvery` ops with the count so far. */
  progress?: (ops: number) => void;
  progressEvery?: number;
  /** How long one scenario may stay unsettled before the run fails as a hang (ms, default 60000). */
  hangMs?: number;
}

export interface FuzzResult {
  seed: number;
  driver: string;
  ops: number;
  scenarios: number;
  /** Scenarios per kind. */
  kinds: Record<string, number>;
  /** Bytes that went through streams, datagrams and files and were checked. */
  bytesChecked: number;
  /** Faults injected: closes with ops in flight, resets, aborts. */
  aborts: number;
  closes: number;
  resets: number;
  entries: number;
  ms: number;
}

export class FuzzFailure extends Error {
  constructor(message: string, readonly seed: number, readonly driver: string, readonly opsAsked: number, options?: { cause?: unknown }) {
    super(`${message}\n  reproduce: npm run fuzz -- --ops ${opsAsked} --seed ${seed} --driver ${driver}`, options);
    this.name = 'FuzzFailure';
  }
}

/** mulberry32: a small, fast, seedable generator. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** A size skewed to small values: mostly < 64, sometimes up to max. */
  size(max: number): number {
    const r = this.next();
    if (r < 0.4) return this.int(1, Math.min(max, 64));
    if (r < 0.8) return this.int(1, Math.min(max, 4096));
    return this.int(1, max);
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (this.next() * 256) | 0;
    return b;
  }
}

type Err = Error & { code?: string; n?: number; name: string };

function codeOf(e: unknown): string {
  const err = e as Err;
  if (err?.name === 'AbortError') return 'ABORT';
  return err?.code ?? `${err?.name ?? typeof e}: ${err?.message ?? String(e)}`;
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** fd number → what it is (a path, socket:[inode], anon_inode:[io_uring], ...). */
function fdTable(): Map<string, string> {
  const m = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      m.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile (readdir's own fd)
    }
  }
  return m;
}

/** Runs fn after a delay step: 0 at once, 1..5 microtasks, 6 a yieldNow, 7 a macrotask. */
function later(step: number, fn: () => void): void {
  if (step === 0) {
    fn();
    return;
  }
  if (step <= 5) {
    let p = Promise.resolve();
    for (let k = 1; k < step; k++) p = p.then(() => {});
    void p.then(fn);
  } else if (step === 6) {
    void yieldNow().then(fn, fn);
  } else {
    setImmediate(fn);
  }
}

const KINDS = ['pipe', 'unix-pair', 'tcp', 'unix-listen', 'udp', 'unix-dgram', 'file', 'timers', 'channel', 'blocking', 'tasks', 'accept-abort'] as const;
type Kind = (typeof KINDS)[number];

/** State shared by a run's scenarios. */
class Run {
  ops = 0;
  readonly pending = new Map<number, string>();
  private nextId = 0;
  bytesChecked = 0;
  aborts = 0;
  closes = 0;
  /** ECONNRESET / EPIPE seen by a peer after a fault (a TCP peer closed with unread data resets). */
  resets = 0;
  stop = false;
  constructor(
    readonly opts: FuzzOptions,
    readonly dir: string,
  ) {}

  /** Counts one API call and tracks its promise until it settles. */
  op<T>(what: string, p: Promise<T>): Promise<T> {
    this.ops++;
    const id = this.nextId++;
    this.pending.set(id, what);
    const every = this.opts.progressEvery ?? 0;
    if (every > 0 && this.ops % every === 0) this.opts.progress?.(this.ops);
    return p.finally(() => this.pending.delete(id));
  }

  /** An AbortSignal that is aborted after a random delay step, or undefined (no abort), by chance p. */
  maybeAbort(rng: Rng, p: number): AbortSignal | undefined {
    if (!rng.chance(p)) return undefined;
    const ctl = new AbortController();
    this.aborts++;
    later(rng.int(0, 7), () => ctl.abort());
    return ctl.signal;
  }
}

class Check extends Error {}
function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Check(msg);
}
function expectCode(e: unknown, allowed: readonly string[], what: string): string {
  const c = codeOf(e);
  if (!allowed.includes(c)) {
    throw new Check(`${what}: unexpected error ${c}: ${(e as Error)?.stack ?? String(e)}`);
  }
  return c;
}

// ---- byte streams ----------------------------------------------------------------------------------

interface End {
  read(buf: Buffer, offset: number, length: number, signal?: AbortSignal): Promise<number>;
  /** mode 0 write, 1 writeAll, 2 writev (two pieces). Resolves bytes written; rejects with .n if some went. */
  write(buf: Buffer, mode: number, signal?: AbortSignal): Promise<number>;
  /** Graceful end of this direction. */
  end(): Promise<void>;
  close(): Promise<void>;
}

function socketEnd(s: UnixStream | TcpStream): End {
  return {
    read: async (buf, offset, length, signal) => (await s.read(buf, { offset, length, signal }))[0],
    write: async (buf, mode, signal) => {
      if (mode === 1) return (await s.writeAll(buf, { signal }))[0];
      if (mode === 2 && buf.length >= 2) {
        const cut = buf.length >> 1;
        return (await s.writev([buf.subarray(0, cut), buf.subarray(cut)], { signal }))[0];
      }
      return (await s.write(buf, { signal }))[0];
    },
    end: () => s.shutdown(),
    close: () => s.close(),
  };
}

/** A pipe's ends: only r reads, only w writes. */
function pipeEnds(): [End, End] {
  const [r, w] = pipe();
  let rClosed: Promise<void> | undefined;
  let wClosed: Promise<void> | undefined;
  const closeR = (): Promise<void> => (rClosed ??= closeFd(r));
  const closeW = (): Promise<void> => (wClosed ??= closeFd(w));
  const refuse = (): Promise<never> => Promise.reject(new Error('not this end of the pipe'));
  const reader: End = {
    read: async (buf, offset, length, signal) => {
      if (rClosed) throw Object.assign(new Error('closed'), { code: 'ERR_RINGIO_CLOSED' });
      return (await readFd(r, buf, { offset, length, signal }))[0];
    },
    write: refuse,
    end: closeR,
    close: closeR,
  };
  const writer: End = {
    read: refuse,
    write: async (buf, _mode, signal) => {
      if (wClosed) throw Object.assign(new Error('closed'), { code: 'ERR_RINGIO_CLOSED' });
      return (await writeFd(w, buf, { signal }))[0];
    },
    end: closeW,
    close: closeW,
  };
  return [writer, reader];
}

/** What an op on an end may fail with: after a fault, the closed side's and the peer's errors. */
const STREAM_FAULT = ['ABORT', 'ERR_RINGIO_CLOSED', 'ECONNRESET', 'EPIPE', 'EBADF', 'ENOTCONN', 'ECANCELED'];

async function streamScenario(run: Run, rng: Rng, kind: Kind): Promise<void> {
  let a: End;
  let b: End;
  let bidirectional = true;
  const cleanup: (() => Promise<void> | void)[] = [];
  if (kind === 'pipe') {
    [a, b] = pipeEnds();
    bidirectional = false;
  } else if (kind === 'unix-pair') {
    const [x, y] = UnixStream.pair();
    [a, b] = [socketEnd(x), socketEnd(y)];
  } else if (kind === 'tcp') {
    const l = await run.op('TcpListener.bind', TcpListener.bind('127.0.0.1:0'));
    try {
      const [accepted, connected] = await Promise.all([
        run.op('accept', l.accept()),
        run.op('TcpStream.connect', TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port })),
      ]);
      [a, b] = [socketEnd(connected), socketEnd(accepted[0])];
    } finally {
      await run.op('listener.close', l.close());
    }
  } else {
    const path = join(run.dir, `s${rng.int(0, 1e9)}.sock`);
    const l = await run.op('UnixListener.bind', UnixListener.bind(path));
    try {
      const [accepted, connected] = await Promise.all([run.op('accept', l.accept()), run.op('UnixStream.connect', UnixStream.connect(path))]);
      [a, b] = [socketEnd(connected), socketEnd(accepted[0])];
    } finally {
      await run.op('listener.close', l.close());
      cleanup.push(() => rmSync(path, { force: true }));
    }
  }

  // A fault: after faultAt ops of this scenario, one side closes at once (ops in flight, unread data).
  const faulty = rng.chance(0.3);
  const faultAt = faulty ? rng.int(0, 40) : -1;
  let faulted = false;
  let scenarioOps = 0;
  const closers: Promise<void>[] = [];
  const victim = rng.chance(0.5) ? a : b;
  const tick = (): void => {
    scenarioOps++;
    if (faulty && !faulted && scenarioOps >= faultAt) {
      faulted = true;
      run.closes++;
      closers.push(run.op('close (fault)', victim.close()));
    }
  };

  const pAbortRead = rng.pick([0, 0.05, 0.3]);
  const pAbortWrite = rng.pick([0, 0.05, 0.3]);
  const maxChunk = rng.pick([16, 512, 8192, 65536]);
  const maxRead = rng.pick([1, 7, 64, 4096, 65536]);

  const direction = async (from: End, to: End, total: number): Promise<void> => {
    const sent: Buffer[] = [];
    let sentLen = 0;
    const received: Buffer[] = [];
    let receivedLen = 0;
    const writer = (async () => {
      let left = total;
      try {
        while (left > 0 && !faulted) {
          const chunk = rng.bytes(Math.min(left, rng.size(maxChunk)));
          const mode = bidirectional ? rng.int(0, 2) : 0;
          const signal = run.maybeAbort(rng, pAbortWrite);
          tick();
          let n = 0;
          try {
            n = await run.op('write', from.write(chunk, mode, signal));
          } catch (e) {
            const c = expectCode(e, faulted ? STREAM_FAULT : ['ABORT'], `write (mode ${mode})`);
            if (c === 'ECONNRESET' || c === 'EPIPE') run.resets++;
            n = (e as Err).n ?? 0;
            if (c !== 'ABORT') {
              sent.push(chunk.subarray(0, n));
              sentLen += n;
              return;
            }
          }
          check(n >= 0 && n <= chunk.length, `write resolved ${n} for ${chunk.length} bytes`);
          sent.push(chunk.subarray(0, n));
          sentLen += n;
          left -= n;
        }
      } finally {
        if (!faulted) {
          tick();
          try {
            await run.op('end', from.end());
          } catch (e) {
            expectCode(e, faulted ? STREAM_FAULT : [], 'shutdown');
          }
        }
      }
    })();
    const reader = (async () => {
      for (;;) {
        const size = rng.int(1, maxRead);
        const pad = rng.int(0, 3);
        const buf = Buffer.alloc(size + 2 * pad, 0xee);
        const signal = run.maybeAbort(rng, pAbortRead);
        tick();
        let n: number;
        try {
          n = await run.op('read', to.read(buf, pad, size, signal));
        } catch (e) {
          const c = expectCode(e, faulted ? STREAM_FAULT : ['ABORT'], 'read');
          if (c === 'ECONNRESET' || c === 'EPIPE') run.resets++;
          if (c === 'ABORT') continue;
          return;
        }
        check(n >= 0 && n <= size, `read resolved ${n} into a ${size}-byte window`);
        for (let i = 0; i < pad; i++) check(buf[i] === 0xee && buf[pad + size + i] === 0xee, 'read wrote outside its window');
        if (n === 0) return;
        received.push(Buffer.from(buf.subarray(pad, pad + n)));
        receivedLen += n;
      }
    })();
    await Promise.all([writer, reader]);
    const s = Buffer.concat(sent, sentLen);
    const r = Buffer.concat(received, receivedLen);
    if (faulted) {
      check(r.length <= s.length, `received ${r.length} bytes, more than the ${s.length} sent`);
      check(r.equals(s.subarray(0, r.length)), `received bytes differ from those sent (in the first ${r.length})`);
    } else {
      check(r.length === s.length, `received ${r.length} bytes of ${s.length} sent (${kind})`);
      check(r.equals(s), `received bytes differ from those sent (${kind}, ${s.length} bytes)`);
    }
    run.bytesChecked += r.length;
  };

  try {
    // Bytes per direction; tiny reads get less, so one scenario stays a few thousand ops.
    const total = (): number => (rng.chance(0.1) ? 0 : rng.size(Math.min(rng.pick([256, 16384, 131072]), maxRead * 512)));
    if (bidirectional) await Promise.all([direction(a, b, total()), direction(b, a, total())]);
    else await direction(a, b, total());
  } finally {
    await Promise.all(closers);
    for (const e of [a, b]) {
      try {
        await run.op('close', e.close());
      } catch (err) {
        expectCode(err, [], 'close');
      }
    }
    for (const c of cleanup) await c();
  }
}

// ---- datagrams ---------------------------------------------------------------------------------------

async function datagramScenario(run: Run, rng: Rng, kind: Kind): Promise<void> {
  let send: (b: Buffer, signal?: AbortSignal) => Promise<number>;
  let recv: (b: Buffer, signal?: AbortSignal) => Promise<number>;
  let closeAll: () => Promise<void>;
  let closeReceiver: () => Promise<void>;
  if (kind === 'udp') {
    const rx = await run.op('UdpSocket.bind', UdpSocket.bind('127.0.0.1:0'));
    const tx = await run.op('UdpSocket.bind', UdpSocket.bind('127.0.0.1:0'));
    const to = { host: '127.0.0.1', port: rx.localAddr.port };
    send = async (b, signal) => (await tx.sendTo(b, to, { signal }))[0];
    recv = async (b, signal) => (await rx.recvFrom(b, { signal }))[0];
    closeReceiver = () => rx.close();
    closeAll = async () => {
      await Promise.all([rx.close(), tx.close()]);
    };
  } else {
    const [tx, rx] = UnixDatagram.pair();
    send = async (b, signal) => (await tx.send(b, { signal }))[0];
    recv = async (b, signal) => (await rx.recv(b, { signal }))[0];
    closeReceiver = () => rx.close();
    closeAll = async () => {
      await Promise.all([rx.close(), tx.close()]);
    };
  }
  const count = rng.int(1, 48);
  const maxLen = rng.pick([8, 200, 1400]);
  const sent: Buffer[] = [];
  const pAbort = rng.pick([0, 0.1, 0.4]);
  const faultAfter = rng.chance(0.2) ? rng.int(0, count) : -1;
  let closed = false;
  try {
    // Sends go first, so the receive queue holds them all: loopback keeps order and (at these sizes)
    // loses nothing, so every datagram must be received, in order.
    for (let i = 0; i < count; i++) {
      const d = Buffer.concat([Buffer.from(Uint32Array.of(i).buffer), rng.bytes(rng.int(0, maxLen))]);
      const signal = run.maybeAbort(rng, pAbort / 2);
      try {
        const n = await run.op('send', send(d, signal));
        check(n === d.length, `a datagram send resolved ${n} of ${d.length}`);
        sent.push(d);
      } catch (e) {
        expectCode(e, ['ABORT'], 'datagram send');
      }
    }
    let next = 0;
    while (next < sent.length) {
      if (next === faultAfter) {
        // The receiver closes with a receive in flight: it settles with a datagram or ERR_RINGIO_CLOSED.
        const pendingRecv = run.op('recv', recv(Buffer.alloc(2048)));
        run.closes++;
        closed = true;
        await run.op('close (fault)', closeReceiver());
        try {
          const n = await pendingRecv;
          check(n === sent[next]!.length, `a datagram received while closing has ${n} bytes, sent ${sent[next]!.length}`);
        } catch (e) {
          expectCode(e, ['ERR_RINGIO_CLOSED', 'ABORT'], 'recv during close');
        }
        break;
      }
      const size = rng.chance(0.3) ? rng.int(1, 8) : rng.int(4, 2048);
      const buf = Buffer.alloc(size);
      const signal = run.maybeAbort(rng, pAbort);
      let n: number;
      try {
        // A lost datagram would hang this receive: the timeout turns it into a failure.
        n = await run.op('recv', timeout(recv(buf, signal), 30_000));
      } catch (e) {
        if (codeOf(e) === 'ERR_RINGIO_TIMEOUT') throw new Check(`datagram ${next} of ${sent.length} never arrived (${kind})`);
        expectCode(e, ['ABORT'], 'datagram recv');
        continue;
      }
      const d = sent[next]!;
      check(n === Math.min(d.length, size), `datagram ${next}: received ${n} bytes into ${size}, sent ${d.length}`);
      check(buf.subarray(0, n).equals(d.subarray(0, n)), `datagram ${next}: bytes differ (${kind})`);
      run.bytesChecked += n;
      next++;
    }
  } finally {
    // Also after the fault: close() of the closed receiver is a no-op, the sender still needs it.
    await run.op('close', closeAll());
  }
}

// ---- files -------------------------------------------------------------------------------------------

async function fileScenario(run: Run, rng: Rng): Promise<void> {
  const path = join(run.dir, `f${rng.int(0, 1e9)}`);
  const f = await run.op('File.create', File.open(path, { write: true, read: true, create: true, truncate: true }));
  let model = Buffer.alloc(0);
  let closed = false;
  const steps = rng.int(1, 30);
  const pAbort = rng.pick([0, 0.1, 0.4]);
  const maxPos = rng.pick([4096, 131072]);
  try {
    for (let s = 0; s < steps && !closed; s++) {
      const r = rng.next();
      if (r < 0.35) {
        const pos = rng.int(0, maxPos);
        const data = rng.bytes(rng.size(16384));
        if (rng.chance(0.3) && data.length >= 2) {
          const cut = data.length >> 1;
          const [n] = await run.op('writevAt', f.writevAt([data.subarray(0, cut), data.subarray(cut)], pos));
          check(n === data.length, `writevAt wrote ${n} of ${data.length}`);
        } else {
          await run.op('writeAllAt', f.writeAllAt(data, pos));
        }
        if (model.length < pos + data.length) {
          const m = Buffer.alloc(pos + data.length);
          model.copy(m);
          model = m;
        }
        data.copy(model, pos);
      } else if (r < 0.42) {
        const len = rng.int(0, maxPos);
        await run.op('truncate', f.truncate(len));
        const m = Buffer.alloc(len);
        model.copy(m, 0, 0, Math.min(len, model.length));
        model = m;
      } else if (r < 0.46) {
        const st = await run.op('stat', f.stat());
        check(Number(st.size) === model.length, `stat size ${st.size}, model ${model.length}`);
      } else {
        // Up to 4 concurrent reads; on some steps the file is closed under them.
        const reads = rng.int(1, 4);
        const closeNow = rng.chance(0.04);
        const ps: Promise<void>[] = [];
        for (let k = 0; k < reads; k++) {
          const pos = rng.int(0, Math.max(0, model.length + 64));
          const len = rng.size(16384);
          const buf = Buffer.alloc(len, 0xee);
          const signal = run.maybeAbort(rng, pAbort);
          const exact = rng.chance(0.2);
          const p = exact ? f.readExactAt(buf, pos, { signal }) : f.readAt(buf, pos, { signal });
          ps.push(
            run.op(exact ? 'readExactAt' : 'readAt', p).then(
              ([n]) => {
                const want = Math.max(0, Math.min(len, model.length - pos));
                // A read aborted (or closed) part way may resolve with what it had read: short, not wrong.
                if (signal?.aborted || closed) check(n <= want, `an aborted readAt(${len} at ${pos}) read ${n}, the file has ${model.length} bytes`);
                else check(n === want, `readAt(${len} at ${pos}) read ${n}, the file has ${model.length} bytes`);
                check(buf.subarray(0, n).equals(model.subarray(pos, pos + n)), `readAt(${len} at ${pos}): bytes differ from what was written`);
                run.bytesChecked += n;
              },
              (e) => {
                const c = expectCode(e, ['ABORT', 'ERR_RINGIO_UNEXPECTED_EOF', ...(closed ? ['ERR_RINGIO_CLOSED'] : [])], 'file read');
                if (c === 'ERR_RINGIO_UNEXPECTED_EOF') check(pos + len > model.length, 'readExactAt hit EOF inside the file');
              },
            ),
          );
        }
        if (closeNow) {
          closed = true;
          run.closes++;
          ps.push(run.op('close (fault)', f.close()));
        }
        await Promise.all(ps);
      }
    }
  } finally {
    if (!closed) await run.op('close', f.close());
    rmSync(path, { force: true });
  }
}

// ---- timers, channels, spawnBlocking, tasks ----------------------------------------------------------

async function timerScenario(run: Run, rng: Rng): Promise<void> {
  const n = rng.int(1, 12);
  const ps: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.1) {
      // A long sleep, always aborted: its kernel timer must not stay armed (opsInFlight) after it.
      const ctl = new AbortController();
      run.aborts++;
      const p = run.op('sleep (long)', sleep(rng.int(1000, 1e7), { signal: ctl.signal }));
      later(rng.int(0, 7), () => ctl.abort());
      ps.push(p.then(() => check(false, 'an aborted long sleep resolved'), (e) => void expectCode(e, ['ABORT'], 'sleep')));
    } else if (r < 0.6) {
      const signal = run.maybeAbort(rng, 0.3);
      ps.push(
        run.op('sleep', sleep(rng.int(0, 3), { signal })).then(
          () => {},
          (e) => {
            check(signal !== undefined, 'a sleep nobody aborted rejected');
            expectCode(e, ['ABORT'], 'sleep');
          },
        ),
      );
    } else if (r < 0.85) {
      const ms = rng.int(0, 2);
      const inner = rng.int(0, 3);
      ps.push(
        run.op('timeout', timeout((signal) => sleep(inner, { signal }), ms)).then(
          () => {},
          (e) => {
            expectCode(e, ['ERR_RINGIO_TIMEOUT'], 'timeout');
          },
        ),
      );
    } else {
      ps.push(
        (async () => {
          const it = interval(1, { missedTick: rng.pick(['burst', 'delay', 'skip'] as const) });
          const ticks = rng.int(1, 3);
          let last = 0;
          for (let t = 0; t < ticks; t++) {
            const r2 = await run.op('interval.next', it.next());
            check(r2.done === false && (r2.value as number) > last, 'interval ticks go up');
            last = r2.value as number;
          }
          await run.op('interval.return', it.return!());
        })(),
      );
    }
  }
  await Promise.all(ps);
}

async function channelScenario(run: Run, rng: Rng): Promise<void> {
  const ch = channel<number>(rng.int(1, 8));
  const count = rng.int(0, 60);
  const pAbort = rng.pick([0, 0.1, 0.4]);
  const closeAfter = rng.chance(0.2) ? rng.int(0, count) : -1;
  const delivered: number[] = [];
  const received: number[] = [];
  const producer = (async () => {
    for (let i = 0; i < count; i++) {
      if (rng.chance(0.15)) {
        run.ops++;
        try {
          if (ch.trySend(i)) delivered.push(i);
        } catch (e) {
          expectCode(e, ['ERR_RINGIO_CLOSED'], 'trySend');
          return;
        }
        continue;
      }
      const signal = run.maybeAbort(rng, pAbort);
      try {
        await run.op('channel.send', ch.send(i, { signal }));
        delivered.push(i);
      } catch (e) {
        if (expectCode(e, ['ABORT', 'ERR_RINGIO_CLOSED'], 'channel send') === 'ERR_RINGIO_CLOSED') return;
      }
    }
    ch.close();
  })();
  const consumer = (async () => {
    for (;;) {
      if (received.length === closeAfter && !ch.closed) ch.close();
      const signal = run.maybeAbort(rng, pAbort);
      let v: number | undefined;
      try {
        v = await run.op('channel.recv', ch.recv({ signal }));
      } catch (e) {
        expectCode(e, ['ABORT'], 'channel recv');
        continue;
      }
      if (v === undefined) return;
      received.push(v);
    }
  })();
  await Promise.all([producer, consumer]);
  check(
    received.length === delivered.length && received.every((v, i) => v === delivered[i]),
    `channel: received [${received.join(',')}], sends that resolved [${delivered.join(',')}]`,
  );
}

async function blockingScenario(run: Run, rng: Rng): Promise<void> {
  const n = rng.int(1, 6);
  const ps: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const a = rng.int(0, 1000);
    const b = rng.int(0, 1000);
    const kind = rng.int(0, 3);
    const signal = run.maybeAbort(rng, 0.3);
    const opts = signal ? { signal } : {};
    let h: PromiseLike<unknown>;
    if (kind === 0) h = spawnBlocking(opts, (x: number, y: number) => x * y + 1, a, b);
    else if (kind === 1) {
      h = spawnBlocking(opts, (x: number) => {
        throw new RangeError(`no ${x}`);
      }, a);
    } else if (kind === 2) {
      h = spawnBlocking(opts, (ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until);
        return ms;
      }, rng.int(0, 3));
    } else h = spawnBlocking(opts, (u: Uint8Array) => u.reduce((s, x) => s + x, 0), rng.bytes(rng.int(0, 64)));
    ps.push(
      run.op('spawnBlocking', Promise.resolve(h)).then(
        (v) => {
          if (kind === 0) check(v === a * b + 1, `spawnBlocking returned ${String(v)}, expected ${a * b + 1}`);
          check(kind !== 1, 'a throwing blocking job resolved');
        },
        (e) => {
          if (kind === 1 && (e as Err).name === 'RangeError') {
            check((e as Err).message === `no ${a}`, 'the blocking job error kept its message');
            return;
          }
          check(signal !== undefined, `a blocking job nobody aborted rejected: ${codeOf(e)}`);
          expectCode(e, ['ABORT'], 'spawnBlocking');
        },
      ),
    );
  }
  await Promise.all(ps);
}

async function taskScenario(run: Run, rng: Rng): Promise<void> {
  const n = rng.int(1, 8);
  const ps: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const ms = rng.int(0, 2);
    const h = spawn(async (signal) => {
      await sleep(ms, { signal });
      await yieldNow();
      return ms;
    });
    const abort = rng.chance(0.5);
    if (abort) {
      run.aborts++;
      later(rng.int(0, 7), () => h.abort());
    }
    ps.push(
      run.op('task', Promise.resolve(h)).then(
        (v) => check(v === ms, 'a task returned what it returned'),
        (e) => {
          check(abort, `a task nobody aborted rejected: ${codeOf(e)}`);
          expectCode(e, ['ABORT'], 'task');
        },
      ),
    );
  }
  await Promise.all(ps);
}

async function acceptAbortScenario(run: Run, rng: Rng): Promise<void> {
  const l = await run.op('TcpListener.bind', TcpListener.bind('127.0.0.1:0'));
  try {
    const ctl = new AbortController();
    const connect = rng.chance(0.5);
    const accepted = run.op('accept', l.accept({ signal: ctl.signal }));
    let client: TcpStream | undefined;
    if (connect) client = await run.op('TcpStream.connect', TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port }));
    run.aborts++;
    later(rng.int(0, 7), () => ctl.abort());
    try {
      const [s] = await accepted;
      check(connect, 'an accept with no client resolved');
      await run.op('close', s.close());
    } catch (e) {
      expectCode(e, ['ABORT'], 'accept');
    }
    if (client) await run.op('close', client.close());
  } finally {
    await run.op('listener.close', l.close());
  }
}

// ---- the run -------------------------------------------------------------------------------------------

function scenario(run: Run, rng: Rng, kind: Kind): Promise<void> {
  switch (kind) {
    case 'pipe':
    case 'unix-pair':
    case 'tcp':
    case 'unix-listen':
      return streamScenario(run, rng, kind);
    case 'udp':
    case 'unix-dgram':
      return datagramScenario(run, rng, kind);
    case 'file':
      return fileScenario(run, rng);
    case 'timers':
      return timerScenario(run, rng);
    case 'channel':
      return channelScenario(run, rng);
    case 'blocking':
      return blockingScenario(run, rng);
    case 'tasks':
      return taskScenario(run, rng);
    case 'accept-abort':
      return acceptAbortScenario(run, rng);
  }
}

/** Waits until /proc/self/fd is down to target (worker threads close their fds as they exit). */
async function fdsBackTo(target: number, ms: number): Promise<number> {
  const until = performance.now() + ms;
  while (fdCount() > target && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  return fdCount();
}

let workerWarm: Promise<void> | undefined;
/**
 * Node opens /dev/null the first time a process starts a worker thread and keeps it open: not ringio's
 * fd, and not a leak. One worker started and gone before the fd count is taken keeps it out of the check.
 */
function warmWorkers(): Promise<void> {
  return (workerWarm ??= new Promise<void>((resolve, reject) => {
    const w = new Worker('0', { eval: true });
    w.once('error', reject);
    w.once('exit', () => resolve());
  }));
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  await warmWorkers();
  const { seed, driver } = opts;
  const fail = (msg: string, cause?: unknown): FuzzFailure => new FuzzFailure(msg, seed, driver, opts.ops, { cause });
  const master = new Rng(seed);
  const entries = master.pick([8, 64, 1024]);
  const budget = master.pick([16, 1024]);
  const concurrency = opts.concurrency ?? 6;
  const hangMs = opts.hangMs ?? 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'ringio-fuzz-'));
  const run = new Run(opts, dir);
  const kinds: Record<string, number> = {};
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  process.on('unhandledRejection', onUnhandled);
  const fds0 = fdCount();
  const table0 = fdTable();
  const t0 = performance.now();
  let scenarios = 0;
  try {
    const failures: string[] = [];
    await start(
      async () => {
        const live = new Set<Promise<void>>();
        const launch = (): void => {
          const index = scenarios++;
          const rng = new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0);
          const kind = rng.pick(KINDS);
          kinds[kind] = (kinds[kind] ?? 0) + 1;
          let timer: NodeJS.Timeout | undefined;
          const hang = new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => {
                const st = stats();
                reject(
                  new Check(
                    `scenario ${index} (${kind}) still pending after ${hangMs} ms; ops pending: ${[...run.pending.values()].slice(0, 20).join(', ')}; ` +
                      `runtime: opsInFlight ${st.opsInFlight}, timers ${st.timers}, tasksQueued ${st.tasksQueued}, completions ${st.completions}, ` +
                      `enters ${st.enters}, wakeups ${st.wakeups}, submitted ${st.submitted}`,
                  ),
                );
              },
              hangMs,
            );
          });
          const p: Promise<void> = Promise.race([scenario(run, rng, kind), hang])
            .catch((e: unknown) => {
              run.stop = true;
              const what = e instanceof Check ? e.message : `unexpected throw: ${(e as Error)?.stack ?? String(e)}`;
              failures.push(`scenario ${index} (${kind}): ${what}`);
            })
            .finally(() => {
              clearTimeout(timer);
              live.delete(p);
            });
          live.add(p);
        };
        while (run.ops < opts.ops && !run.stop) {
          while (live.size < concurrency && run.ops < opts.ops && !run.stop) launch();
          await Promise.race(live);
        }
        await Promise.all(live);
        if (failures.length > 0) return;
        // Every promise the fuzzer made has settled, and the runtime holds nothing.
        if (run.pending.size > 0) failures.push(`unsettled promises: ${[...run.pending.values()].join(', ')}`);
        // A cancelled op (an aborted sleep's kernel timer, say) leaves once the kernel has answered the
        // cancel: a few loop turns, never a deadline.
        for (let i = 0; i < 1000 && stats().opsInFlight > 0; i++) await new Promise((r) => setImmediate(r));
        const s = stats();
        if (s.opsInFlight !== 0) failures.push(`stats().opsInFlight is ${s.opsInFlight} after every scenario ended`);
        if (s.timers !== 0) failures.push(`stats().timers is ${s.timers} after every scenario ended`);
        if (s.blockingJobs !== 0) failures.push(`stats().blockingJobs is ${s.blockingJobs} after every scenario ended`);
      },
      { driver, entries, budget, blockingThreads: 2 },
    );
    if (failures.length > 0) throw fail(failures.join('\n'));
    // Unhandled rejections are reported a macrotask later; give them that turn.
    await new Promise((r) => setImmediate(r));
    if (unhandled.length > 0) throw fail(`unhandled rejection: ${(unhandled[0] as Error)?.stack ?? String(unhandled[0])}`);
    const fds = await fdsBackTo(fds0, 5000);
    if (fds !== fds0) {
      const extra = [...fdTable()].filter(([fd, what]) => table0.get(fd) !== what).map(([fd, what]) => `${fd} -> ${what}`);
      throw fail(`/proc/self/fd has ${fds} entries after the run, ${fds0} before; new: ${extra.join(', ')}`);
    }
  } catch (e) {
    if (e instanceof FuzzFailure) throw e;
    throw fail(`the run threw: ${(e as Error)?.stack ?? String(e)}`, e);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    seed,
    driver,
    ops: run.ops,
    scenarios,
    kinds,
    bytesChecked: run.bytesChecked,
    aborts: run.aborts,
    closes: run.closes,
    resets: run.resets,
    entries,
    ms: performance.now() - t0,
  };
}
