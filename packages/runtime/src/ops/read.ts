import { IORING_OP } from '../driver/layout.js';
import { OpAble, checkBuffer, checkFd, checkPosition, checkRange, type Interest, type SqeWriter } from '../op.js';

/**
 * READ into a rented buffer: resolves [n, buf], the same buffer back. n === 0 is end of file/stream.
 * Works on pipes, eventfds, sockets and files; `position` -1 reads at the fd's current position.
 */
export class ReadOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B]> {
  get name(): string {
    return 'read';
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

  // io_uring: IORING_OP_READ (the kernel uses the fd's position when off is -1).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.READ, this.fd, this.length, this.position).buf(this.buf, this.offset);
  }

  // epoll: wait until readable, then read(2) or pread(2). Regular files are never "not ready".
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
