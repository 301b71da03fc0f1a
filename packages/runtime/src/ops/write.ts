import { IORING_OP } from '../driver/layout.js';
import { OpAble, checkBuffer, checkFd, checkPosition, checkRange, type Interest, type SqeWriter } from '../op.js';

/** WRITE from a rented buffer: resolves [n, buf]; n may be short, as with write(2). */
export class WriteOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B]> {
  get name(): string {
    return 'write';
  }
  readonly fd: number;
  readonly buf: B;
  readonly offset: number;
  readonly length: number;
  readonly position: number | bigint;

  constructor(fd: number, buf: B, offset = 0, length?: number, position: number | bigint = -1) {
    super();
    this.fd = checkFd(fd);
    this.buf = checkBuffer(buf) as B;
    this.length = checkRange(buf, offset, length);
    this.offset = offset;
    this.position = checkPosition(position);
  }

  // io_uring: IORING_OP_WRITE.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.WRITE, this.fd, this.length, this.position).buf(this.buf, this.offset);
  }

  // epoll: wait until writable, then write(2) or pwrite(2).
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
