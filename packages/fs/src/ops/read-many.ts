/**
 * READ_MANY, the addon's batch op behind File.readMany: many positions and buffers of one file, one
 * record, one op slot and one completion for the whole batch (addon/read_many.cc). The record names a
 * plan (per entry: the position, how the addon finds the buffer, its length) and an Int32Array the
 * addon fills with every entry's result. On io_uring the addon writes one READ SQE per entry and
 * answers once the last entry's CQE is in; on epoll the batch is one file-pool job (a pread loop).
 * docs/design/driver.md, "A native batch op".
 *
 * SAFETY: the op holds every entry's buffer (and the plan and result arrays) from submission until the
 * batch's one completion, which the addon sends only after every entry's final CQE (io_uring) or the
 * end of the pool job (epoll): cancelling (abort, close, shutdown) never releases a buffer the kernel
 * may still write into. A cancel reaches the entries still out (io_uring: one exact ASYNC_CANCEL each;
 * epoll: the job stops between entries); the ones it kept from running keep -ECANCELED.
 */
import { ERRNO, IORING_OP, OpAble, abortError, cancelOp, errnoError, ringioError, type Interest, type SqeWriter } from '@ringio/runtime';

const READ_MANY = IORING_OP.READ_MANY;
// Module-local (an imported binding is loaded at every use).
const ECANCELED = ERRNO.ECANCELED;
const EINTR = ERRNO.EINTR;
const TWO_32 = 4294967296;
/** Int32 words per entry in the plan (addon/read_many.h): position low, position high, buffer, length. */
const PLAN_WORDS = 4;
/** A buffer detached between the record's writing and its flush: the addon fails the entry (EFAULT). */
const DETACHED = -2147483648;

/**
 * Writes a plan entry's position (>= 0) into its first two words, k and k + 1. The low word is stored
 * modulo 2^32 (an Int32Array store wraps): the addon reads it unsigned.
 */
export function planPosition(plan: Int32Array, k: number, p: number | bigint): void {
  if (typeof p === 'number') {
    if (p < TWO_32) {
      plan[k] = p;
      plan[k + 1] = 0;
    } else {
      const hi = Math.floor(p / TWO_32);
      plan[k] = p - hi * TWO_32;
      plan[k + 1] = hi;
    }
  } else {
    plan[k] = Number(p & 0xffffffffn);
    plan[k + 1] = Number(p >> 32n);
  }
}

const NO_BUFS: readonly Uint8Array[] = [];
const NO_POSITIONS: ArrayLike<number | bigint> = [];

/** How a batch that did not fully succeed says so: on the error it rejects with. */
export interface ReadManyFailure {
  /** The entry whose error this is (the first entry that failed; a cancelled entry before others). */
  index: number;
  /**
   * One slot per entry: the bytes read, for entries that completed (their data is in their buffers),
   * or the entry's Error (AbortError, ERR_RINGIO_CLOSED, or the errno error of its read).
   */
  results: (number | Error)[];
}

/**
 * One readMany batch in flight, pooled by its File and reused from batch to batch. It settles through
 * the resolve / reject it was submitted with (FdHandle.runBound): complete() turns the result array
 * into the caller's counts, or throws the first failed entry's error.
 */
export class ReadManyOp extends OpAble<number[]> {
  readonly fd: number;
  readonly path: string;
  readonly #interest: Interest;
  readonly #pool: ReadManyOp[];
  readonly #poolMax: number;
  bufs: readonly Uint8Array[] = NO_BUFS;
  positions: ArrayLike<number | bigint> = NO_POSITIONS;
  n = 0;
  #plan = new Int32Array(0);
  #planBytes = new Uint8Array(0);
  #results = new Int32Array(0);
  #resultBytes = new Uint8Array(0);
  #signal: AbortSignal | undefined = undefined;
  readonly #onAbort = (): void => cancelOp(this, 'abort');

  constructor(fd: number, path: string, pool: ReadManyOp[], poolMax: number) {
    super();
    this.fd = fd;
    this.path = path;
    // epoll: the whole batch is one job on the file thread pool.
    this.#interest = { fd, direction: 'pool' };
    this.#pool = pool;
    this.#poolMax = poolMax;
  }

  get name(): string {
    return 'read';
  }

  /** Arms the op for a batch; false if it is not Completed (still the kernel's). */
  arm(bufs: readonly Uint8Array[], positions: ArrayLike<number | bigint>, signal: AbortSignal | undefined): boolean {
    if (this.state !== 0 && !this.recycle()) return false;
    const n = bufs.length;
    this.bufs = bufs;
    this.positions = positions;
    this.n = n;
    if (this.#results.length < n) {
      let cap = 64;
      while (cap < n) cap *= 2;
      this.#plan = new Int32Array(cap * PLAN_WORDS);
      this.#planBytes = new Uint8Array(this.#plan.buffer);
      this.#results = new Int32Array(cap);
      this.#resultBytes = new Uint8Array(this.#results.buffer);
    }
    this.#signal = signal;
    if (signal !== undefined) signal.addEventListener('abort', this.#onAbort, { once: true });
    return true;
  }

  /** The submission failed (nothing reached the kernel): back to the free list. */
  disarm(): void {
    this.#release();
  }

  uringOp(sqe: SqeWriter): void {
    const n = this.n;
    const plan = this.#plan;
    const bufs = this.bufs;
    const positions = this.positions;
    for (let i = 0; i < n; i++) {
      const b = bufs[i]!;
      const p = positions[i]!;
      const k = i * PLAN_WORDS;
      planPosition(plan, k, p);
      plan[k + 2] = sqe.bufRef(b);
      plan[k + 3] = b.length;
    }
    sqe.prep(READ_MANY, this.fd, n, 0).addrBufEnd(this.#planBytes).addr2Buf(this.#resultBytes);
  }

  override legacyInterest(): Interest {
    return this.#interest;
  }

  override payload(): unknown {
    return this.bufs;
  }

  /** A registered buffer of this batch was detached before the flush: its entries fail with EFAULT. */
  override bufferDetached(buf: Uint8Array): void {
    const bufs = this.bufs;
    for (let i = 0; i < this.n; i++) if (bufs[i] === buf) this.#plan[i * PLAN_WORDS + 2] = DETACHED;
  }

  /** The batch's one completion: res is the entry count, the results are in the Int32Array. */
  complete(res: number): number[] {
    const n = this.n;
    const r = this.#results;
    const bufs = this.bufs;
    const reason = this.cancelReason;
    const signal = this.#signal;
    this.#release();
    if (res < 0) throw errnoError(res, 'read', { path: this.path, buf: bufs });
    const out = new Array<number>(n);
    let ok = true;
    for (let i = 0; i < n; i++) {
      const v = r[i]!;
      out[i] = v;
      if (v < 0) ok = false;
    }
    if (ok) return out;
    // Some entry failed: every entry gets its count or its Error; the batch rejects with the first
    // cancelled entry's error (a cancel explains the others), else the first failed one's.
    const results = out as (number | Error)[];
    let firstCancelled = -1;
    let firstFailed = -1;
    for (let i = 0; i < n; i++) {
      const v = r[i]!;
      if (v >= 0) continue;
      if (reason !== undefined && (v === ECANCELED || v === EINTR)) {
        results[i] =
          reason === 'closed'
            ? ringioError('ERR_RINGIO_CLOSED', 'closed while the batch was in flight (its file or the runtime)', { buf: bufs[i] })
            : abortError(signal, bufs[i]);
        if (firstCancelled < 0) firstCancelled = i;
      } else {
        results[i] = errnoError(v, 'read', { path: this.path, buf: bufs[i] });
        if (firstFailed < 0) firstFailed = i;
      }
    }
    const index = firstCancelled >= 0 ? firstCancelled : firstFailed;
    const e = results[index] as Error & ReadManyFailure;
    e.index = index;
    e.results = results;
    throw e;
  }

  /** After the final completion only: drops the buffers and goes back to the File's free list. */
  #release(): void {
    if (this.#signal !== undefined) {
      this.#signal.removeEventListener('abort', this.#onAbort);
      this.#signal = undefined;
    }
    this.bufs = NO_BUFS;
    this.positions = NO_POSITIONS;
    if (this.#pool.length < this.#poolMax) this.#pool.push(this);
  }
}
