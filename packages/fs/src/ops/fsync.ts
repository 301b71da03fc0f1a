import { IORING_FSYNC_DATASYNC, IORING_OP, OpAble, type Interest, type SqeWriter } from '@ringio/runtime';

/** FSYNC: flushes a file's data (and, unless datasync, its metadata) to storage. */
export class FsyncOp extends OpAble<void> {
  constructor(
    readonly fd: number,
    readonly dataOnly: boolean,
    readonly path?: string,
  ) {
    super();
  }

  get name(): string {
    return this.dataOnly ? 'fdatasync' : 'fsync';
  }

  // io_uring: IORING_OP_FSYNC (IORING_FSYNC_DATASYNC for datasync).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.FSYNC, this.fd).opFlags(this.dataOnly ? IORING_FSYNC_DATASYNC : 0);
  }

  // epoll: fsync(2) / fdatasync(2) on the file thread pool.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'pool' };
  }

  complete(res: number): void {
    this.check(res, this.path === undefined ? undefined : { path: this.path });
  }
}
