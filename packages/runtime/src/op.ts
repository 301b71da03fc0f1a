/**
 * OpAble: one operation, defined once for both drivers.
 *
 * - `uringOp(sqe)` fills the io_uring submission entry.
 * - `legacyInterest()` names the readiness the epoll driver waits for before the syscall (an fd and a
 *   direction), or null to run the syscall at once.
 * - `legacyCall(sqe)` fills the record the epoll driver runs once ready. Its opcode names the syscall
 *   (the addon runs the plain syscall behind each IORING_OP_* code it knows). By default it is the same
 *   record as `uringOp`, which is right for most ops.
 * - `complete(res, flags)` turns the kernel's answer into the value the caller gets, or throws.
 *
 * Lifecycle (the runtime owns the state; see docs/design/cancellation.md):
 *
 *   Idle --submit--> Submitted --final completion--> Completed
 *                        |
 *                        +--abort / shutdown--> Cancelling --final completion--> Completed
 *
 * SAFETY: from Submitted until Completed the runtime's op table holds the op, and the op holds every
 * buffer it handed to the kernel. Cancelling does not release them: only the final completion does,
 * because until then the kernel may still write into them.
 */
import { Addr, Rec } from './driver/layout.js';
import { bufferId } from './driver/registry.js';
import { abortError, errnoError, ringioErrorNoStack } from './errors.js';

/**
 * What an op waits for on the epoll driver: readability or writability of `fd`, or 'pool': the syscall
 * may block (regular files), so the epoll engine runs it on its file thread pool (RINGIO_FS_THREADS,
 * default 4) instead of the loop thread.
 */
export type Direction = 'readable' | 'writable' | 'pool';

/** The options of calls whose only option is an AbortSignal (sleep, submit, nop, poll, accept, ...). */
export interface SignalOptions {
  /** Aborting it cancels the call; it rejects AbortError (with the rented buffer, if any). */
  signal?: AbortSignal;
}

/** What the epoll driver waits for before it runs an op's syscall. */
export interface Interest {
  /** The fd whose readiness to wait for (not used for 'pool'). */
  readonly fd: number;
  /** 'readable', 'writable', or 'pool' (a syscall that may block, run on the file thread pool). */
  readonly direction: Direction;
}

/** Where an op is in its life: Idle, then Submitted, possibly Cancelling, then Completed. */
export const OpState = {
  Idle: 0,
  Submitted: 1,
  Cancelling: 2,
  Completed: 3,
} as const;
export type OpState = (typeof OpState)[keyof typeof OpState];

/** Bits of OpAble#flags. */
export const OpFlags = {
  None: 0,
  /** The result is a new fd. If the op was cancelled but the fd arrives anyway, the runtime closes it. */
  RetIsFd: 1,
  /** Abort does not cancel this op in the kernel (it finishes on its own soon). */
  SkipCancel: 2,
} as const;

const TWO_32 = 4294967296;

/**
 * Writes one record into the shared submission area. Ops call its methods from `uringOp` and
 * `legacyCall`; the driver positions it on the next free record first.
 */
export class SqeWriter {
  /** @internal */ i32: Int32Array;
  /** @internal */ base = 0;
  /** @internal */ bufs: Uint8Array[];
  /**
   * @internal Registered arrays named by this batch's records, each followed by its record's base: the
   * driver checks them for detachment right before the batch crosses.
   */
  regs: (Uint8Array | number | undefined)[];
  /**
   * @internal How many entries of `regs` this batch uses. The array itself keeps its length and its
   * backing store between batches: `regs.length = 0` would drop the store (V8 trims an array cut to
   * zero), and the next push would allocate a new one, 152 bytes per flush on a 1-connection echo.
   */
  nregs = 0;

  /** @internal How the driver makes its writer. */
  static _create(i32: Int32Array, bufs: Uint8Array[], regs: (Uint8Array | number | undefined)[]): SqeWriter {
    return new SqeWriter(i32, bufs, regs);
  }

  /** The driver makes the one SqeWriter; ops get it as uringOp's argument. */
  private constructor(i32: Int32Array, bufs: Uint8Array[], regs: (Uint8Array | number | undefined)[]) {
    this.i32 = i32;
    this.bufs = bufs;
    this.regs = regs;
  }

  /** Start the record: opcode, fd, sqe->len and sqe->off. Every other field is reset to zero. */
  prep(opcode: number, fd: number, len = 0, offset: number | bigint = 0): this {
    const w = this.i32;
    const b = this.base;
    w[b + Rec.OPCODE] = opcode;
    w[b + Rec.FD] = fd;
    w[b + Rec.LEN] = len;
    if (typeof offset === 'bigint') {
      w[b + Rec.OFF_LO] = Number(offset & 0xffffffffn) | 0;
      w[b + Rec.OFF_HI] = Number((offset >> 32n) & 0xffffffffn) | 0;
    } else if (offset === -1) {
      w[b + Rec.OFF_LO] = -1;
      w[b + Rec.OFF_HI] = -1;
    } else {
      w[b + Rec.OFF_LO] = offset | 0;
      w[b + Rec.OFF_HI] = Math.floor(offset / TWO_32) | 0;
    }
    w[b + Rec.ADDR_KIND] = Addr.NONE;
    w[b + Rec.ADDR_A] = 0;
    w[b + Rec.ADDR_B] = 0;
    w[b + Rec.OPFLAGS] = 0;
    w[b + Rec.SQEFLAGS] = 0;
    w[b + Rec.ADDR2_KIND] = Addr.NONE;
    w[b + Rec.ADDR2_A] = 0;
    w[b + Rec.ADDR2_B] = 0;
    w[b + Rec.LEGACY] = 0;
    w[b + Rec.EXTRA] = 0;
    return this;
  }

  /**
   * sqe->addr = buf + byteOffset. The addon checks that sqe->len bytes fit. An array used before goes by
   * its buffer-registry id (driver/registry.ts), the others by their index in the batch's array list.
   */
  buf(buf: Uint8Array, byteOffset = 0): this {
    return this.bufById(buf, bufferId(buf), byteOffset);
  }

  /**
   * buf() for an array whose registry id the caller already holds (RecvPool.regId: a pool buffer's view,
   * which the pool keeps alive, so its id stays its own), without buf()'s lookup: `id` as bufferId(buf)
   * returned it, >= 0, or -1 for the plain path.
   */
  bufById(buf: Uint8Array, id: number, byteOffset = 0): this {
    const w = this.i32;
    const b = this.base;
    if (id >= 0) {
      w[b + Rec.ADDR_KIND] = Addr.REG;
      w[b + Rec.ADDR_A] = id;
      const regs = this.regs;
      const k = this.nregs;
      regs[k] = buf;
      regs[k + 1] = b;
      this.nregs = k + 2;
    } else {
      w[b + Rec.ADDR_KIND] = Addr.BUF;
      w[b + Rec.ADDR_A] = this.bufs.push(buf) - 1;
    }
    w[b + Rec.ADDR_B] = byteOffset;
    return this;
  }

  /**
   * For batch ops whose record names many buffers in a plan of their own (READ_MANY): how the addon
   * finds `buf` (used whole). A registry id (>= 0), or -(i + 1) for index i in the batch's array list.
   * A registered array is checked for detachment right before the flush like buf()'s, and the op's
   * bufferDetached() is told if it was.
   */
  bufRef(buf: Uint8Array): number {
    const id = bufferId(buf);
    if (id < 0) return -this.bufs.push(buf);
    const regs = this.regs;
    const k = this.nregs;
    regs[k] = buf;
    regs[k + 1] = this.base;
    this.nregs = k + 2;
    return id;
  }

  /** sqe->addr = an iovec array built from `bufs`, each used whole; sqe->len must be bufs.length. */
  iovec(bufs: readonly Uint8Array[]): this {
    this.i32[this.base + Rec.ADDR_KIND] = Addr.IOVEC;
    this.i32[this.base + Rec.ADDR_A] = this.bufs.length;
    for (let i = 0; i < bufs.length; i++) this.bufs.push(bufs[i]!);
    return this;
  }

  /**
   * sqe->addr = a msghdr kept in the op's native slot, with one iovec over `data` (used whole) and
   * msg_name over `name` (used whole) when given. For SENDMSG / RECVMSG.
   */
  msghdr(data: Uint8Array, name?: Uint8Array): this {
    this.i32[this.base + Rec.ADDR_KIND] = Addr.MSGHDR;
    this.i32[this.base + Rec.ADDR_A] = this.bufs.push(data) - 1;
    this.i32[this.base + Rec.ADDR_B] = name === undefined ? -1 : this.bufs.push(name) - 1;
    return this;
  }

  /** sqe->ioprio (for accept and recv: the multishot flags). */
  ioprio(value: number): this {
    const w = this.i32;
    w[this.base + Rec.SQEFLAGS] = (w[this.base + Rec.SQEFLAGS]! & 0xff) | (value << 16);
    return this;
  }

  /** sqe->addr = a timespec kept in the op's native slot. */
  timespec(sec: number, nsec: number): this {
    this.i32[this.base + Rec.ADDR_KIND] = Addr.TIMESPEC;
    this.i32[this.base + Rec.ADDR_A] = sec;
    this.i32[this.base + Rec.ADDR_B] = nsec;
    return this;
  }

  /** sqe->addr = a plain 64-bit value (below 2^53). */
  u64(value: number): this {
    this.i32[this.base + Rec.ADDR_KIND] = Addr.U64;
    this.i32[this.base + Rec.ADDR_A] = value | 0;
    this.i32[this.base + Rec.ADDR_B] = Math.floor(value / TWO_32) | 0;
    return this;
  }

  /** sqe->addr2 = buf + byteOffset, with the length "to the end" (for sockaddr out-parameters). */
  addr2Buf(buf: Uint8Array, byteOffset = 0): this {
    this.i32[this.base + Rec.ADDR2_KIND] = Addr.BUF_END;
    this.i32[this.base + Rec.ADDR2_A] = this.bufs.push(buf) - 1;
    this.i32[this.base + Rec.ADDR2_B] = byteOffset;
    return this;
  }

  /** sqe->addr = buf + byteOffset, with the length "to the end" (for sockaddr in/out-parameters). */
  addrBufEnd(buf: Uint8Array, byteOffset = 0): this {
    this.i32[this.base + Rec.ADDR_KIND] = Addr.BUF_END;
    this.i32[this.base + Rec.ADDR_A] = this.bufs.push(buf) - 1;
    this.i32[this.base + Rec.ADDR_B] = byteOffset;
    return this;
  }

  /** sqe->addr2 = a socklen_t in the op's native slot, initialised to `value`. */
  addr2Socklen(value: number): this {
    this.i32[this.base + Rec.ADDR2_KIND] = Addr.SOCKLEN;
    this.i32[this.base + Rec.ADDR2_A] = value;
    return this;
  }

  /** The op-specific flags word (rw_flags, msg_flags, poll mask, timeout flags, cancel flags...). */
  opFlags(flags: number): this {
    this.i32[this.base + Rec.OPFLAGS] = flags;
    return this;
  }

  /** IOSQE_* flags. */
  sqeFlags(flags: number): this {
    const w = this.i32;
    w[this.base + Rec.SQEFLAGS] = (w[this.base + Rec.SQEFLAGS]! & ~0xff) | (flags & 0xff);
    return this;
  }

  /** sqe->splice_fd_in / file_index. */
  extra(value: number): this {
    this.i32[this.base + Rec.EXTRA] = value;
    return this;
  }
}

/**
 * The op table of this thread's driver (Driver.slots, set by the driver as it opens: one driver per
 * thread at a time, module state is per thread) and its stride: slot s holds its op in flight at
 * s * OP_TABLE_STRIDE. An op whose _lastSlot entry there is not itself has completed (a later runtime's
 * table never holds an op of an earlier one that it was not given).
 */
let opTable: readonly unknown[] = [];
export const OP_TABLE_STRIDE = 8;

/** @internal For the driver: its op table, from now on the one ops are looked up in (see opTable). */
export function _setOpTable(table: readonly unknown[]): void {
  opTable = table;
}

function opInFlight(slot: number, op: OpAble<unknown>): boolean {
  return opTable[slot * OP_TABLE_STRIDE] === op;
}

/**
 * The base of every op. Subclasses set `name` (the syscall named in errors) and implement `uringOp`
 * and `complete`; they override `legacyInterest` / `legacyCall` where the epoll path differs. `T` is
 * what `complete` returns, so what `submit(op)` resolves with (`unknown` when not given).
 */
export abstract class OpAble<T = unknown> {
  /** The syscall named in errors (`read`, `accept`, ...). */
  abstract get name(): string;
  /** OpFlags bits. */
  readonly flags: number = OpFlags.None;

  /**
   * @internal The slot the op was last submitted in (>= 0: in flight there while the runtime's op table
   * holds it in that slot, Completed once not), -1 while Idle (new, or recycled). The op's whole
   * lifecycle state as far as the driver touches the op (plus _cancelReason): every op class has its own
   * hidden class, so each field the driver touches per op is a megamorphic access (an IC stub call),
   * and the driver keeps everything else per slot (driver.ts). It is written once per submission: the
   * final completion writes nothing here (the table forgets the op, which makes it Completed).
   */
  _lastSlot = -1;
  /** @internal Why the op is being cancelled: 'abort' or 'closed' (set by the driver's cancel; kept until recycle). */
  _cancelReason: 'abort' | 'closed' | undefined = undefined;

  /** io_uring: fills the submission record with sqe.prep(...) and friends. */
  abstract uringOp(sqe: SqeWriter): void;

  /**
   * epoll: what to wait for before running the syscall (an fd becoming readable or writable, or
   * 'pool': run it on the file thread pool), or null (the default) to run it at once.
   */
  legacyInterest(): Interest | null {
    return null;
  }

  /** epoll: fills the record the epoll engine runs once ready; by default the same as uringOp. */
  legacyCall(sqe: SqeWriter): void {
    this.uringOp(sqe);
  }

  /** Turns the final completion into the caller's value. Throw to reject. */
  abstract complete(res: number, flags: number): T;

  /**
   * Called with every successful (res >= 0) final result, before anything else. Return true to have
   * the runtime submit the op again, in the same slot and with the same buffers, instead of settling it
   * (a send that wrote only part of its buffer: advance and go again). The runtime does so only while
   * the op is not being cancelled; otherwise it settles with complete(). The default is false.
   */
  again(_res: number, _flags: number): boolean {
    return false;
  }

  /**
   * For ops submitted without a promise (Driver.submitDetached, FdHandle.runDetached): the kernel
   * confirmed a cancellation; `err` is an AbortError or ERR_RINGIO_CLOSED. Results go to complete().
   */
  cancelled(_err: Error): void {}

  /**
   * For ops submitted without a promise: how the driver reports a cancellation the kernel confirmed,
   * `reason` being what cancelled it ('abort' or 'closed'). The default makes the error a promise would
   * have rejected with (cancelError) and passes it to cancelled(err). Override it to skip making an error
   * that nobody will read (a pooled read cancelled by its own stream's close(), once per connection).
   */
  cancelledBy(reason: 'abort' | 'closed'): void {
    this.cancelled(cancelError(reason, this.payload()));
  }

  /**
   * For ops that name buffers through SqeWriter.bufRef: `buf` was detached between the record's writing
   * and its flush; the op must stop naming it (the driver calls this right before the flush).
   */
  bufferDetached(_buf: Uint8Array): void {}

  /** Called for completions flagged IORING_CQE_F_MORE (multishot results, zero-copy notifications). */
  more(_res: number, _flags: number): void {}

  /** What an AbortError or a closed-runtime error carries back to the caller (the rented buffer). */
  payload(): unknown {
    return undefined;
  }

  /**
   * Makes a Completed op submittable again (Idle), for owners that pool their ops (a stream keeps one
   * read op and one write op). Returns false, and changes nothing, unless the op is Completed: an op in
   * flight, or being cancelled, still belongs to the kernel.
   */
  protected recycle(): boolean {
    const slot = this._lastSlot;
    if (slot < 0 || opInFlight(slot, this)) return false;
    this._lastSlot = -1;
    this._cancelReason = undefined;
    return true;
  }

  /**
   * The op's slot in the runtime's op table while it is in flight (>= 0): what CancelOp takes. -1 while
   * Idle, -2 once Completed.
   */
  get _slot(): number {
    const slot = this._lastSlot;
    return slot < 0 || opInFlight(slot, this) ? slot : -2;
  }

  /**
   * Why the op was cancelled ('abort' or 'closed'), or undefined: for ops that turn per-part
   * cancellations into errors themselves (a batch whose completion is a result, not ECANCELED).
   */
  protected get cancelReason(): 'abort' | 'closed' | undefined {
    return this._cancelReason;
  }

  /** The state of this op in its lifecycle. */
  get state(): OpState {
    const slot = this._slot;
    if (slot >= 0) return this._cancelReason === undefined ? OpState.Submitted : OpState.Cancelling;
    return slot === -1 ? OpState.Idle : OpState.Completed;
  }

  /** Helper for `complete`: throws the errno error for a negative result. */
  protected check(res: number, props?: Record<string, unknown>): number {
    if (res < 0) {
      const payload = this.payload();
      throw errnoError(res, this.name, payload === undefined ? props : { ...props, buf: payload });
    }
    return res;
  }
}

/**
 * Something that tracks the ops it submitted (a socket, so close() can cancel them). The runtime
 * calls `opSettled` just before an owned op's promise settles.
 */
export interface OpOwner {
  /**
   * Called by the runtime just before an op this owner submitted settles, with the position the owner
   * gave it (Driver.own / moveOwned).
   */
  opSettled(op: OpAble<unknown>, index: number): void;
}

// The argument checks ops use live in validate.ts (the base layer), exported from here too for the
// ops that import them with OpAble.
export { checkBuffer, checkFd, checkPosition, checkRange } from './validate.js';

/**
 * The error of an op whose cancellation the kernel confirmed: an AbortError ('abort'), or
 * ERR_RINGIO_CLOSED ('closed': its socket's, file's or the runtime's close). The latter is made without
 * a stack trace: it would show only the driver's dispatch loop, and a server pays for one per connection
 * that closes with a read in flight (capturing it was 9% of a server's CPU under new-connection load).
 */
export function cancelError(reason: 'abort' | 'closed', buf: unknown): Error {
  return reason === 'closed'
    ? ringioErrorNoStack('ERR_RINGIO_CLOSED', 'closed while the op was in flight (its socket or the runtime)', { buf })
    : abortError(undefined, buf);
}
