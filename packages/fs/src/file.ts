/**
 * File: an open file with rented-buffer reads and writes at positions.
 *
 * - Reads and writes resolve [n, buf] with the same buffer; do not touch it until the promise settles.
 *   Errors carry code, syscall, path and buf.
 * - Positions are numbers up to Number.MAX_SAFE_INTEGER or bigints; -1 (the default of read/write)
 *   means the file position.
 * - On io_uring every op is a kernel op. On epoll, ops on regular files run on the engine's file thread
 *   pool (RINGIO_FS_THREADS, default 4), and ops on FIFOs and devices wait for readiness.
 * - With { direct: true } (O_DIRECT) every buffer, position and length must be aligned as the file
 *   system requires (statx STATX_DIOALIGN); otherwise the call rejects ERR_RINGIO_ALIGNMENT before
 *   anything reaches the kernel. allocAligned() makes suitable buffers.
 */
import {
  FdHandle,
  OpAble,
  abortError,
  OpState,
  checkBuffer,
  checkBufs,
  closeSync,
  checkPosition,
  checkRange,
  driverName,
  ringioError,
  submit,
  sys,
  type Direction,
} from '@ringio/runtime';
import {
  AT_EMPTY_PATH,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECT,
  O_EXCL,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_SYNC,
  O_TRUNC,
  O_WRONLY,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  STATX_BASIC_STATS,
  STATX_BTIME,
  STATX_DIOALIGN,
} from './constants.js';
import { FallocateOp } from './ops/fallocate.js';
import { FsyncOp } from './ops/fsync.js';
import { FtruncateOp } from './ops/ftruncate.js';
import { OpenatOp } from './ops/openat.js';
import { FileReadOp, FileReadvOp, FileWriteOp, FileWritevOp } from './ops/rw.js';
import { ReadManyOp } from './ops/read-many.js';
import { LANE_MAX, ReadLaneOp } from './ops/read-lane.js';
import { StatxOp } from './ops/statx.js';
import { fsFallback, hasOp } from './fallback.js';
import { encodePath, pathString, type PathLike } from './path.js';
import { Stats, dioAlign } from './stat.js';

/** How File.open opens a file (all optional; the default opens for reading only). */
export interface OpenOptions {
  /** Open for reading (O_RDONLY / O_RDWR). Default true. */
  read?: boolean;
  /** Open for writing (O_WRONLY / O_RDWR). Default false. */
  write?: boolean;
  /** Every write goes to the end of the file (O_APPEND); implies writing. Default false. */
  append?: boolean;
  /** Create the file if it does not exist (O_CREAT); needs write or append. Default false. */
  create?: boolean;
  /** Cut the file to length 0 when opening (O_TRUNC); needs write or append. Default false. */
  truncate?: boolean;
  /** With create: fail with EEXIST if the file exists (O_EXCL). */
  exclusive?: boolean;
  /** Permission bits for a file that is created, 0..0o7777 (default 0o666, less the umask). */
  mode?: number;
  /** O_DIRECT: bypass the page cache. Buffers, positions and lengths must be aligned. */
  direct?: boolean;
  /** O_SYNC: each write returns once data and metadata are on storage (the 's' of node's 'rs+', 'as'). */
  sync?: boolean;
}

/**
 * node:fs's flags strings, as File.open(path, flags) and the `flag` option of readFile/writeFile take
 * them: 'r' read; 'r+' read and write; 'w' write, create, truncate; 'a' append, create; 'x' adds
 * exclusive (fail if it exists); '+' adds the other direction; 's' adds O_SYNC.
 */
export type OpenFlags =
  | 'r'
  | 'rs'
  | 'sr'
  | 'r+'
  | 'rs+'
  | 'sr+'
  | 'w'
  | 'wx'
  | 'xw'
  | 'w+'
  | 'wx+'
  | 'xw+'
  | 'a'
  | 'ax'
  | 'xa'
  | 'as'
  | 'sa'
  | 'a+'
  | 'ax+'
  | 'xa+'
  | 'as+'
  | 'sa+';

const FLAGS: Record<OpenFlags, OpenOptions> = {
  r: { read: true },
  rs: { read: true, sync: true },
  sr: { read: true, sync: true },
  'r+': { read: true, write: true },
  'rs+': { read: true, write: true, sync: true },
  'sr+': { read: true, write: true, sync: true },
  w: { read: false, write: true, create: true, truncate: true },
  wx: { read: false, write: true, create: true, truncate: true, exclusive: true },
  xw: { read: false, write: true, create: true, truncate: true, exclusive: true },
  'w+': { read: true, write: true, create: true, truncate: true },
  'wx+': { read: true, write: true, create: true, truncate: true, exclusive: true },
  'xw+': { read: true, write: true, create: true, truncate: true, exclusive: true },
  a: { read: false, append: true, create: true },
  ax: { read: false, append: true, create: true, exclusive: true },
  xa: { read: false, append: true, create: true, exclusive: true },
  as: { read: false, append: true, create: true, sync: true },
  sa: { read: false, append: true, create: true, sync: true },
  'a+': { read: true, append: true, create: true },
  'ax+': { read: true, append: true, create: true, exclusive: true },
  'xa+': { read: true, append: true, create: true, exclusive: true },
  'as+': { read: true, append: true, create: true, sync: true },
  'sa+': { read: true, append: true, create: true, sync: true },
};

/** The OpenOptions of a node:fs flags string; TypeError for anything else (numbers included). */
export function flagsToOptions(flags: unknown, name = 'flags'): OpenOptions {
  if (typeof flags === 'string' && Object.prototype.hasOwnProperty.call(FLAGS, flags)) return { ...FLAGS[flags as OpenFlags] };
  throw new TypeError(
    `${name} must be a node:fs flags string ('r', 'r+', 'w', 'wx', 'w+', 'a', 'ax', 'a+', ...)${typeof flags === 'number' ? ' (numeric flags are not supported: use a string or OpenOptions)' : ''}, got ${JSON.stringify(flags) ?? String(flags)}`,
  );
}

const OPEN_KEYS = new Set(['read', 'write', 'append', 'create', 'truncate', 'exclusive', 'mode', 'direct', 'sync']);

/** Rejects keys that are not options (a typo would otherwise be ignored silently). */
export function checkKeys(opts: object, known: ReadonlySet<string>, fn: string): void {
  for (const k of Object.keys(opts)) {
    if (!known.has(k)) throw new TypeError(`${fn}: unknown option '${k}' (known: ${[...known].join(', ')})`);
  }
}

/** Options of a read or write at a position: the window of `buf` to use, and an AbortSignal. */
export interface FileIoOptions {
  /** Where the window starts in buf (default 0). */
  offset?: number;
  /** The window's length (default: the rest of buf after offset). */
  length?: number;
  /** Aborting it cancels the op; the promise rejects with AbortError (with buf) once the kernel answered. */
  signal?: AbortSignal;
}

const EMPTY_PATH = new Uint8Array(1);

// readMany's checks build their errors here, out of the loop (a message inline would be built per entry).
function manyBadBuffer(i: number): TypeError {
  return new TypeError(`readMany: bufs[${i}] must be a Uint8Array or Buffer`);
}

function manyCheckPosition(p: unknown, i: number): void {
  if (typeof p === 'bigint' && p >= 0n && p <= 0x7fffffffffffffffn) return;
  if (typeof p !== 'number' && typeof p !== 'bigint') throw new TypeError(`readMany: positions[${i}] must be a number or bigint`);
  throw new RangeError(`readMany: positions[${i}] must be an integer in 0..2^63-1, got ${p}`);
}

function bool(v: unknown, name: string): boolean {
  if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return v === true;
}

const SUBMITTED = OpState.Submitted;

/** Completed read ops a File keeps for reuse (deep queues read concurrently, so one is not enough). */
const READ_POOL = 256;
/** Completed readMany batch ops a File keeps for reuse (one per batch in flight at once). */
const MANY_POOL = 16;
/** Settled readAt lanes a File keeps for reuse (one per lane in flight at once). */
const LANE_POOL = 16;
const SETTLED = Promise.resolve();
/** The longest read one record carries (Linux caps a read at 0x7ffff000 bytes anyway). */
const MAX_READ = 0x7ffff000;

/** Options of File.readMany. */
export interface ReadManyOptions {
  /** Aborting it cancels every entry still in flight; the batch rejects AbortError once the kernel answered for all. */
  signal?: AbortSignal;
}

/**
 * An open file with rented-buffer reads and writes at positions (File.open, File.create).
 *
 * - Reads and writes resolve [n, buf] with the same buffer; do not touch it until the promise settles.
 *   Errors carry code, syscall, path and buf.
 * - Positions are numbers up to Number.MAX_SAFE_INTEGER or bigints; -1 (the default of read/write)
 *   means the file position.
 * - On io_uring every op is a kernel op. On epoll, ops on regular files run on a file thread pool.
 * - With { direct: true } (O_DIRECT) buffers, positions and lengths must be aligned (allocAligned()
 *   makes suitable buffers), else the call rejects ERR_RINGIO_ALIGNMENT before reaching the kernel.
 * - readMany(bufs, positions) reads a batch: one promise and one array of counts for many reads.
 * - `await using f = await File.open(p)` closes it at the end of the scope.
 */
export class File extends FdHandle {
  /** The path the file was opened with. */
  readonly path: string;
  readonly #readOps: FileReadOp<Uint8Array>[] = [];
  readonly #manyOps: ReadManyOp[] = [];
  /** io_uring: the lane collecting this run of JS's readAt calls (submitted by a microtask), if any. */
  #lane: ReadLaneOp | undefined = undefined;
  readonly #lanes: ReadLaneOp[] = [];
  readonly #wait: Direction;
  readonly #direct: { mem: number; offset: number } | undefined;
  /**
   * O_DIRECT files only: the file position, kept here. io_uring does not advance the kernel's file
   * position for O_DIRECT reads at offset -1 (measured on 6.18), so read()/write() on such a file use
   * this position instead, one call at a time.
   */
  #pos = 0;
  #posChain: Promise<unknown> = Promise.resolve();

  /** @internal */
  readonly #append: boolean;

  /** Files come from File.open() and File.create(). */
  protected constructor(fd: number, path: string, wait: Direction, direct: { mem: number; offset: number } | undefined, append = false) {
    super(fd);
    this.path = path;
    this.#wait = wait;
    this.#direct = direct;
    this.#append = append;
  }

  /**
   * @internal A read op settling goes back to the free list (reuse() waits until it is Completed). One
   * being cancelled does not: it rejects with its buffer in the error and never runs complete(), the
   * point where a pooled op lets go of the caller's buffer.
   */
  override opSettled(op: OpAble<unknown>, index: number): void {
    super.opSettled(op, index);
    if (op instanceof FileReadOp && op.state === SUBMITTED && this.#readOps.length < READ_POOL) this.#readOps.push(op);
  }

  /**
   * Opens a file. `opts` is OpenOptions, or a node:fs flags string ('r', 'w', 'a+', ...; see OpenFlags)
   * with the creation `mode` as the third argument, as fs.promises.open takes them. Defaults: read only.
   * `create` needs `write` or `append`; `mode` (default 0o666, less the umask) applies when the file is
   * created.
   */
  static async open(path: PathLike, opts?: OpenOptions | OpenFlags, mode?: number): Promise<File> {
    if (typeof opts === 'string' || typeof opts === 'number') {
      opts = { ...flagsToOptions(opts), mode };
    } else {
      if (mode !== undefined) throw new TypeError('open: mode as the third argument goes with a flags string; put it in OpenOptions');
      if (opts === undefined) opts = {};
      if (opts === null || typeof opts !== 'object') throw new TypeError('opts must be an object or a flags string');
      checkKeys(opts, OPEN_KEYS, 'open');
    }
    const p = encodePath(path);
    const text = pathString(path);
    const read = opts.read === undefined ? true : bool(opts.read, 'read');
    const write = bool(opts.write, 'write');
    const append = bool(opts.append, 'append');
    const create = bool(opts.create, 'create');
    const truncate = bool(opts.truncate, 'truncate');
    const exclusive = bool(opts.exclusive, 'exclusive');
    const direct = bool(opts.direct, 'direct');
    const sync = bool(opts.sync, 'sync');
    const perm = opts.mode ?? 0o666;
    if (!Number.isInteger(perm) || perm < 0 || perm > 0o7777) throw new RangeError('mode must be an integer in 0..0o7777');
    const writes = write || append;
    if (!read && !writes) throw new TypeError('open: at least one of read, write or append must be true');
    if ((create || truncate) && !writes) throw new TypeError('open: create and truncate need write or append');
    if (exclusive && !create) throw new TypeError('open: exclusive needs create');
    let flags = O_CLOEXEC | (read && writes ? O_RDWR : writes ? O_WRONLY : O_RDONLY);
    if (append) flags |= O_APPEND;
    if (create) flags |= O_CREAT;
    if (truncate) flags |= O_TRUNC;
    if (exclusive) flags |= O_EXCL;
    if (direct) flags |= O_DIRECT;
    if (sync) flags |= O_SYNC;
    // Opened non-blocking, so that opening a FIFO never waits for its other end (which would hold a
    // pool thread on epoll); cleared again below for regular files, whose reads must be able to block.
    flags |= O_NONBLOCK;
    const fd = await submit(new OpenatOp(p, text, flags, perm));
    try {
      const st = await submit(new StatxOp(fd, EMPTY_PATH, text, AT_EMPTY_PATH, STATX_BASIC_STATS | (direct ? STATX_DIOALIGN : 0)));
      const type = new DataView(st.buffer).getUint16(28, true) & S_IFMT;
      let wait: Direction = 'pool';
      if (type === S_IFREG || type === S_IFDIR) {
        sys.setNonBlocking(fd, false);
      } else {
        // A FIFO or device: wait for readiness instead of holding a pool thread in a blocking read.
        wait = 'readable';
      }
      let align: { mem: number; offset: number } | undefined;
      if (direct) {
        const a = dioAlign(st);
        // A file system that does not report its alignment gets the strictest common one.
        align = { mem: a.mem || 4096, offset: a.offset || 4096 };
      }
      return new File(fd, text, wait, align, append);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Opens for writing, creating the file or truncating it. */
  static create(path: PathLike, opts: { mode?: number } = {}): Promise<File> {
    return File.open(path, { read: false, write: true, create: true, truncate: true, mode: opts.mode });
  }

  /**
   * O_DIRECT rules, checked before anything reaches the kernel. A misaligned buffer's error carries
   * `owner` (the caller's buffer, for readAt/writeAt) or else the misaligned buffer itself (readv/writev).
   */
  #checkDirect(bufs: Uint8Array[], position: number | bigint, length: number, owner?: Uint8Array): void {
    const a = this.#direct!;
    const pos = typeof position === 'bigint' ? position : BigInt(position);
    // -1 is the file position, which only the kernel knows; it stays aligned while every length is.
    if (pos !== -1n && pos % BigInt(a.offset) !== 0n) {
      throw ringioError('ERR_RINGIO_ALIGNMENT', `O_DIRECT: position ${position} is not a multiple of ${a.offset}`, { path: this.path });
    }
    if (length % a.offset !== 0) {
      throw ringioError('ERR_RINGIO_ALIGNMENT', `O_DIRECT: length ${length} is not a multiple of ${a.offset}`, { path: this.path });
    }
    for (const b of bufs) {
      if (sys.alignOffset(b, a.mem) !== 0) {
        throw ringioError('ERR_RINGIO_ALIGNMENT', `O_DIRECT: the buffer's memory is not aligned to ${a.mem} bytes (use allocAligned)`, {
          path: this.path,
          buf: owner ?? b,
        });
      }
      if (b.byteLength % a.offset !== 0 && bufs.length > 1) {
        throw ringioError('ERR_RINGIO_ALIGNMENT', `O_DIRECT: every buffer's length must be a multiple of ${a.offset}`, { path: this.path });
      }
    }
  }

  /**
   * Reads into buf[offset, offset + length) at `position`. Resolves [n, buf]; n < length at end of file.
   * On io_uring, the positioned reads (no signal) this File gets in one run of JS go to the kernel as one
   * batch op (a lane, ops/read-lane.ts) at its end; each still settles on its own completion.
   */
  readAt<B extends Uint8Array>(buf: B, position: number | bigint, opts?: FileIoOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const pos = checkPosition(position);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      if (this.#direct !== undefined) this.#checkDirect([buf.subarray(offset)], pos, length, buf);
      const fd = this.openFd(buf);
      // io_uring, a regular file, a position, no signal: the read joins this run of JS's lane.
      if (pos !== -1 && length > 0 && this.#wait === 'pool' && opts?.signal === undefined) {
        let lane = this.#lane;
        if (lane === undefined || lane.n >= LANE_MAX) lane = this.#newLane();
        if (lane !== undefined) return lane.add(buf, offset === 0 ? buf : buf.subarray(offset, offset + length), length, pos) as Promise<[number, B]>;
      }
      let op = this.#readOps.pop() as FileReadOp<B> | undefined;
      if (op === undefined || !op.reuse(buf, offset, length, pos)) op = new FileReadOp(fd, buf, offset, length, pos, this.#wait, this.path);
      return this.run(op, opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A lane for this run of JS's reads, or undefined where reads do not use lanes (epoll: a lane would be
   * one pool job, its reads run one after another). A full lane goes to the driver at once.
   */
  #newLane(): ReadLaneOp | undefined {
    if (driverName() !== 'uring') return undefined;
    const full = this.#lane;
    if (full !== undefined && full.n >= LANE_MAX) this.#flushLane();
    let lane = this.#lanes.pop();
    if (lane === undefined || !lane.arm()) lane = new ReadLaneOp(this.fd, this.path, this.#lanes, LANE_POOL);
    this.#lane = lane;
    // A reaction on a settled promise: a microtask without queueMicrotask's AsyncResource per call.
    void SETTLED.then(this.#flushLane);
    return lane;
  }

  /**
   * Cancels the ops in flight, waits for the kernel's answers, then closes the fd (FdHandle.close). Reads
   * still collecting in a lane go to the kernel first, so that close() treats them as every read in
   * flight: each resolves if it finished first, else rejects ERR_RINGIO_CLOSED.
   */
  override close(): Promise<void> {
    if (this.#lane !== undefined && !this.closed) this.#flushLane();
    return super.close();
  }

  /** Submits the lane collected so far (at the end of the run of JS that filled it); tracked for close(). */
  readonly #flushLane = (): void => {
    const lane = this.#lane;
    if (lane === undefined) return;
    this.#lane = undefined;
    try {
      this.runBound(lane, lane.done, lane.fail);
    } catch (e) {
      // Nothing reached the kernel (the file was closed, or the runtime is shutting down).
      lane.failAll(e);
    }
  };

  /**
   * Reads many buffers at many positions as one batch: entry i fills `bufs[i]` (used whole) from
   * `positions[i]`. Resolves one array: the bytes read per entry, in entry order (short at end of file,
   * 0 past it). The entries go to the kernel together and run in any order (on epoll: on the file thread
   * pool); one promise and one result array for the batch instead of one per read.
   *
   * - Bad input throws before anything is submitted (the promise rejects): TypeError for a `bufs` that
   *   is not an array of Uint8Array, or `positions` that is not an array-like of numbers / bigints;
   *   RangeError for lengths that differ, a position that is not an integer in 0..2^63-1 (-1, the file
   *   position, is refused: the entries run concurrently), or a buffer over 0x7ffff000 bytes. A File
   *   on a FIFO or device rejects TypeError (no positions to read at).
   * - An empty batch resolves [] at once.
   * - If an entry fails, the batch still waits for every entry, then rejects with the first failed
   *   entry's error (code, syscall, path, buf) carrying `index` and `results` (ReadManyFailure): per
   *   entry, the bytes read or that entry's Error.
   * - Abort (opts.signal) or close() mid-batch cancels the entries in flight and rejects AbortError /
   *   ERR_RINGIO_CLOSED, again only once the kernel answered for every entry (entries that had already
   *   finished keep their counts in `results`). Do not touch the buffers until the promise settles.
   * - A buffer given twice in one batch ends up holding either read's bytes.
   */
  readMany<B extends Uint8Array>(bufs: readonly B[], positions: ArrayLike<number | bigint>, opts?: ReadManyOptions): Promise<number[]> {
    try {
      if (!Array.isArray(bufs)) throw new TypeError('readMany: bufs must be an array of Uint8Array');
      if (positions === null || typeof positions !== 'object' || typeof positions.length !== 'number') {
        throw new TypeError('readMany: positions must be an array (or typed array) of numbers or bigints');
      }
      const n = bufs.length;
      if (positions.length !== n) throw new RangeError(`readMany: ${n} buffers but ${positions.length} positions`);
      if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw new TypeError('readMany: opts must be an object');
      const signal = opts?.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
      const direct = this.#direct !== undefined;
      for (let i = 0; i < n; i++) {
        const b = bufs[i];
        if (!(b instanceof Uint8Array)) throw manyBadBuffer(i);
        if (b.length > MAX_READ) throw new RangeError(`readMany: bufs[${i}] is over ${MAX_READ} bytes`);
        const p = positions[i];
        if (typeof p !== 'number' || p < 0 || p > 9007199254740991 || !Number.isInteger(p)) manyCheckPosition(p, i);
        if (direct) this.#checkDirect([b], p!, b.length, b);
      }
      this.openFd(bufs);
      if (this.#wait !== 'pool') {
        throw new TypeError('readMany needs a regular file: a FIFO or device has no positions to read at (use read())');
      }
      if (n === 0) return Promise.resolve([]);
      if (signal !== undefined && signal.aborted) return Promise.reject(abortError(signal, bufs));
      let op = this.#manyOps.pop();
      if (op === undefined || !op.arm(bufs, positions, signal)) {
        op = new ReadManyOp(this.fd, this.path, this.#manyOps, MANY_POOL);
        op.arm(bufs, positions, signal);
      }
      const armed = op;
      return new Promise<number[]>((resolve, reject) => {
        try {
          this.runBound(armed, resolve, reject);
        } catch (e) {
          // Nothing reached the kernel (the runtime is shutting down, or the file closed).
          armed.disarm();
          reject(e);
        }
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Writes buf[offset, offset + length) at `position` (may be short). Resolves [n, buf]. */
  writeAt<B extends Uint8Array>(buf: B, position: number | bigint, opts?: FileIoOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const pos = checkPosition(position);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      if (this.#direct !== undefined) this.#checkDirect([buf.subarray(offset)], pos, length, buf);
      return this.run(new FileWriteOp(this.openFd(buf), buf, offset, length, pos, this.#wait, this.path), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Fills the window from `position`; rejects ERR_RINGIO_UNEXPECTED_EOF (with .n and .buf) at end of file. */
  readExactAt<B extends Uint8Array>(buf: B, position: number | bigint, opts?: FileIoOptions): Promise<[number, B]> {
    return this.#whole(buf, position, opts, (b, at, o) => this.readAt(b, at, o), 'readExactAt', 'end of file');
  }

  /** Writes the whole window from `position`. Resolves [length, buf]. */
  writeAllAt<B extends Uint8Array>(buf: B, position: number | bigint, opts?: FileIoOptions): Promise<[number, B]> {
    return this.#whole(buf, position, opts, (b, at, o) => this.writeAt(b, at, o), 'writeAllAt', 'a write that made no progress');
  }

  /** Repeats `step` over the rest of the window until it is all done; a step of 0 bytes ends it early. */
  async #whole<B extends Uint8Array>(
    buf: B,
    position: number | bigint,
    opts: FileIoOptions | undefined,
    step: (buf: B, at: number | bigint, opts: FileIoOptions) => Promise<[number, B]>,
    name: string,
    stop: string,
  ): Promise<[number, B]> {
    checkBuffer(buf);
    const pos = checkPosition(position);
    if (pos === -1) throw new RangeError(`${name} needs a position >= 0`);
    const offset = opts?.offset ?? 0;
    const length = checkRange(buf, offset, opts?.length);
    let n = 0;
    while (n < length) {
      const at = typeof pos === 'bigint' ? pos + BigInt(n) : pos + n;
      const [done] = await step(buf, at, { offset: offset + n, length: length - n, signal: opts?.signal });
      if (done === 0) {
        throw ringioError('ERR_RINGIO_UNEXPECTED_EOF', `${stop} after ${n} of ${length} bytes`, { n, buf, path: this.path });
      }
      n += done;
    }
    return [n, buf];
  }

  /** Scatter read at `position` into several buffers, each used whole. Resolves [n, bufs]. */
  readvAt<B extends Uint8Array>(bufs: B[], position: number | bigint, opts?: { signal?: AbortSignal }): Promise<[number, B[]]> {
    try {
      checkBufs(bufs);
      const pos = checkPosition(position);
      if (this.#direct !== undefined) this.#checkDirect(bufs, pos, bufs.reduce((s, b) => s + b.byteLength, 0));
      return this.run(new FileReadvOp(this.openFd(bufs), bufs, pos, this.#wait, this.path), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Gather write at `position` from several buffers, each used whole. Resolves [n, bufs]. */
  writevAt<B extends Uint8Array>(bufs: B[], position: number | bigint, opts?: { signal?: AbortSignal }): Promise<[number, B[]]> {
    try {
      checkBufs(bufs);
      const pos = checkPosition(position);
      if (this.#direct !== undefined) this.#checkDirect(bufs, pos, bufs.reduce((s, b) => s + b.byteLength, 0));
      return this.run(new FileWritevOp(this.openFd(bufs), bufs, pos, this.#wait, this.path), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Reads at the file position and advances it. */
  read<B extends Uint8Array>(buf: B, opts?: FileIoOptions): Promise<[number, B]> {
    if (this.#direct === undefined) return this.readAt(buf, -1, opts);
    return this.#atOwnPosition(() => this.readAt(buf, this.#pos, opts));
  }

  /** Writes at the file position (the end, with append) and advances it. */
  write<B extends Uint8Array>(buf: B, opts?: FileIoOptions): Promise<[number, B]> {
    if (this.#direct === undefined || this.#append) return this.writeAt(buf, -1, opts);
    return this.#atOwnPosition(() => this.writeAt(buf, this.#pos, opts));
  }

  #atOwnPosition<B extends Uint8Array>(io: () => Promise<[number, B]>): Promise<[number, B]> {
    const p = this.#posChain.then(io).then((r) => {
      this.#pos += r[0];
      return r;
    });
    this.#posChain = p.catch(() => {});
    return p;
  }

  /** fsync: data and metadata to storage. */
  sync(): Promise<void> {
    try {
      return this.run(new FsyncOp(this.openFd(), false, this.path), undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** fdatasync: data (and the metadata needed to read it) to storage. */
  datasync(): Promise<void> {
    try {
      return this.run(new FsyncOp(this.openFd(), true, this.path), undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Sets the file's length (extending with zeros, or cutting). */
  async truncate(length: number | bigint = 0): Promise<void> {
    const len = checkPosition(length);
    if (len === -1) throw new RangeError('length must be >= 0');
    const fd = this.openFd();
    if (!hasOp('FTRUNCATE')) {
      // io_uring before kernel 6.9 has no FTRUNCATE: degrade to node:fs (libuv's thread pool).
      await fsFallback.ftruncate(fd, len, this.path);
      return;
    }
    await this.run(new FtruncateOp(fd, len, this.path), undefined);
  }

  /** Reserves space for [offset, offset + length) (fallocate mode 0). */
  async allocate(offset: number | bigint, length: number): Promise<void> {
    const off = checkPosition(offset);
    if (off === -1) throw new RangeError('offset must be >= 0');
    if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError('length must be a positive integer');
    await this.run(new FallocateOp(this.openFd(), off, length, 0, this.path), undefined);
  }

  /** The file's status. */
  async stat(): Promise<Stats> {
    const out = await this.run(new StatxOp(this.openFd(), EMPTY_PATH, this.path, AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME), undefined);
    return new Stats(out);
  }
}

