/**
 * Pooled reads of one stream (SocketStream.readLease): the socket holds no buffer while it waits; a
 * buffer is taken from the runtime's pool when bytes arrive and leased to the caller
 * (docs/design/net.md).
 *
 * Rules:
 *  1. A receive op is armed only while a reader waits. A stream starts with single reads (one buffer at
 *     most per arm) and moves to multishot once its reader keeps up (UPGRADE arrivals in a row found a
 *     reader waiting); a multishot op then stays armed, so a read loop costs one submission, not one per
 *     read. A multishot op fills buffers for as long as bytes keep arriving (the kernel does not stop
 *     between two of our reaps), so it is kept for readers that take what it gives.
 *  2. Bytes that arrive with nobody waiting are queued as leases, in order; each lease goes to exactly
 *     one reader (the queue's head, or the first waiter). When 4 leases wait (fewer in a small pool),
 *     the multishot op is cancelled (a pause) and the stream goes back to single reads, so a reader
 *     that falls behind holds a bounded number of buffers; the next waiting reader re-arms.
 *  3. ENOBUFS (the pool is empty) loses nothing: the bytes stay in the socket, the reader waits for a
 *     buffer to come back (RecvPool.wait) and re-arms. EINVAL from a multishot op turns multishot off
 *     for the pool and re-arms with single reads.
 *  4. End of stream and errors come after the queued leases. close() (dispose) gives queued leases
 *     back, rejects the waiting readers ERR_RINGIO_CLOSED, and gives back anything that still arrives.
 *  5. An aborted readLease rejects AbortError at once and leaves the op armed: bytes that arrive later
 *     are queued for the next reader, so aborting never loses data.
 */
import { abortError, cancelOp, currentRuntime, ringioError, RecvLease, type OpAble, type RecvPool } from '@ringio/runtime';
import { RecvOp } from './ops/recv.js';
import { RecvMultishotOp } from './ops/recv-multi.js';
import { RecvSelectOp, type PooledReadSink } from './ops/recv-select.js';

/** Arrivals in a row that found a reader waiting before a stream reads multishot (rule 1). */
const UPGRADE = 4;

interface Waiter {
  resolve: (lease: RecvLease | null) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** The stream's side of a LeaseReader. */
export interface LeaseSource {
  /** Submits an op on the stream (tracked for close()). */
  submit<T>(op: OpAble<T>): Promise<T>;
  /** The stream's fd; throws ERR_RINGIO_CLOSED once closed. */
  fd(): number;
}

export class LeaseReader implements PooledReadSink {
  readonly #src: LeaseSource;
  readonly #pool: RecvPool;
  readonly #high: number;
  readonly #queue: RecvLease[] = [];
  #head = 0;
  readonly #waiters: Waiter[] = [];
  /** The receive op in flight, if any. */
  #op: OpAble<number> | undefined;
  #multishot = false;
  /** Arrivals in a row that found a reader waiting (rule 1). */
  #keepingUp = 0;
  #pausing = false;
  #starved = false;
  #eof = false;
  #error: unknown;
  #disposed = false;

  constructor(src: LeaseSource) {
    this.#src = src;
    this.#pool = currentRuntime().recvPool;
    this.#high = Math.max(2, Math.min(4, this.#pool.buffers >>> 3));
  }

  /** The next lease, or null at end of stream (rules 2, 4, 5). */
  read(signal: AbortSignal | undefined): Promise<RecvLease | null> {
    if (this.#head < this.#queue.length) return Promise.resolve(this.#shift());
    if (this.#disposed) return Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the stream is closed'));
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#eof) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<RecvLease | null>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.push(w);
      this.#arm();
    });
  }

  /** Rule 4: the stream is closing. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    while (this.#head < this.#queue.length) this.#shift().release();
    const err = ringioError('ERR_RINGIO_CLOSED', 'the stream was closed while a read waited');
    for (const w of this.#waiters.splice(0)) this.#settle(w).reject(err);
  }

  #shift(): RecvLease {
    const lease = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined as unknown as RecvLease;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    return lease;
  }

  #settle(w: Waiter): Waiter {
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    return w;
  }

  /** PooledReadSink: a completion handed buffer `id` with `n` bytes (rule 2). */
  data(id: number, n: number): void {
    if (n <= 0) {
      this.#pool.giveUnleased(id);
      return;
    }
    const lease = this.#pool.take(id, n);
    if (this.#disposed) {
      lease.release();
      return;
    }
    const w = this.#waiters.shift();
    if (w !== undefined) {
      this.#keepingUp++;
      this.#settle(w).resolve(lease);
      return;
    }
    this.#keepingUp = 0;
    this.#queue.push(lease);
    if (this.#multishot && this.#op !== undefined && !this.#pausing && this.#queue.length - this.#head >= this.#high) {
      this.#pausing = true;
      cancelOp(this.#op, 'abort');
    }
  }

  /** Rule 1: arm a receive op when a reader waits and none is in flight. */
  #arm(): void {
    if (this.#op !== undefined || this.#starved || this.#disposed || this.#waiters.length === 0) return;
    if (this.#eof || this.#error !== undefined) {
      this.#failWaiters();
      return;
    }
    const pool = this.#pool;
    let fd: number;
    try {
      fd = this.#src.fd();
    } catch (e) {
      this.#error = e;
      this.#failWaiters();
      return;
    }
    if (pool.mode === 'plain') {
      this.#armPlain(fd);
      return;
    }
    this.#multishot = pool.multishot && this.#keepingUp >= UPGRADE;
    const op = this.#multishot ? new RecvMultishotOp(fd, this) : new RecvSelectOp(fd, this);
    this.#op = op;
    // Results and errno errors reach end()/fail() from the op itself; the promise only adds the
    // cancellations the kernel confirmed (AbortError for a pause, ERR_RINGIO_CLOSED).
    this.#src.submit(op).then(undefined, (e: Error) => this.fail(op, e));
  }

  /** 'plain' mode: a buffer is taken now, and read into with a plain RECV. */
  #armPlain(fd: number): void {
    const pool = this.#pool;
    const id = pool.acquire();
    if (id < 0) {
      this.#starve();
      return;
    }
    const view = pool.view(id);
    const op = new RecvOp(fd, view, 0, view.length);
    this.#op = op as unknown as OpAble<number>;
    this.#src.submit(op).then(
      ([n]) => {
        if (n > 0) this.data(id, n);
        else pool.unacquire(id);
        this.end(op as unknown as OpAble<number>, n);
      },
      (e: Error) => {
        pool.unacquire(id);
        this.fail(op as unknown as OpAble<number>, e);
      },
    );
  }

  /** PooledReadSink: the op in flight ended with `res` bytes (0: end of stream). */
  end(op: OpAble<number>, res: number): void {
    if (this.#op !== op) return;
    this.#op = undefined;
    this.#pausing = false;
    if (res === 0) {
      this.#eof = true;
      this.#failWaiters();
      return;
    }
    this.#arm();
  }

  /** PooledReadSink: the op in flight failed (or was cancelled). */
  fail(op: OpAble<number>, e: Error): void {
    if (this.#op !== op) return;
    this.#op = undefined;
    const code = (e as { code?: unknown } | null)?.code;
    if (this.#pausing && (e as { name?: unknown } | null)?.name === 'AbortError') {
      // Our own pause (rule 2): the next waiting reader re-arms.
      this.#pausing = false;
      this.#arm();
      return;
    }
    this.#pausing = false;
    if (code === 'ENOBUFS') {
      this.#starve();
      return;
    }
    if (code === 'EINVAL' && this.#multishot) {
      this.#pool.multishot = false;
      this.#pool.reason = 'the kernel answered EINVAL to multishot RECV';
      this.#arm();
      return;
    }
    if (this.#disposed) return;
    this.#error = e;
    this.#failWaiters();
  }

  /** Rule 3: wait for a buffer to come back, then re-arm. */
  #starve(): void {
    this.#starved = true;
    this.#pool.wait(() => {
      this.#starved = false;
      if (this.#pool.closed && !this.#disposed) {
        this.#error ??= ringioError('ERR_RINGIO_CLOSED', 'the runtime shut down while a read waited for a buffer');
        this.#failWaiters();
        return;
      }
      this.#arm();
    });
  }

  /** End of stream or an error, once the queue is empty: every waiter gets it. */
  #failWaiters(): void {
    if (this.#head < this.#queue.length) return;
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) {
      this.#settle(w);
      if (this.#error !== undefined) w.reject(this.#error);
      else w.resolve(null);
    }
  }
}
