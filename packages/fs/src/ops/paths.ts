/** Path ops relative to AT_FDCWD: UNLINKAT (unlink, rmdir), RENAMEAT, MKDIRAT, SYMLINKAT. */
import { IORING_OP, OpAble, type Interest, type SqeWriter } from '@ringio/runtime';
import { AT_FDCWD } from '../constants.js';

abstract class PathOp extends OpAble<void> {
  constructor(readonly pathText: string) {
    super();
  }

  // epoll: the syscall on the file thread pool.
  override legacyInterest(): Interest {
    return { fd: 0, direction: 'pool' };
  }

  complete(res: number): void {
    this.check(res, { path: this.pathText });
  }
}

/** UNLINKAT relative to AT_FDCWD: removes a file (atFlags 0) or an empty directory (AT_REMOVEDIR). Errors carry `path`. */
export class UnlinkatOp extends PathOp {
  constructor(readonly path: Uint8Array, pathText: string, readonly atFlags: number) {
    super(pathText);
  }
  get name(): string {
    return this.atFlags ? 'rmdir' : 'unlink';
  }
  // io_uring: IORING_OP_UNLINKAT (unlink_flags: AT_REMOVEDIR for rmdir).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.UNLINKAT, AT_FDCWD).addrBufEnd(this.path).opFlags(this.atFlags);
  }
}

/** RENAMEAT relative to AT_FDCWD: renames `from` to `to`. Errors carry `path` and `dest`. */
export class RenameatOp extends PathOp {
  constructor(readonly from: Uint8Array, readonly to: Uint8Array, pathText: string, readonly destText: string) {
    super(pathText);
  }
  get name(): string {
    return 'rename';
  }
  // io_uring: IORING_OP_RENAMEAT (addr = old path, len = new dirfd, addr2 = new path).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.RENAMEAT, AT_FDCWD, AT_FDCWD).addrBufEnd(this.from).addr2Buf(this.to);
  }
  override complete(res: number): void {
    this.check(res, { path: this.pathText, dest: this.destText });
  }
}

/** MKDIRAT relative to AT_FDCWD: creates a directory with `mode`. Errors carry `path`. */
export class MkdiratOp extends PathOp {
  constructor(readonly path: Uint8Array, pathText: string, readonly mode: number) {
    super(pathText);
  }
  get name(): string {
    return 'mkdir';
  }
  // io_uring: IORING_OP_MKDIRAT (len = mode).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.MKDIRAT, AT_FDCWD, this.mode).addrBufEnd(this.path);
  }
}

/** SYMLINKAT relative to AT_FDCWD: creates `link` pointing to `target`. Errors carry `path` (the target) and `dest` (the link). */
export class SymlinkatOp extends PathOp {
  /** `pathText` is the target and `linkText` the link, as node:fs reports them (path, dest). */
  constructor(readonly target: Uint8Array, readonly link: Uint8Array, pathText: string, readonly linkText = '') {
    super(pathText);
  }
  override complete(res: number): void {
    this.check(res, { path: this.pathText, dest: this.linkText });
  }
  get name(): string {
    return 'symlink';
  }
  // io_uring: IORING_OP_SYMLINKAT (addr = target, fd = new dirfd, addr2 = link path).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SYMLINKAT, AT_FDCWD).addrBufEnd(this.target).addr2Buf(this.link);
  }
}
