/**
 * Errors across threads. postMessage's structured clone keeps an Error's message but drops `code`,
 * `errno`, `syscall` and other own properties; here they travel as plain data, and the receiving
 * thread rebuilds an error of the same class with the original stack (ringio's classes too, so
 * `instanceof RingioError` holds on the other side).
 */
import { ERROR_CLASSES } from '../errors.js';

export interface WireError {
  name: string;
  message: string;
  stack: string | undefined;
  props: Record<string, unknown>;
  cause?: WireError;
}

const CLASSES: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  EvalError,
  URIError,
};

export function toWire(e: unknown, depth = 0): WireError {
  if (!(e instanceof Error)) {
    let message: string;
    try {
      message = String(e);
    } catch {
      message = 'a non-Error value was thrown';
    }
    return { name: 'Error', message, stack: undefined, props: { thrown: safe(e) } };
  }
  const props: Record<string, unknown> = {};
  for (const k of Object.keys(e)) {
    if (k === 'cause') continue;
    const v = safe((e as unknown as Record<string, unknown>)[k]);
    if (v !== undefined) props[k] = v;
  }
  const w: WireError = { name: e.name, message: e.message, stack: e.stack, props };
  if (e.cause !== undefined && depth < 4) w.cause = toWire(e.cause, depth + 1);
  return w;
}

/** Only values that clone without surprises travel: primitives and plain data. */
function safe(v: unknown): unknown {
  if (v === null || ['string', 'number', 'boolean', 'bigint', 'undefined'].includes(typeof v)) return v;
  try {
    return structuredClone(v);
  } catch {
    return undefined;
  }
}

export function fromWire(w: WireError): Error {
  const cause = w.cause !== undefined ? { cause: fromWire(w.cause) } : undefined;
  const Ringio = Object.hasOwn(ERROR_CLASSES, w.name) && typeof w.props.code === 'string' ? ERROR_CLASSES[w.name] : undefined;
  let e: Error;
  if (Ringio !== undefined) {
    e = new Ringio(w.props.code as string, w.message);
    if (cause !== undefined) e.cause = cause.cause;
  } else {
    e = new (CLASSES[w.name] ?? Error)(w.message, cause);
  }
  if (e.name !== w.name) Object.defineProperty(e, 'name', { value: w.name, configurable: true, writable: true });
  if (w.stack !== undefined) e.stack = w.stack;
  Object.assign(e, w.props);
  return e;
}
