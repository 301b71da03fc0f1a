/**
 * Queued sends of one stream (SocketStream.send): the caller hands bytes over and goes on without a
 * promise; the queue sends them in order, one SEND in flight at a time, and says through send()'s
 * boolean when to wait (flush()). Made for request/response loops, where a promise and an await per
 * write are most of what a message allocates (docs/design/net.md).
 *
 * Rules:
 *  1. One op in flight per stream, windows in FIFO order behind it: two SENDs in flight on a stream
 *     socket may go out in either order (a short send resubmits), so the next window is submitted from
 *     the previous one's completion, in the same dispatch (no promise hop).
 *  2. SAFETY: a window's buffer is held (by the queue, then by its op) until the op's final completion;
 *     a lease is released to its pool only then, so the kernel never reads memory given back or freed.
 *  3. `bytes` counts what is queued or in flight; send() answers `bytes < highWaterMark` (Node's
 *     writable.write() contract). flush() resolves once `bytes` is 0.
 *  4. The first error (a failed send, or the runtime going away) sticks: queued windows are dropped
 *     (their leases released), waiting flush() calls reject with it, and every later send() throws it
 *     and flush() rejects with it. It is also reported once to the next read or close() of the stream
 *     if neither send() nor flush() has reported it yet (unreported()).
 *  5. close() (dispose) drops what has not gone out (releasing leases) and rejects waiting flush()
 *     calls ERR_RINGIO_CLOSED; the stream's close cancels the op in flight, whose lease is released
 *     when the kernel confirms.
 *  6. A queue that has sent everything, with no error and no flush() waiting, leaves its stream
 *     (`_sendIdle`) for this thread's spare list, and the stream's next send() takes one from there: an
 *     idle connection holds no queue, and a busy one allocates none per message.
 */
import { ringioError, type OpAble, type RecvLease } from '@ringio/runtime';
import { SendQueuedOp, type SendSink } from './ops/send-queued.js';

/** The stream's side of a SendQueue (SocketStream implements it). */
export interface SendSource {
  /** Submits an op on the stream without a promise (tracked for close()); throws when closed. */
  _submitPooled(op: OpAble<unknown>): void;
  /** The stream's fd; throws ERR_RINGIO_CLOSED once closed. */
  _pooledFd(): number;
  /** Rule 6: the queue is empty and leaves the stream; the stream forgets it. */
  _sendIdle(q: SendQueue): void;
}

/** Rule 6: this thread's idle queues (module state is per thread), bounded. */
const spare: SendQueue[] = [];
const SPARE_MAX = 1024;

/** The slots of a queue that never grew (see SendQueue's ring): empty, shared, never written. */
const NO_SLOTS: never[] = [];

interface Flusher {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class SendQueue implements SendSink {
  #src: SendSource | undefined;
  /** The op in flight and the lease its window came from. */
  #op: SendQueuedOp | undefined;
  #opLease: RecvLease | undefined;
  // Windows waiting behind the op in flight: a ring of parallel slots (no object per window), grown by
  // doubling, made on first use. Until then all four are the one shared empty array (never written:
  // every write follows #enqueue's growth), so a stream whose sends never queue holds no arrays.
  #bufs: (Uint8Array | undefined)[] = NO_SLOTS;
  #offs: number[] = NO_SLOTS;
  #lens: number[] = NO_SLOTS;
  #leases: (RecvLease | undefined)[] = NO_SLOTS;
  #head = 0;
  #count = 0;
  /** Bytes queued or in flight (rule 3). */
  bytes = 0;
  #error: Error | undefined;
  #reported = false;
  #flushers: Flusher[] | undefined;
  #disposed = false;

  private constructor(src: SendSource) {
    this.#src = src;
  }

  /** A queue for `src`: an idle one from this thread's spare list (rule 6), or a new one. */
  static take(src: SendSource): SendQueue {
    const q = spare.pop();
    if (q === undefined) return new SendQueue(src);
    q.#src = src;
    return q;
  }

  /**
   * Queues buf[offset, offset + length) (validated by the caller), owning `lease` from here on: it is
   * released once its window is sent or dropped, or at once if this throws. Throws the sticky error
   * (rule 4) or ERR_RINGIO_CLOSED. Returns the bytes queued or in flight.
   */
  push(buf: Uint8Array, offset: number, length: number, lease: RecvLease | undefined): number {
    if (this.#error !== undefined || this.#disposed) {
      lease?.release();
      if (this.#error === undefined) throw ringioError('ERR_RINGIO_CLOSED', 'the stream is closed');
      this.#reported = true;
      throw this.#error;
    }
    if (length === 0) {
      lease?.release();
      return this.bytes;
    }
    if (this.#op === undefined) {
      try {
        this.#submit(buf, offset, length, lease);
      } catch (e) {
        lease?.release();
        throw e;
      }
    } else {
      this.#enqueue(buf, offset, length, lease);
    }
    return (this.bytes += length);
  }

  /** Resolves once everything queued is sent; rejects with the sticky error (rule 4) or ERR_RINGIO_CLOSED. */
  flush(): Promise<void> {
    if (this.#error !== undefined) {
      this.#reported = true;
      return Promise.reject(this.#error);
    }
    if (this.#disposed) return Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the stream is closed'));
    if (this.#op === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => (this.#flushers ??= []).push({ resolve, reject }));
  }

  /** The sticky error if nothing reported it yet, now marked reported (rule 4); else undefined. */
  unreported(): Error | undefined {
    if (this.#error === undefined || this.#reported) return undefined;
    this.#reported = true;
    return this.#error;
  }

  /** Rule 5: the stream is closing. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#drop();
    this.#settleFlushers(ringioError('ERR_RINGIO_CLOSED', 'the stream was closed before its queued sends went out'));
  }

  /** SendSink: the op in flight sent its whole window (rule 1: the next one goes now). */
  sent(op: SendQueuedOp): void {
    if (this.#settled(op)) return;
    if (this.#count > 0) {
      const i = this.#head;
      const buf = this.#bufs[i]!;
      const next = this.#leases[i];
      const len = this.#lens[i]!;
      this.#shift();
      try {
        this.#submit(buf, this.#offs[i]!, len, next);
      } catch (e) {
        next?.release();
        this.bytes -= len;
        this.#fail(e as Error);
      }
      return;
    }
    // Most queues have no flush() waiting: no call then.
    if (this.#flushers !== undefined) this.#settleFlushers(undefined);
    this.#leave();
  }

  /** Rule 6: empty, no error, not disposed: leave the stream for the spare list. */
  #leave(): void {
    const src = this.#src;
    if (src === undefined || this.#error !== undefined || this.#disposed || this.#op !== undefined || this.#count > 0) return;
    this.#src = undefined;
    this.#head = 0;
    this.#reported = false;
    src._sendIdle(this);
    if (spare.length < SPARE_MAX) spare.push(this);
  }

  /** SendSink: the op in flight failed, or its cancellation was confirmed (rule 4). */
  failed(op: SendQueuedOp, err: Error): void {
    if (!this.#settled(op)) this.#fail(err);
  }

  /** The op in flight is done (rule 2: its lease goes back only now); true if the queue is disposed. */
  #settled(op: SendQueuedOp): boolean {
    const lease = this.#opLease;
    this.bytes -= op.length;
    this.#op = undefined;
    this.#opLease = undefined;
    op.release();
    lease?.release();
    return this.#disposed;
  }

  #submit(buf: Uint8Array, offset: number, length: number, lease: RecvLease | undefined): void {
    const src = this.#src!;
    const op = SendQueuedOp.take(src._pooledFd(), buf, offset, length, this, lease === undefined ? -1 : lease._regId());
    try {
      src._submitPooled(op);
    } catch (e) {
      op.release();
      throw e;
    }
    this.#op = op;
    this.#opLease = lease;
  }

  #enqueue(buf: Uint8Array, offset: number, length: number, lease: RecvLease | undefined): void {
    let cap = this.#bufs.length;
    if (this.#count === cap) {
      // Grow to the next power of two, unrolling the ring from #head.
      const n = cap === 0 ? 4 : cap * 2;
      const bufs = new Array<Uint8Array | undefined>(n);
      const offs = new Array<number>(n);
      const lens = new Array<number>(n);
      const leases = new Array<RecvLease | undefined>(n);
      for (let k = 0; k < this.#count; k++) {
        const j = (this.#head + k) & (cap - 1);
        bufs[k] = this.#bufs[j];
        offs[k] = this.#offs[j]!;
        lens[k] = this.#lens[j]!;
        leases[k] = this.#leases[j];
      }
      this.#bufs = bufs;
      this.#offs = offs;
      this.#lens = lens;
      this.#leases = leases;
      this.#head = 0;
      cap = n;
    }
    const i = (this.#head + this.#count) & (cap - 1);
    this.#bufs[i] = buf;
    this.#offs[i] = offset;
    this.#lens[i] = length;
    this.#leases[i] = lease;
    this.#count++;
  }

  /** Drops the queued windows (not the one in flight), releasing their leases. */
  #drop(): void {
    while (this.#count > 0) {
      const i = this.#head;
      this.bytes -= this.#lens[i]!;
      const lease = this.#leases[i];
      this.#shift();
      lease?.release();
    }
  }

  /** Takes the head window off the ring, clearing the slots that hold objects. */
  #shift(): void {
    const i = this.#head;
    this.#bufs[i] = undefined;
    this.#leases[i] = undefined;
    this.#head = (i + 1) & (this.#bufs.length - 1);
    this.#count--;
  }

  #fail(err: Error): void {
    this.#error ??= err;
    this.#drop();
    if (this.#flushers !== undefined) this.#reported = true;
    this.#settleFlushers(this.#error);
  }

  #settleFlushers(err: Error | undefined): void {
    const fs = this.#flushers;
    if (fs === undefined) return;
    this.#flushers = undefined;
    for (const f of fs) {
      if (err === undefined) f.resolve();
      else f.reject(err);
    }
  }
}
