/**
 * ConcurrencyLimit: at most `max` calls run at once; a call over the limit rejects at once with
 * ERR_RINGIO_OVERLOADED (a proxy must not queue connections it cannot serve). The count lives in a
 * Permits object: per thread by default (carried over a rebuild by make(old), so calls started on the
 * old chain still count), or SharedPermits, one Int32 in shared memory that every thread's limit for
 * the same key counts in (a process-wide limit).
 */
import { ringioError } from '@ringio/runtime';
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

/** A running count: this thread's (Permits) or every thread's (SharedPermits). */
export interface PermitCounter {
  /** Takes a permit if fewer than `max` are taken; returns whether it did. */
  tryAcquire(max: number): boolean;
  /** Gives a permit back. */
  release(): void;
  /** Permits taken now. */
  readonly running: number;
}

/** The running count of one thread, shared by a limit and the limits that replace it. */
export class Permits implements PermitCounter {
  /** Permits taken now (calls running). */
  running = 0;

  tryAcquire(max: number): boolean {
    if (this.running >= max) return false;
    this.running++;
    return true;
  }

  /** Gives a permit back. */
  release(): void {
    this.running--;
  }
}

/**
 * A running count in `cells[index]` of an Int32Array over a SharedArrayBuffer that every thread holds
 * (hand it over in start()'s `shared`): limits on several threads that use the same cell share one
 * budget. Atomics only: no lock, no wait.
 */
export class SharedPermits implements PermitCounter {
  constructor(
    /** The shared counts (an Int32Array over a SharedArrayBuffer). */
    readonly cells: Int32Array,
    /** Which cell this counter uses. */
    readonly index: number,
  ) {
    if (!(cells.buffer instanceof SharedArrayBuffer)) throw new TypeError('cells must be an Int32Array over a SharedArrayBuffer');
    if (!Number.isInteger(index) || index < 0 || index >= cells.length) throw new RangeError(`index must be an integer in 0..${cells.length - 1}, got ${String(index)}`);
  }

  /** Permits taken now, over every thread that uses this cell. */
  get running(): number {
    return Atomics.load(this.cells, this.index);
  }

  tryAcquire(max: number): boolean {
    for (;;) {
      const n = Atomics.load(this.cells, this.index);
      if (n >= max) return false;
      if (Atomics.compareExchange(this.cells, this.index, n, n + 1) === n) return true;
    }
  }

  /** Gives a permit back. */
  release(): void {
    Atomics.sub(this.cells, this.index, 1);
  }
}

/** A service that runs at most `max` calls at once; a call over the limit rejects at once with ERR_RINGIO_OVERLOADED. */
export class ConcurrencyLimit<Req, Res> implements Service<Req, Res> {
  /** The wrapped service. */
  readonly inner: Service<Req, Res>;
  /** The most calls that may run at once. */
  readonly max: number;
  /** The running count (per thread, or shared). */
  readonly permits: PermitCounter;

  constructor(inner: Service<Req, Res>, max: number, permits: PermitCounter = new Permits()) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be an integer >= 1, got ${String(max)}`);
    this.inner = inner;
    this.max = max;
    this.permits = permits;
  }

  /** Calls running now (as counted by `permits`). */
  get running(): number {
    return this.permits.running;
  }

  /** Calls the inner service if a permit is free, else rejects ERR_RINGIO_OVERLOADED. */
  async call(req: Req): Promise<Res> {
    const p = this.permits;
    if (!p.tryAcquire(this.max)) throw ringioError('ERR_RINGIO_OVERLOADED', `the concurrency limit (${this.max}) is reached`);
    try {
      return await this.inner.call(req);
    } finally {
      p.release();
    }
  }
}

/** A Layer that wraps a service in ConcurrencyLimit (with its own Permits unless `permits` is given). */
export function concurrencyLimitLayer<Req, Res>(max: number, permits?: PermitCounter): Layer<Service<Req, Res>, ConcurrencyLimit<Req, Res>> {
  return { layer: (inner) => new ConcurrencyLimit(inner, max, permits) };
}

/** With `permits` (a SharedPermits, say), every build uses them; without, the old limit's per-thread count carries over. */
export function concurrencyLimitFactory<Req, Res>(max: number, permits?: PermitCounter): FactoryLayer<Service<Req, Res>, ConcurrencyLimit<Req, Res>> {
  return wrapFactory(
    (inner: Service<Req, Res>, old: ConcurrencyLimit<Req, Res> | undefined) => new ConcurrencyLimit(inner, max, permits ?? old?.permits),
    (s): s is ConcurrencyLimit<Req, Res> => s instanceof ConcurrencyLimit,
  );
}
