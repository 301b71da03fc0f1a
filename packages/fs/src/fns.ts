/** Whole-file and path functions. */
import { ERRNO, checkBuffer, errnoError, submit } from '@ringio/runtime';
import { AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, STATX_BTIME } from './constants.js';
import { File, checkKeys, flagsToOptions, type OpenFlags } from './file.js';
import { MkdiratOp, RenameatOp, SymlinkatOp, UnlinkatOp } from './ops/paths.js';
import { StatxOp } from './ops/statx.js';
import { fsFallback, hasOp } from './fallback.js';
import { encodePath, pathString, type PathLike } from './path.js';
import { Stats } from './stat.js';

/** The most one read or write op moves (Linux's own per-call cap). */
const MAX_IO = 0x7ffff000;

/** readFile's options, as node:fs/promises takes them. */
export interface ReadFileOptions {
  /** Decode the bytes with this encoding and resolve a string; null or absent: resolve a Buffer. */
  encoding?: BufferEncoding | null;
  /** How the file is opened (default 'r'); it must allow reading. */
  flag?: OpenFlags;
  /** Aborting it cancels the read in flight; readFile rejects with AbortError. */
  signal?: AbortSignal;
}

/** writeFile's options, as node:fs/promises takes them. */
export interface WriteFileOptions {
  /** How a string `data` is encoded (default 'utf8'). Ignored for byte data, as in node:fs. */
  encoding?: BufferEncoding | null;
  /** Permission bits if the file is created (default 0o666, less the umask). */
  mode?: number;
  /** How the file is opened (default 'w': create or truncate; 'a' appends, 'wx' fails if it exists). */
  flag?: OpenFlags;
  /** fsync the file before closing it. */
  flush?: boolean;
  /** Aborting it cancels the write in flight; writeFile rejects with AbortError. */
  signal?: AbortSignal;
}

const READ_KEYS = new Set(['encoding', 'flag', 'signal']);
const WRITE_KEYS = new Set(['encoding', 'mode', 'flag', 'flush', 'signal']);

/** node:fs's options argument: an options object, an encoding string, or null/undefined. */
function fileOptions<O extends { encoding?: BufferEncoding | null }>(opts: O | BufferEncoding | null | undefined, known: ReadonlySet<string>, fn: string): O {
  if (opts === undefined || opts === null) return {} as O;
  const o = (typeof opts === 'string' ? { encoding: opts } : opts) as O;
  if (typeof o !== 'object') throw new TypeError(`${fn}: options must be an object or an encoding string`);
  checkKeys(o, known, fn);
  if (o.encoding !== undefined && o.encoding !== null && (typeof o.encoding !== 'string' || !Buffer.isEncoding(o.encoding))) {
    throw new TypeError(`${fn}: unknown encoding ${JSON.stringify(o.encoding)}`);
  }
  return o;
}

/**
 * Reads a whole file. Resolves a Buffer of exactly the bytes read, or a string when an encoding is
 * given (`readFile(p, 'utf8')`, `readFile(p, { encoding: 'utf8' })`), as node:fs/promises does.
 */
export function readFile(path: PathLike, opts?: (ReadFileOptions & { encoding?: null }) | null): Promise<Buffer>;
export function readFile(path: PathLike, opts: (ReadFileOptions & { encoding: BufferEncoding }) | BufferEncoding): Promise<string>;
export function readFile(path: PathLike, opts?: ReadFileOptions | BufferEncoding | null): Promise<string | Buffer>;
export async function readFile(path: PathLike, options?: ReadFileOptions | BufferEncoding | null): Promise<string | Buffer> {
  const opts = fileOptions<ReadFileOptions>(options, READ_KEYS, 'readFile');
  const open = opts.flag === undefined ? {} : flagsToOptions(opts.flag, 'flag');
  // node:fs would open (and, for 'w', truncate) the file and then fail with EBADF: refuse it up front.
  if (open.read === false) throw new TypeError(`readFile: flag '${opts.flag}' does not open the file for reading`);
  const f = await File.open(path, open);
  let bytes: Buffer;
  try {
    bytes = await readAll(f, opts.signal);
  } finally {
    await f.close();
  }
  return opts.encoding ? bytes.toString(opts.encoding) : bytes;
}

async function readAll(f: File, signal: AbortSignal | undefined): Promise<Buffer> {
  const size = (await f.stat()).size;
  // One byte more than the size, so the read that finds EOF needs no bigger buffer; files that report
  // no size (procfs, FIFOs) start at 64 KiB and double.
  let buf = Buffer.allocUnsafe(size > 0 ? size + 1 : 65536);
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, n);
      buf = bigger;
    }
    // One read moves at most MAX_IO bytes (Linux caps a read there anyway).
    // Each read gets a view starting at its window, so no offset grows past what a record carries.
    const [got] = await f.readAt(buf.subarray(n, n + Math.min(buf.length - n, MAX_IO)), n, { signal });
    if (got === 0) break;
    n += got;
  }
  if (buf.length - n <= 4096) return buf.subarray(0, n);
  // Do not keep a mostly empty buffer alive behind the result.
  const exact = Buffer.allocUnsafe(n);
  buf.copy(exact, 0, 0, n);
  return exact;
}

/**
 * Writes a whole file, creating or truncating it (flag 'w'; 'a' appends, 'wx' fails if the file
 * exists). Strings are encoded with `encoding` (default UTF-8); bytes are any ArrayBufferView.
 */
export async function writeFile(
  path: PathLike,
  data: string | ArrayBufferView,
  options?: WriteFileOptions | BufferEncoding | null,
): Promise<void> {
  // Everything is checked before the file is created or truncated.
  const opts = fileOptions<WriteFileOptions>(options, WRITE_KEYS, 'writeFile');
  const bytes =
    typeof data === 'string'
      ? Buffer.from(data, opts.encoding ?? 'utf8')
      : ArrayBuffer.isView(data) && !(data instanceof Uint8Array)
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : checkBuffer(data, 'data');
  if (opts.flush !== undefined && typeof opts.flush !== 'boolean') throw new TypeError('writeFile: flush must be a boolean');
  const open = opts.flag === undefined ? { read: false, write: true, create: true, truncate: true } : flagsToOptions(opts.flag, 'flag');
  if (!open.write && !open.append) throw new TypeError(`writeFile: flag '${opts.flag}' does not open the file for writing`);
  encodePath(path);
  const f = await File.open(path, { ...open, mode: opts.mode });
  try {
    if (open.append) {
      // O_APPEND: every write goes to the end, at the file position.
      for (let off = 0; off < bytes.byteLength; ) {
        const [n] = await f.write(bytes, { offset: off, length: Math.min(MAX_IO, bytes.byteLength - off), signal: opts.signal });
        if (n === 0) throw errnoError(-5 /* EIO */, 'write', { path: f.path });
        off += n;
      }
    } else {
      for (let off = 0; off < bytes.byteLength; off += MAX_IO) {
        const len = Math.min(MAX_IO, bytes.byteLength - off);
        await f.writeAllAt(bytes.subarray(off, off + len), off, { signal: opts.signal });
      }
    }
    if (opts.flush === true) await f.sync();
  } finally {
    await f.close();
  }
}

/** stat's and lstat's options: node:fs's `bigint: true` (BigInt fields) is not supported and refused. */
export interface StatOptions {
  /** Only false (or absent): BigInt fields are not supported. */
  bigint?: false;
}

function checkStatOptions(opts: StatOptions | undefined, fn: string): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${fn}: options must be an object`);
  checkKeys(opts, STAT_KEYS, fn);
  if (opts.bigint !== undefined && opts.bigint !== false) throw new TypeError(`${fn}: bigint: true is not supported (fields are numbers)`);
}

const STAT_KEYS = new Set(['bigint']);

/** Status of a path, following symlinks (statx). Rejects ENOENT, EACCES, ... with `path`. */
export async function stat(path: PathLike, opts?: StatOptions): Promise<Stats> {
  checkStatOptions(opts, 'stat');
  const out = await submit(new StatxOp(AT_FDCWD, encodePath(path), pathString(path), 0, STATX_BASIC_STATS | STATX_BTIME));
  return new Stats(out);
}

/** Status of a path itself: a symlink is not followed (statx with AT_SYMLINK_NOFOLLOW). */
export async function lstat(path: PathLike, opts?: StatOptions): Promise<Stats> {
  checkStatOptions(opts, 'lstat');
  const out = await submit(
    new StatxOp(AT_FDCWD, encodePath(path), pathString(path), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME),
  );
  return new Stats(out);
}

/** Removes a file or symlink (unlinkat). Rejects ENOENT, EISDIR (a directory: use rmdir), ... with `path`. */
export function unlink(path: PathLike): Promise<void> {
  try {
    if (!hasOp('UNLINKAT')) return fsFallback.unlink(pathString(path));
    return submit(new UnlinkatOp(encodePath(path), pathString(path), 0));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Removes an empty directory (unlinkat with AT_REMOVEDIR). Rejects ENOTEMPTY, ENOTDIR, ENOENT with `path`. */
export function rmdir(path: PathLike): Promise<void> {
  try {
    if (!hasOp('UNLINKAT')) return fsFallback.rmdir(pathString(path));
    return submit(new UnlinkatOp(encodePath(path), pathString(path), AT_REMOVEDIR));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Renames `from` to `to` (renameat), replacing `to` if it exists, as rename(2) does. Errors carry `path`
 * (from) and `dest` (to).
 */
export function rename(from: PathLike, to: PathLike): Promise<void> {
  try {
    if (!hasOp('RENAMEAT')) return fsFallback.rename(pathString(from), pathString(to));
    return submit(new RenameatOp(encodePath(from, 'from'), encodePath(to, 'to'), pathString(from), pathString(to)));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Creates a symlink at `path` that points to `target` (symlinkat; `target` is stored as written, not
 * resolved). Errors carry `path` (the target) and `dest` (the link), as node:fs's do.
 */
export function symlink(target: PathLike, path: PathLike): Promise<void> {
  try {
    if (!hasOp('SYMLINKAT')) return fsFallback.symlink(pathString(target), pathString(path));
    // Errors name the target in `path` and the link in `dest`, as node:fs does.
    return submit(new SymlinkatOp(encodePath(target, 'target'), encodePath(path), pathString(target), pathString(path)));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** mkdir's options, as node:fs/promises takes them. */
export interface MkdirOptions {
  /** Create missing parents too, and succeed if the directory exists. */
  recursive?: boolean;
  /** Permission bits, 0..0o7777 (default 0o777, less the umask). */
  mode?: number;
}

const MKDIR_KEYS = new Set(['recursive', 'mode']);

/**
 * Creates a directory. With `recursive`, creates missing parents and succeeds if the directory exists
 * (resolving the first directory created, or undefined, as node:fs does).
 */
export async function mkdir(path: PathLike, options?: MkdirOptions | number): Promise<string | undefined> {
  // node:fs takes the mode alone too: mkdir(p, 0o755).
  const opts = typeof options === 'number' ? { mode: options } : (options ?? {});
  if (opts === null || typeof opts !== 'object') throw new TypeError('mkdir: options must be an object or a mode');
  checkKeys(opts, MKDIR_KEYS, 'mkdir');
  if (opts.recursive !== undefined && typeof opts.recursive !== 'boolean') throw new TypeError('mkdir: recursive must be a boolean');
  const mode = opts.mode ?? 0o777;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new RangeError('mode must be an integer in 0..0o7777');
  encodePath(path);
  const text = pathString(path);
  const make = (dir: string): Promise<void> =>
    hasOp('MKDIRAT') ? submit(new MkdiratOp(encodePath(dir), dir, mode)) : fsFallback.mkdir(dir, mode);
  if (!opts.recursive) {
    await make(text);
    return undefined;
  }
  // Walk up the path as it was given (so the result reads like node:fs's), to the first that exists.
  const { dirname } = await import('node:path');
  const missing: string[] = [];
  for (let dir = text; ; dir = dirname(dir)) {
    try {
      const s = await stat(dir);
      if (!s.isDirectory()) throw errnoError(dir === text ? ERRNO.EEXIST : ERRNO.ENOTDIR, 'mkdir', { path: text });
      break;
    } catch (e) {
      const code = (e as { code?: string; syscall?: string }).code;
      if (code !== 'ENOENT') {
        if (code === 'ENOTDIR') throw errnoError(ERRNO.ENOTDIR, 'mkdir', { path: text });
        throw e;
      }
      missing.push(dir);
      if (dirname(dir) === dir) break;
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await make(dir);
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e; // created meanwhile by someone else
    }
  }
  return missing.length > 0 ? missing[0] : undefined;
}
