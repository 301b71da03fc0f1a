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
 *  6. A consumer (readLeases) is a reader that never leaves: each arrival goes to its handler
 *     synchronously, from the completion's dispatch (no promise, no await per read). A handler that
 *     returns a promise pauses the consumer until it settles: arrivals queue as for a reader that fell
 *     behind (rule 2) and go to the handler, in order, once it resumes. The consumer ends at end of
 *     stream (resolves), on an error, a throwing handler or a rejected pause (rejects), on abort, or on
 *     close; what arrives after that is queued for the next reader (rule 5).
 *     With `recycle`, the leases that arrive while it runs come from the pool's spare lease objects
 *     (RecvPool.take): one released earlier is handed out again, so a read allocates nothing; a lease is
 *     a spare only once released (by the handler, or by the send queue after its send's completion).
 *     Leases queued for it when it stops go to the next reader as plain leases (never recycled).
 *  7. stop() ends the consumer and disarms (cancels the op in flight), handing back what was queued,
 *     so a stream read through leases can be read with read() again (an HTTP server's upgrade).
 */
import { abortError, cancelError, cancelOp, currentRuntime, ringioError, ringioErrorNoStack, RecvLease, type OpAble, type RecvPool } from '@ringio/runtime';
import { RecvOp } from './ops/recv.js';
import { RecvMultishotOp } from './ops/recv-multi.js';
import { RecvSelectOp, type PooledReadSink } from './ops/recv-select.js';

/** Arrivals in a row that found a reader waiting before a stream reads multishot (rule 1). */
const UPGRADE = 4;

/** A readLease call waiting for bytes; waiters form a FIFO list through `next`. */
interface Waiter {
  resolve: (lease: RecvLease | null) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  next: Waiter | undefined;
}

/** A readLeases call: its handler, its promise's settlers, and whether a returned promise paused it. */
interface Consumer {
  handler: (lease: RecvLease) => unknown;
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  paused: boolean;
  /** Rule 6: its leases are recycled lease objects. */
  recycle: boolean;
  /**
   * The pause's settlers, made on the first pause and kept (not one pair per pause); a handler that never
   * returns a promise never makes them (an idle connection holds two closures less).
   */
  onResume: (() => void) | undefined;
  onFail: ((e: unknown) => void) | undefined;
  /**
   * consumeTo()'s callback, in place of resolve/reject: done(null, false) at the end (end of stream,
   * stop()), done(err, false) on an error, done(null, true) when the stream closes (no error is made).
   */
  done: ConsumerDone | undefined;
}

/** How a consumer started by consumeTo() (SocketStream._readLeasesTo) ends; see Consumer.done. */
export type ConsumerDone = (err: unknown, closed: boolean) => void;

/** The stream's side of a LeaseReader (SocketStream implements it). */
export interface LeaseSource {
  /** Submits a pooled read op on the stream without a promise (tracked for close()); throws when closed. */
  _submitPooled(op: OpAble<unknown>): void;
  /** Submits an op on the stream (tracked for close()): the 'plain' mode's RECV. */
  _runPooled<T>(op: OpAble<T>): Promise<T>;
  /** The stream's fd; throws ERR_RINGIO_CLOSED once closed. */
  _pooledFd(): number;
}

// One executor for every waiter's promise (as the driver does for ops): no closure per read.
let binding: Waiter | undefined;
const bindWaiter = (resolve: (lease: RecvLease | null) => void, reject: (e: unknown) => void): void => {
  binding!.resolve = resolve;
  binding!.reject = reject;
};
const noop = (): void => {};
export const consuming = (): TypeError => new TypeError('a readLeases() consumer is reading this stream: it takes every lease until it ends');

/**
 * The pooled reads of one stream (see the module comment). Its per-stream state is kept small: an idle
 * connection holds this object, one waiter and one op, and nothing else.
 */
export class LeaseReader implements PooledReadSink {
  readonly #src: LeaseSource;
  readonly #pool: RecvPool;
  /** Leases received with nobody waiting, from #head on (made on first use). */
  #queue: RecvLease[] | undefined;
  #head = 0;
  #first: Waiter | undefined;
  #last: Waiter | undefined;
  /** The receive op in flight, if any. */
  #op: OpAble<number> | undefined;
  /** The single-read op, kept and reused once it settled (no op object per read). */
  #single: RecvSelectOp | undefined;
  /** A settled waiter without a signal, reused by the next read (no waiter object per read). */
  #spare: Waiter | undefined;
  #multishot = false;
  /** Arrivals in a row that found a reader waiting (rule 1). */
  #keepingUp = 0;
  #pausing = false;
  #starved = false;
  #eof = false;
  #error: unknown;
  #disposed = false;
  /** The readLeases() consumer, if one is active (rule 6). */
  #consumer: Consumer | undefined;

  constructor(src: LeaseSource) {
    this.#src = src;
    this.#pool = currentRuntime().recvPool;
  }

  /** Whether a readLeases() consumer is active (rule 6). */
  get consuming(): boolean {
    return this.#consumer !== undefined;
  }

  /** Leases queued before a multishot op is paused (rule 2). */
  get #high(): number {
    return Math.max(2, Math.min(4, this.#pool.buffers >>> 3));
  }

  get #queued(): number {
    return this.#queue === undefined ? 0 : this.#queue.length - this.#head;
  }

  /** The next lease, or null at end of stream (rules 2, 4, 5). */
  read(signal: AbortSignal | undefined): Promise<RecvLease | null> {
    if (this.#consumer !== undefined) return Promise.reject(consuming());
    if (this.#queued > 0) return Promise.resolve(RecvLease._plain(this.#shift()));
    if (this.#disposed) return Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the stream is closed'));
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#eof) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let w = this.#spare;
    if (w !== undefined && signal === undefined) this.#spare = undefined;
    else w = { resolve: noop, reject: noop, signal, onAbort: undefined, next: undefined };
    binding = w;
    const p = new Promise<RecvLease | null>(bindWaiter);
    binding = undefined;
    if (signal !== undefined) {
      w.onAbort = () => {
        this.#unlink(w);
        w.reject(abortError(signal));
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    if (this.#last === undefined) this.#first = w;
    else this.#last.next = w;
    this.#last = w;
    this.#arm();
    return p;
  }

  /**
   * Rule 6: every lease goes to `handler` as it arrives, until end of stream (resolves) or an error, a
   * throw, a rejected pause, an abort or close() (rejects). The caller validated handler and signal.
   */
  consume(handler: (lease: RecvLease) => unknown, signal: AbortSignal | undefined, recycle: boolean): Promise<void> {
    if (this.#consumer !== undefined || this.#first !== undefined) return Promise.reject(consuming());
    if (this.#disposed) return Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the stream is closed'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const p = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#start({ handler, resolve, reject, signal, onAbort: undefined, paused: false, recycle, onResume: undefined, onFail: undefined, done: undefined });
    return p;
  }

  /**
   * consume() without a promise, for a consumer that lives as long as its connection (compat's Duplex):
   * `done` says how it ended (Consumer.done), synchronously; a close makes no error. No signal, no
   * recycling. Throws TypeError while another reader reads, ERR_RINGIO_CLOSED once closed.
   */
  consumeTo(handler: (lease: RecvLease) => unknown, done: ConsumerDone): void {
    if (this.#consumer !== undefined || this.#first !== undefined) throw consuming();
    if (this.#disposed) throw ringioError('ERR_RINGIO_CLOSED', 'the stream is closed');
    this.#start({ handler, resolve: noop, reject: noop, signal: undefined, onAbort: undefined, paused: false, recycle: false, onResume: undefined, onFail: undefined, done });
  }

  #start(c: Consumer): void {
    const signal = c.signal;
    if (signal !== undefined) {
      c.onAbort = () => {
        if (this.#consumer === c) this.#endConsumer(c, false, abortError(signal));
      };
      signal.addEventListener('abort', c.onAbort, { once: true });
    }
    this.#consumer = c;
    this.#pump(c);
  }

  /** Rule 6: queued leases to the running consumer, then arm, or end it at end of stream / on an error. */
  #pump(c: Consumer): void {
    while (this.#queued > 0) {
      if (this.#consumer !== c || c.paused) return;
      this.#deliver(c, this.#shift());
    }
    if (this.#consumer !== c || c.paused) return;
    if (this.#disposed) this.#endConsumer(c, false, ringioError('ERR_RINGIO_CLOSED', 'the stream is closed'));
    else if (this.#error !== undefined) this.#endConsumer(c, false, this.#error);
    else if (this.#eof) this.#endConsumer(c, true, undefined);
    else this.#arm();
  }

  /** Rule 6: one lease to the handler; a returned promise pauses the consumer until it settles. */
  #deliver(c: Consumer, lease: RecvLease): void {
    // Queued for a recycling consumer that stopped: only a recycling handler gets a recycled lease.
    if (!c.recycle) RecvLease._plain(lease);
    let r: unknown;
    try {
      r = c.handler(lease);
    } catch (e) {
      this.#endConsumer(c, false, e);
      return;
    }
    if (r !== undefined && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') {
      c.paused = true;
      if (c.onResume === undefined) {
        c.onResume = () => {
          if (this.#consumer !== c) return;
          c.paused = false;
          this.#pump(c);
        };
        c.onFail = (e) => {
          if (this.#consumer === c) this.#endConsumer(c, false, e);
        };
      }
      (r as PromiseLike<unknown>).then(c.onResume, c.onFail);
    }
  }

  #endConsumer(c: Consumer, ok: boolean, err: unknown): void {
    this.#consumer = undefined;
    if (c.onAbort !== undefined) c.signal!.removeEventListener('abort', c.onAbort);
    if (c.done !== undefined) c.done(ok ? null : err, false);
    else if (ok) c.resolve();
    else c.reject(err);
  }

  /**
   * Rule 7: ends the consumer (it resolves) and disarms: the receive op in flight is cancelled, and the
   * returned promise resolves, once none is in flight, with the leases that arrived and were not handed
   * out (the caller owns them, in order). Nothing is armed after that, so read() may take over the stream.
   */
  stop(): Promise<RecvLease[]> {
    const c = this.#consumer;
    if (c !== undefined) this.#endConsumer(c, true, undefined);
    return new Promise<RecvLease[]>((resolve) => {
      this.#stopped = resolve;
      if (this.#op === undefined) this.#stopDone();
      else if (!this.#pausing) {
        this.#pausing = true;
        cancelOp(this.#op, 'abort');
      }
    });
  }

  #stopped: ((leases: RecvLease[]) => void) | undefined;

  #stopDone(): void {
    const done = this.#stopped!;
    this.#stopped = undefined;
    const out: RecvLease[] = [];
    while (this.#queued > 0) out.push(RecvLease._plain(this.#shift()));
    done(out);
  }

  /** Rule 4: the stream is closing. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    while (this.#queued > 0) this.#shift().release();
    const c = this.#consumer;
    if (c !== undefined && c.done !== undefined) {
      // consumeTo(): told without an error (its owner closed the stream, or makes the error itself).
      this.#consumer = undefined;
      c.done(null, true);
      return;
    }
    if (this.#first === undefined && c === undefined) return;
    // Without a stack (it would show only close()'s callers).
    const err = ringioErrorNoStack('ERR_RINGIO_CLOSED', 'the stream was closed while a read waited');
    for (let w = this.#takeWaiter(); w !== undefined; w = this.#takeWaiter()) w.reject(err);
    if (c !== undefined) this.#endConsumer(c, false, err);
  }

  #shift(): RecvLease {
    const q = this.#queue!;
    const lease = q[this.#head]!;
    q[this.#head++] = undefined as unknown as RecvLease;
    if (this.#head === q.length) {
      this.#queue = undefined;
      this.#head = 0;
    }
    return lease;
  }

  /** The first waiter, off the list and its signal. */
  #takeWaiter(): Waiter | undefined {
    const w = this.#first;
    if (w === undefined) return undefined;
    this.#first = w.next;
    if (this.#first === undefined) this.#last = undefined;
    w.next = undefined;
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    return w;
  }

  #unlink(w: Waiter): void {
    let prev: Waiter | undefined;
    for (let x = this.#first; x !== undefined; prev = x, x = x.next) {
      if (x !== w) continue;
      if (prev === undefined) this.#first = x.next;
      else prev.next = x.next;
      if (this.#last === x) this.#last = prev;
      x.next = undefined;
      return;
    }
  }

  /** PooledReadSink: a completion handed buffer `id` with `n` bytes (rule 2). */
  data(id: number, n: number): void {
    if (n <= 0) {
      this.#pool.giveUnleased(id);
      return;
    }
    const c = this.#consumer;
    const lease = this.#pool.take(id, n, c !== undefined && c.recycle);
    if (this.#disposed) {
      lease.release();
      return;
    }
    if (c !== undefined && !c.paused && this.#queued === 0) {
      this.#keepingUp++;
      this.#deliver(c, lease);
      return;
    }
    const w = this.#takeWaiter();
    if (w !== undefined) {
      this.#keepingUp++;
      const resolve = w.resolve;
      if (w.signal === undefined) {
        // Settled and off the list: nothing else holds it (an aborted waiter has a signal).
        w.resolve = noop;
        w.reject = noop;
        this.#spare = w;
      }
      resolve(lease);
      return;
    }
    this.#keepingUp = 0;
    (this.#queue ??= []).push(lease);
    if (this.#multishot && this.#op !== undefined && !this.#pausing && this.#queued >= this.#high) {
      this.#pausing = true;
      cancelOp(this.#op, 'abort');
    }
  }

  /** Rule 1: arm a receive op when a reader waits and none is in flight. */
  #arm(): void {
    if (this.#op !== undefined || this.#starved || this.#disposed) return;
    if (this.#first === undefined && (this.#consumer === undefined || this.#consumer.paused)) return;
    if (this.#eof || this.#error !== undefined) {
      this.#failWaiters();
      return;
    }
    const pool = this.#pool;
    let fd: number;
    try {
      fd = this.#src._pooledFd();
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
    let op: OpAble<number>;
    if (this.#multishot) op = new RecvMultishotOp(fd, this);
    else {
      // The single-read op is reused once settled (it reports its end before the driver lets go of it,
      // and the driver touches it no more after that); a fresh one while it is still in flight.
      const single = this.#single;
      if (single !== undefined && single.fd === fd && single.reuse()) op = single;
      else op = this.#single = new RecvSelectOp(fd, this);
    }
    // Detached: results, errors and confirmed cancellations (AbortError for a pause, ERR_RINGIO_CLOSED)
    // reach end()/fail() from the op itself.
    try {
      this.#src._submitPooled(op);
    } catch (e) {
      this.#error = e;
      this.#failWaiters();
      return;
    }
    this.#op = op;
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
    this.#src._runPooled(op).then(
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
    } else if (this.#stopped === undefined) this.#arm();
    if (this.#stopped !== undefined) this.#stopDone();
  }

  /** PooledReadSink: the op's cancellation was confirmed ('abort': a pause or stop(); 'closed': a close). */
  cancelled(op: OpAble<number>, reason: 'abort' | 'closed'): void {
    if (reason === 'closed' && this.#disposed && this.#stopped === undefined) {
      // Rule 4: the stream's own close() cancelled it and told its readers already: no error to make.
      if (this.#op === op) {
        this.#op = undefined;
        this.#pausing = false;
      }
      return;
    }
    this.fail(op, cancelError(reason, undefined));
  }

  /** PooledReadSink: the op in flight failed (or its cancellation was confirmed: cancelled()). */
  fail(op: OpAble<number>, e: Error): void {
    if (this.#op !== op) return;
    this.#op = undefined;
    const code = (e as { code?: unknown } | null)?.code;
    if (this.#stopped !== undefined) {
      // Rule 7: disarmed (the cancel we asked for, or an error the next read reports).
      this.#pausing = false;
      if (e?.name !== 'AbortError' && !this.#disposed) this.#error = e;
      this.#stopDone();
      return;
    }
    if (this.#pausing && e?.name === 'AbortError') {
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
    if (this.#queued > 0) return;
    const c = this.#consumer;
    if (c !== undefined && !c.paused) this.#endConsumer(c, this.#error === undefined, this.#error);
    for (let w = this.#takeWaiter(); w !== undefined; w = this.#takeWaiter()) {
      if (this.#error !== undefined) w.reject(this.#error);
      else w.resolve(null);
    }
  }
}
