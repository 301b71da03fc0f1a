import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';

/** RECV into a rented buffer window: resolves [n, buf]; n === 0 is end of stream. */
export class RecvOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B]> {
  readonly fd: number;
  buf: B;
  offset: number;
  length: number;
  readonly msgFlags: number;

  /** The caller has validated buf, offset and length. */
  constructor(fd: number, buf: B, offset: number, length: number, msgFlags = 0) {
    super();
    this.fd = checkFd(fd);
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    this.msgFlags = msgFlags;
  }

  get name(): string {
    return 'recv';
  }

  /** Reuses a completed op for the next read on the same fd (streams pool their read op). */
  reuse(buf: B, offset: number, length: number): boolean {
    if (!this.recycle()) return false;
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    return true;
  }

  // io_uring: IORING_OP_RECV.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.RECV, this.fd, this.length).buf(this.buf, this.offset).opFlags(this.msgFlags);
  }

  // epoll: wait until readable, then recv(2) with MSG_DONTWAIT.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }

  override payload(): B {
    return this.buf;
  }

  complete(res: number): [number, B] {
    return [this.check(res), this.buf];
  }
}
