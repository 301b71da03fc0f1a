/**
 * Helpers for the ringio-proxy tests: run the program as a child process (on the driver under test),
 * node:net upstreams, clients and a connection-churning load generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { DRIVER, unavailable } from './helpers.js';

export const BIN = fileURLToPath(new URL('../../packages/proxy/bin/ringio-proxy.js', import.meta.url));

export interface LogLine {
  event: string;
  level: string;
  [k: string]: unknown;
}

export class ProxyProc {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    child.stderr!.setEncoding('utf8');
    let rest = '';
    child.stderr!.on('data', (c: string) => {
      this.stderr += c;
      rest += c;
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        let l: LogLine;
        try {
          l = JSON.parse(line) as LogLine;
        } catch {
          continue;
        }
        this.logs.push(l);
        this.#waiters = this.#waiters.filter((w) => (w.match(l) ? (w.resolve(l), false) : true));
      }
    });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** The first log line (past or future) with this event (and matching fields). */
  waitFor(event: string, ms = 20000, pred: (l: LogLine) => boolean = () => true): Promise<LogLine> {
    const match = (l: LogLine) => l.event === event && pred(l);
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${event}' log line within ${ms} ms; stderr:\n${this.stderr}`)), ms);
      this.exited.then(() => setTimeout(() => reject(new Error(`the proxy exited before logging '${event}'; stderr:\n${this.stderr}`)), 200));
      this.#waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** Counts lines with this event so far. */
  count(event: string): number {
    return this.logs.filter((l) => l.event === event).length;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Starts `ringio-proxy --config file --log-format json [...extra]` on the driver under test. */
export function runProxy(file: string, extra: string[] = [], env: Record<string, string> = {}): ProxyProc {
  const child = spawn(process.execPath, [BIN, '--config', file, '--log-format', 'json', ...extra], {
    env: { ...process.env, RINGIO_DRIVER: DRIVER === 'auto' ? 'auto' : DRIVER, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new ProxyProc(child);
}

/** Starts the proxy and waits until it serves. */
export async function startProxy(file: string, extra: string[] = [], env: Record<string, string> = {}): Promise<ProxyProc> {
  const p = runProxy(file, extra, env);
  try {
    await p.waitFor('started');
  } catch (e) {
    await p.stop('SIGKILL');
    throw e;
  }
  return p;
}

/** A temp dir for configs and Unix sockets (short paths: sun_path is 108 bytes). */
export function tempDir(): { dir: string; file: (name: string, text?: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rpx-'));
  return {
    dir,
    file: (name, text) => {
      const p = join(dir, name);
      if (text !== undefined) writeFileSync(p, text);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Upstream {
  server: net.Server;
  port: number;
  path?: string;
  /** Connections accepted. */
  accepted: number;
  /** The first chunk of each connection (for PROXY protocol checks). */
  firstChunks: Buffer[];
  close(): Promise<void>;
}

/**
 * A node:net upstream. Modes: 'echo' echoes; 'tag' writes `tag` once, then echoes; 'reset' resets each
 * connection when it first receives data.
 */
export async function upstream(opts: { mode?: 'echo' | 'tag' | 'reset'; tag?: string; path?: string } = {}): Promise<Upstream> {
  const mode = opts.mode ?? 'echo';
  const sockets = new Set<net.Socket>();
  const u: Upstream = {
    server: undefined as unknown as net.Server,
    port: 0,
    accepted: 0,
    firstChunks: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => u.server.close(r));
    },
  };
  u.server = net.createServer({ allowHalfOpen: true }, (s) => {
    u.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let first = true;
    if (mode === 'tag') s.write(opts.tag ?? '');
    s.on('data', (d) => {
      if (first) u.firstChunks.push(Buffer.from(d));
      first = false;
      if (mode === 'reset') s.resetAndDestroy();
      else s.write(d);
    });
    s.on('end', () => s.end());
  });
  if (opts.path !== undefined) {
    await new Promise<void>((r) => u.server.listen(opts.path, r));
    u.path = opts.path;
  } else {
    await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
    u.port = (u.server.address() as net.AddressInfo).port;
  }
  return u;
}

export function connect(target: number | string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = typeof target === 'number' ? net.connect({ port: target, host: '127.0.0.1', allowHalfOpen: true }) : net.connect({ path: target, allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Reads until `n` bytes arrived (or the end), resolves what came. */
export function readBytes(s: net.Socket, n: number, ms = 10000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (e?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onErr);
      s.off('close', onEnd);
      if (e) reject(e);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) done();
    };
    const onEnd = () => done();
    const onErr = (e: Error) => done(e);
    const timer = setTimeout(() => done(new Error(`only ${got} of ${n} bytes within ${ms} ms`)), ms);
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
    s.once('error', onErr);
  });
}

/** Resolves once the peer ended the stream ('end'); rejects on error or after ms. */
export function ended(s: net.Socket, ms = 10000): Promise<'end' | 'close'> {
  return new Promise((resolve, reject) => {
    if (s.readableEnded) return resolve('end');
    const timer = setTimeout(() => reject(new Error(`not ended within ${ms} ms`)), ms);
    s.once('end', () => (clearTimeout(timer), resolve('end')));
    s.once('close', () => (clearTimeout(timer), resolve('close')));
    s.resume();
  });
}

/** Connects, sends msg, reads its echo, ends. Resolves the reply. */
export async function roundTrip(target: number | string, msg: string): Promise<string> {
  const s = await connect(target);
  try {
    s.write(msg);
    const got = await readBytes(s, Buffer.byteLength(msg));
    return got.toString();
  } finally {
    s.end();
    s.destroy();
  }
}

export interface Churn {
  ok: number;
  failed: number;
  errors: string[];
  stop(): Promise<{ ok: number; failed: number; errors: string[] }>;
}

/**
 * A load generator that opens new connections all the time: `workers` loops of connect → send 64
 * bytes → read the echo → close. Every connection that fails to connect, resets, or returns the wrong
 * bytes is counted as failed.
 */
export function churn(target: number | string, workers = 8): Churn {
  let running = true;
  const c: Churn = {
    ok: 0,
    failed: 0,
    errors: [],
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { ok: c.ok, failed: c.failed, errors: c.errors };
    },
  };
  const msg = 'x'.repeat(63) + '\n';
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (running) {
      try {
        const got = await roundTrip(target, msg);
        if (got !== msg) throw new Error(`worker ${w}: wrong echo (${got.length} bytes)`);
        c.ok++;
      } catch (e) {
        c.failed++;
        if (c.errors.length < 20) c.errors.push(String((e as Error).message ?? e));
      }
    }
  });
  return c;
}

/** GETs a path from the admin endpoint. */
export async function httpGet(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
      })
      .on('error', reject);
  });
}

/**
 * Parses Prometheus text format 0.0.4 strictly enough to catch mistakes: every sample belongs to a
 * family declared with # HELP and # TYPE before it, families are contiguous, label values are quoted,
 * values are numbers. Returns samples by `name{labels}`.
 */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const types = new Map<string, string>();
  const done = new Set<string>();
  let current = '';
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      const name = m[2]!;
      if (name !== current) {
        if (done.has(name)) throw new Error(`line ${i + 1}: family ${name} is not contiguous`);
        if (current) done.add(current);
        current = name;
      }
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) throw new Error(`line ${i + 1}: bad type ${m[3]}`);
        types.set(name, m[3]!);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    const name = m[1]!;
    if (name !== current) throw new Error(`line ${i + 1}: sample ${name} outside its family (current ${current})`);
    if (!types.has(name)) throw new Error(`line ${i + 1}: ${name} has no # TYPE`);
    const v = Number(m[3]);
    if (Number.isNaN(v) && m[3] !== 'NaN') throw new Error(`line ${i + 1}: bad value ${m[3]}`);
    out.set(name + (m[2] ?? ''), v);
  }
  return out;
}

/** A serial test with its own timeout that passes with a note where the driver under test cannot run. */
export function proxyTest(title: string, fn: (t: ExecutionContext) => Promise<void>, timeoutMs = 120_000): void {
  test.serial(title, async (t) => {
    if (unavailable !== null) return void t.pass(unavailable);
    t.timeout(timeoutMs);
    await fn(t);
  });
}
