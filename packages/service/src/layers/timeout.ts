/** TimeoutService: a call that takes longer than `ms` rejects with ERR_RINGIO_TIMEOUT. */
import { timeout } from '@ringio/runtime';
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

/** A service whose calls reject ERR_RINGIO_TIMEOUT once they take longer than `ms`. */
export class TimeoutService<Req, Res> implements Service<Req, Res> {
  /** The wrapped service. */
  readonly inner: Service<Req, Res>;
  /** The time a call may take, in ms. */
  readonly ms: number;

  constructor(inner: Service<Req, Res>, ms: number) {
    if (typeof ms !== 'number' || !(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`timeout must be a finite number of ms > 0, got ${String(ms)}`);
    this.inner = inner;
    this.ms = ms;
  }

  /**
   * The inner call is not cancelled when the time is up (a service has no cancellation protocol): the
   * caller gets the rejection and must close what the request holds (the proxy closes the connection,
   * which ends the inner call's I/O).
   */
  call(req: Req): Promise<Res> {
    const inner = this.inner;
    return timeout(async () => inner.call(req), this.ms);
  }
}

/** A Layer that wraps a service in TimeoutService. */
export function timeoutLayer<Req, Res>(ms: number): Layer<Service<Req, Res>, TimeoutService<Req, Res>> {
  return { layer: (inner) => new TimeoutService(inner, ms) };
}

/** The FactoryLayer of TimeoutService. */
export function timeoutFactory<Req, Res>(ms: number): FactoryLayer<Service<Req, Res>, TimeoutService<Req, Res>> {
  return wrapFactory((inner: Service<Req, Res>) => new TimeoutService(inner, ms), (s): s is TimeoutService<Req, Res> => s instanceof TimeoutService);
}
