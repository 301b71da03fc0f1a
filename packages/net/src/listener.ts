/**
 * The accept loop shared by TcpListener and UnixListener: accept({ signal }), async iteration and
 * close(). A connection that arrives for a cancelled accept is closed by the runtime (RetIsFd).
 */
import { AcceptOp } from './ops/accept.js';
import { SocketBase } from './socket.js';

export abstract class ListenerBase<S, A> extends SocketBase {
  /** @internal Wraps an accepted fd and its peer address. */
  protected abstract wrap(fd: number, addr: Uint8Array): [S, A];

  /** Waits for the next connection. Resolves [stream, peerAddr]. */
  async accept(opts?: { signal?: AbortSignal }): Promise<[S, A]> {
    const op = new AcceptOp(this.openFd());
    const fd = await this.run(op, opts?.signal);
    return this.wrap(fd, op.addr);
  }

  /** `for await (const [stream, peer] of listener)`: ends when the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<[S, A], void, undefined> {
    while (!this.closed) {
      try {
        yield await this.accept();
      } catch (e) {
        if (this.closed && (e as { code?: string }).code === 'ERR_RINGIO_CLOSED') return;
        throw e;
      }
    }
  }
}

export function checkBacklog(backlog: unknown): number {
  if (typeof backlog !== 'number' || !Number.isInteger(backlog) || backlog < 1 || backlog > 65535) {
    throw new RangeError(`backlog must be an integer in 1..65535, got ${String(backlog)}`);
  }
  return backlog;
}

