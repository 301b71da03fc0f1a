import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { MSG_NOSIGNAL } from '../constants.js';

/** SEND from a rented buffer window: resolves [n, buf]; n may be short. Never raises SIGPIPE. */
export class SendOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B]> {
  readonly fd: number;
  readonly buf: B;
  readonly offset: number;
  readonly length: number;

  /** The caller has validated buf, offset and length. */
  constructor(fd: number, buf: B, offset: number, length: number) {
    super();
    this.fd = checkFd(fd);
    this.buf = buf;
    this.offset = offset;
    this.length = length;
  }

  get name(): string {
    return 'send';
  }

  // io_uring: IORING_OP_SEND with MSG_NOSIGNAL.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SEND, this.fd, this.length).buf(this.buf, this.offset).opFlags(MSG_NOSIGNAL);
  }

  // epoll: wait until writable, then send(2) with MSG_DONTWAIT | MSG_NOSIGNAL.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'writable' };
  }

  override payload(): B {
    return this.buf;
  }

  complete(res: number): [number, B] {
    return [this.check(res), this.buf];
  }
}
