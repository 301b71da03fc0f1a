/** CatchErrors: turns a failed call into a response with `toResponse(err, req)`, so errors never escape the chain. */
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

/** A service that answers a failed call with `toResponse(err, req)` instead of rejecting. */
export class CatchErrors<Req, Res> implements Service<Req, Res> {
  /** The wrapped service. */
  readonly inner: Service<Req, Res>;
  /** Makes the response of a failed call. */
  readonly toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>;

  constructor(inner: Service<Req, Res>, toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>) {
    if (typeof toResponse !== 'function') throw new TypeError('toResponse must be a function');
    this.inner = inner;
    this.toResponse = toResponse;
  }

  /** The inner call's response, or toResponse(err, req) when it fails. */
  async call(req: Req): Promise<Res> {
    try {
      return await this.inner.call(req);
    } catch (e) {
      return this.toResponse(e, req);
    }
  }
}

/** A Layer that wraps a service in CatchErrors. */
export function catchErrorsLayer<Req, Res>(toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>): Layer<Service<Req, Res>, CatchErrors<Req, Res>> {
  return { layer: (inner) => new CatchErrors(inner, toResponse) };
}

/** The FactoryLayer of CatchErrors. */
export function catchErrorsFactory<Req, Res>(toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>): FactoryLayer<Service<Req, Res>, CatchErrors<Req, Res>> {
  return wrapFactory((inner: Service<Req, Res>) => new CatchErrors(inner, toResponse), (s): s is CatchErrors<Req, Res> => s instanceof CatchErrors);
}
