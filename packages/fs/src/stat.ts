/** Stats: a Node-like view of a struct statx. */
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from './constants.js';

export const STATX_SIZE = 256;

/** glibc's makedev(), which libuv (and so node:fs) uses for dev and rdev. */
function makedev(major: number, minor: number): number {
  // The four parts occupy separate bits, so adding them is the bitwise OR glibc does, without int32 overflow.
  return (major & 0xfffff000) * 2 ** 32 + (major & 0xfff) * 2 ** 8 + (minor & 0xffffff00) * 2 ** 12 + (minor & 0xff);
}

/**
 * A file's status, from stat(), lstat() and File#stat(): the fields of node:fs's Stats (numbers, as
 * fs.stat() without `bigint` gives them), read from one statx(2).
 */
export class Stats {
  /** The device the file is on (makedev(major, minor), as node:fs computes it). */
  dev: number;
  /** The inode number. */
  ino: number;
  /** File type and permission bits (S_IFMT | 0o7777), as st_mode. */
  mode: number;
  /** Hard links to the file. */
  nlink: number;
  /** Owner user id. */
  uid: number;
  /** Owner group id. */
  gid: number;
  /** The device a device file stands for (0 for other files). */
  rdev: number;
  /** Size in bytes (for a symlink from lstat: the length of its target). */
  size: number;
  /** The file system's preferred I/O block size. */
  blksize: number;
  /** 512-byte blocks allocated (smaller than size / 512 for a sparse file). */
  blocks: number;
  /** Last access, ms since the epoch (fractional: nanosecond precision). */
  atimeMs: number;
  /** Last data change, ms since the epoch. */
  mtimeMs: number;
  /** Last status change (metadata), ms since the epoch. */
  ctimeMs: number;
  /** Creation time, ms since the epoch (0 where the file system does not record it). */
  birthtimeMs: number;

  /** Decodes a 256-byte struct statx, such as a StatxOp resolves (stat(), lstat() and File#stat() do this for you). */
  constructor(b: Uint8Array) {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const u64 = (o: number): number => Number(v.getBigUint64(o, true));
    const ts = (o: number): number => Number(v.getBigInt64(o, true)) * 1e3 + v.getUint32(o + 8, true) / 1e6;
    this.blksize = v.getUint32(4, true);
    this.nlink = v.getUint32(16, true);
    this.uid = v.getUint32(20, true);
    this.gid = v.getUint32(24, true);
    this.mode = v.getUint16(28, true);
    this.ino = u64(32);
    this.size = u64(40);
    this.blocks = u64(48);
    this.atimeMs = ts(64);
    this.birthtimeMs = ts(80);
    this.ctimeMs = ts(96);
    this.mtimeMs = ts(112);
    this.rdev = makedev(v.getUint32(128, true), v.getUint32(132, true));
    this.dev = makedev(v.getUint32(136, true), v.getUint32(140, true));
  }

  /** atimeMs as a Date. */
  get atime(): Date {
    return new Date(Math.round(this.atimeMs));
  }
  /** mtimeMs as a Date. */
  get mtime(): Date {
    return new Date(Math.round(this.mtimeMs));
  }
  /** ctimeMs as a Date. */
  get ctime(): Date {
    return new Date(Math.round(this.ctimeMs));
  }
  /** birthtimeMs as a Date. */
  get birthtime(): Date {
    return new Date(Math.round(this.birthtimeMs));
  }
  /** A regular file. */
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  /** A directory. */
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  /** A symbolic link (only from lstat: stat follows links). */
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  /** A FIFO (named pipe). */
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === S_IFIFO;
  }
  /** A Unix socket. */
  isSocket(): boolean {
    return (this.mode & S_IFMT) === S_IFSOCK;
  }
  /** A character device. */
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFCHR;
  }
  /** A block device. */
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFBLK;
  }
}

/** The O_DIRECT alignment from a struct statx (STATX_DIOALIGN), 0 when the file system did not say. */
export function dioAlign(b: Uint8Array): { mem: number; offset: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const mask = v.getUint32(0, true);
  if (!(mask & 0x2000)) return { mem: 0, offset: 0 };
  return { mem: v.getUint32(152, true), offset: v.getUint32(156, true) };
}
