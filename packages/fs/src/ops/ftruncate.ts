import { IORING_OP, OpAble, type Interest, type SqeWriter } from '@ringio/runtime';

/** FTRUNCATE (io_uring: kernel 6.9+): sets a file's length. */
export class FtruncateOp extends OpAble<void> {
  constructor(
    readonly fd: number,
    readonly length: number | bigint,
    readonly path?: string,
  ) {
    super();
  }

  get name(): string {
    return 'ftruncate';
  }

  // io_uring: IORING_OP_FTRUNCATE (off = length).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.FTRUNCATE, this.fd, 0, this.length);
  }

  // epoll: ftruncate(2) on the file thread pool.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'pool' };
  }

  complete(res: number): void {
    this.check(res, this.path === undefined ? undefined : { path: this.path });
  }
}
