/**
 * The driver as JS sees it: the op table (slot -> waiting op), the shared submission and completion
 * areas, and batching. One driver per runtime, so one per thread. Which backend sits under it (io_uring
 * or epoll) is decided once, when the addon opens it; from here on the only difference is whether an op
 * fills its record with `uringOp` or with `legacyCall` + `legacyInterest`.
 *
 * Rules:
 *  1. Pushing an op writes a record and nothing else. Records go to the addon in one call per batch:
 *     those written while completions are dispatched, as the dispatch ends (no promise job: at one
 *     connection that job was a third of the bytes each message allocated); the others from a promise
 *     job queued behind the current microtasks (see FLUSH_PER_MICROTASK); at once when the area is full.
 *  2. The flush call also reaps, so one crossing both submits a batch and returns what finished.
 *  3. A slot is freed only by its op's final completion. Until then the op (and its buffers) stay in
 *     `ops`, whatever happened to the caller: abort, timeout, shutdown.
 *  4. At most `budget` completions and tasks run between two turns of Node's loop; past that, reaping
 *     waits for the next turn, so Node's own timers and sockets are never starved.
 */
import { native, type DriverInfo } from '../addon.js';
import {
  abortError,
  ECANCELED,
  EINTR,
  ringioError,
} from '../errors.js';
import { _setOpTable, cancelError, OP_TABLE_STRIDE, OpAble, OpFlags, SqeWriter, type OpOwner } from '../op.js';
import {
  Addr,
  Cqe,
  INTEREST_NONE,
  INTEREST_POOL,
  INTEREST_READABLE,
  INTEREST_WRITABLE,
  IORING_CQE_F_MORE,
  IORING_OP,
  Rec,
  STAT_COUNT,
  USER_IGNORE,
} from './layout.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyOp = OpAble<any>;

export type DriverKind = 'uring' | 'epoll' | 'auto';

/** Work done since Node's loop last had a turn; shared by the driver and the executor. */
export interface Turn {
  work: number;
  readonly budget: number;
  /** Ask for a macrotask turn (setImmediate) after which work resumes. */
  yieldToLoop(): void;
}

const SQ_RECORDS = 1024;
// The per-batch entry points, as module constants: `native` is a dictionary-mode object (its 49 entry
// points were added by name in a loop), so every `native.ringio_driver_submit` was a megamorphic
// property lookup. The addon's functions find their state through their own data, not the receiver.
const nativeSubmit = native.ringio_driver_submit;
const nativeReap = native.ringio_driver_reap;
// Module-local copies of imported constants used per op: V8 folds these into the code, but loads an
// imported binding from its module cell (with a TDZ check) at every use.
// OpAble#_lastSlot outside the table (op.ts): -1 Idle; a slot number once submitted (in flight while
// the table holds the op there, Completed once it does not).
const IDLE_SLOT = -1;
const RET_IS_FD = OpFlags.RetIsFd;
const SKIP_CANCEL = OpFlags.SkipCancel;
const F_MORE = IORING_CQE_F_MORE;
const IGNORE = USER_IGNORE;
const OP_ABLE = OpAble;
const OP_ASYNC_CANCEL = IORING_OP.ASYNC_CANCEL;
const OP_CLOSE = IORING_OP.CLOSE;
/** The legacy word keeps the awaited fd in 22 bits. */
const MAX_INTEREST_FD = (1 << 21) - 1;
// The entries of a slot in Driver.slots.
/** The op in flight, or undefined. */
const S_OP = 0;
/** Its promise's resolve (or submitBound's), undefined for an op from submitDetached(). */
const S_RESOLVE = 1;
const S_REJECT = 2;
/** The AbortSignal given to submit(), or undefined. */
const S_SIGNAL = 3;
/** The abort listener registered on that signal. */
const S_ABORT = 4;
/** Why the op is being cancelled ('abort' or 'closed'), or undefined: not being cancelled. */
const S_CANCEL = 5;
/** Who tracks the op (an FdHandle, for close()): told when it settles (own()). */
const S_OWNER = 6;
/** The op's position in its owner's list, as own() / moveOwned() set it. */
const S_OWNER_INDEX = 7;
const SLOT_WORDS = OP_TABLE_STRIDE;

// One executor for every op's promise: `new Promise(bindOp)` leaves the resolving functions in these two
// module variables, and submit() moves them into the op's slot (its S_RESOLVE / S_REJECT entries in Driver.slots). No closure
// per op, and no store into the op object (whose shape differs for every op class: a store there is a
// megamorphic IC miss).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let boundResolve: ((v: any) => void) | undefined;
let boundReject: ((e: unknown) => void) | undefined;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const bindOp = (resolve: (v: any) => void, reject: (e: unknown) => void): void => {
  boundResolve = resolve;
  boundReject = reject;
};

/**
 * When batches are flushed. 'microtask' (default): from a promise job queued behind the microtasks
 * already queued when the batch's first record was written: the same batches for continuations that one
 * batch of completions resumed, and on Node 20 about 320 bytes a message less than 'tick' on a
 * 1-connection echo whose loop sleeps between messages (every drain of the nextTick queue runs
 * processPromiseRejections, which allocates a Map and its iterator; docs/design/net.md): fewer
 * scavenges, a lower tail. 'tick': at the end of the current microtask drain (process.nextTick), the
 * earlier default. 'turn': once
 * per turn of Node's loop (setImmediate, libuv's check phase): fewer, larger batches, one loop turn of
 * latency. docs/design/driver.md compares them; RINGIO_FLUSH selects one for experiments.
 */
const FLUSH_PER_TURN = process.env.RINGIO_FLUSH === 'turn';
const FLUSH_PER_MICROTASK = process.env.RINGIO_FLUSH !== 'tick' && process.env.RINGIO_FLUSH !== 'turn';
/** The 'microtask' flush's promise job hangs off this settled promise (a reaction, no AsyncResource as queueMicrotask makes). */
const RESOLVED = Promise.resolve();
const CQ_RECORDS = 4096;
/** Dispatches this deep in one another (a flush at a dispatch's end reaps, and dispatches) flush from a promise job instead. */
const MAX_END_FLUSH_DEPTH = 8;

export class Driver {
  readonly info: DriverInfo;
  readonly uring: boolean;
  /** info.features as a set, for cheap capability checks on hot paths. */
  readonly features: ReadonlySet<string>;
  readonly stats = new Float64Array(STAT_COUNT);
  /** Ops waiting for their final completion, including those not yet flushed. */
  live = 0;
  /** Called whenever `live` drops to zero. */
  onIdle: (() => void) | undefined;

  private readonly sq = new Int32Array(SQ_RECORDS * Rec.WORDS);
  private readonly cq = new Int32Array(CQ_RECORDS * Cqe.WORDS);
  private readonly bufs: Uint8Array[] = [];
  /**
   * Registered arrays in this batch, each followed by its record's base (SqeWriter.buf); the first
   * `writer.nregs` entries are this batch's, the rest are cleared slots kept for the next one.
   */
  private readonly regs: (Uint8Array | number | undefined)[] = [];
  private readonly writer: SqeWriter;
  /**
   * The op table: SLOT_WORDS entries per slot, at slot * SLOT_WORDS: the op in flight (S_OP, undefined
   * when the slot is free) and what the driver keeps per slot besides the op (S_RESOLVE ... S_OWNER_INDEX),
   * rather than on the op: every op class has its own hidden class, so a field of the op read or written
   * here would be a megamorphic access at every site (the proxy profile: StoreIC and LoadIC_Megamorphic
   * from submit and dispatch). One array for them all, not one per field: a completion reads and clears
   * four to six of a slot's entries, which are one cache line here and were as many lines, each behind an
   * elements load and a bounds check, in arrays of their own (docs/benchmarks.md "Runtime user time,
   * eighth session"). A slot's entries are written when its op enters the table and cleared when it
   * leaves, before anything of the op's own code runs. S_RESOLVE undefined marks an op from
   * submitDetached().
   */
  private readonly slots: unknown[] = [];
  /**
   * The slot the last submit(), submitBound() or submitDetached() call put its op in, or -1 if that call
   * refused the op: how an owner learns the slot without reading the op (a megamorphic load).
   */
  lastSlot = -1;
  private readonly free: number[] = [];
  private sqCount = 0;
  private flushQueued = false;
  /** > 0 while completions are dispatched: records written then are flushed as the dispatch ends (rule 1). */
  private dispatching = 0;
  private endFlushDepth = 0;
  /** An op settled through a promise (or a bound resolve) since the outermost dispatch began. */
  private settledPromise = false;
  private closed = false;
  private closing = false;
  private readonly turn: Turn;

  constructor(kind: DriverKind, entries: number, turn: Turn, fault?: string, setup?: string) {
    this.turn = turn;
    this.writer = SqeWriter._create(this.sq, this.bufs, this.regs);
    // What the addon throws (ERR_RINGIO_DRIVER_UNAVAILABLE, ERR_RINGIO_NESTED_START) arrives as ringio's
    // errors already: addon.ts converts at the boundary.
    this.info = native.ringio_driver_open(
      { driver: kind, entries, fault, setup },
      this.sq,
      this.cq,
      this.stats,
      this.onNativeCompletions,
    );
    this.uring = this.info.driver === 'uring';
    _setOpTable(this.slots);
    this.features = new Set(this.info.features);
  }

  /** Submits an op; the promise settles when the kernel has answered for it. */
  submit<T>(op: OpAble<T>, signal?: AbortSignal): Promise<T> {
    this.lastSlot = -1;
    if (!(op instanceof OP_ABLE)) return Promise.reject(new TypeError('op must be an OpAble'));
    if (op._lastSlot !== IDLE_SLOT) {
      return Promise.reject(new TypeError(`this ${op.name} op was already submitted; create a new one`));
    }
    if (this.closed || this.closing) {
      return Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down', { buf: op.payload() }));
    }
    if (signal !== undefined && signal.aborted) return Promise.reject(abortError(signal, op.payload()));
    let slot: number;
    try {
      slot = this.enqueue(op);
    } catch (e) {
      return Promise.reject(e);
    }
    op._lastSlot = slot;
    const p = new Promise<T>(bindOp);
    this.lastSlot = slot;
    const t = this.slots;
    const b = slot * SLOT_WORDS;
    t[b + S_RESOLVE] = boundResolve;
    t[b + S_REJECT] = boundReject;
    boundResolve = undefined;
    boundReject = undefined;
    if (signal !== undefined) {
      const onAbort = (): void => this.cancel(op, 'abort');
      t[b + S_SIGNAL] = signal;
      t[b + S_ABORT] = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
    }
    return p;
  }

  /**
   * Submits an op without a promise: its final completion goes to the op itself, `complete(res, flags)`
   * for a result (what it returns or throws goes nowhere: the op reports on its own), `cancelled(err)`
   * for a cancellation the kernel confirmed (AbortError or ERR_RINGIO_CLOSED). For ops that live as long
   * as a connection (pooled reads), where a promise and its resolving functions would be most of what an
   * idle connection holds. Throws ERR_RINGIO_CLOSED when the runtime is shutting down. Returns the slot.
   */
  submitDetached(op: AnyOp): number {
    if (op._lastSlot !== IDLE_SLOT) throw new TypeError(`this ${op.name} op was already submitted; create a new one`);
    if (this.closed || this.closing) throw ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down');
    const slot = this.enqueue(op);
    // Here, not in enqueue(): this store's inline cache sees only the ops submitted detached (a socket's
    // pooled reads and queued sends: two or three classes, an inline store), not every op class, where it
    // was megamorphic (a StoreIC call, ~85 instructions an op; proxy-instructions).
    op._lastSlot = slot;
    return (this.lastSlot = slot);
  }

  /**
   * Submits an op that settles by calling `resolve` (with complete()'s value) or `reject` instead of
   * through a promise of its own: a batch (File.readMany) settles one promise for many ops. Throws what
   * submit() would reject with. No signal: the batch cancels its ops itself (cancel()).
   */
  submitBound(op: AnyOp, resolve: (v: unknown) => void, reject: (e: unknown) => void): number {
    if (op._lastSlot !== IDLE_SLOT) throw new TypeError(`this ${op.name} op was already submitted; create a new one`);
    if (this.closed || this.closing) throw ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down', { buf: op.payload() });
    // Stored right after the record is written: its completion cannot arrive before the batch's flush.
    const slot = this.enqueue(op);
    op._lastSlot = slot;
    const b = slot * SLOT_WORDS;
    this.slots[b + S_RESOLVE] = resolve;
    this.slots[b + S_REJECT] = reject;
    return (this.lastSlot = slot);
  }

  /**
   * Makes `owner` the tracker of the op in `slot` (in flight), at position `index` of its list: the
   * driver calls owner.opSettled(op, index) just before the op settles. For FdHandle.
   */
  own(slot: number, owner: OpOwner, index: number): void {
    const b = slot * SLOT_WORDS;
    this.slots[b + S_OWNER] = owner;
    this.slots[b + S_OWNER_INDEX] = index;
  }

  /** The owner moved the op in `slot` to position `index` of its list. */
  moveOwned(slot: number, index: number): void {
    this.slots[slot * SLOT_WORDS + S_OWNER_INDEX] = index;
  }

  /** The op in flight in `slot`, or undefined. */
  opAt(slot: number): AnyOp | undefined {
    const b = slot * SLOT_WORDS;
    return slot >= 0 && b < this.slots.length ? (this.slots[b + S_OP] as AnyOp | undefined) : undefined;
  }

  /**
   * Writes the op's record into a free slot and puts the op in the table there; throws (and changes
   * nothing) if its uringOp / legacyCall does. Returns the slot, whose S_RESOLVE ... S_OWNER entries are
   * clear (the caller fills them). The caller stores the slot in op._lastSlot at once (each caller its
   * own store: see submitDetached).
   */
  private enqueue(op: AnyOp): number {
    let slot: number;
    if (this.free.length > 0) {
      slot = this.free.pop()!;
    } else {
      // A new slot: all its entries at once, packed, so a read of any slot's entry is in bounds.
      const t = this.slots;
      slot = t.length / SLOT_WORDS;
      for (let k = 0; k < S_OWNER_INDEX; k++) t.push(undefined);
      t.push(-1);
    }
    try {
      this.write(op, slot);
    } catch (e) {
      // The op's own uringOp / legacyCall threw: nothing reached the submission area.
      this.free.push(slot);
      throw e;
    }
    this.slots[slot * SLOT_WORDS + S_OP] = op;
    this.live++;
    return slot;
  }

  /**
   * Refuses new ops from now on (ERR_RINGIO_CLOSED) and cancels every op in flight; the runtime then
   * waits for `live` to reach zero before close().
   */
  beginShutdown(): void {
    this.closing = true;
    this.cancelAll('closed');
  }

  /**
   * Writes an internal record whose completion nobody waits for (user_data USER_IGNORE): a cancel of
   * another op's slot, or a close of an fd that arrived for a cancelled op. These are the driver's own
   * SQEs (monoio reserves user_data tags for them too), written here rather than through the op
   * classes in ops/, which sit a layer above the driver. Both drivers run the same record: the epoll
   * engine unparks the cancelled slot, or closes the fd, at once (INTEREST_NONE).
   */
  private writeInternal(opcode: number, fd: number, addr: number): void {
    if (this.closed) return;
    if (this.sqCount === SQ_RECORDS) this.flushNow(false);
    const base = this.sqCount * Rec.WORDS;
    const w = this.writer;
    w.base = base;
    w.prep(opcode, fd);
    if (addr >= 0) w.u64(addr);
    this.sq[base + Rec.LEGACY] = opcode & 0xff; // INTEREST_NONE
    this.sq[base + Rec.USER] = IGNORE;
    this.sqCount++;
    this.queueFlush();
  }

  /**
   * Asks the kernel to cancel an op. The op stays in the table, with its buffers, until its final
   * completion arrives; if that completion is a result rather than ECANCELED, the result wins.
   */
  cancel(op: AnyOp, reason: 'abort' | 'closed'): void {
    const slot = op._lastSlot;
    // A completed op's _lastSlot may name a slot another op took since: the table says whose it is.
    if (slot < 0 || this.slots[slot * SLOT_WORDS + S_OP] !== op || this.slots[slot * SLOT_WORDS + S_CANCEL] !== undefined) return;
    this.slots[slot * SLOT_WORDS + S_CANCEL] = reason;
    op._cancelReason = reason;
    if (op.flags & SKIP_CANCEL || this.closed) return;
    this.writeInternal(OP_ASYNC_CANCEL, -1, slot);
  }

  /** Cancels every op in flight (runtime shutdown). */
  cancelAll(reason: 'abort' | 'closed'): void {
    const t = this.slots;
    for (let b = 0; b < t.length; b += SLOT_WORDS) {
      const op = t[b + S_OP] as AnyOp | undefined;
      if (op !== undefined) this.cancel(op, reason);
    }
  }

  /**
   * Asks for a flush at the end of this microtask run even with no record pending: the flush also hands
   * the addon the pool buffers given back since the last one (recv-pool.ts).
   */
  requestFlush(): void {
    if (!this.closed) this.queueFlush();
  }

  /** Flushes pending records now and reaps what is done (used by the loop turn). */
  pump(): void {
    this.flushNow(true);
  }

  /** Tears the native driver down. Only call once `live` is zero, or at process teardown. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sqCount > 0) this.flushNow(false);
    native.ringio_driver_close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private write(op: AnyOp, user: number): void {
    if (this.sqCount === SQ_RECORDS) this.flushNow(false);
    const w = this.writer;
    const base = this.sqCount * Rec.WORDS;
    w.base = base;
    const nbufs = this.bufs.length;
    const nregs = w.nregs;
    try {
      this.fill(op, base);
    } catch (e) {
      this.bufs.length = nbufs;
      w.nregs = nregs;
      throw e;
    }
    this.sq[base + Rec.USER] = user;
    this.sqCount++;
    // Written by a completion's handler: dispatchAll() flushes it as the dispatch ends.
    if (this.dispatching > 0 && !FLUSH_PER_TURN) return;
    this.queueFlush();
  }

  private queueFlush(): void {
    if (FLUSH_PER_TURN) {
      this.turn.yieldToLoop();
    } else if (!this.flushQueued) {
      this.flushQueued = true;
      if (FLUSH_PER_MICROTASK) void RESOLVED.then(this.flushTask);
      else process.nextTick(this.flushTask);
    }
  }

  private fill(op: AnyOp, base: number): void {
    const w = this.writer;
    if (this.uring) {
      op.uringOp(w);
    } else {
      op.legacyCall(w);
      const interest = op.legacyInterest();
      const dir =
        interest === null
          ? INTEREST_NONE
          : interest.direction === 'readable'
            ? INTEREST_READABLE
            : interest.direction === 'writable'
              ? INTEREST_WRITABLE
              : INTEREST_POOL;
      const ifd = interest === null ? 0 : interest.fd;
      if (ifd > MAX_INTEREST_FD) throw new RangeError(`fd ${ifd} is too large for the epoll driver (max ${MAX_INTEREST_FD})`);
      this.sq[base + Rec.LEGACY] = (this.sq[base + Rec.OPCODE]! & 0xff) | (dir << 8) | (ifd << 10);
    }
  }

  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flushNow(true);
  };

  private flushNow(wantReap: boolean): void {
    if (this.closed && this.sqCount === 0) return;
    const n = this.sqCount;
    const overBudget = this.turn.work >= this.turn.budget;
    const reap = wantReap && !overBudget;
    if (n === 0 && !reap) {
      if (wantReap) this.turn.yieldToLoop();
      return;
    }
    this.sqCount = 0;
    const nregs = this.writer.nregs;
    if (nregs > 0) {
      this.checkDetached(this.regs, nregs);
      this.writer.nregs = 0;
    }
    const bufs = this.bufs;
    const nbufs = bufs.length;
    const got = nativeSubmit(n, bufs, nbufs, reap);
    // Most batches name only registered arrays: no store (a runtime call even on an empty array).
    if (nbufs !== 0) bufs.length = 0;
    if (got > 0) this.dispatchAll(got);
    if (wantReap && overBudget) this.turn.yieldToLoop();
  }

  /**
   * SAFETY: a registered array whose buffer was detached (transferred) since its record was written has
   * a length of 0 (registered arrays are never empty). Its record goes the plain way instead, where the
   * addon sees the empty array and fails the op with EFAULT, so its old memory never reaches the kernel.
   * This runs right before the batch crosses: no JS runs between this check and the addon's use of the
   * record. (`length`, not `byteLength`: V8 inlines the one and calls a getter for the other. The
   * registry takes only plain Uint8Arrays and Buffers, whose `length` is the intrinsic one.)
   */
  private checkDetached(regs: (Uint8Array | number | undefined)[], nregs: number): void {
    for (let i = 0; i < nregs; i += 2) {
      const buf = regs[i] as Uint8Array;
      // Cleared as it is checked, so the slot does not keep the array alive after its op.
      regs[i] = undefined;
      if (buf.length !== 0) continue;
      const base = regs[i + 1] as number;
      if (this.sq[base + Rec.ADDR_KIND] !== Addr.REG) {
        // A batch record (SqeWriter.bufRef) names its buffers in a plan of its own: its op drops this one.
        this.opAt(this.sq[base + Rec.USER]!)?.bufferDetached(buf);
        continue;
      }
      this.sq[base + Rec.ADDR_KIND] = Addr.BUF;
      this.sq[base + Rec.ADDR_A] = this.bufs.push(buf) - 1;
    }
  }

  /** libuv woke us: completions are waiting in the completion area. A new loop turn starts here. */
  private readonly onNativeCompletions = (count: number): void => {
    this.turn.work = 0;
    this.dispatchAll(count);
  };

  private dispatchAll(count: number): void {
    let got = count;
    let done = false;
    if (this.dispatching === 0) this.settledPromise = false;
    this.dispatching++;
    try {
      for (;;) {
        this.dispatch(got);
        if (got < CQ_RECORDS || this.closed) break;
        got = nativeReap();
        if (got === 0) break;
      }
      done = true;
    } finally {
      this.dispatching--;
      // Should the dispatch throw (an onIdle hook, the addon), what its handlers wrote still goes out.
      if (!done && this.dispatching === 0 && this.sqCount > 0) this.queueFlush();
    }
    if (this.dispatching > 0 || this.sqCount === 0) return;
    // Rule 1: what the handlers wrote goes out now, and what that finishes is reaped (within the budget).
    // When the dispatch settled an op's promise, the continuations it queued may write more records: the
    // flush then waits behind them in a promise job (queued after theirs), so they share its enter.
    if (this.settledPromise || this.endFlushDepth >= MAX_END_FLUSH_DEPTH) {
      this.queueFlush();
      return;
    }
    this.endFlushDepth++;
    try {
      this.flushNow(true);
    } finally {
      this.endFlushDepth--;
    }
  }

  private dispatch(count: number): void {
    const cq = this.cq;
    for (let i = 0; i < count; i++) {
      const base = i * Cqe.WORDS;
      const user = cq[base]!;
      if (user < 0) continue;
      const t = this.slots;
      const b = user * SLOT_WORDS;
      const op = t[b + S_OP] as AnyOp | undefined;
      if (op === undefined) continue;
      const res = cq[base + Cqe.RES]!;
      const flags = cq[base + Cqe.FLAGS]!;
      if (flags & F_MORE) {
        try {
          op.more(res, flags);
        } catch (e) {
          // An op's own more() threw; the dispatch loop must go on for the other completions.
          process.nextTick(() => {
            throw e;
          });
        }
        continue;
      }
      if (res >= 0 && this.resubmit(op, user, res, flags)) continue;
      // The owner is told first, while the slot still holds the op (its list names slots).
      const owner = t[b + S_OWNER] as OpOwner | undefined;
      if (owner !== undefined) {
        t[b + S_OWNER] = undefined;
        owner.opSettled(op, t[b + S_OWNER_INDEX] as number);
      }
      // The slot is cleared and freed before the op's own code runs: settling may submit new ops. That
      // also makes the op Completed (op.ts, _lastSlot): no store into the op (a megamorphic StoreIC).
      t[b + S_OP] = undefined;
      const cancelled = t[b + S_CANCEL] as 'abort' | 'closed' | undefined;
      if (cancelled !== undefined) t[b + S_CANCEL] = undefined;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const resolve = t[b + S_RESOLVE] as ((v: any) => void) | undefined;
      if (resolve === undefined) {
        this.free.push(user);
        this.live--;
        this.settleDetached(op, res, flags, cancelled);
        continue;
      }
      const reject = t[b + S_REJECT] as (e: unknown) => void;
      const signal = t[b + S_SIGNAL] as AbortSignal | undefined;
      t[b + S_RESOLVE] = undefined;
      t[b + S_REJECT] = undefined;
      if (signal !== undefined) {
        signal.removeEventListener('abort', t[b + S_ABORT] as () => void);
        t[b + S_SIGNAL] = undefined;
        t[b + S_ABORT] = undefined;
      }
      this.free.push(user);
      this.live--;
      this.settledPromise = true;
      this.settle(op, res, flags, resolve, reject, signal, cancelled);
    }
    this.turn.work += count;
    if (this.live === 0 && this.onIdle !== undefined) this.onIdle();
  }

  /**
   * Every successful result goes through op.again() first, so the op can account for it. An op that
   * asks to go again (a short send, ...) and is not being cancelled keeps its slot and is written anew.
   */
  private resubmit(op: AnyOp, user: number, res: number, flags: number): boolean {
    let again: boolean;
    try {
      again = op.again(res, flags);
    } catch {
      return false;
    }
    if (!again || this.slots[user * SLOT_WORDS + S_CANCEL] !== undefined || this.closed || this.closing) return false;
    try {
      this.write(op, user);
    } catch {
      return false;
    }
    return true;
  }

  private settle(
    op: AnyOp,
    res: number,
    flags: number,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    resolve: (v: any) => void,
    reject: (e: unknown) => void,
    signal: AbortSignal | undefined,
    cancelled: 'abort' | 'closed' | undefined,
  ): void {
    if (cancelled !== undefined) {
      const fdArrived = (op.flags & RET_IS_FD) !== 0 && res >= 0;
      if (res === ECANCELED || res === EINTR || fdArrived) {
        // The caller gave up and the kernel confirms it (or handed us an fd nobody will take): reject.
        if (fdArrived) this.closeDetached(res);
        reject(cancelled === 'closed' ? cancelError('closed', op.payload()) : abortError(signal, op.payload()));
        return;
      }
      // Otherwise the op finished before the cancel reached it: its result wins.
    }
    try {
      resolve(op.complete(res, flags));
    } catch (e) {
      reject(e);
    }
  }

  /** The final completion of an op from submitDetached(): told to the op itself. */
  private settleDetached(op: AnyOp, res: number, flags: number, cancelled: 'abort' | 'closed' | undefined): void {
    try {
      if (cancelled !== undefined && (res === ECANCELED || res === EINTR)) {
        op.cancelledBy(cancelled);
      } else {
        op.complete(res, flags);
      }
    } catch {
      // A detached op reports its own errors (complete() throws for the errno as any op does).
    }
  }

  private closeDetached(fd: number): void {
    this.writeInternal(OP_CLOSE, fd, -1);
  }
}
