import { IORING_OP, OpAble, type Interest, type SqeWriter } from '@ringio/runtime';
import { STATX_SIZE } from '../stat.js';

/** STATX: file status into a rented 256-byte buffer. `path` '' with AT_EMPTY_PATH stats the fd itself. */
export class StatxOp extends OpAble<Uint8Array> {
  readonly out = new Uint8Array(STATX_SIZE);

  constructor(
    readonly dirfd: number,
    readonly path: Uint8Array,
    readonly pathText: string | undefined,
    readonly atFlags: number,
    readonly mask: number,
  ) {
    super();
  }

  get name(): string {
    return 'stat';
  }

  // io_uring: IORING_OP_STATX (addr = path, len = mask, addr2 = struct statx, statx_flags).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.STATX, this.dirfd, this.mask).addrBufEnd(this.path).addr2Buf(this.out).opFlags(this.atFlags);
  }

  // epoll: statx(2) on the file thread pool.
  override legacyInterest(): Interest {
    return { fd: 0, direction: 'pool' };
  }

  complete(res: number): Uint8Array {
    this.check(res, this.pathText === undefined ? undefined : { path: this.pathText });
    return this.out;
  }
}
