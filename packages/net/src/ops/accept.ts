import { IORING_OP, OpAble, OpFlags, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { SOCK_CLOEXEC, SOCK_NONBLOCK, SOCKADDR_MAX } from '../constants.js';

/**
 * ACCEPT: takes the next connection from a listening socket. Resolves the new fd; the peer's sockaddr
 * lands in `addr`. RetIsFd: a connection that arrives after the accept was cancelled is closed.
 */
export class AcceptOp extends OpAble<number> {
  override readonly flags = OpFlags.RetIsFd;
  readonly fd: number;
  readonly addr = new Uint8Array(SOCKADDR_MAX);

  constructor(fd: number) {
    super();
    this.fd = checkFd(fd);
  }

  /** Makes a completed op submittable again, on the same listener (a listener keeps one); false while in flight. */
  reuse(): boolean {
    return this.recycle();
  }

  get name(): string {
    return 'accept';
  }

  // io_uring: IORING_OP_ACCEPT with addr/addrlen and SOCK_NONBLOCK | SOCK_CLOEXEC.
  uringOp(sqe: SqeWriter): void {
    sqe
      .prep(IORING_OP.ACCEPT, this.fd)
      .addrBufEnd(this.addr)
      .addr2Socklen(SOCKADDR_MAX)
      .opFlags(SOCK_NONBLOCK | SOCK_CLOEXEC);
  }

  // epoll: wait until the listener is readable, then accept4(2) with the same flags.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }

  complete(res: number): number {
    return this.check(res);
  }
}
