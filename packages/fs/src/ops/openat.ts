import { IORING_OP, OpAble, OpFlags, type Interest, type SqeWriter } from '@ringio/runtime';
import { AT_FDCWD } from '../constants.js';

/** OPENAT: opens a path relative to AT_FDCWD. Resolves the fd. RetIsFd: an fd opened for a cancelled op is closed. */
export class OpenatOp extends OpAble<number> {
  override readonly flags = OpFlags.RetIsFd;

  constructor(
    readonly path: Uint8Array,
    readonly pathText: string,
    readonly openFlags: number,
    readonly mode: number,
  ) {
    super();
  }

  get name(): string {
    return 'open';
  }

  // io_uring: IORING_OP_OPENAT (addr = path, len = mode, open_flags).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.OPENAT, AT_FDCWD, this.mode).addrBufEnd(this.path).opFlags(this.openFlags);
  }

  // epoll: openat(2) on the file thread pool (it can block on slow file systems).
  override legacyInterest(): Interest {
    return { fd: 0, direction: 'pool' };
  }

  complete(res: number): number {
    return this.check(res, { path: this.pathText });
  }
}
