/**
 * oneshot(): one value, sent once from any thread, received once on any thread.
 */
import { ringioError } from '../errors.js';
import { Cell, H_AUX0, H_AUX1, KIND_ONESHOT, SIDE_RECV, type Popped } from './cell.js';
import { checkTransfer, decode, detach, encode } from './codec.js';
import { registerHandle } from './handles.js';
import { checkWaitOptions, closedError, SharedHandle, type Wait } from './shared.js';

const H_SENT = H_AUX0;
const H_TAKEN = H_AUX1;
const EMPTY = 0;
const CLOSED = 1;
const USED = 2;

const usedError = (): Error => ringioError('ERR_RINGIO_ONESHOT_USED', 'this oneshot has already delivered its value');

/**
 * One value, sent once from any thread and received once on any thread (make it with oneshot()).
 * A second send or receive is ERR_RINGIO_ONESHOT_USED; recv() on a closed oneshot without a value is
 * ERR_RINGIO_CLOSED.
 */
export class Oneshot<T = unknown> extends SharedHandle {
  private readonly recvq: Wait[] = [];

  /** @internal Use oneshot(). */
  constructor(cell: Cell) {
    super(cell);
  }

  /**
   * Sends the value. Never waits. Throws ERR_RINGIO_ONESHOT_USED if a value was already sent,
   * ERR_RINGIO_CLOSED if the oneshot was closed.
   */
  send(value: T, opts?: { transfer?: ArrayBuffer[] }): void {
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw new TypeError('options must be an object');
    const transfer = checkTransfer(opts?.transfer);
    const enc = encode(value);
    const c = this._cell;
    let keys: number[] | null;
    c.lock();
    try {
      if (c.w[H_SENT] !== 0) throw usedError();
      if (c.closed) throw closedError('oneshot');
      if (transfer !== undefined) detach(transfer);
      c.push(enc.tag, enc.bytes);
      c.w[H_SENT] = 1;
      keys = c.takeBits(SIDE_RECV);
    } finally {
      c.unlock();
    }
    this.wakeKeys(keys);
  }

  /**
   * Resolves to the value once it is sent. Rejects with ERR_RINGIO_CLOSED if the oneshot is closed
   * without a value, ERR_RINGIO_ONESHOT_USED if another receiver already took it.
   */
  recv(opts?: { signal?: AbortSignal }): Promise<T> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkWaitOptions(opts);
      if (this.recvq.length === 0) {
        const r = this.takeOnce(-1);
        if (r === CLOSED) return Promise.reject(closedError('oneshot'));
        if (r === USED) return Promise.reject(usedError());
        if (r !== EMPTY) return Promise.resolve(decode(r.tag, r.bytes) as T);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.wait<T>(this.recvq, signal);
  }

  /** Closes it: a receiver still waiting (and any later one) gets ERR_RINGIO_CLOSED, unless a value was sent. */
  close(): void {
    this.closeCell([SIDE_RECV]);
  }

  /** `using os = oneshot()`: close() when the scope ends (it closes the primitive for every thread). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** `await using`: the same as Symbol.dispose. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  private takeOnce(key: number): Popped | typeof EMPTY | typeof CLOSED | typeof USED {
    const c = this._cell;
    c.lock();
    try {
      const r = c.pop();
      if (r !== null) {
        c.w[H_TAKEN] = 1;
        return r;
      }
      if (c.w[H_TAKEN] !== 0) return USED;
      if (c.closed) return CLOSED;
      if (key >= 0) c.setBit(SIDE_RECV, key);
      return EMPTY;
    } finally {
      c.unlock();
    }
  }

  protected pump(key: number): void {
    const q = this.recvq;
    while (q.length > 0) {
      const r = this.takeOnce(key);
      if (r === EMPTY) return;
      if (r === CLOSED) this.fail(q, closedError('oneshot'));
      else if (r === USED) this.fail(q, usedError());
      else {
        try {
          this.settle(q, decode(r.tag, r.bytes));
        } catch (e) {
          this.fail(q, e);
        }
      }
    }
  }

  protected queues(): Wait[][] {
    return [this.recvq];
  }
}

/** A single-use slot for one value from one thread to another; hand it over in start()'s `shared`. */
export function oneshot<T = unknown>(): Oneshot<T> {
  return registerHandle(new Oneshot<T>(Cell.create(KIND_ONESHOT, 1, 256)));
}
