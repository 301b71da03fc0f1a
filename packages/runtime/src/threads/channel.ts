/**
 * channel(capacity): a bounded multi-producer, multi-consumer queue that any thread of the process
 * can send to and receive from. Values are structured-cloned (codec.ts); each sender's values arrive
 * in the order it sent them.
 */
import { Cell, KIND_CHANNEL, SIDE_RECV, SIDE_SEND, type Popped } from './cell.js';
import { checkTransfer, decode, detach, encode, type Encoded } from './codec.js';
import { registerHandle } from './handles.js';
import { checkWaitOptions, closedError, SharedHandle, type Wait } from './shared.js';

const OK = 0;
const FULL = 1;
const CLOSED = 2;
const RESOLVED = Promise.resolve();
/** What the async iterator's receives resolve to once the channel is closed and drained. */
const DONE: unique symbol = Symbol('ringio.channel.done');

/** Options of Channel#send. */
export interface SendOptions {
  /** ArrayBuffers to move: detached here when send() is called, as postMessage does. */
  transfer?: ArrayBuffer[];
  /** Aborting it gives up waiting for room: send() rejects AbortError and nothing is queued. */
  signal?: AbortSignal;
}

/** Options of recv() on a channel or oneshot, and of Watch#changed. */
export interface RecvOptions {
  /** Aborting it gives up waiting: the call rejects AbortError and no value is taken. */
  signal?: AbortSignal;
}

/**
 * A bounded multi-producer, multi-consumer queue that any thread of the process can send to and
 * receive from (make it with channel(capacity), hand it over in start()'s `shared`). Values are
 * structured-cloned; each sender's values arrive in the order it sent them. recv() resolves
 * `undefined` once the channel is closed and drained; `for await` ends there. `using ch = channel()`
 * closes it at the end of the scope.
 */
export class Channel<T = unknown> extends SharedHandle {
  private readonly recvq: Wait[] = [];
  private readonly sendq: Wait[] = [];

  /** @internal Use channel(). */
  constructor(cell: Cell) {
    super(cell);
  }

  /** How many values are queued now (a snapshot: other threads may change it at once). */
  get length(): number {
    const c = this._cell;
    c.lock();
    const n = c.count;
    c.unlock();
    return n;
  }

  /** How many values the channel holds before send() waits. */
  get capacity(): number {
    return this._cell.capacity;
  }

  /** True once close() was called, on any thread. */
  get closed(): boolean {
    const c = this._cell;
    c.lock();
    const closed = c.closed;
    c.unlock();
    return closed;
  }

  /**
   * Sends a value; resolves once it is in the channel. Waits while the channel is full. Rejects with
   * ERR_RINGIO_CLOSED once the channel is closed, ERR_RINGIO_NOT_CLONEABLE for a value that cannot
   * be cloned (then nothing is sent).
   */
  send(value: T, opts?: SendOptions): Promise<void> {
    let enc: Encoded;
    let signal: AbortSignal | undefined;
    try {
      signal = checkWaitOptions(opts);
      const transfer = checkTransfer(opts?.transfer);
      enc = encode(value);
      if (transfer !== undefined) detach(transfer);
      if (this.sendq.length === 0) {
        const r = this.sendOnce(enc, -1);
        if (r === OK) return RESOLVED;
        if (r === CLOSED) return Promise.reject(closedError('channel'));
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.wait<void>(this.sendq, signal, enc);
  }

  /**
   * Sends without waiting: true if the value is now in the channel, false if it is full. Throws
   * ERR_RINGIO_CLOSED if the channel is closed. Works on any thread, with or without a runtime.
   */
  trySend(value: T): boolean {
    const enc = encode(value);
    if (this.sendq.length > 0) return false;
    const r = this.sendOnce(enc, -1);
    if (r === CLOSED) throw closedError('channel');
    return r === OK;
  }

  /** Resolves to the next value, or to undefined once the channel is closed and drained. */
  recv(opts?: RecvOptions): Promise<T | undefined> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkWaitOptions(opts);
      if (this.recvq.length === 0) {
        const r = this.tryRecvRaw(-1);
        if (r === CLOSED) return Promise.resolve(undefined);
        if (r !== null) return Promise.resolve(decode(r.tag, r.bytes) as T);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.wait<T | undefined>(this.recvq, signal);
  }

  /** Takes a value without waiting: `{ value }`, or undefined if there is none now. */
  tryRecv(): { value: T } | undefined {
    if (this.recvq.length > 0) return undefined;
    const r = this.tryRecvRaw(-1);
    if (r === null || r === CLOSED) return undefined;
    return { value: decode(r.tag, r.bytes) as T };
  }

  /**
   * Closes the channel for every thread: pending and later sends reject with ERR_RINGIO_CLOSED;
   * receivers get the values still queued, then undefined.
   */
  close(): void {
    this.closeCell([SIDE_RECV, SIDE_SEND]);
  }

  /** `using ch = channel()`: close() when the scope ends (it closes the primitive for every thread). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** `await using`: the same as Symbol.dispose. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** Yields every value until the channel is closed and drained (sent undefined values included). */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      const v = await this.recvOrDone();
      if (v === DONE) return;
      yield v as T;
    }
  }

  /** recv(), but a closed and drained channel gives DONE, so a sent undefined stays a value. */
  private recvOrDone(): Promise<T | typeof DONE> {
    if (this.recvq.length === 0) {
      try {
        const r = this.tryRecvRaw(-1);
        if (r === CLOSED) return Promise.resolve(DONE);
        if (r !== null) return Promise.resolve(decode(r.tag, r.bytes) as T);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.wait<T | typeof DONE>(this.recvq, undefined, DONE);
  }

  /** One attempt: pushes, or registers `key` on the send side when full (cell.ts rule 2). */
  private sendOnce(enc: Encoded, key: number): number {
    const c = this._cell;
    let keys: number[] | null = null;
    let r = OK;
    c.lock();
    try {
      if (c.closed) {
        r = CLOSED;
      } else if (c.push(enc.tag, enc.bytes)) {
        keys = c.takeBits(SIDE_RECV);
      } else {
        if (key >= 0) c.setBit(SIDE_SEND, key);
        r = FULL;
      }
    } finally {
      c.unlock();
    }
    this.wakeKeys(keys);
    return r;
  }

  private tryRecvRaw(key: number): Popped | null | typeof CLOSED {
    const c = this._cell;
    c.lock();
    const r = c.pop();
    if (r !== null) {
      const keys = c.takeBits(SIDE_SEND);
      c.unlock();
      this.wakeKeys(keys);
      return r;
    }
    const closed = c.closed;
    if (!closed && key >= 0) c.setBit(SIDE_RECV, key);
    c.unlock();
    return closed ? CLOSED : null;
  }

  protected pump(key: number): void {
    const sq = this.sendq;
    while (sq.length > 0) {
      let r: number;
      try {
        r = this.sendOnce(sq[0]!.data as Encoded, key);
      } catch (e) {
        this.fail(sq, e);
        continue;
      }
      if (r === FULL) break;
      if (r === CLOSED) {
        while (sq.length > 0) this.fail(sq, closedError('channel'));
        break;
      }
      this.settle(sq, undefined);
    }
    const rq = this.recvq;
    while (rq.length > 0) {
      const r = this.tryRecvRaw(key);
      if (r === null) break;
      if (r === CLOSED) {
        while (rq.length > 0) this.settle(rq, rq[0]!.data === DONE ? DONE : undefined);
        break;
      }
      let v: unknown;
      try {
        v = decode(r.tag, r.bytes);
      } catch (e) {
        this.fail(rq, e);
        continue;
      }
      this.settle(rq, v);
    }
  }

  protected queues(): Wait[][] {
    return [this.recvq, this.sendq];
  }
}

/** A bounded channel any thread can use; put it in start()'s `shared` to hand it to other threads. */
export function channel<T = unknown>(capacity = 1024): Channel<T> {
  if (typeof capacity !== 'number') throw new TypeError('capacity must be a number');
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 0x7fffffff) {
    throw new RangeError(`capacity must be an integer >= 1, got ${capacity}`);
  }
  // Start small: the ring doubles as needed (a growable buffer reserves address space, not memory).
  const ring = Math.min(64 * 1024, Math.max(256, 2 ** Math.ceil(Math.log2(capacity * 32))));
  return registerHandle(new Channel<T>(Cell.create(KIND_CHANNEL, capacity, ring)));
}
