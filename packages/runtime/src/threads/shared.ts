/**
 * The per-thread side of a cross-thread primitive: this thread's queues of waiting tasks, and the
 * link between the shared cell and this thread's doorbell.
 *
 * Rules:
 *  1. A thread has one handle per cell (share.ts revives each cell once per thread), so one set of
 *     queues; tasks of the same thread wait in FIFO order, and a new call takes the fast path only
 *     when no task of this thread is already waiting on that side.
 *  2. pump() retries the queued waiters in order against the shared state. The attempt that finds it
 *     must wait registers this thread's doorbell bit in the same critical section (cell.ts rule 2).
 *  3. A wait is counted on the doorbell from the moment it is queued until it settles, so the thread's
 *     loop stays alive while it awaits another thread and no longer.
 */
import { abortError, ringioError } from '../errors.js';
import { currentRuntime } from '../context.js';
import { H_CLOSED, type Cell } from './cell.js';
import { type Doorbell, ring } from './doorbell.js';

export interface Wait {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Whatever the waiting call needs to retry (a send's encoded message). */
  data: unknown;
}

export function checkWaitOptions(opts: unknown): AbortSignal | undefined {
  if (opts === undefined) return undefined;
  if (opts === null || typeof opts !== 'object') throw new TypeError('options must be an object');
  const signal = (opts as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return signal as AbortSignal | undefined;
}

export abstract class SharedHandle {
  /** @internal */
  readonly _cell: Cell;
  /** The doorbell this thread's waits are registered with (the runtime that was current then). */
  protected bell: Doorbell | undefined;
  private waits = 0;
  private scheduled = false;

  protected constructor(cell: Cell) {
    this._cell = cell;
  }

  /** Retries this thread's waiters against the shared state (rule 2). */
  protected abstract pump(key: number): void;

  /** Every queue of waiters this handle has, for failAll. */
  protected abstract queues(): Wait[][];

  /** Queues a wait on `queue`, registers it with this thread's doorbell, and pumps once. */
  protected wait<T>(queue: Wait[], signal: AbortSignal | undefined, data?: unknown): Promise<T> {
    let bell: Doorbell;
    try {
      bell = currentRuntime().doorbell;
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.bell !== bell) {
      // Waits of an earlier runtime on this thread were failed when it closed (doorbell rule 3).
      this.bell = bell;
      this.waits = 0;
    }
    return new Promise<T>((resolve, reject) => {
      const w: Wait = { resolve: resolve as (v: unknown) => void, reject, signal, onAbort: undefined, data };
      queue.push(w);
      if (this.waits++ === 0) bell.attach(this._cell.uid, this);
      bell.waitStarted();
      if (signal !== undefined) {
        w.onAbort = () => {
          const i = queue.indexOf(w);
          if (i < 0) return;
          queue.splice(i, 1);
          this.end(w);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.pump(bell.key);
    });
  }

  private end(w: Wait): void {
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    const bell = this.bell!;
    bell.waitEnded();
    if (--this.waits === 0) bell.detach(this._cell.uid);
  }

  /** Resolves the oldest waiter of `queue`. */
  protected settle(queue: Wait[], value: unknown): void {
    const w = queue.shift()!;
    this.end(w);
    w.resolve(value);
  }

  /** Rejects the oldest waiter of `queue`. */
  protected fail(queue: Wait[], err: unknown): void {
    const w = queue.shift()!;
    this.end(w);
    w.reject(err);
  }

  /** This thread's doorbell key while it has waiters here, else -1 (no bit to register). */
  protected get key(): number {
    return this.waits > 0 && this.bell !== undefined && !this.bell.isClosed ? this.bell.key : -1;
  }

  /** Rings the doorbells taken from a bitmap (after unlocking). Our own bit becomes a microtask. */
  protected wakeKeys(keys: number[] | null): void {
    if (keys === null) return;
    const mine = this.key;
    const uid = this._cell.uid;
    for (const k of keys) {
      if (k === mine) this.scheduleLocal();
      else ring(k, uid);
    }
  }

  /**
   * Marks the cell closed for every thread and wakes everyone waiting on it (`sides`), this thread's
   * waiters included; their pump then sees the closed state.
   */
  protected closeCell(sides: number[]): void {
    const c = this._cell;
    const woken: (number[] | null)[] = [];
    c.lock();
    c.w[H_CLOSED] = 1;
    for (const side of sides) woken.push(c.takeBits(side));
    c.unlock();
    for (const keys of woken) this.wakeKeys(keys);
    this.scheduleLocal();
  }

  protected scheduleLocal(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.onWake();
    });
  }

  /** @internal The doorbell routed a token here. */
  onWake(): void {
    const key = this.key;
    if (key >= 0) this.pump(key);
  }

  /** @internal The runtime is closing. */
  failAll(err: Error): void {
    for (const q of this.queues()) while (q.length > 0) this.fail(q, err);
  }
}

export const closedError = (what: string): Error => ringioError('ERR_RINGIO_CLOSED', `the ${what} is closed`);
