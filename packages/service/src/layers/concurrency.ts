/**
 * ConcurrencyLimit: at most `max` calls run at once on this thread; a call over the limit rejects at once
 * with ERR_RINGIO_OVERLOADED (a proxy must not queue connections it cannot serve). The count of running
 * calls carries over a rebuild (make(old)): calls started on the old chain still count.
 */
import { ringioError } from '@ringio/runtime';
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

/** The running count, shared by a limit and the limits that replace it. */
export class Permits {
  running = 0;
}

export class ConcurrencyLimit<Req, Res> implements Service<Req, Res> {
  readonly inner: Service<Req, Res>;
  readonly max: number;
  readonly permits: Permits;

  constructor(inner: Service<Req, Res>, max: number, permits = new Permits()) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be an integer >= 1, got ${String(max)}`);
    this.inner = inner;
    this.max = max;
    this.permits = permits;
  }

  get running(): number {
    return this.permits.running;
  }

  async call(req: Req): Promise<Res> {
    const p = this.permits;
    if (p.running >= this.max) throw ringioError('ERR_RINGIO_OVERLOADED', `the concurrency limit (${this.max}) is reached`);
    p.running++;
    try {
      return await this.inner.call(req);
    } finally {
      p.running--;
    }
  }
}

export function concurrencyLimitLayer<Req, Res>(max: number): Layer<Service<Req, Res>, ConcurrencyLimit<Req, Res>> {
  return { layer: (inner) => new ConcurrencyLimit(inner, max) };
}

export function concurrencyLimitFactory<Req, Res>(max: number): FactoryLayer<Service<Req, Res>, ConcurrencyLimit<Req, Res>> {
  return wrapFactory((inner: Service<Req, Res>, old: ConcurrencyLimit<Req, Res> | undefined) => new ConcurrencyLimit(inner, max, old?.permits), (s): s is ConcurrencyLimit<Req, Res> => s instanceof ConcurrencyLimit);
}
