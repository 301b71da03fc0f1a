import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { SPLICE_F_MORE, SPLICE_F_MOVE } from '../constants.js';

/**
 * SPLICE: moves up to `length` bytes from fdIn to fdOut inside the kernel (one side must be a pipe).
 * Resolves the byte count; 0 means fdIn is at end of stream.
 */
export class SpliceOp extends OpAble<number> {
  readonly fdIn: number;
  readonly fdOut: number;
  readonly length: number;
  /** What the epoll path waits for: the socket side's readiness. */
  readonly interest: Interest;

  constructor(fdIn: number, fdOut: number, length: number, interest: Interest) {
    super();
    this.fdIn = checkFd(fdIn, 'fdIn');
    this.fdOut = checkFd(fdOut, 'fdOut');
    this.length = length;
    this.interest = interest;
  }

  get name(): string {
    return 'splice';
  }

  // io_uring: IORING_OP_SPLICE with no offsets (fd = fdOut, splice_fd_in = fdIn, off_in = -1).
  uringOp(sqe: SqeWriter): void {
    sqe
      .prep(IORING_OP.SPLICE, this.fdOut, this.length, -1)
      .u64(-1)
      .extra(this.fdIn)
      .opFlags(SPLICE_F_MOVE | SPLICE_F_MORE);
  }

  // epoll: wait for the socket side, then splice(2) with SPLICE_F_NONBLOCK.
  override legacyInterest(): Interest {
    return this.interest;
  }

  complete(res: number): number {
    return this.check(res);
  }
}
