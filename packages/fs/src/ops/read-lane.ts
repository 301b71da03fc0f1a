/**
 * READ_MANY with per-entry completions: the lane that File.readAt's reads share on io_uring. The reads a
 * File is asked for within one run of JS (until the current microtask queue drains) go to the kernel
 * as one READ_MANY record, one op slot and one batch op (addon/read_many.cc), but each read keeps its
 * own promise and settles on its own CQE: the addon reports every entry as it arrives (a completion
 * flagged IORING_CQE_F_MORE whose flags carry the entry's index, kReadManyEach), and the batch's final
 * completion carries the last entry's result with every other one in the results array.
 * docs/design/driver.md, "readAt's lanes".
 *
 * What a read costs here instead of an op of its own: no op object, no op-table slot, no 16-word record
 * or native decode, no trip through the generic settle path; four plan words and the resolving
 * functions of its promise.
 *
 * SAFETY: the lane holds every entry's buffer (and the plan and result arrays) from submission until
 * that entry's own CQE; the batch's final completion comes only after every entry's final CQE.
 * Cancelling the lane (File.close(), runtime shutdown) cancels the entries still out, each by its exact
 * user_data, and releases nothing before the kernel answered for it. Reads with an AbortSignal do not
 * use lanes (a signal cancels one read, not a batch).
 */
import {
  ERRNO,
  IORING_OP,
  OpAble,
  abortError,
  errnoError,
  ringioError,
  type Interest,
  type SqeWriter,
} from '@ringio/runtime';
import { planPosition } from './read-many.js';

const READ_MANY = IORING_OP.READ_MANY;
const ECANCELED = ERRNO.ECANCELED;
const EINTR = ERRNO.EINTR;
/** Int32 words per entry in the plan (addon/read_many.h), as ReadManyOp's. */
const PLAN_WORDS = 4;
/** A buffer detached between the record's writing and its flush: the addon fails the entry (EFAULT). */
const DETACHED = -2147483648;
/** READ_MANY's op flag kReadManyEach and the index's place in an entry's completion flags (addon/read_many.h). */
const EACH = 1;
const ENTRY_SHIFT = 8;
/** The most reads one lane carries; a File starts another lane past it. */
export const LANE_MAX = 256;
/** The resolving-function arrays a lane starts each run with (they grow past it). */
const LANE_START = 64;

type Resolve = (v: [number, Uint8Array]) => void;
type Reject = (e: unknown) => void;

// One executor for every read's promise: add() parks the lane and the index here and `new
// Promise(bindEntry)` stores the resolving functions in the lane, so no closure is made per read.
let binding: ReadLaneOp | undefined;
let bindingIndex = 0;
const bindEntry = (resolve: Resolve, reject: Reject): void => {
  binding!.resolves[bindingIndex] = resolve;
  binding!.rejects[bindingIndex] = reject;
};

/**
 * One lane: the reads of one File collected in one run of JS, then one READ_MANY op in flight. Pooled by
 * its File. It is submitted with FdHandle.runBound (tracked for close()); its bound functions only
 * settle the entries the per-entry completions did not.
 */
export class ReadLaneOp extends OpAble<void> {
  readonly fd: number;
  readonly path: string;
  /** Entries in this lane. */
  n = 0;
  /** Per entry: the caller's buffer (what its promise resolves with); undefined once settled. */
  readonly bufs: (Uint8Array | undefined)[] = [];
  /** Per entry: what the plan names (the buffer itself, or the window's view when it has an offset). */
  readonly views: (Uint8Array | undefined)[] = [];
  readonly lengths: number[] = [];
  readonly positions: (number | bigint)[] = [];
  /**
   * Per entry: the resolving functions of its promise. New arrays for each run of the lane: a young
   * array takes the (young) functions without the write barrier's remembered-set entry that a long-lived
   * array costs for every store.
   */
  resolves: (Resolve | undefined)[] = [];
  rejects: (Reject | undefined)[] = [];
  readonly #plan = new Int32Array(LANE_MAX * PLAN_WORDS);
  readonly #planBytes = new Uint8Array(this.#plan.buffer);
  readonly #results = new Int32Array(LANE_MAX);
  readonly #resultBytes = new Uint8Array(this.#results.buffer);
  readonly #pool: ReadLaneOp[];
  readonly #poolMax: number;
  readonly #interest: Interest;
  /** What FdHandle.runBound settles the lane with: the entries not settled yet. */
  readonly done = (): void => {};
  readonly fail = (e: unknown): void => this.failAll(e);

  constructor(fd: number, path: string, pool: ReadLaneOp[], poolMax: number) {
    super();
    this.fd = fd;
    this.path = path;
    this.#pool = pool;
    this.#poolMax = poolMax;
    this.#interest = { fd, direction: 'pool' };
  }

  get name(): string {
    return 'read';
  }

  /** Makes a settled lane collect again; false if it is still the kernel's. */
  arm(): boolean {
    if (this.state !== 0 && !this.recycle()) return false;
    this.n = 0;
    this.resolves = new Array<Resolve | undefined>(LANE_START);
    this.rejects = new Array<Reject | undefined>(LANE_START);
    return true;
  }

  /** Adds a read of `length` bytes into `view` (a window of `buf`) at `position` >= 0; its promise. */
  add(buf: Uint8Array, view: Uint8Array, length: number, position: number | bigint): Promise<[number, Uint8Array]> {
    const i = this.n++;
    this.bufs[i] = buf;
    this.views[i] = view;
    this.lengths[i] = length;
    this.positions[i] = position;
    binding = this;
    bindingIndex = i;
    const p = new Promise<[number, Uint8Array]>(bindEntry);
    binding = undefined;
    return p;
  }

  uringOp(sqe: SqeWriter): void {
    const n = this.n;
    const plan = this.#plan;
    const views = this.views;
    const lengths = this.lengths;
    const positions = this.positions;
    for (let i = 0; i < n; i++) {
      const p = positions[i]!;
      const k = i * PLAN_WORDS;
      planPosition(plan, k, p);
      plan[k + 2] = sqe.bufRef(views[i]!);
      plan[k + 3] = lengths[i]!;
    }
    sqe.prep(READ_MANY, this.fd, n, 0).opFlags(EACH).addrBufEnd(this.#planBytes).addr2Buf(this.#resultBytes);
  }

  /** epoll does not use lanes (File.readAt decides); were one submitted there, it is one pool job. */
  override legacyInterest(): Interest {
    return this.#interest;
  }

  /** A registered buffer of this lane was detached before the flush: its entries fail with EFAULT. */
  override bufferDetached(buf: Uint8Array): void {
    const views = this.views;
    for (let i = 0; i < this.n; i++) if (views[i] === buf) this.#plan[i * PLAN_WORDS + 2] = DETACHED;
  }

  /** An entry's own completion (all but the batch's last): settles that read. */
  override more(res: number, flags: number): void {
    this.#settle(flags >>> ENTRY_SHIFT, res);
  }

  /** The batch's final completion: res is the entry count, each entry's result in the results array. */
  complete(res: number): void {
    const n = this.n;
    const r = this.#results;
    for (let i = 0; i < n; i++) this.#settle(i, res < 0 ? res : r[i]!);
    this.#release();
  }

  /** The lane failed as a whole (never submitted, or its final completion was an error): every read left rejects. */
  failAll(e: unknown): void {
    const code = (e as { code?: unknown } | null)?.code;
    for (let i = 0; i < this.n; i++) {
      const reject = this.rejects[i];
      if (reject === undefined) continue;
      const buf = this.bufs[i]!;
      this.#clear(i);
      if (code === 'ERR_RINGIO_CLOSED') reject(ringioError('ERR_RINGIO_CLOSED', (e as Error).message, { buf }));
      else if (code === 'ABORT_ERR') reject(abortError(undefined, buf));
      else reject(e);
    }
    this.#release();
  }

  #settle(i: number, res: number): void {
    const resolve = this.resolves[i];
    if (resolve === undefined) return;
    const reject = this.rejects[i]!;
    const buf = this.bufs[i]!;
    this.#clear(i);
    if (res >= 0) {
      resolve([res, buf]);
      return;
    }
    const reason = this.cancelReason;
    if (reason !== undefined && (res === ECANCELED || res === EINTR)) {
      reject(
        reason === 'closed'
          ? ringioError('ERR_RINGIO_CLOSED', 'closed while the read was in flight (its file or the runtime)', { buf })
          : abortError(undefined, buf),
      );
      return;
    }
    reject(errnoError(res, 'read', { path: this.path, buf }));
  }

  /** The entry's read is over (the kernel answered, or it never went): the lane lets go of its buffer. */
  #clear(i: number): void {
    this.resolves[i] = undefined;
    this.rejects[i] = undefined;
    this.bufs[i] = undefined;
    this.views[i] = undefined;
  }

  /** After the final completion only (or when nothing reached the kernel): back to the File's pool. */
  #release(): void {
    this.n = 0;
    if (this.#pool.length < this.#poolMax) this.#pool.push(this);
  }
}
