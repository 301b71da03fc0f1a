/** CatchErrors: turns a failed call into a response with `toResponse(err, req)`, so errors never escape the chain. */
import { wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

export class CatchErrors<Req, Res> implements Service<Req, Res> {
  readonly inner: Service<Req, Res>;
  readonly toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>;

  constructor(inner: Service<Req, Res>, toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>) {
    if (typeof toResponse !== 'function') throw new TypeError('toResponse must be a function');
    this.inner = inner;
    this.toResponse = toResponse;
  }

  async call(req: Req): Promise<Res> {
    try {
      return await this.inner.call(req);
    } catch (e) {
      return this.toResponse(e, req);
    }
  }
}

export function catchErrorsLayer<Req, Res>(toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>): Layer<Service<Req, Res>, CatchErrors<Req, Res>> {
  return { layer: (inner) => new CatchErrors(inner, toResponse) };
}

export function catchErrorsFactory<Req, Res>(toResponse: (err: unknown, req: Req) => Res | PromiseLike<Res>): FactoryLayer<Service<Req, Res>, CatchErrors<Req, Res>> {
  return wrapFactory((inner: Service<Req, Res>) => new CatchErrors(inner, toResponse), (s): s is CatchErrors<Req, Res> => s instanceof CatchErrors);
}
