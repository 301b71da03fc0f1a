import { AcceptOp } from './accept.js';

/**
 * acceptEach's ACCEPT where each connection takes one (epoll, or io_uring without multishot accept): an
 * AcceptOp submitted detached, whose completion goes straight to the listener's handlers: `onFd(fd)`
 * (the peer's sockaddr is in `addr` until the op's next submission), or `onError(err)` with the accept's
 * error or the cancellation (ERR_RINGIO_CLOSED when the listener or the runtime closes). No promise, and
 * so no flush job either: the driver sends what the handlers wrote as the completions' dispatch ends,
 * where a completion settled through a promise (or a bound resolve) defers that flush to a promise job
 * behind the continuations (docs/design/net.md, "acceptEach"). The listener reuses one per run.
 *
 * An fd that arrives after a cancellation is handed to `onFd` too (the op is RetIsFd): the listener
 * closes a connection that comes after its run ended.
 */
export class EachAcceptOp extends AcceptOp {
  readonly #onFd: (fd: number) => void;
  readonly #onError: (e: unknown) => void;

  constructor(fd: number, onFd: (fd: number) => void, onError: (e: unknown) => void) {
    super(fd);
    this.#onFd = onFd;
    this.#onError = onError;
  }

  /** The final completion (detached): the new fd to onFd, an errno to onError. */
  override complete(res: number): number {
    if (res >= 0) {
      this.#onFd(res);
      return res;
    }
    let err: unknown;
    try {
      this.check(res);
    } catch (e) {
      err = e;
    }
    this.#onError(err);
    return res;
  }

  /** A cancellation the kernel confirmed (the listener's or the runtime's close). */
  override cancelled(err: Error): void {
    this.#onError(err);
  }
}
