/**
 * AccessLog: one line per call, written after it settles, with `format(entry)`. Off by default: the
 * factory layer wraps nothing unless `enabled` is true, so a chain without logging pays nothing.
 */
import { optionalFactory, wrapFactory, type FactoryLayer, type Layer, type Service } from '../service.js';

export interface AccessLogEntry<Req, Res> {
  req: Req;
  res: Res | undefined;
  error: unknown;
  /** Milliseconds from the call to its end. */
  ms: number;
  /** Date.now() at the call. */
  start: number;
}

export interface AccessLogOptions<Req, Res> {
  /** Default false: no layer at all. */
  enabled?: boolean;
  format?: (e: AccessLogEntry<Req, Res>) => string;
  /** Where lines go (default: process.stderr, one line each). */
  write?: (line: string) => void;
}

function defaultFormat(e: AccessLogEntry<unknown, unknown>): string {
  return JSON.stringify({ t: new Date(e.start).toISOString(), ms: Math.round(e.ms * 1000) / 1000, ok: e.error === undefined, ...(e.error !== undefined ? { error: String((e.error as Error)?.message ?? e.error) } : {}) });
}

export class AccessLog<Req, Res> implements Service<Req, Res> {
  readonly inner: Service<Req, Res>;
  readonly #format: (e: AccessLogEntry<Req, Res>) => string;
  readonly #write: (line: string) => void;

  constructor(inner: Service<Req, Res>, opts: AccessLogOptions<Req, Res> = {}) {
    this.inner = inner;
    this.#format = opts.format ?? (defaultFormat as (e: AccessLogEntry<Req, Res>) => string);
    this.#write = opts.write ?? ((line) => process.stderr.write(line + '\n'));
  }

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

export function accessLogLayer<Req, Res>(opts: AccessLogOptions<Req, Res> = {}): Layer<Service<Req, Res>, Service<Req, Res>> {
  return { layer: (inner) => (opts.enabled === true ? new AccessLog(inner, opts) : inner) };
}

export function accessLogFactory<Req, Res>(opts: AccessLogOptions<Req, Res> = {}): FactoryLayer<Service<Req, Res>, Service<Req, Res>> {
  return optionalFactory(opts.enabled === true, wrapFactory((inner: Service<Req, Res>) => new AccessLog(inner, opts), (s): s is AccessLog<Req, Res> => s instanceof AccessLog) as FactoryLayer<Service<Req, Res>, Service<Req, Res>>);
}
