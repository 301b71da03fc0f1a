/**
 * Timers on the driver: a binary min-heap of deadlines, with one TIMEOUT op armed in the kernel for the
 * earliest. 100k sleeps cost 100k heap entries and one kernel timer. Deadlines are on
 * performance.now()'s clock (CLOCK_MONOTONIC, as the kernel's timeouts are).
 */
import type { Driver } from './driver/driver.js';
import { abortError, ringioError } from './errors.js';
import { TimeoutOp } from './ops/timeout.js';

interface Entry {
  /** The sleep's promise, so closeAll can mark it handled before rejecting it. */
  promise: Promise<void> | undefined;
  deadline: number;
  index: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * Resolution: the kernel timer is armed for the head's deadline rounded up to the next whole
 * millisecond, so timers due within the same millisecond share one kernel timeout. A timer never
 * fires early and at most about 1 ms late (plus scheduling noise).
 */
const GRID_MS = 1;

const ignore = (): void => {};

/** Marks a promise's rejection as handled (for whoever awaits it, it still rejects). */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(ignore);
  return p;
}
const MAX_ARM_MS = 2 ** 30;

export class Timers {
  private heap: Entry[] = [];
  private armed: TimeoutOp | undefined;
  private armedDeadline = Infinity;
  private closed = false;
  private readonly driver: Driver;
  /** CLOCK_MONOTONIC (process.hrtime) minus performance.now(), in ms: both count the same clock. */
  private readonly monoOffset: number;

  constructor(driver: Driver) {
    this.driver = driver;
    const [s, ns] = process.hrtime();
    this.monoOffset = s * 1000 + ns / 1e6 - performance.now();
  }

  get size(): number {
    return this.heap.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) return handled(Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down')));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let entry!: Entry;
    const promise = new Promise<void>((resolve, reject) => {
      const e: Entry = { promise: undefined, deadline: performance.now() + ms, index: -1, resolve, reject, signal, onAbort: undefined };
      entry = e;
      if (signal !== undefined) {
        e.onAbort = () => {
          this.remove(e);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', e.onAbort, { once: true });
      }
      this.push(e);
      if (e.index === 0) this.arm();
    });
    entry.promise = promise;
    return promise;
  }

  /**
   * Rejects every pending sleep (runtime shutdown). A sleep nobody awaits (`const t = sleep(1000)`,
   * still pending when main returns) must not become an unhandled rejection that ends the process: the
   * rejection is marked handled first; whoever awaits the sleep still gets it.
   */
  closeAll(): void {
    this.closed = true;
    const entries = this.heap;
    this.heap = [];
    for (const e of entries) {
      this.detach(e);
      if (e.promise !== undefined) handled(e.promise);
      e.reject(ringioError('ERR_RINGIO_CLOSED', 'the runtime shut down before the timer fired'));
    }
  }

  private arm(): void {
    const head = this.heap[0];
    if (head === undefined) return;
    // Far deadlines are armed at most MAX_ARM_MS ahead; the firing re-arms for what is left.
    const at = Math.min(Math.ceil(head.deadline / GRID_MS) * GRID_MS, performance.now() + MAX_ARM_MS);
    if (at >= this.armedDeadline) return;
    if (this.armed !== undefined) this.driver.cancel(this.armed, 'abort');
    const op = new TimeoutOp(at + this.monoOffset, { absolute: true });
    this.armed = op;
    this.armedDeadline = at;
    const fired = (): void => this.onFired(op);
    this.driver.submit(op).then(fired, fired);
  }

  private onFired(op: TimeoutOp): void {
    if (op !== this.armed) return; // superseded by an earlier deadline
    this.armed = undefined;
    this.armedDeadline = Infinity;
    const limit = performance.now();
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.deadline <= limit) {
      const e = this.pop();
      this.detach(e);
      e.resolve();
    }
    if (!this.closed) this.arm();
  }

  private detach(e: Entry): void {
    if (e.signal !== undefined) {
      e.signal.removeEventListener('abort', e.onAbort!);
      e.signal = undefined;
    }
  }

  private push(e: Entry): void {
    e.index = this.heap.length;
    this.heap.push(e);
    this.up(e.index);
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      last.index = 0;
      this.down(0);
    }
    top.index = -1;
    return top;
  }

  private remove(e: Entry): void {
    const i = e.index;
    if (i < 0) return;
    const heap = this.heap;
    const last = heap.pop()!;
    e.index = -1;
    if (i < heap.length) {
      heap[i] = last;
      last.index = i;
      this.up(i);
      this.down(last.index);
    } else if (heap.length === 0) this.disarm();
  }

  /**
   * No timer is left (the last one was aborted): cancels the kernel timer rather than leaving it armed
   * until its deadline, where it would count in opsInFlight (for an hour, after an aborted sleep(3.6e6)).
   */
  private disarm(): void {
    const op = this.armed;
    if (op === undefined) return;
    this.armed = undefined;
    this.armedDeadline = Infinity;
    this.driver.cancel(op, 'abort');
  }

  private up(i: number): void {
    const heap = this.heap;
    const e = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = heap[p]!;
      if (pe.deadline <= e.deadline) break;
      heap[i] = pe;
      pe.index = i;
      i = p;
    }
    heap[i] = e;
    e.index = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const e = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heap[c + 1]!.deadline < heap[c]!.deadline) c++;
      const ce = heap[c]!;
      if (ce.deadline >= e.deadline) break;
      heap[i] = ce;
      ce.index = i;
      i = c;
    }
    heap[i] = e;
    e.index = i;
  }
}
