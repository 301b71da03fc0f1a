/**
 * StatsService: per-server counters on this thread (calls, running, errors by code, time spent). The
 * counters object carries over a rebuild (make(old)), so a reload does not reset them, and calls that
 * started on the old chain end on the same counters.
 */
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

/** A service's counters on this thread: calls, running, errors (by code), time spent, and extra ones. */
export class Counters {
  /** Calls made, in total. */
  calls = 0;
  /** Calls running now. */
  running = 0;
  /** Calls that failed. */
  errors = 0;
  /** Errors by their `code` (or 'other'). */
  readonly errorCodes: Record<string, number> = {};
  /** Sum of call durations in seconds. */
  seconds = 0;
  /** Extra counters any layer or service may add to (bytes, for instance). */
  readonly extra: Record<string, number> = {};

  /** Adds `n` to the extra counter `name` (made at 0). */
  add(name: string, n: number): void {
    this.extra[name] = (this.extra[name] ?? 0) + n;
  }

  /** A copy of the counters as plain data (cloneable to other threads). */
  snapshot(): CountersSnapshot {
    return { calls: this.calls, running: this.running, errors: this.errors, errorCodes: { ...this.errorCodes }, seconds: this.seconds, extra: { ...this.extra } };
  }
}

/** Counters as plain data: one thread's snapshot, or several summed (sumCounters). */
export interface CountersSnapshot {
  /** Calls made, in total. */
  calls: number;
  /** Calls running. */
  running: number;
  /** Calls that failed. */
  errors: number;
  /** Failures by their `code` (or 'other'). */
  errorCodes: Record<string, number>;
  /** Sum of call durations in seconds. */
  seconds: number;
  /** The extra counters (Counters.add). */
  extra: Record<string, number>;
}

/** Adds snapshots (from several threads) into one. */
export function sumCounters(list: (CountersSnapshot | undefined)[]): CountersSnapshot {
  const out: CountersSnapshot = { calls: 0, running: 0, errors: 0, errorCodes: {}, seconds: 0, extra: {} };
  for (const s of list) {
    if (s === undefined) continue;
    out.calls += s.calls;
    out.running += s.running;
    out.errors += s.errors;
    out.seconds += s.seconds;
    for (const [k, v] of Object.entries(s.errorCodes)) out.errorCodes[k] = (out.errorCodes[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.extra)) out.extra[k] = (out.extra[k] ?? 0) + v;
  }
  return out;
}

/** A service that counts the calls of the one it wraps into a Counters object (kept across rebuilds by statsFactory). */
export class StatsService<Req, Res> implements Service<Req, Res> {
  /** The wrapped service. */
  readonly inner: Service<Req, Res>;
  /** The counters it adds to. */
  readonly counters: Counters;

  constructor(inner: Service<Req, Res>, counters = new Counters()) {
    this.inner = inner;
    this.counters = counters;
  }

  /** Calls the inner service and counts the call; settles as the inner call did. */
  async call(req: Req): Promise<Res> {
    const c = this.counters;
    c.calls++;
    c.running++;
    const t0 = performance.now();
    try {
      return await this.inner.call(req);
    } catch (e) {
      c.errors++;
      const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'other';
      c.errorCodes[code] = (c.errorCodes[code] ?? 0) + 1;
      throw e;
    } finally {
      c.running--;
      c.seconds += (performance.now() - t0) / 1000;
    }
  }
}

/** A Layer that wraps a service in StatsService (new Counters unless `counters` is given). */
export function statsLayer<Req, Res>(counters?: Counters): Layer<Service<Req, Res>, StatsService<Req, Res>> {
  return { layer: (inner) => new StatsService(inner, counters) };
}

/** The FactoryLayer of StatsService: a rebuild keeps the old service's Counters. */
export function statsFactory<Req, Res>(): FactoryLayer<Service<Req, Res>, StatsService<Req, Res>> {
  return wrapFactory((inner: Service<Req, Res>, old: StatsService<Req, Res> | undefined) => new StatsService(inner, old?.counters), (s): s is StatsService<Req, Res> => s instanceof StatsService);
}
