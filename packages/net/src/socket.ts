/**
 * What every ringio socket shares: it owns one fd, tracks the ops in flight on it, and closes by
 * cancelling them (they reject ERR_RINGIO_CLOSED once the kernel has answered, or resolve if they had
 * finished) before closing the fd. After close() every call rejects ERR_RINGIO_CLOSED at once.
 */
import { CloseOp, OpAble, cancelOp, closeSync, ringioError, submit } from '@ringio/runtime';

export class SocketBase {
  #fd: number;
  #closing: Promise<void> | undefined;
  /** Ops in flight on this socket and their promises, so close() can cancel and await them. */
  readonly #inflight = new Map<OpAble<unknown>, Promise<unknown>>();

  /** @internal Takes ownership of a non-blocking socket fd. */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The socket's fd (-1 once closed). Do not close it yourself: use close(). */
  get fd(): number {
    return this.#closing === undefined ? this.#fd : -1;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** @internal Submits an op on this socket, tracked for close(). */
  protected run<T>(op: OpAble<T>, signal: AbortSignal | undefined): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(this.closedError(op.payload()));
    const map = this.#inflight;
    const p = submit(op, signal === undefined ? undefined : { signal });
    map.set(op, p);
    const done = (): void => {
      map.delete(op);
    };
    p.then(done, done);
    return p;
  }

  /** @internal The raw fd for building ops; throws ERR_RINGIO_CLOSED (with buf) once closed. */
  protected openFd(buf?: unknown): number {
    if (this.#closing !== undefined) throw this.closedError(buf);
    return this.#fd;
  }

  protected closedError(buf: unknown): Error {
    return ringioError('ERR_RINGIO_CLOSED', `the ${this.constructor.name} is closed`, { buf });
  }

  /** Cancels pending ops, waits for the kernel's answers, then closes the fd. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const fd = this.#fd;
    const pending = [...this.#inflight];
    this.#closing = (async () => {
      try {
        for (const [op] of pending) cancelOp(op, 'closed');
      } catch {
        // No runtime on this thread any more: its shutdown already cancelled and drained every op.
        closeSync(fd);
        return;
      }
      await Promise.allSettled(pending.map(([, p]) => p));
      try {
        await submit(new CloseOp(fd));
      } catch {
        closeSync(fd);
      }
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
