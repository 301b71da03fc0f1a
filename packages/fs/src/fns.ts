/** Whole-file and path functions. */
import { ERRNO, checkBuffer, errnoError, submit } from '@ringio/runtime';
import { AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, STATX_BTIME } from './constants.js';
import { File } from './file.js';
import { MkdiratOp, RenameatOp, SymlinkatOp, UnlinkatOp } from './ops/paths.js';
import { StatxOp } from './ops/statx.js';
import { fsFallback, hasOp } from './fallback.js';
import { encodePath, pathString, type PathLike } from './path.js';
import { Stats } from './stat.js';

/** The most one read or write op moves (Linux's own per-call cap). */
const MAX_IO = 0x7ffff000;

/** Reads a whole file. Resolves a Buffer of exactly the bytes read. */
export async function readFile(path: PathLike, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
  const f = await File.open(path);
  try {
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
      const [got] = await f.readAt(buf.subarray(n, n + Math.min(buf.length - n, MAX_IO)), n, { signal: opts.signal });
      if (got === 0) break;
      n += got;
    }
    if (buf.length - n <= 4096) return buf.subarray(0, n);
    // Do not keep a mostly empty buffer alive behind the result.
    const exact = Buffer.allocUnsafe(n);
    buf.copy(exact, 0, 0, n);
    return exact;
  } finally {
    await f.close();
  }
}

/** Writes a whole file, creating or truncating it. Strings are written as UTF-8. */
export async function writeFile(
  path: PathLike,
  data: Uint8Array | string,
  opts: { mode?: number; signal?: AbortSignal } = {},
): Promise<void> {
  // Everything is checked before the file is created or truncated.
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : checkBuffer(data, 'data');
  encodePath(path);
  const f = await File.create(path, { mode: opts.mode });
  try {
    for (let off = 0; off < bytes.byteLength; off += MAX_IO) {
      const len = Math.min(MAX_IO, bytes.byteLength - off);
      await f.writeAllAt(bytes.subarray(off, off + len), off, { signal: opts.signal });
    }
  } finally {
    await f.close();
  }
}

/** Status of a path, following symlinks. */
export async function stat(path: PathLike): Promise<Stats> {
  const out = await submit(new StatxOp(AT_FDCWD, encodePath(path), pathString(path), 0, STATX_BASIC_STATS | STATX_BTIME));
  return new Stats(out);
}

/** Status of a path itself (a symlink is not followed). */
export async function lstat(path: PathLike): Promise<Stats> {
  const out = await submit(
    new StatxOp(AT_FDCWD, encodePath(path), pathString(path), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME),
  );
  return new Stats(out);
}

export function unlink(path: PathLike): Promise<void> {
  try {
    if (!hasOp('UNLINKAT')) return fsFallback.unlink(pathString(path));
    return submit(new UnlinkatOp(encodePath(path), pathString(path), 0));
  } catch (e) {
    return Promise.reject(e);
  }
}

export function rmdir(path: PathLike): Promise<void> {
  try {
    if (!hasOp('UNLINKAT')) return fsFallback.rmdir(pathString(path));
    return submit(new UnlinkatOp(encodePath(path), pathString(path), AT_REMOVEDIR));
  } catch (e) {
    return Promise.reject(e);
  }
}

export function rename(from: PathLike, to: PathLike): Promise<void> {
  try {
    if (!hasOp('RENAMEAT')) return fsFallback.rename(pathString(from), pathString(to));
    return submit(new RenameatOp(encodePath(from, 'from'), encodePath(to, 'to'), pathString(from), pathString(to)));
  } catch (e) {
    return Promise.reject(e);
  }
}

export function symlink(target: PathLike, path: PathLike): Promise<void> {
  try {
    if (!hasOp('SYMLINKAT')) return fsFallback.symlink(pathString(target), pathString(path));
    // Errors name the target in `path` and the link in `dest`, as node:fs does.
    return submit(new SymlinkatOp(encodePath(target, 'target'), encodePath(path), pathString(target), pathString(path)));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Creates a directory. With `recursive`, creates missing parents and succeeds if the directory exists
 * (resolving the first directory created, or undefined, as node:fs does).
 */
export async function mkdir(path: PathLike, opts: { recursive?: boolean; mode?: number } = {}): Promise<string | undefined> {
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
