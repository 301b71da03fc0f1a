/**
 * StatsService: per-server counters on this thread (calls, running, errors by code, time spent). The
 * counters object carries over a rebuild (make(old)), so a reload does not reset them, and calls that
 * started on the old chain end on the same counters.
 */
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

export class Counters {
  calls = 0;
  running = 0;
  errors = 0;
  /** Errors by their `code` (or 'other'). */
  readonly errorCodes: Record<string, number> = {};
  /** Sum of call durations in seconds. */
  seconds = 0;
  /** Extra counters any layer or service may add to (bytes, for instance). */
  readonly extra: Record<string, number> = {};

  add(name: string, n: number): void {
    this.extra[name] = (this.extra[name] ?? 0) + n;
  }

  snapshot(): CountersSnapshot {
    return { calls: this.calls, running: this.running, errors: this.errors, errorCodes: { ...this.errorCodes }, seconds: this.seconds, extra: { ...this.extra } };
  }
}

export interface CountersSnapshot {
  calls: number;
  running: number;
  errors: number;
  errorCodes: Record<string, number>;
  seconds: number;
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

export class StatsService<Req, Res> implements Service<Req, Res> {
  readonly inner: Service<Req, Res>;
  readonly counters: Counters;

  constructor(inner: Service<Req, Res>, counters = new Counters()) {
    this.inner = inner;
    this.counters = counters;
  }

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

export function statsLayer<Req, Res>(counters?: Counters): Layer<Service<Req, Res>, StatsService<Req, Res>> {
  return { layer: (inner) => new StatsService(inner, counters) };
}

export function statsFactory<Req, Res>(): FactoryLayer<Service<Req, Res>, StatsService<Req, Res>> {
  return wrapFactory((inner: Service<Req, Res>, old: StatsService<Req, Res> | undefined) => new StatsService(inner, old?.counters), (s): s is StatsService<Req, Res> => s instanceof StatsService);
}
