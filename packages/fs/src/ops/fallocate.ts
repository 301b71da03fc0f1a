import { IORING_OP, OpAble, type Interest, type SqeWriter } from '@ringio/runtime';

/** FALLOCATE: reserves (mode 0) or otherwise manipulates a byte range of a file. */
export class FallocateOp extends OpAble<void> {
  constructor(
    readonly fd: number,
    readonly offset: number | bigint,
    readonly length: number,
    readonly mode = 0,
    readonly path?: string,
  ) {
    super();
  }

  get name(): string {
    return 'fallocate';
  }

  // io_uring: IORING_OP_FALLOCATE (off = offset, addr = length, len = mode).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.FALLOCATE, this.fd, this.mode, this.offset).u64(this.length);
  }

  // epoll: fallocate(2) on the file thread pool.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'pool' };
  }

  complete(res: number): void {
    this.check(res, this.path === undefined ? undefined : { path: this.path });
  }
}
