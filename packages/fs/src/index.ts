/**
 * @ringio/fs: file I/O through io_uring (or, on the epoll driver, a file thread pool), with rented
 * buffers.
 */
export { File, type OpenOptions, type OpenFlags, type FileIoOptions, type ReadManyOptions } from './file.js';
export type { ReadManyFailure } from './ops/read-many.js';
export { type ReadFileOptions, type WriteFileOptions, type StatOptions, type MkdirOptions, readFile, writeFile, stat, lstat, unlink, rmdir, rename, symlink, mkdir } from './fns.js';
export { Stats } from './stat.js';
export { allocAligned } from './align.js';
export { FileReadOp, FileWriteOp, FileReadvOp, FileWritevOp } from './ops/rw.js';
export { OpenatOp } from './ops/openat.js';
export { StatxOp } from './ops/statx.js';
export { FsyncOp } from './ops/fsync.js';
export { FallocateOp } from './ops/fallocate.js';
export { FtruncateOp } from './ops/ftruncate.js';
export { UnlinkatOp, RenameatOp, MkdiratOp, SymlinkatOp } from './ops/paths.js';
export type { PathLike } from './path.js';
