/**
 * How values cross threads through a cell: the structured-clone algorithm (v8.serialize), with
 * cheaper encodings for the values a ping-pong or a counter sends most: numbers, strings, booleans,
 * null and undefined. `transfer` moves ArrayBuffers: the sender's buffers are detached, as with
 * postMessage, and the receiver gets buffers with the same bytes (copied once through shared memory).
 */
import { deserialize, serialize } from 'node:v8';
import { ringioError } from '../errors.js';
import { fromWire, toWire, type WireError } from './wire.js';

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_TRUE = 2;
const T_FALSE = 3;
const T_NUMBER = 4;
const T_STRING = 5;
const T_CLONE = 6;
const T_ERROR = 7;

const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder();

export interface Encoded {
  tag: number;
  bytes: Uint8Array;
}

export function encode(value: unknown): Encoded {
  switch (typeof value) {
    case 'undefined':
      return { tag: T_UNDEFINED, bytes: EMPTY };
    case 'boolean':
      return { tag: value ? T_TRUE : T_FALSE, bytes: EMPTY };
    case 'number': {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setFloat64(0, value, true);
      return { tag: T_NUMBER, bytes };
    }
    case 'string':
      return { tag: T_STRING, bytes: Buffer.from(value, 'utf8') };
    default:
      if (value === null) return { tag: T_NULL, bytes: EMPTY };
      try {
        // An Error at the top keeps its class, stack and own properties (code, errno, ...).
        if (value instanceof Error) return { tag: T_ERROR, bytes: serialize(toWire(value)) };
        return { tag: T_CLONE, bytes: serialize(value) };
      } catch (e) {
        throw ringioError(
          'ERR_RINGIO_NOT_CLONEABLE',
          `the value cannot be sent to another thread: ${(e as Error).message}` +
            ' (ringio channels, oneshots and watches travel in start()\'s `shared`, not inside messages)',
          { cause: e },
        );
      }
  }
}

export function decode(tag: number, bytes: Uint8Array): unknown {
  switch (tag) {
    case T_UNDEFINED:
      return undefined;
    case T_NULL:
      return null;
    case T_TRUE:
      return true;
    case T_FALSE:
      return false;
    case T_NUMBER:
      return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
    case T_STRING:
      return decoder.decode(bytes);
    case T_ERROR:
      return fromWire(deserialize(bytes) as WireError);
    default:
      return deserialize(bytes);
  }
}

/** Checks a transfer list up front, so a bad one fails before anything is sent. */
export function checkTransfer(list: unknown): ArrayBuffer[] | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw new TypeError('transfer must be an array of ArrayBuffers');
  for (const ab of list) {
    if (!(ab instanceof ArrayBuffer)) {
      throw new TypeError('transfer may only list ArrayBuffers (SharedArrayBuffers are shared, not moved)');
    }
  }
  return list.length === 0 ? undefined : (list as ArrayBuffer[]);
}

/**
 * Detaches the sender's buffers right after the value is encoded, as postMessage does: from then on
 * the message owns the bytes, even if the send then waits or fails. Node's own rules apply: a buffer
 * Node marks untransferable (the pool behind small Buffers) stays attached, as with postMessage.
 */
export function detach(list: ArrayBuffer[]): void {
  structuredClone(list, { transfer: list });
}
