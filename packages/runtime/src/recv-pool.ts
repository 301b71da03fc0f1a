/**
 * The receive-buffer pool: one per runtime (so one per thread), the memory that socket reads land in
 * when the reader takes a buffer only once data has arrived (docs/design/net.md).
 *
 * Modes, probed when the pool is made (stats().recvPool says which, and why not a richer one):
 *  - 'ring' (io_uring, kernel 5.19+): the buffers sit in a provided-buffer ring (IORING_REGISTER_PBUF_RING,
 *    group 0); a RECV with IOSQE_BUFFER_SELECT (multishot where the kernel has it) makes the kernel pick
 *    one when bytes arrive.
 *  - 'select' (epoll): the engine picks a free buffer when the socket is readable, then reads into it.
 *  - 'plain' (io_uring without buffer rings): the reader takes a buffer when it submits its RECV, as
 *    before; reads still come from the pool, but a waiting reader holds its buffer.
 *
 * Rules:
 *  1. A buffer is in exactly one place: the kernel's ring (or the engine's free list), or one lease.
 *     `#state` says which; a completion naming a buffer that is already leased is a bug and throws.
 *  2. A lease goes back once: release() (or copy()) twice throws ERR_RINGIO_LEASE_RELEASED. Released
 *     ids are written to the recycle area and reach the addon with the next flush (one crossing per
 *     batch). The driver is asked for a flush of their own only when the pool runs low (an eighth of
 *     it pending, half of it out of the kernel's hands) or a reader waits for a buffer; otherwise they
 *     ride on the next batch.
 *  3. SAFETY: the pool's memory is one JS ArrayBuffer per chunk (rule 5). The addon keeps every chunk
 *     referenced until the driver's backend is gone (after the kernel has answered for every op), and
 *     every lease holds a view of its chunk,
 *     so neither the kernel nor a late reader ever touches freed memory. After the runtime has shut
 *     down, release() only marks the lease (the ring is gone) and the memory lives until the last view.
 *  4. A reader that got ENOBUFS waits in `#starved`; every buffer given back wakes one such reader.
 *  5. Size: the pool starts with `buffers` and grows, up to `maxBuffers`, by as many again (a new chunk
 *     of memory, new ids after the old ones) when a read finds it empty (ENOBUFS) or when more than
 *     three quarters of it is out of the kernel's hands (leased or given back but not yet flushed).
 *     It never shrinks: a buffer ring cannot take buffers back while reads are armed on it, and what a
 *     grown pool costs in RSS is only the pages reads have touched (docs/design/net.md).
 */
import { native } from './addon.js';
import type { Driver } from './driver/driver.js';
import { S_COMPLETIONS } from './driver/layout.js';
import { bufferId } from './driver/registry.js';
import { ringioError } from './errors.js';

/** `configureRecvPool()`'s options. */
export interface RecvPoolOptions {
  /** Bytes per buffer: the most one read can return (default 16384; 64..1 MiB). */
  bufferSize?: number;
  /** How many buffers the pool starts with (default 64; a power of two, 1..32768). */
  buffers?: number;
  /**
   * The most buffers the pool grows to when reads find it empty or running low (default 4096, or
   * `buffers` if that is more; a power of two, `buffers`..32768). `maxBuffers: buffers` makes a fixed pool.
   */
  maxBuffers?: number;
}

/** stats().recvPool: the pool's mode and counters. */
export interface RecvPoolStats {
  /** 'ring', 'select' or 'plain' (see docs/design/net.md); 'none' until the first pooled read. */
  mode: 'ring' | 'select' | 'plain' | 'none';
  /** Whether reads use multishot RECV (io_uring 6.0+). */
  multishot: boolean;
  /** Why the pool is not in 'ring' mode with multishot (null when it is, or on epoll). */
  reason: string | null;
  /** Bytes per buffer. */
  bufferSize: number;
  /** Buffers in the pool now (it starts with `configureRecvPool`'s `buffers` and grows). */
  buffers: number;
  /** The most buffers the pool may grow to. */
  maxBuffers: number;
  /** Times the pool grew (each time by as many buffers as it had, up to `maxBuffers`). */
  grows: number;
  /** Buffers held by JS: leases not yet released, including received ones no reader has taken yet. */
  leased: number;
  /** Times a read found the pool empty (ENOBUFS) and waited for a buffer to come back. */
  exhausted: number;
}

const DEFAULT_SIZE = 16384;
// 64 to start: an idle server touches few buffers (each one a read used costs RSS, at least a page). The
// pool doubles when it runs low, so 256 busy connections take it to 512 within the first few batches
// (a fixed 256 ran dry on one read in three there, halving echo throughput on io_uring:
// docs/benchmarks.md); 4096 (64 MiB of 16 KiB buffers) bounds it.
const DEFAULT_COUNT = 64;
const DEFAULT_MAX = 4096;
const POOL = 0;
const LEASED = 1;

/**
 * A received buffer on lease from the runtime's pool: `bytes` holds what one read returned. Give it
 * back with release() (or take a copy with copy(), which releases) once done; until then the buffer
 * is out of the pool. Using it after release throws ERR_RINGIO_LEASE_RELEASED, unless the lease came
 * from a reader that recycles its lease objects (readLeases' `recycle` option): such a lease object is
 * handed out again for a later read once released, so a reference kept past release() names that
 * later read.
 */
export class RecvLease {
  readonly #pool: RecvPool;
  #id: number;
  #length: number;
  #bytes: Buffer | undefined;
  #released = false;
  /** Goes back to the pool's spare leases on release (RecvPool.take with `recycle`), not to the GC. */
  #recycled = false;

  /** Plumbing, not API: Leases come from the pool (RecvPool.take). */
  constructor(pool: RecvPool, id: number, length: number) {
    this.#pool = pool;
    this.#id = id;
    this.#length = length;
  }

  /** Plumbing, not API: points a spare lease at a new read (RecvPool.take with `recycle`). */
  static _reuse(lease: RecvLease, id: number, length: number): RecvLease {
    lease.#id = id;
    lease.#length = length;
    lease.#released = false;
    return lease;
  }

  /**
   * Plumbing, not API: a lease taken for a recycling reader that goes to another reader after all (it
   * was queued when that one stopped): it goes to the GC on release, not to the spares.
   */
  static _plain(lease: RecvLease): RecvLease {
    lease.#recycled = false;
    return lease;
  }

  /** Plumbing, not API: marks a lease as one the pool takes back as a spare on release. */
  static _recycling(lease: RecvLease): RecvLease {
    lease.#recycled = true;
    return lease;
  }

  /** The buffer's id in the pool (distinct among leases outstanding at any time). */
  get id(): number {
    return this.#id;
  }

  /** How many bytes the read returned (>= 1). */
  get length(): number {
    return this.#length;
  }

  /** Whether release() (or copy()) was called. */
  get released(): boolean {
    return this.#released;
  }

  /** The received bytes: a view of exactly `length` bytes into the pool (no copy). */
  get bytes(): Buffer {
    this.#check();
    return (this.#bytes ??= this.#pool.view(this.#id).subarray(0, this.#length));
  }

  /**
   * The whole pool buffer this lease holds (`bufferSize` bytes, the first `length` received). The same
   * object for every lease of this buffer, so ops that take it (writeAll(lease.buf, { length })) reuse
   * its registration: the cheap way to send received bytes on.
   */
  get buf(): Buffer {
    this.#check();
    return this.#pool.view(this.#id);
  }

  /** Copies the bytes out into a new Buffer and releases the lease. */
  copy(): Buffer {
    this.#check();
    const out = Buffer.allocUnsafe(this.#length);
    this.#pool.view(this.#id).copy(out, 0, 0, this.#length);
    this.release();
    return out;
  }

  /**
   * Gives the buffer back to the pool (the kernel may fill it again at once: do not touch the bytes
   * after this, nor while an op you passed them to is in flight). Throws ERR_RINGIO_LEASE_RELEASED if
   * already released.
   */
  release(): void {
    this.#check();
    this.#released = true;
    this.#bytes = undefined;
    this.#pool.give(this.#id);
    // Only now, with its buffer back in the pool and nothing of the runtime's holding it: a queued or
    // in-flight send releases its lease after its final completion (invariant 1), never before.
    if (this.#recycled) this.#pool._spare(this);
  }

  /**
   * Plumbing, not API: whether fewer than half the pool's buffers (at its largest) are leased. A reader
   * that would keep a lease for a while (an HTTP server parsing a request in place until it is answered)
   * does so only then: leases held while waiting for other reads must not starve those reads.
   */
  get _roomy(): boolean {
    return this.#pool.leased * 2 < this.#pool.maxBuffers;
  }

  /**
   * Plumbing, not API: the buffer registry's id of `buf` (or -1), for SqeWriter.bufById: a send of the
   * lease's bytes names the buffer without a lookup. Call while the lease is held.
   */
  _regId(): number {
    return this.#pool.regId(this.#id);
  }

  #check(): void {
    if (this.#released) throw ringioError('ERR_RINGIO_LEASE_RELEASED', `buffer ${this.#id} was already released to its pool`);
  }
}

/** Released recycling leases a pool keeps (per thread), for take() with `recycle`. */
const SPARE_LEASES = 1024;

/** The runtime's receive-buffer pool (see the module comment). Made on first use by RecvPool.of(). */
export class RecvPool {
  /** 'ring' (io_uring buffer ring), 'select' (epoll picks on readiness) or 'plain' (taken at submission). */
  readonly mode: 'ring' | 'select' | 'plain';
  /** Whether readers should use multishot RECV (a kernel that answers EINVAL turns it off). */
  multishot: boolean;
  /** Why not 'ring' mode with multishot, or null. */
  reason: string | null;
  /** Bytes per buffer: the most one pooled read returns. */
  readonly bufferSize: number;
  /** How many buffers the pool has now (rule 5). */
  buffers = 0;
  /** The most buffers it may grow to. */
  readonly maxBuffers: number;
  /** Times it grew. */
  grows = 0;
  /** Buffers held by JS (leases not yet released). */
  leased = 0;
  /** ENOBUFS answers so far. */
  exhausted = 0;
  readonly #driver: Driver;
  /** The pool's memory: chunk i holds the buffers from #firstIds[i] on. */
  readonly #chunks: Uint8Array[] = [];
  readonly #firstIds: number[] = [];
  /** Leased plus pending above this: grow (rule 5). */
  #growAt = 0;
  /** The driver's completion count when an ENOBUFS wait last grew the pool (one growth per batch). */
  #grewIn = -1;
  readonly #views: (Buffer | undefined)[];
  /** Each view's buffer-registry id once it has one (-1 before): see regId(). */
  readonly #regIds: Int32Array;
  readonly #state: Uint8Array;
  /** [count, id, id, ...]: ids given back since the last flush (read by the addon). */
  readonly #recycle: Int32Array;
  /** 'plain' mode: free ids (a stack). */
  readonly #free: number[] = [];
  readonly #starved: (() => void)[] = [];
  /** Released leases of recycling readers, handed out again by take() with `recycle` (no object per read). */
  readonly #spareLeases: RecvLease[] = [];
  #closed = false;

  constructor(driver: Driver, opts: RecvPoolOptions = {}) {
    const { bufferSize, buffers, maxBuffers } = checkPoolOptions(opts);
    this.#driver = driver;
    this.bufferSize = bufferSize;
    this.maxBuffers = maxBuffers;
    this.#views = new Array<Buffer | undefined>(maxBuffers);
    this.#state = new Uint8Array(maxBuffers);
    this.#regIds = new Int32Array(maxBuffers).fill(-1);
    this.#recycle = new Int32Array(maxBuffers + 1);
    // RINGIO_FAULT_PBUF_RING=1 (tests): as if the kernel had refused the buffer ring.
    const reason = process.env.RINGIO_FAULT_PBUF_RING
      ? 'IORING_REGISTER_PBUF_RING failed: EINVAL [injected by RINGIO_FAULT_PBUF_RING]'
      : native.ringio_pbuf_open(bufferSize, maxBuffers, this.#recycle);
    if (reason === '') {
      this.mode = driver.uring ? 'ring' : 'select';
      this.multishot = driver.features.has('RECV_MULTISHOT');
      this.reason = this.multishot || !driver.uring ? null : 'multishot RECV needs kernel 6.0';
    } else {
      this.mode = 'plain';
      this.multishot = false;
      this.reason = reason;
    }
    if (!this.#add(buffers)) throw new Error(`ringio: the receive pool could not take its first ${buffers} buffers`);
  }

  /** Rule 5: `count` more buffers, as the next ids, in a chunk of their own. False if the driver refused. */
  #add(count: number): boolean {
    const mem = new Uint8Array(count * this.bufferSize);
    const first = this.buffers;
    if (this.mode === 'plain') {
      for (let i = first + count - 1; i >= first; i--) this.#free.push(i);
    } else if (native.ringio_pbuf_grow(mem, count) !== '') {
      return false;
    }
    this.#chunks.push(mem);
    this.#firstIds.push(first);
    this.buffers = first + count;
    const n = this.buffers;
    this.#growAt = n < this.maxBuffers ? n - (n >>> 2) : Infinity;
    return true;
  }

  /** Rule 5: doubles the pool (up to maxBuffers). False when it is at its bound (or closed). */
  #grow(): boolean {
    if (this.#closed || this.buffers >= this.maxBuffers) return false;
    if (!this.#add(Math.min(this.buffers, this.maxBuffers - this.buffers))) {
      this.#growAt = Infinity;
      return false;
    }
    this.grows++;
    return true;
  }

  /** Whether the runtime that owns the pool has shut down (its ring is gone). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Plumbing, not API: The runtime shut down: from now on release() only marks leases. */
  close(): void {
    this.#closed = true;
    const starved = this.#starved.splice(0);
    for (const wake of starved) wake();
  }

  /** Plumbing, not API: The stable Buffer over buffer `id`. */
  view(id: number): Buffer {
    return (this.#views[id] ??= this.#makeView(id));
  }

  /**
   * Plumbing, not API: view(id)'s buffer-registry id, or -1 while it has none (the registry gives one
   * on an array's second use). Kept once given: the pool holds its views for its whole life, so the id
   * is never released (registry rule 2), and a send names the buffer without the registry's lookup.
   */
  regId(id: number): number {
    let r = this.#regIds[id]!;
    if (r < 0) {
      r = bufferId(this.view(id));
      if (r >= 0) this.#regIds[id] = r;
    }
    return r;
  }

  #makeView(id: number): Buffer {
    let c = this.#chunks.length - 1;
    while (this.#firstIds[c]! > id) c--;
    const mem = this.#chunks[c]!;
    return Buffer.from(mem.buffer, mem.byteOffset + (id - this.#firstIds[c]!) * this.bufferSize, this.bufferSize);
  }

  /**
   * Plumbing, not API: A completion handed buffer `id` holding `n` bytes to JS (rule 1). `recycle`: for
   * a reader that recycles its lease objects (readLeases' `recycle`): a spare lease released earlier is
   * pointed at the buffer, else a new one that becomes a spare once released. A lease is a spare only
   * after release(), so never while a send or a queue still holds it.
   */
  take(id: number, n: number, recycle = false): RecvLease {
    if (id >= this.buffers || this.#state[id] !== POOL) {
      throw new Error(`ringio: pool buffer ${id} handed out while not in the pool (a runtime bug)`);
    }
    this.#state[id] = LEASED;
    if (++this.leased + this.#recycle[0]! > this.#growAt) this.#grow();
    if (!recycle) return new RecvLease(this, id, n);
    const spare = this.#spareLeases.pop();
    return spare === undefined ? RecvLease._recycling(new RecvLease(this, id, n)) : RecvLease._reuse(spare, id, n);
  }

  /** Plumbing, not API: a recycling lease was released (RecvLease.release): keep it for take() with `recycle`. */
  _spare(lease: RecvLease): void {
    if (this.#spareLeases.length < SPARE_LEASES) this.#spareLeases.push(lease);
  }

  /** Plumbing, not API: 'plain' mode: a free buffer id for a RECV about to be submitted, or -1 (then wait()). */
  acquire(): number {
    const id = this.#free.pop();
    return id === undefined ? -1 : id;
  }

  /** Plumbing, not API: 'plain' mode: a buffer taken by acquire() that came back without data (with data, take() it). */
  unacquire(id: number): void {
    this.#free.push(id);
    this.#wakeOne();
  }

  /** Plumbing, not API: Buffer `id` goes back (RecvLease.release; rule 2). */
  give(id: number): void {
    if (this.#state[id] !== LEASED) throw ringioError('ERR_RINGIO_LEASE_RELEASED', `buffer ${id} is not on lease`);
    this.#state[id] = POOL;
    this.leased--;
    if (this.#closed) return;
    if (this.mode === 'plain') {
      this.#free.push(id);
    } else {
      const r = this.#recycle;
      const pending = ++r[0]!;
      r[pending] = id;
      // Every flush hands pending ids back before its own records, so a released buffer rides on the
      // next batch; a flush of its own (a nextTick and a crossing) is asked for only when the pool runs
      // low: an eighth of it pending, half of it out of the kernel's hands, or a reader waiting for one.
      // A 1-connection echo thereby schedules one flush per message, not two.
      const n = this.buffers;
      if (pending > n >>> 3 || n - this.leased - pending < n >>> 1 || this.#starved.length > 0) this.#driver.requestFlush();
    }
    this.#wakeOne();
  }

  /** Plumbing, not API: A buffer the kernel filled with nothing (a 0-byte completion that still named one). */
  giveUnleased(id: number): void {
    if (id >= this.buffers || this.#state[id] !== POOL) return;
    this.#state[id] = LEASED;
    this.leased++;
    this.give(id);
  }

  /** Plumbing, not API: A reader got ENOBUFS (or found no free buffer): `wake` runs when a buffer comes back. */
  wait(wake: () => void): void {
    this.exhausted++;
    // A burst of arrivals finds the pool empty in many readers of one batch: the first grows it, and the
    // others re-arm onto the buffers it added (growing once per batch, not once per reader; a reader
    // that still finds none waits again, and grows it in a later batch).
    // ('plain' mode knows its free buffers exactly: a reader waits here only when there are none.)
    const batch = this.#driver.stats[S_COMPLETIONS]!;
    if ((batch === this.#grewIn && this.mode !== 'plain') || this.#grow()) {
      this.#grewIn = batch;
      // The new buffers are in the ring (or the free list) already: re-arm at once.
      queueMicrotask(wake);
      return;
    }
    if (this.#closed || (this.mode !== 'plain' && this.#recycle[0]! > 0)) {
      // Closed: nothing will come back. Ids given back but not yet flushed (give()): the reader's
      // re-arm goes in a batch that hands them back to the pool before its own record.
      if (!this.#closed) this.#driver.requestFlush();
      queueMicrotask(wake);
      return;
    }
    this.#starved.push(wake);
  }

  #wakeOne(): void {
    const wake = this.#starved.shift();
    // After the current run of completions: the flush that hands the buffer back goes first.
    if (wake !== undefined) queueMicrotask(wake);
  }

  /** Plumbing, not API: */
  stats(): RecvPoolStats {
    return {
      mode: this.mode,
      multishot: this.multishot,
      reason: this.reason,
      bufferSize: this.bufferSize,
      buffers: this.buffers,
      maxBuffers: this.maxBuffers,
      grows: this.grows,
      leased: this.leased,
      exhausted: this.exhausted,
    };
  }
}

/** Plumbing, not API: Validates RecvPoolOptions, naming the bad key. */
export function checkPoolOptions(opts: RecvPoolOptions): { bufferSize: number; buffers: number; maxBuffers: number } {
  if (opts === null || typeof opts !== 'object') throw new TypeError('configureRecvPool(opts): opts must be an object');
  const env = envDefaults();
  const bufferSize = opts.bufferSize ?? env.bufferSize ?? DEFAULT_SIZE;
  const buffers = opts.buffers ?? env.buffers ?? DEFAULT_COUNT;
  if (typeof bufferSize !== 'number' || !Number.isInteger(bufferSize) || bufferSize < 64 || bufferSize > 1 << 20) {
    throw new RangeError(`recv pool bufferSize must be an integer in 64..1048576, got ${String(bufferSize)}`);
  }
  if (typeof buffers !== 'number' || !Number.isInteger(buffers) || buffers < 1 || buffers > 32768 || (buffers & (buffers - 1)) !== 0) {
    throw new RangeError(`recv pool buffers must be a power of two in 1..32768, got ${String(buffers)}`);
  }
  const maxBuffers = opts.maxBuffers ?? env.maxBuffers ?? Math.max(DEFAULT_MAX, buffers);
  if (
    typeof maxBuffers !== 'number' ||
    !Number.isInteger(maxBuffers) ||
    maxBuffers < buffers ||
    maxBuffers > 32768 ||
    (maxBuffers & (maxBuffers - 1)) !== 0
  ) {
    throw new RangeError(`recv pool maxBuffers must be a power of two in buffers (${buffers})..32768, got ${String(maxBuffers)}`);
  }
  return { bufferSize, buffers, maxBuffers };
}

/**
 * RINGIO_RECV_POOL=buffers[:maxBuffers[:bufferSize]] sets the defaults that configureRecvPool's options
 * override (e.g. `1024:1024` for a fixed pool of 1024, `64:4096:4096`), so a program's pool can be tuned,
 * or a benchmark run, without changing its code. Empty fields keep the built-in default.
 */
function envDefaults(): RecvPoolOptions {
  const v = process.env.RINGIO_RECV_POOL;
  if (v === undefined || v === '') return {};
  const parts = v.split(':');
  if (parts.length > 3 || parts.some((p) => p !== '' && !/^\d+$/.test(p))) {
    throw new RangeError(`RINGIO_RECV_POOL must be buffers[:maxBuffers[:bufferSize]] (integers), got ${JSON.stringify(v)}`);
  }
  const num = (i: number): number | undefined => (parts[i] ? Number(parts[i]) : undefined);
  return { buffers: num(0), maxBuffers: num(1), bufferSize: num(2) };
}
