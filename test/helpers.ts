/**
 * Shared test helpers. Every I/O test runs on the driver named by RINGIO_DRIVER (scripts/test.mjs runs
 * the suite once per driver). When io_uring is asked for but this machine cannot run it, uring tests
 * skip with the reason instead of failing.
 */
import test, { type ExecutionContext } from 'ava';
import { createHook } from 'node:async_hooks';
import { execFileSync, spawn as spawnChild } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TcpListener, TcpStream, type ReadHalf } from '@ringio/net';
import { start, stats, yieldNow, type RuntimeContext, type StartOptions } from '@ringio/runtime';

export const DRIVER = (process.env.RINGIO_DRIVER ?? 'auto') as 'uring' | 'epoll' | 'auto';

/** Why the requested driver cannot run here, or null when it can. */
export const unavailable: string | null = await (async () => {
  if (DRIVER !== 'uring') return null;
  const s = await start(() => stats(), { driver: 'auto' });
  return s.driver === 'uring' ? null : `io_uring unavailable: ${s.fallbackReason}`;
})();

/** Why ::1 cannot be used here (no IPv6 loopback), or null; for the IPv6 tests to skip with. */
export const noIpv6: string | null = await new Promise((resolve) => {
  const srv = createServer();
  srv.once('error', (e: NodeJS.ErrnoException) => resolve(`::1 unavailable (${e.code ?? e.message})`));
  srv.listen(0, '::1', () => srv.close(() => resolve(null)));
});

/** Runs fn on a runtime with the driver under test. */
export function rt<T>(
  fn: (ctx: RuntimeContext) => T | PromiseLike<T>,
  opts: Omit<StartOptions, 'threads'> = {},
): Promise<Awaited<T>> {
  return start(fn, { driver: DRIVER, ...opts });
}

/** Open fds of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** n bytes from Math.random(). */
export function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (Math.random() * 256) | 0;
  return b;
}

/** The errors tests look into: an Error with whichever of the fields ringio and node:fs attach. */
export type AnyErr = Error & {
  code?: string;
  buf?: unknown;
  syscall?: string;
  errno?: number;
  path?: string;
  dest?: string;
  n?: number;
  cause?: unknown;
};

/**
 * A serial test that needs the driver under test. When it cannot run here (the driver is unavailable, or
 * `skip` names a missing feature, probed before the tests are declared) it is registered as skipped, with
 * the reason in its title, so it counts as skipped, never as passed. timeoutMs is the test's own timeout
 * (null: ava's configured one).
 */
export function rtTest(
  title: string,
  fn: (t: ExecutionContext) => Promise<void> | void,
  timeoutMs: number | null = 30_000,
  skip: string | null = null,
): void {
  const why = unavailable ?? skip;
  if (why !== null) {
    test.serial.skip(`${title} [skipped: ${why}]`, () => {});
    return;
  }
  test.serial(title, async (t) => {
    if (timeoutMs !== null) t.timeout(timeoutMs);
    await fn(t);
  });
}

/** rtTest without a timeout of its own: ava's configured one applies. */
export function rtTestUntimed(title: string, fn: (t: ExecutionContext) => Promise<void> | void): void {
  rtTest(title, fn, null);
}

/** The rejection of p (fails the test if p resolves). */
export async function rejectionOf(t: ExecutionContext, p: PromiseLike<unknown>): Promise<AnyErr> {
  let v: unknown;
  try {
    v = await p;
  } catch (e) {
    return e as AnyErr;
  }
  t.fail(`expected a rejection, got ${String(v)}`);
  throw new Error('unreachable');
}

/** p, or a rejection after ms of Node time (keeps a lost completion from hanging the test). */
export function guard<T>(p: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve(p),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * rt() with a deadline on main: if the body hangs (a lost completion), main rejects, and the runtime's
 * shutdown cancels whatever is still in flight, so the next test gets a fresh runtime.
 */
export function run<T>(body: () => Promise<T>, ms = 20_000): Promise<T> {
  return rt(() => guard(body(), ms, 'the test body'));
}

/** A fresh temp dir (removed after this file's tests) and tmp(name), a fresh path in it. */
export function tempDir(prefix: string): { dir: string; tmp: (name: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  test.after.always(() => rmSync(dir, { recursive: true, force: true }));
  let seq = 0;
  return { dir, tmp: (name: string): string => join(dir, `${seq++}-${name}`) };
}

/** The sha256 (hex) of the parts, concatenated. */
export function sha256(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Reads `total` bytes with read(), or fewer if the stream ends first; returns what was read. */
export async function readUpTo(s: Pick<ReadHalf, 'read'>, total: number): Promise<Buffer> {
  const out = Buffer.alloc(total);
  let n = 0;
  while (n < total) {
    const [got] = await s.read(out, { offset: n });
    if (got === 0) break;
    n += got;
  }
  return out.subarray(0, n);
}

/** Reads until end of stream, hashing in reads of `chunk` bytes: resolves [bytes, sha256 hex]. */
export async function hashToEnd(s: Pick<ReadHalf, 'read'>, chunk = 65536): Promise<[number, string]> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(chunk);
  let total = 0;
  for (;;) {
    const [n] = await s.read(buf);
    if (n === 0) return [total, h.digest('hex')];
    h.update(buf.subarray(0, n));
    total += n;
  }
}

/**
 * Runs fn after a delay step: 0 at once (synchronously), 1..6 after that many microtasks (before or
 * after the driver's flush microtask), 7 after one macrotask, 8 after a yieldNow, 9 after two macrotasks.
 */
export function later(step: number, fn: () => void): Promise<void> {
  if (step === 0) {
    fn();
    return Promise.resolve();
  }
  let p: Promise<unknown>;
  if (step <= 6) {
    p = Promise.resolve();
    for (let k = 1; k < step; k++) p = p.then(() => {});
  } else if (step === 7) p = new Promise((res) => setImmediate(res));
  else if (step === 8) p = yieldNow();
  else p = new Promise((res) => setImmediate(() => setImmediate(res)));
  return p.then(fn);
}

/** A random delay step for later(): 0..9. */
export const randomStep = (): number => (Math.random() * 10) | 0;

type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;
/** global.gc (ava runs the tests with --expose-gc). */
export const gc = (globalThis as unknown as { gc?: GcFn }).gc;

/** One forced scavenge (moves young objects, on-heap typed arrays included) and one full, compacting GC. */
export function gcNow(): void {
  gc!({ type: 'minor' });
  gc!();
}

/** Heap churn plus forced GCs, yielding to Node's loop (and so to the driver) in between. */
export async function churn(rounds: number): Promise<void> {
  let sink = 0;
  for (let i = 0; i < rounds; i++) {
    const junk: unknown[] = new Array(1e5).fill({});
    const objs = Array.from({ length: 20_000 }, (_, k) => ({ k, s: `o${k}` }));
    const bufs: Uint8Array[] = [];
    for (let k = 0; k < 500; k++) bufs.push(Buffer.alloc(1024), new Uint8Array(32), new Uint8Array(48));
    sink += junk.length + objs.length + bufs.length;
    gcNow();
    await new Promise((r) => setImmediate(r));
  }
  if (sink === 0) throw new Error('unreachable');
}

/** A weak reference to a buffer nobody holds: it must be gone after the churn, proving GC really ran. */
export function canary(): WeakRef<Uint8Array> {
  return new WeakRef(new Uint8Array(4096));
}

/** A kind of buffer the GC tiers read into. */
export interface BufferCase {
  title: string;
  /** Bytes each read asks for. */
  size: number;
  make: () => Uint8Array;
  window?: { offset: number; length: number };
}

/** The GC tiers' buffers: Buffers, small on-heap Uint8Arrays, and a window into a larger one (0xee around it). */
export const bufferCases: BufferCase[] = [
  { title: '4096-byte Buffers', size: 4096, make: () => Buffer.alloc(4096) },
  { title: '32-byte Uint8Arrays (on V8 heap)', size: 32, make: () => new Uint8Array(32) },
  {
    title: 'a 32-byte window in the middle of 48-byte Uint8Arrays (on V8 heap)',
    size: 32,
    make: () => new Uint8Array(48).fill(0xee),
    window: { offset: 8, length: 32 },
  },
];

/** The path of test/fixtures/<name> (from dist/test). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
}

/** How a child process ended and what it printed. */
export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node <args>` with RINGIO_DRIVER set to the driver under test; SIGKILLs it after timeoutMs. */
export function runNode(args: string[], timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawnChild(process.execPath, args, {
      env: { ...process.env, RINGIO_DRIVER: DRIVER },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Polls fdCount() until it is back at `target` (Node closes its sockets' fds a loop turn after 'close'). */
/**
 * The GC-survival fixture's figures: runs `node --trace-gc-nvp fixtures/gc-survival.mjs <server>
 * <requests>` (the server loaded by new connections; MEASURE after its warm-up, then `{"answered":N}`),
 * and sums the scavenges after MEASURE: the share of the young generation's allocations promoted to old space. A
 * server whose bookkeeping keeps closed connections alive through scavenges promotes 6-17%; one that
 * lets them die young, under 1% (LiveList in @ringio/runtime). Fails at `maxPercent` or more.
 */
export async function gcSurvival(t: ExecutionContext, server: 'compat' | 'http', requests: number, maxPercent: number): Promise<void> {
  const r = await runNode(['--trace-gc-nvp', fixture('gc-survival.mjs'), server, String(requests)], 100_000);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const measuring = lines.indexOf('MEASURE');
  t.true(measuring >= 0, 'the fixture printed MEASURE');
  const field = (line: string, key: string): number => Number(new RegExp(` ${key}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
  let promoted = 0;
  let allocated = 0;
  let scavenges = 0;
  for (const line of lines.slice(measuring + 1)) {
    if (!line.includes(' gc=s ')) continue;
    scavenges++;
    promoted += field(line, 'promoted');
    allocated += field(line, 'allocated');
  }
  const done = lines.find((l) => l.startsWith('{'));
  t.deepEqual(JSON.parse(done ?? '{}'), { answered: requests }, 'every request was answered');
  t.true(scavenges >= 3, `${scavenges} scavenges while measuring`);
  const survival = (100 * promoted) / allocated;
  t.log(`${scavenges} scavenges; ${survival.toFixed(2)}% of the young generation's allocations promoted`);
  t.true(survival < maxPercent, `${survival.toFixed(2)}% of the young generation's allocations promoted (closed connections kept alive)`);
}

export async function fdsBackTo(target: number, ms = 2000): Promise<number> {
  const until = performance.now() + ms;
  while (fdCount() > target && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  return fdCount();
}

/**
 * A throwaway self-signed P-256 certificate for localhost and 127.0.0.1, made with openssl now, or why
 * it could not be made (openssl missing or failing), for the tests to skip with.
 */
export function testCertificate(): { cert: Buffer; key: Buffer } | { missing: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ringio-cert-'));
  try {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
        '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { cert: readFileSync(cert), key: readFileSync(key) };
  } catch (e) {
    const err = e as AnyErr & { stderr?: Buffer };
    return { missing: err.code === 'ENOENT' ? 'openssl is not installed' : `openssl failed: ${String(err.stderr ?? err.message).trim()}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `n` connected TCP pairs on loopback, [client, accepted]; the listener is closed again. */
export async function tcpPairs(n: number): Promise<[TcpStream, TcpStream][]> {
  const l = await TcpListener.bind('127.0.0.1:0');
  const out: [TcpStream, TcpStream][] = [];
  try {
    for (let i = 0; i < n; i++) {
      const accepted = l.accept();
      const c = await TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port });
      const [s] = await accepted;
      out.push([c, s]);
    }
  } finally {
    await l.close();
  }
  return out;
}

/**
 * A node:net server on 127.0.0.1 that resets (SO_LINGER 0) every connection once it has read something
 * (so the reset cannot race the client's connect); `resets()` counts them.
 */
export async function resettingServer(): Promise<{ port: number; resets: () => number; close: () => void }> {
  let resets = 0;
  const srv = createServer((sock) => {
    sock.once('data', () => {
      resets++;
      sock.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, resets: () => resets, close: () => srv.close() };
}

/**
 * Counts the promises made while enabled whose creation stack has a frame matching `frames` (a package's
 * code), leaving out those matching `leaveOut`: by default the driver's flush microtask (one per batch
 * of ops, not per connection or request); pass null to count everything, e.g. `frames` /queueFlush/ to
 * count the flush jobs themselves.
 */
export function promiseCounter(frames: RegExp, depth = 16, leaveOut: RegExp | null = /queueFlush/): { enable(): void; disable(): void; readonly count: number } {
  let count = 0;
  const hook = createHook({
    init(_id, type) {
      if (type !== 'PROMISE') return;
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = depth;
      const stack = new Error().stack ?? '';
      Error.stackTraceLimit = limit;
      if (frames.test(stack) && (leaveOut === null || !leaveOut.test(stack))) count++;
    },
  });
  return {
    enable: () => void hook.enable(),
    disable: () => void hook.disable(),
    get count() {
      return count;
    },
  };
}

/** Connects to 127.0.0.1:port with node:net: 'connected', or the error's code (ECONNREFUSED for a closed listener). */
export function connectOutcome(port: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    c.on('connect', () => {
      c.destroy();
      resolve('connected');
    });
  });
}

/**
 * Counts the errors made without a stack trace (ringioErrorNoStack sets Error.stackTraceLimit to 0 and
 * back) while `body` runs.
 */
export async function countNoStackErrors(body: () => Promise<void>): Promise<number> {
  const desc = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit');
  let limit = Error.stackTraceLimit;
  let zeroed = 0;
  Object.defineProperty(Error, 'stackTraceLimit', {
    configurable: true,
    enumerable: desc?.enumerable ?? true,
    get: () => limit,
    set: (v: number) => {
      if (v === 0) zeroed++;
      limit = v;
    },
  });
  try {
    await body();
  } finally {
    if (desc !== undefined) Object.defineProperty(Error, 'stackTraceLimit', { ...desc, value: limit });
  }
  return zeroed;
}

/** The listener's two accept modes, for tests that run in both: [title, RINGIO_ACCEPT_MULTISHOT]. */
export const acceptModes: [string, string | undefined][] = [
  ['the default mode', undefined],
  ['single mode (RINGIO_ACCEPT_MULTISHOT=0)', '0'],
];

/** Runs body with RINGIO_ACCEPT_MULTISHOT set as given: a listener reads it when it starts accepting. */
export function withAcceptMode<T>(multishot: string | undefined, body: () => T): T {
  const before = process.env.RINGIO_ACCEPT_MULTISHOT;
  if (multishot === undefined) delete process.env.RINGIO_ACCEPT_MULTISHOT;
  else process.env.RINGIO_ACCEPT_MULTISHOT = multishot;
  try {
    return body();
  } finally {
    if (before === undefined) delete process.env.RINGIO_ACCEPT_MULTISHOT;
    else process.env.RINGIO_ACCEPT_MULTISHOT = before;
  }
}
