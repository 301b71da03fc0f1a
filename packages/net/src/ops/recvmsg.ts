import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';

/**
 * RECVMSG: receives one datagram into `data` (used whole) and the sender's sockaddr into `name`.
 * Resolves the byte count; `flags` after completion holds nothing (MSG_TRUNC is not reported back yet).
 */
export class RecvmsgOp<B extends Uint8Array = Uint8Array> extends OpAble<number> {
  readonly fd: number;
  readonly data: B;
  readonly sockaddr: Uint8Array;

  constructor(fd: number, data: B, sockaddr: Uint8Array) {
    super();
    this.fd = checkFd(fd);
    this.data = data;
    this.sockaddr = sockaddr;
  }

  get name(): string {
    return 'recvmsg';
  }

  // io_uring: IORING_OP_RECVMSG with a msghdr the addon keeps in the op's slot.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.RECVMSG, this.fd, 1).msghdr(this.data, this.sockaddr);
  }

  // epoll: wait until readable, then recvmsg(2).
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }

  override payload(): B {
    return this.data;
  }

  complete(res: number): number {
    return this.check(res);
  }
}
