import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { MSG_NOSIGNAL } from '../constants.js';

/** SENDMSG: sends `data` (used whole) as one datagram, to `sockaddr` when given. Resolves the byte count. */
export class SendmsgOp<B extends Uint8Array = Uint8Array> extends OpAble<number> {
  readonly fd: number;
  readonly data: B;
  readonly sockaddr: Uint8Array | undefined;

  constructor(fd: number, data: B, sockaddr?: Uint8Array) {
    super();
    this.fd = checkFd(fd);
    this.data = data;
    this.sockaddr = sockaddr;
  }

  get name(): string {
    return 'sendmsg';
  }

  // io_uring: IORING_OP_SENDMSG with MSG_NOSIGNAL and a msghdr the addon keeps in the op's slot.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SENDMSG, this.fd, 1).msghdr(this.data, this.sockaddr).opFlags(MSG_NOSIGNAL);
  }

  // epoll: wait until writable, then sendmsg(2).
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'writable' };
  }

  override payload(): B {
    return this.data;
  }

  complete(res: number): number {
    return this.check(res);
  }
}
