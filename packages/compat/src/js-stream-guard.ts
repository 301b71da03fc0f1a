/**
 * A guard and a fast path for node's internal JSStreamSocket, the adapter through which node:http2 and
 * node:tls use a Duplex that is not a net.Socket (every toDuplex Duplex and every Socket).
 *
 * The bug it guards against (Node 20 and 22): when an HTTP/2 session closes while streams still have
 * frames to send (the peer sent GOAWAY and its FIN mid-transfer: h2load does this at the end of a timed
 * run), node:http2 asks the adapter to shut down and then writes again. JSStreamSocket.doWrite asserts
 * that no shutdown is under way, so the write throws ERR_INTERNAL_ASSERTION from inside node and the
 * process dies: a peer could crash a server. A native socket fails such a write with EPIPE instead.
 *
 * The guard wraps doWrite once: a write that arrives while a shutdown is under way completes with EPIPE
 * on the next turn, as libuv would complete it.
 *
 * When: on the first Duplex compat makes (SocketDuplex's constructor calls ensureJsStreamGuard()), not
 * when the package loads. Every JSStreamSocket over a ringio Duplex is made after its Duplex, and the
 * wrapper is on the class's prototype, so none is missed. Installing means building a throwaway TLSSocket
 * (below), which runs node's stream, event and destroy code with TLS shapes; done at import, it did so in
 * every process that loads compat, before the process's own traffic. V8 then compiles
 * EventEmitter.prototype.emit and stream destroy() for those shapes too: in a node:http2 server fed
 * through toNetSocket (no Duplex at all), 0.4% more instructions a request than plain Node, and 0.4%
 * fewer once the probe was gone (docs/benchmarks.md, "Steady-state instructions").
 *
 * The fast path: JSStreamSocket's own doWrite writes each buffer of a batch with its own stream.write()
 * (node:http2 hands over some 900 buffers, 7 MB, per batch under load), then completes the batch one
 * setImmediate after the last callback. When the stream is a SocketDuplex, the wrapper hands the batch
 * over whole (SocketDuplex[kWriteBatch]: one send, or one writev of up to 1,024 buffers) and completes the
 * write as soon as the kernel took it. The Duplex declines while node:stream has writes queued, and every
 * other write goes to the original. It finds the class through a throwaway TLSSocket over a PassThrough (its handle's
 * `_parentWrap`) and the shutdown state through the class's own symbol; if node's internals are not
 * shaped that way, it changes nothing and says why in `jsStreamGuard`.
 */
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import { constants } from 'node:os';

type JsStreamProto = { doWrite(req: unknown, bufs: unknown[]): number };
type WrapHandle = { finishWrite(req: unknown, err: number): void };
type Wrap = Record<symbol, unknown> & {
  _handle: WrapHandle | null;
  stream: { [kWriteBatch]?: (bufs: Buffer[], done: (err?: Error | null) => void) => boolean } | undefined;
  finishWrite(handle: WrapHandle, errCode: number): void;
};

/** @internal The method through which the guard hands JSStreamSocket's write batches to a SocketDuplex (to-duplex.ts, rule 8). */
export const kWriteBatch = Symbol('ringio.compat.writeBatch');

/** Whether the guard is installed, or why not ('not installed: no Duplex made yet' until compat makes its first Duplex). */
export let jsStreamGuard: 'installed' | `not installed: ${string}` = 'not installed: no Duplex made yet';

let tried = false;

/** @internal Installs the guard once, on the first Duplex compat makes (see "When" above). */
export function ensureJsStreamGuard(): void {
  if (tried) return;
  tried = true;
  try {
    jsStreamGuard = install();
  } catch (e) {
    jsStreamGuard = `not installed: ${(e as Error).message}`;
  }
}

function install(): typeof jsStreamGuard {
  const probe = new tls.TLSSocket(new PassThrough());
  try {
    const wrap = (probe as unknown as { _handle?: { _parentWrap?: object } })._handle?._parentWrap;
    if (wrap === undefined || wrap === null) return 'not installed: no JSStreamSocket behind a TLSSocket over a Duplex';
    const proto = Object.getPrototypeOf(wrap) as JsStreamProto & Record<symbol, unknown>;
    if (proto.constructor.name !== 'JSStreamSocket' || typeof proto.doWrite !== 'function') {
      return `not installed: the adapter is ${proto.constructor.name}, not a JSStreamSocket with doWrite`;
    }
    const symbol = (name: string) => Object.getOwnPropertySymbols(wrap).find((s) => s.description === name);
    const shutdownKey = symbol('kCurrentShutdownRequest');
    if (shutdownKey === undefined) return 'not installed: JSStreamSocket has no kCurrentShutdownRequest';
    const writeKey = symbol('kCurrentWriteRequest');
    const closeKey = symbol('kPendingClose');
    const fast = writeKey !== undefined && closeKey !== undefined && typeof (proto as unknown as Wrap).finishWrite === 'function';
    const original = proto.doWrite;
    const EPIPE = -constants.errno.EPIPE;
    const errnos = constants.errno as Record<string, number | undefined>;
    proto.doWrite = function guardedDoWrite(this: Wrap, req, bufs) {
      const handle = this._handle;
      if (this[shutdownKey] !== null && this[shutdownKey] !== undefined) {
        // A write after the shutdown: it cannot be sent; complete it with EPIPE, as a native socket does.
        if (handle !== null) setImmediate(() => handle.finishWrite(req, EPIPE));
        return 0;
      }
      const batch = this.stream?.[kWriteBatch];
      if (fast && handle !== null && this[closeKey!] !== true && this[writeKey!] === null && batch !== undefined) {
        const taken = batch.call(this.stream, bufs as Buffer[], (err) => {
          // The same codes as JSStreamSocket's own completion (a uv error code, EPIPE when there is none).
          const errCode = err ? -(errnos[(err as { code?: string }).code ?? ''] ?? constants.errno.EPIPE) : 0;
          this.finishWrite(handle, errCode);
        });
        if (taken) {
          // The completion comes from a settled promise, never before this line.
          this[writeKey!] = req;
          return 0;
        }
      }
      return original.call(this, req, bufs);
    };
    return 'installed';
  } finally {
    probe.destroy();
  }
}
