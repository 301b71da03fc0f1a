/** Helpers for the http tests: raw exchanges over node:net, tool lookup, child processes. */
import { execFileSync, spawn as spawnChild } from 'node:child_process';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { HttpClient, serve, type Handler, type HttpServer, type ServeOptions } from '@ringio/http';
import { fdCount, fdsBackTo, run } from './helpers.js';

/**
 * Sends `bytes` on a fresh node:net connection (optionally in pieces, `gapMs` apart), then reads until
 * the server closes (or `ms` pass: then `timedOut`). Resolves what came back as latin1.
 */
export function raw(
  port: number,
  bytes: string | Buffer | (string | Buffer)[],
  opts: { ms?: number; gapMs?: number; end?: boolean } = {},
): Promise<{ text: string; closed: boolean }> {
  const ms = opts.ms ?? 5000;
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(parts).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on('data', (d) => parts.push(d));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? finish(true) : reject(e)));
    sock.on('connect', async () => {
      const list = Array.isArray(bytes) ? bytes : [bytes];
      for (const b of list) {
        sock.write(b);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.end) sock.end();
    });
  });
}

/** The status codes of the responses in a raw reply, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Whether a command exists on PATH. */
export function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs a command to completion (without blocking the event loop): stdout, stderr, exit code. */
export function exec(cmd: string, args: string[], opts: { input?: Buffer | string; ms?: number } = {}): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('latin1').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.ms ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ out, err, code });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/**
 * Runs `fn` against a server on an ephemeral port inside a runtime, closes every connection after it,
 * and throws if an fd is left behind.
 */
export async function withServer(opts: Partial<ServeOptions>, handler: Handler, fn: (port: number, s: HttpServer) => Promise<void>): Promise<void> {
  const before = fdCount();
  await run(async () => {
    const s = await serve({ port: 0, ...opts }, handler);
    try {
      await fn((s.address as { port: number }).port, s);
    } finally {
      await s.closeAll();
    }
  });
  if ((await fdsBackTo(before)) > before) throw new Error(`fds leaked: ${fdCount()} > ${before}`);
}

/** Runs `fn` with a new HttpClient in a runtime, closes it, and checks that no fd was left behind. */
export async function clientTest(t: ExecutionContext, fn: (c: HttpClient) => Promise<void>, opts?: ConstructorParameters<typeof HttpClient>[0], before = fdCount()): Promise<void> {
  await run(async () => {
    const c = new HttpClient(opts);
    try {
      await fn(c);
    } finally {
      await c.close();
    }
  }, 60_000);
  // The peers' servers run in this process too: count once they have let go of their sockets.
  await new Promise((r) => setTimeout(r, 100));
  t.true((await fdsBackTo(before)) <= before + 4, `no fd left behind (${fdCount()} > ${before})`);
}
