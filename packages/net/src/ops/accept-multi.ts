import { IORING_OP, OpAble, OpFlags, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { SOCK_CLOEXEC, SOCK_NONBLOCK } from '../constants.js';

export const IORING_ACCEPT_MULTISHOT = 1;

/**
 * Multishot ACCEPT (io_uring, kernel 5.19+): one submission keeps accepting. Every connection arrives as
 * a completion flagged MORE and is handed to `onFd`; the op ends (its final completion) when it is
 * cancelled, on an error, or when the kernel stops it (then the listener re-arms). A kernel without it
 * answers EINVAL, and the listener falls back to one AcceptOp per connection.
 *
 * The epoll driver has no multishot form: the listener uses AcceptOp there. The legacy face below
 * therefore runs a single accept, so the op stays correct if submitted to epoll anyway.
 */
export class MultishotAcceptOp extends OpAble<number> {
  override readonly flags = OpFlags.RetIsFd;
  readonly fd: number;
  readonly onFd: (fd: number) => void;

  constructor(fd: number, onFd: (fd: number) => void) {
    super();
    this.fd = checkFd(fd);
    this.onFd = onFd;
  }

  get name(): string {
    return 'accept';
  }

  // io_uring: IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT in ioprio and no sockaddr (the peer address
  // is read with getpeername, since every completion would share one sockaddr buffer).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.ACCEPT, this.fd).opFlags(SOCK_NONBLOCK | SOCK_CLOEXEC).ioprio(IORING_ACCEPT_MULTISHOT);
  }

  // epoll: a single accept4(2) once readable (the listener does not use this op on epoll).
  override legacyCall(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.ACCEPT, this.fd).opFlags(SOCK_NONBLOCK | SOCK_CLOEXEC);
  }

  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }

  override more(res: number): void {
    if (res >= 0) this.onFd(res);
  }

  /** The final completion: a last fd (the kernel stopped the multishot), or why it ended. */
  complete(res: number): number {
    return this.check(res);
  }
}
