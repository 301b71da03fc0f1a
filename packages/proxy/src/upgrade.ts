/**
 * Binary upgrade: the running process hands its listening sockets to a new one over a Unix socket
 * (SCM_RIGHTS), so both hold the same sockets and no queued connection is lost.
 *
 *   new → old   {"op":"takeover","pid":N}
 *   old → new   {"op":"sockets","pid":N,"sockets":[{"lkey":…,"kind":"tcp"|"unix","role":"server"|"admin"}]}  + the fds
 *   (the new process binds what it did not get, deploys its config on every thread, starts accepting)
 *   new → old   {"op":"serving"}
 *   old → new   {"op":"stopping"}   (the old process stops accepting, drains up to drain_timeout, exits)
 *
 * If the new process fails or hangs up before "serving", the old one logs it and keeps serving.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { POLLIN, POLLOUT, closeSync, poll, ringioError, sys } from '@ringio/runtime';
import { UnixStream } from '@ringio/net';
import { LineReader, writeLine } from './lines.js';

export interface HandedSocket {
  lkey: string;
  kind: 'tcp' | 'unix';
  role: 'server' | 'admin';
}

/** The new process's side: connects to the running one and receives its sockets. */
export class TakeoverClient {
  private constructor(
    readonly stream: UnixStream,
    readonly reader: LineReader,
    readonly oldPid: number,
    readonly sockets: (HandedSocket & { fd: number })[],
  ) {}

  static async connect(path: string): Promise<TakeoverClient> {
    let stream: UnixStream;
    try {
      stream = await UnixStream.connect(path);
    } catch (e) {
      throw ringioError('ERR_RINGIO_UPGRADE', `cannot reach the running proxy at ${path}: ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
    try {
      await writeLine(stream, { op: 'takeover', pid: process.pid });
      // The fds ride on the reply's first bytes: read it with recvmsg.
      const buf = Buffer.allocUnsafe(1 << 16);
      let got: [number, number[]];
      for (;;) {
        try {
          got = sys.recvFds(stream.fd, buf, 253);
          break;
        } catch (e) {
          if ((e as { code?: string }).code !== 'EAGAIN') throw e;
          await poll(stream.fd, POLLIN, { signal: AbortSignal.timeout(30000) });
        }
      }
      const [n, fds] = got;
      if (n === 0) throw ringioError('ERR_RINGIO_UPGRADE', 'the running proxy hung up before handing over its sockets');
      const reader = new LineReader(stream);
      reader.push(buf.toString('utf8', 0, n));
      const msg = await reader.next();
      if (msg?.op !== 'sockets' || !Array.isArray(msg.sockets) || msg.sockets.length !== fds.length) {
        for (const fd of fds) closeSync(fd);
        throw ringioError('ERR_RINGIO_UPGRADE', `unexpected answer from the running proxy: ${JSON.stringify(msg)}`);
      }
      const sockets = (msg.sockets as HandedSocket[]).map((s, i) => ({ ...s, fd: fds[i]! }));
      return new TakeoverClient(stream, reader, Number(msg.pid), sockets);
    } catch (e) {
      await stream.close();
      throw e;
    }
  }

  /** Tells the old process that this one serves; resolves once it answered that it stops accepting. */
  async serving(): Promise<void> {
    try {
      await writeLine(this.stream, { op: 'serving' });
      const msg = await this.reader.next(AbortSignal.timeout(30000));
      if (msg?.op !== 'stopping') throw ringioError('ERR_RINGIO_UPGRADE', `the old process did not confirm: ${JSON.stringify(msg)}`);
    } finally {
      await this.stream.close();
    }
  }

  /** Gives up: the old process keeps serving. */
  async cancel(reason: string): Promise<void> {
    await writeLine(this.stream, { op: 'abort', reason }).catch(() => {});
    await this.stream.close();
  }
}

/** Sends `msg` with `fds` attached in one sendmsg (waiting for POLLOUT when the socket is full). */
export async function sendWithFds(stream: UnixStream, msg: unknown, fds: number[]): Promise<void> {
  const data = Buffer.from(JSON.stringify(msg) + '\n');
  let off = 0;
  let first = true;
  while (off < data.length) {
    try {
      off += sys.sendFds(stream.fd, data.subarray(off), first ? fds : []);
      first = false;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EAGAIN') throw e;
      await poll(stream.fd, POLLOUT);
    }
  }
}

/** Removes a Unix socket file left by a process that is gone (nothing answers on it). Throws if one is alive. */
export async function removeStaleSocket(path: string): Promise<void> {
  if (path.startsWith('\0') || !existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw Object.assign(new Error(`${path} exists and is not a socket`), { code: 'EEXIST' });
  try {
    const s = await UnixStream.connect(path);
    await s.close();
    throw Object.assign(new Error(`another process listens on ${path}`), { code: 'EADDRINUSE' });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') {
      try {
        unlinkSync(path);
      } catch {
        // raced with its owner: bind reports it
      }
      return;
    }
    throw e;
  }
}
