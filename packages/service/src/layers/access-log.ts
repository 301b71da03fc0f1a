/**
 * AccessLog: one line per call, written after it settles, with `format(entry)`. Off by default: the
 * factory layer wraps nothing unless `enabled` is true, so a chain without logging pays nothing.
 */
import { optionalFactory, wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

/** What `format` gets for one call, once it has settled. */
export interface AccessLogEntry<Req, Res> {
  /** The request. */
  req: Req;
  /** The response, or undefined when the call failed. */
  res: Res | undefined;
  /** Why the call failed, or undefined when it succeeded. */
  error: unknown;
  /** Milliseconds from the call to its end. */
  ms: number;
  /** Date.now() at the call. */
  start: number;
}

/** Options of the access log layer and factory. */
export interface AccessLogOptions<Req, Res> {
  /** Default false: no layer at all. */
  enabled?: boolean;
  /** Makes the line of one call (default: JSON with the time, ms, ok and error). */
  format?: (e: AccessLogEntry<Req, Res>) => string;
  /** Where lines go (default: process.stderr, one line each). */
  write?: (line: string) => void;
}

function defaultFormat(e: AccessLogEntry<unknown, unknown>): string {
  return JSON.stringify({ t: new Date(e.start).toISOString(), ms: Math.round(e.ms * 1000) / 1000, ok: e.error === undefined, ...(e.error !== undefined ? { error: String((e.error as Error)?.message ?? e.error) } : {}) });
}

/** A service that writes one line per call after it settles (a broken sink never fails the call). */
export class AccessLog<Req, Res> implements Service<Req, Res> {
  /** The wrapped service. */
  readonly inner: Service<Req, Res>;
  readonly #format: (e: AccessLogEntry<Req, Res>) => string;
  readonly #write: (line: string) => void;

  constructor(inner: Service<Req, Res>, opts: AccessLogOptions<Req, Res> = {}) {
    this.inner = inner;
    this.#format = opts.format ?? (defaultFormat as (e: AccessLogEntry<Req, Res>) => string);
    this.#write = opts.write ?? ((line) => process.stderr.write(line + '\n'));
  }

  /** Calls the inner service, then writes the line; settles as the inner call did. */
  async call(req: Req): Promise<Res> {
    const start = Date.now();
    const t0 = performance.now();
    let res: Res | undefined;
    let error: unknown;
    try {
      res = await this.inner.call(req);
      return res;
    } catch (e) {
      error = e ?? new Error('rejected without a reason');
      throw e;
    } finally {
      try {
        this.#write(this.#format({ req, res, error, ms: performance.now() - t0, start }));
      } catch {
        // A broken log sink must not fail the request.
      }
    }
  }
}

/** A Layer that wraps a service in AccessLog when `opts.enabled` is true (else returns it unchanged). */
export function accessLogLayer<Req, Res>(opts: AccessLogOptions<Req, Res> = {}): Layer<Service<Req, Res>, Service<Req, Res>> {
  return { layer: (inner) => (opts.enabled === true ? new AccessLog(inner, opts) : inner) };
}

/** The FactoryLayer of AccessLog: wraps only when `opts.enabled` is true, so a chain without logging pays nothing. */
export function accessLogFactory<Req, Res>(opts: AccessLogOptions<Req, Res> = {}): FactoryLayer<Service<Req, Res>, Service<Req, Res>> {
  return optionalFactory(opts.enabled === true, wrapFactory((inner: Service<Req, Res>) => new AccessLog(inner, opts), (s): s is AccessLog<Req, Res> => s instanceof AccessLog) as FactoryLayer<Service<Req, Res>, Service<Req, Res>>);
}
