/**
 * Handing primitives to other threads. A channel, oneshot or watch is a JS object over a
 * SharedArrayBuffer; to cross to a worker it becomes a plain descriptor (the buffer travels by
 * postMessage's sharing), and the receiving thread revives it into its own handle, once per cell.
 */
import { ringioError } from '../errors.js';
import { Cell, KIND_CHANNEL, KIND_ONESHOT, KIND_WATCH } from './cell.js';
import { Channel } from './channel.js';
import { Oneshot } from './oneshot.js';
import { handleOf, registerHandle } from './handles.js';
import { SharedHandle } from './shared.js';
import { Watch } from './watch.js';

const TAG = '__ringio_shared__';

/** A copy of `value` in which every primitive is replaced by a descriptor postMessage can carry. */
export function prepareShared(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return seen.get(value);
  if (value instanceof SharedHandle) {
    const d: Record<string, unknown> = { [TAG]: value._cell.kind, sab: value._cell.sab };
    // A watch's receiving handle starts out having seen the version current now, at the handover,
    // not when it is revived: a set() made while the receiving thread was still starting is news there.
    if (value instanceof Watch) d.version = value.version;
    seen.set(value, d);
    return d;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const v of value) out.push(prepareShared(v, seen));
    return out;
  }
  if (value instanceof Map) {
    const out = new Map();
    seen.set(value, out);
    for (const [k, v] of value) out.set(prepareShared(k, seen), prepareShared(v, seen));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set();
    seen.set(value, out);
    for (const v of value) out.add(prepareShared(v, seen));
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    seen.set(value, out);
    for (const k of Object.keys(value)) out[k] = prepareShared((value as Record<string, unknown>)[k], seen);
    return out;
  }
  // Anything else is structured-cloned as it is, which would turn a primitive inside it into a plain
  // object without methods on the other side: refuse that instead.
  if (holdsHandle(value, new Set())) {
    const name = (proto as { constructor?: { name?: string } } | null)?.constructor?.name || 'object';
    throw ringioError(
      'ERR_RINGIO_NOT_CLONEABLE',
      `a channel, oneshot or watch inside a ${name} cannot be handed to other threads: ` +
        'put it in a plain object, an array, a Map or a Set',
    );
  }
  return value;
}

/** Whether a primitive is reachable from `value` through own enumerable properties, Map or Set entries. */
function holdsHandle(value: unknown, seen: Set<object>): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  if (value instanceof SharedHandle) return true;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return false;
  if (value instanceof Map) {
    for (const [k, v] of value) if (holdsHandle(k, seen) || holdsHandle(v, seen)) return true;
  } else if (value instanceof Set) {
    for (const v of value) if (holdsHandle(v, seen)) return true;
  }
  for (const v of Object.values(value)) if (holdsHandle(v, seen)) return true;
  return false;
}

/** Replaces the descriptors in a cloned value with this thread's handles, in place. */
export function reviveShared(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  // A value reached twice (the clone keeps shared references) revives to the same result both times.
  if (seen.has(value)) return seen.get(value);
  const kind = (value as Record<string, unknown>)[TAG];
  if (typeof kind === 'number' && (value as { sab?: unknown }).sab instanceof SharedArrayBuffer) {
    const h = handleFor((value as { sab: SharedArrayBuffer }).sab, (value as { version?: unknown }).version);
    seen.set(value, h);
    return h;
  }
  seen.set(value, value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveShared(value[i], seen);
  } else if (value instanceof Map) {
    const entries = [...value];
    value.clear();
    for (const [k, v] of entries) value.set(reviveShared(k, seen), reviveShared(v, seen));
  } else if (value instanceof Set) {
    const items = [...value];
    value.clear();
    for (const v of items) value.add(reviveShared(v, seen));
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const o = value as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = reviveShared(o[k], seen);
    }
  }
  return value;
}

/** This thread's handle of the cell in `sab`: the existing one, else a new one (a watch's seen version from its descriptor). */
function handleFor(sab: SharedArrayBuffer, version: unknown): SharedHandle {
  const cell = new Cell(sab);
  const existing = handleOf(cell.uid);
  if (existing !== undefined) return existing;
  let h: SharedHandle;
  switch (cell.kind) {
    case KIND_CHANNEL:
      h = new Channel(cell);
      break;
    case KIND_ONESHOT:
      h = new Oneshot(cell);
      break;
    case KIND_WATCH:
      h = new Watch(cell, typeof version === 'number' ? version : undefined);
      break;
    default:
      throw new TypeError(`not a ringio primitive (kind ${cell.kind})`);
  }
  return registerHandle(h);
}

declare const SHAREABLE: unique symbol;

/**
 * What shareable(value) returns: plain data to send with postMessage or workerData (its shape is
 * internal); fromShareable() on the receiving side gives back a `T`.
 */
export type Shareable<T> = { readonly [SHAREABLE]: T };

/**
 * For threads start() did not make (a plain Worker): `shareable(value)` gives a copy of value that
 * postMessage or workerData can carry, primitives included; the receiving thread calls
 * `fromShareable(received)` to get its own handles. start()'s `shared` does both for you.
 */
export function shareable<T>(value: T): Shareable<T> {
  return prepareShared(value) as Shareable<T>;
}

/**
 * On the receiving thread: revives what shareable() made, with this thread's handles of the channels,
 * oneshots and watches in it. Typed from a Shareable<T>; from workerData (unknown), name T yourself.
 */
export function fromShareable<T>(value: Shareable<T>): T;
export function fromShareable<T = unknown>(value: unknown): T;
export function fromShareable<T = unknown>(value: unknown): T {
  return reviveShared(value) as T;
}
