import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';

/** READV into several rented buffers, each used whole: resolves [n, bufs]. */
export class ReadvOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B[]]> {
  readonly fd: number;
  readonly bufs: B[];

  constructor(fd: number, bufs: B[]) {
    super();
    this.fd = checkFd(fd);
    this.bufs = bufs;
  }

  get name(): string {
    return 'readv';
  }

  // io_uring: IORING_OP_READV at the current position (streams).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.READV, this.fd, this.bufs.length, -1).iovec(this.bufs);
  }

  // epoll: wait until readable, then readv(2).
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }

  override payload(): B[] {
    return this.bufs;
  }

  complete(res: number): [number, B[]] {
    return [this.check(res), this.bufs];
  }
}
