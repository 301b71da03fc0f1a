/**
 * Building message heads: an append buffer per connection (pooled with it), header fields checked
 * against injection as they are written, status lines and the Date field cached.
 */
import { STATUS_CODES } from 'node:http';

/** What a caller may pass as header fields. */
export type HeadersInit =
  | Record<string, string | number | readonly string[] | undefined>
  | Iterable<readonly [string, string | number]>
  | { forEach(cb: (value: string, name: string) => void): void };

interface FrozenFields {
  bytes: Buffer;
  flags: number;
  declared: number;
}
const frozenCache = new WeakMap<object, FrozenFields>();
/** The last frozen object served (most servers answer with one or two): skips the WeakMap lookup. */
let lastFrozen: object | undefined;
let lastHit: FrozenFields | undefined;

const NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE_BAD_RE = /[\0-\x08\x0a-\x1f\x7f]|[^\0-\xff]/;

/** Fields the writer takes care of itself (framing and connection management): Content-Length. */
export const H_CONTENT_LENGTH = 1;
/** Transfer-Encoding (in a RawHead for HttpClient: the body goes chunked). */
export const H_TRANSFER_ENCODING = 2;
export const H_CONNECTION_CLOSE = 4;
export const H_CONNECTION = 8;
/** Date (the server adds none of its own). */
export const H_DATE = 16;
/** Host (the client adds none of its own). */
export const H_HOST = 32;
export const H_TE_CHUNKED = 64;

/**
 * A message head a caller built and checked itself (a proxy forwarding a parsed head): `buf[0, len)`.
 * For HttpClient's send (forward.send) it is complete, the blank line included, with the framing of
 * its body (H_TRANSFER_ENCODING in `flags` when the body goes chunked); for a server response
 * (forward.rawFields) it holds field lines only. `flags`: the H_* flags of its fields; `declared`:
 * its Content-Length, or -1.
 */
export interface RawHead {
  /** The bytes; `buf[0, len)` is the head (it may be replaced by a larger buffer as it grows). */
  buf: Buffer;
  /** How many bytes of `buf` the head holds. */
  len: number;
  /** The H_* flags of its fields (H_HOST, H_DATE, H_CONTENT_LENGTH, H_TRANSFER_ENCODING). */
  flags: number;
  /** Its Content-Length value, or -1. */
  declared: number;
}

/** A head being built that field lines are appended to (forward's copies): a RawHead, or a server's OutBuf. */
export interface FieldSink {
  /** The bytes; `buf[0, len)` is what was built so far (replaced by a larger buffer as it grows). */
  buf: Buffer;
  /** How many bytes of `buf` are built. */
  len: number;
  /** The H_* flags of the fields appended. */
  flags: number;
}

/**
 * Field lines written straight into a response head as the server builds it (forward.rawFieldsFrom: a
 * proxy copies the upstream's fields into the write buffer, with no copy in between).
 */
export interface FieldWriter {
  /** Appends field lines to `out`, ORs their H_* flags into out.flags, and sets out.declaredLength for a Content-Length among them. */
  writeFields(out: FieldSink & { declaredLength: number }): void;
}

export class OutBuf implements FieldSink {
  buf: Buffer;
  len = 0;
  /** The Content-Length value a caller wrote, or -1. */
  declaredLength = -1;
  /** The H_* flags of fields a FieldWriter appended (see FieldSink). */
  flags = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  get free(): number {
    return this.buf.length - this.len;
  }

  /** Makes room for n more bytes (grows the buffer; only while no write of it is in flight). */
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }

  /** Appends a latin1 string (the caller has checked it). */
  latin1(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.latin1Write(s, this.len);
  }

  bytes(b: Uint8Array): void {
    this.range(b, 0, b.length);
  }

  /** Appends b[s, e). */
  range(b: Uint8Array, s: number, e: number): void {
    this.ensure(e - s);
    copyBytes(b, s, e, this.buf, this.len);
    this.len += e - s;
  }

  /** Appends one header field, checking name and value; returns its H_* flag. */
  field(name: string, value: string | number): number {
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    const v = typeof value === 'number' ? String(value) : value;
    if (typeof v !== 'string') throw new TypeError(`header ${name}: value must be a string or a number`);
    if (VALUE_BAD_RE.test(v)) throw new TypeError(`header ${name}: invalid character in the value`);
    this.ensure(name.length + v.length + 4);
    let p = this.len;
    const b = this.buf;
    p += b.latin1Write(name, p);
    b[p++] = 58;
    b[p++] = 32;
    p += b.latin1Write(v, p);
    b[p++] = 13;
    b[p++] = 10;
    this.len = p;
    return classify(name, v, this);
  }

  /**
   * Appends every field of `headers`; returns the OR of their H_* flags. A frozen object or array is
   * serialized once: its bytes are cached (it cannot change) and copied on later calls.
   */
  fields(headers: HeadersInit | undefined): number {
    if (headers === undefined || headers === null) return 0;
    if (headers === lastFrozen) {
      const hit = lastHit!;
      this.bytes(hit.bytes);
      if (hit.declared >= 0) this.declaredLength = hit.declared;
      return hit.flags;
    }
    if (Object.isFrozen(headers)) {
      const hit = frozenCache.get(headers);
      if (hit !== undefined) {
        lastFrozen = headers;
        lastHit = hit;
        this.bytes(hit.bytes);
        if (hit.declared >= 0) this.declaredLength = hit.declared;
        return hit.flags;
      }
      const start = this.len;
      const flags = this.#fields(headers);
      frozenCache.set(headers, { bytes: Buffer.from(this.buf.subarray(start, this.len)), flags, declared: flags & H_CONTENT_LENGTH ? this.declaredLength : -1 });
      return flags;
    }
    return this.#fields(headers);
  }

  #fields(headers: HeadersInit): number {
    let flags = 0;
    if (typeof (headers as { forEach?: unknown }).forEach === 'function' && !Array.isArray(headers) && !(Symbol.iterator in headers)) {
      (headers as { forEach(cb: (value: string, name: string) => void): void }).forEach((v, k) => {
        flags |= this.field(k, v);
      });
      return flags;
    }
    if (Symbol.iterator in (headers as object)) {
      for (const pair of headers as Iterable<readonly [string, string | number]>) {
        if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError('headers: expected [name, value] pairs');
        flags |= this.field(pair[0], pair[1]);
      }
      return flags;
    }
    if (typeof headers !== 'object') throw new TypeError('headers must be an object, an array of pairs or a Headers');
    const h = headers as Record<string, string | number | readonly string[] | undefined>;
    for (const k in h) {
      const v = h[k];
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const one of v) flags |= this.field(k, one as string);
      else flags |= this.field(k, v as string | number);
    }
    return flags;
  }
}

function classify(name: string, v: string, out: OutBuf): number {
  switch (name.length) {
    case 4: {
      const l = name.toLowerCase();
      return l === 'date' ? H_DATE : l === 'host' ? H_HOST : 0;
    }
    case 10:
      if (name.toLowerCase() === 'connection') {
        return /(^|,)\s*close\s*(,|$)/i.test(v) ? H_CONNECTION | H_CONNECTION_CLOSE : H_CONNECTION;
      }
      return 0;
    case 14:
      if (name.toLowerCase() === 'content-length') {
        if (!/^\d{1,15}$/.test(v)) throw new TypeError(`header Content-Length: bad value ${JSON.stringify(v)}`);
        out.declaredLength = Number(v);
        return H_CONTENT_LENGTH;
      }
      return 0;
    case 17:
      if (name.toLowerCase() === 'transfer-encoding') {
        return /(^|,)\s*chunked\s*$/i.test(v) ? H_TRANSFER_ENCODING | H_TE_CHUNKED : H_TRANSFER_ENCODING;
      }
      return 0;
  }
  return 0;
}

const statusLines = new Map<number, Buffer>();

/** "HTTP/1.1 <code> <reason>\r\n", cached per code. */
export function statusLine(code: number): Buffer {
  let b = statusLines.get(code);
  if (b === undefined) {
    b = Buffer.from(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Unknown'}\r\n`, 'latin1');
    statusLines.set(code, b);
  }
  return b;
}

let dateSecond = -1;
let dateField = Buffer.alloc(0);

/** "Date: <IMF-fixdate>\r\n", rebuilt once a second. */
export function dateLine(): Buffer {
  const now = Date.now();
  const s = (now / 1000) | 0;
  if (s !== dateSecond) {
    dateSecond = s;
    dateField = Buffer.from(`Date: ${new Date(now).toUTCString()}\r\n`, 'latin1');
  }
  return dateField;
}

/**
 * %TypedArray%.prototype's set() and its buffer / byteOffset getters, called as constants: `dst.set`,
 * `b.buffer` and `b.byteOffset` on a Buffer are generic property loads (a LoadIC call each, and the
 * getter through a generic call) even in optimized code; these calls are direct (about 300 instructions
 * less per view copied, under callgrind).
 */
const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array.prototype) as Uint8Array;
const taSet = TYPED_ARRAY.set;
const taBuffer = Object.getOwnPropertyDescriptor(TYPED_ARRAY, 'buffer')!.get as (this: Uint8Array) => ArrayBufferLike;
const taByteOffset = Object.getOwnPropertyDescriptor(TYPED_ARRAY, 'byteOffset')!.get as (this: Uint8Array) => number;

/**
 * b[s, e) to dst at `at`. Buffer.copy and set() make a Uint8Array view of a partial source per call: a
 * short run (a field line or two) is copied by a loop instead, with no allocation; a longer one (a
 * whole head's fields) by set(), whose view costs less than the loop.
 */
export function copyBytes(b: Uint8Array, s: number, e: number, dst: Uint8Array, at: number): void {
  // A loop up to about 64 bytes; past that set() of a view is cheaper (measured on Node 20: a 200-byte
  // loop costs 3-4x the view and its set). A whole array needs no view: set() from 32 bytes on.
  if (e - s > 32 && s === 0 && e === b.length) {
    taSet.call(dst, b, at);
    return;
  }
  if (e - s > 64) {
    // A plain Uint8Array view: Buffer's subarray makes a FastBuffer (a slower constructor).
    taSet.call(dst, new Uint8Array(taBuffer.call(b), taByteOffset.call(b) + s, e - s), at);
    return;
  }
  // Four bytes a step (a quarter of the loop's compares and jumps: 27 bytes in ~70% of the time, 64
  // in about half), then the rest.
  let i = s;
  for (const e4 = e - 3; i < e4; i += 4, at += 4) {
    dst[at] = b[i]!;
    dst[at + 1] = b[i + 1]!;
    dst[at + 2] = b[i + 2]!;
    dst[at + 3] = b[i + 3]!;
  }
  for (; i < e; i++) dst[at++] = b[i]!;
}

/** Buffer.byteLength for a body chunk (strings as UTF-8). */
export function chunkLength(chunk: Uint8Array | string): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
}

export function checkChunk(chunk: unknown, what: string): asserts chunk is Uint8Array | string {
  if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
    throw new TypeError(`${what}: chunk must be a string or a Uint8Array`);
  }
}
