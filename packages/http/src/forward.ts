/**
 * Forwarding parsed heads (the proxy's path): field lines are copied as bytes from the buffer they were
 * parsed from into a RawHead, skipping hop-by-hop fields by index (RFC 9110 §7.6.1), without making a
 * string per field. Strings are made only for the rare fields a proxy must read (Connection's list,
 * Forwarded, X-Forwarded-*), and only when they are present.
 */
import type { IncomingBody } from './body.js';
import type { HeaderView } from './headers.js';
import type { ServerRequest, ServerResponse } from './server.js';
import type { CallHandle, ClientResponse, HttpClient } from './client.js';
import { Name } from './parse.js';
import { copyBytes, H_CONTENT_LENGTH, H_DATE, H_HOST, type FieldSink, type FieldWriter, type RawHead } from './out.js';

/** forwardFields() found these fields (each one was left out of the copy unless said otherwise). */
export const F_CONNECTION = 1;
/** Host (copied, unless `dropHost`). */
export const F_HOST = 2;
/** Forwarded (left out; the proxy adds its own). */
export const F_FORWARDED = 4;
/** X-Forwarded-For (left out). */
export const F_X_FORWARDED_FOR = 8;
/** X-Forwarded-Proto (left out). */
export const F_X_FORWARDED_PROTO = 16;
/** X-Forwarded-Host (left out). */
export const F_X_FORWARDED_HOST = 32;
/** Date (copied). */
export const F_DATE = 64;
/** Content-Length (copied unless `dropLength`). */
export const F_CONTENT_LENGTH = 128;
/** Via (copied). */
export const F_VIA = 256;

/** What to copy: request fields drop Expect, Forwarded and X-Forwarded-* too (the proxy adds its own). */
export interface ForwardRules {
  /** Request fields (true) or response fields (false). */
  request: boolean;
  /** Leave Content-Length out (a request without a body). */
  dropLength: boolean;
  /** Leave Host out (the route rewrites it). */
  dropHost: boolean;
  /** More names to leave out (lower case): a route's removals, the fields Connection names. */
  drop: ReadonlySet<string> | undefined;
}

const KIND_HOP = -1;
const KIND_KEEP = 0;

/**
 * What forwardFields does with a field, by its name's code (HeaderView._names, from the parser): KIND_HOP
 * to leave it out, its F_* flag, or KIND_KEEP. For request fields, and for response fields.
 */
const REQUEST_KIND = new Int16Array(Name.COUNT);
const RESPONSE_KIND = new Int16Array(Name.COUNT);
{
  const both: [number, number][] = [
    [Name.TE, KIND_HOP], [Name.VIA, F_VIA], [Name.HOST, F_HOST], [Name.DATE, F_DATE], [Name.UPGRADE, KIND_HOP], [Name.TRAILER, KIND_HOP],
    [Name.CONNECTION, F_CONNECTION], [Name.KEEP_ALIVE, KIND_HOP], [Name.CONTENT_LENGTH, F_CONTENT_LENGTH], [Name.PROXY_CONNECTION, KIND_HOP],
    [Name.TRANSFER_ENCODING, KIND_HOP], [Name.PROXY_AUTHENTICATE, KIND_HOP], [Name.PROXY_AUTHORIZATION, KIND_HOP],
  ];
  const requestOnly: [number, number][] = [
    [Name.EXPECT, KIND_HOP], [Name.FORWARDED, F_FORWARDED], [Name.X_FORWARDED_FOR, F_X_FORWARDED_FOR], [Name.X_FORWARDED_HOST, F_X_FORWARDED_HOST],
    [Name.X_FORWARDED_PROTO, F_X_FORWARDED_PROTO],
  ];
  for (const [n, k] of both) REQUEST_KIND[n] = RESPONSE_KIND[n] = k;
  for (const [n, k] of requestOnly) REQUEST_KIND[n] = k;
}

/** Grows `out.buf` to hold `n` more bytes. */
export function reserve(out: FieldSink, n: number): void {
  if (out.len + n <= out.buf.length) return;
  let size = out.buf.length * 2;
  while (size < out.len + n) size *= 2;
  const b = Buffer.allocUnsafe(size);
  out.buf.copy(b, 0, 0, out.len);
  out.buf = b;
}

/** Appends a checked latin1 string. */
export function appendLatin1(out: FieldSink, s: string): void {
  reserve(out, s.length);
  out.len += out.buf.latin1Write(s, out.len);
}

/** Appends bytes. */
export function appendBytes(out: FieldSink, b: Uint8Array): void {
  reserve(out, b.length);
  copyBytes(b, 0, b.length, out.buf, out.len);
  out.len += b.length;
}

/** Ends a head: appends its blank line's CRLF. */
export function appendCrlf(out: FieldSink): void {
  reserve(out, 2);
  const b = out.buf;
  b[out.len] = 13;
  b[out.len + 1] = 10;
  out.len += 2;
}

/**
 * Copies the field lines of `h` (as `name: value\r\n`, exactly as they arrived) to `out` (a RawHead, or
 * a server's write buffer from a FieldWriter), leaving out
 * hop-by-hop fields and those `rules` name. Adds H_HOST / H_DATE / H_CONTENT_LENGTH to `out.flags` for
 * the fields copied. Returns the F_* flags of the fields seen.
 */
export function forwardFields(h: HeaderView, out: FieldSink, rules: ForwardRules): number {
  const b = h._buf;
  const o = h._offs;
  const count = h._count;
  const drop = rules.drop;
  const names = h._names;
  const kinds = rules.request ? REQUEST_KIND : RESPONSE_KIND;
  let seen = 0;
  let run = -1; // start of the current run of kept lines
  for (let i = 0; i < count; i++) {
    const n0 = o[4 * i]!;
    const n1 = o[4 * i + 1]!;
    const kind = kinds[names[i]!]!;
    let keep = kind >= 0;
    let flag = 0;
    if (kind > 0) {
      seen |= kind;
      switch (kind) {
        case F_HOST:
          keep = !rules.dropHost;
          flag = H_HOST;
          break;
        case F_DATE:
          flag = H_DATE;
          break;
        case F_CONTENT_LENGTH:
          keep = !rules.dropLength;
          flag = H_CONTENT_LENGTH;
          break;
        case F_VIA:
          break;
        default:
          keep = false;
      }
    }
    if (keep && drop !== undefined && drop.size > 0 && drop.has(b.latin1Slice(n0, n1).toLowerCase())) keep = false;
    if (keep) {
      out.flags |= flag;
      if (run < 0) run = n0;
    } else if (run >= 0) {
      copy(b, run, n0, out);
      run = -1;
    }
  }
  if (run >= 0) {
    // The last kept run ends with the last field line's CRLF (OWS may follow the value).
    let e = o[4 * (count - 1) + 3]!;
    while (b[e] !== 13) e++;
    copy(b, run, e + 2, out);
  }
  return seen;
}

function copy(b: Buffer, s: number, e: number, out: FieldSink): void {
  reserve(out, e - s);
  copyBytes(b, s, e, out.buf, out.len);
  out.len += e - s;
}


/**
 * A request-target routed and forwarded as sent, without a string: where its path ends (at '?', or its
 * end), or -1 when the target is not origin-form or has bytes the URL parser would change (`%`, `\\`,
 * `#`, a dot segment): then route on req.url, normalized.
 */
export function plainPathEnd(req: ServerRequest): number {
  const b = req._buf;
  const s = req._t0;
  const e = req._t1;
  if (b[s] !== 47) return -1;
  let q = -1;
  for (let i = s + 1; i < e; i++) {
    const c = b[i]!;
    if (c === 37 || c === 92 || c === 35) return -1;
    if (c === 46 && b[i - 1] === 47) return -1;
    if (c === 63 && q < 0) q = i;
  }
  return q < 0 ? e : q;
}

/** Whether the request-target's bytes up to `end` (plainPathEnd's) start with `prefix` (latin1). */
export function targetStartsWith(req: ServerRequest, end: number, prefix: string): boolean {
  const b = req._buf;
  const s = req._t0;
  const n = prefix.length;
  if (end - s < n) return false;
  for (let i = 0; i < n; i++) if (b[s + i] !== prefix.charCodeAt(i)) return false;
  return true;
}

const HTTP11 = Buffer.from(' HTTP/1.1\r\n');

/** Appends the request line `<method> <target as sent> HTTP/1.1` to an upstream head. */
export function appendRequestLine(out: RawHead, method: string, req: ServerRequest): void {
  const s = req._t0;
  const e = req._t1;
  if (req._buf[e + 8] === 49) {
    // HTTP/1.1: the line as it came, in one copy (the scanner takes no other form than the method, one
    // SP, the target, one SP, "HTTP/1.x" CRLF).
    copy(req._buf, s - method.length - 1, e + 11, out);
    return;
  }
  appendLatin1(out, method);
  reserve(out, e - s + 1 + HTTP11.length);
  out.buf[out.len++] = 32;
  copy(req._buf, s, e, out);
  appendBytes(out, HTTP11);
}

/**
 * What a handler kept for the connection `req` came on (setConnectionState), undefined until then: the
 * request object is the connection's, reused by each of its requests, so this lasts as long as the
 * connection (a proxy keeps its Forwarded fields for the client's address here).
 */
export function connectionState(req: ServerRequest): unknown {
  return req._kept;
}

/** Keeps `v` for the next requests on `req`'s connection (connectionState). */
export function setConnectionState(req: ServerRequest, v: unknown): void {
  req._kept = v;
}

/**
 * Whether `h` has one Host field and its value's bytes are `value` (an empty `value`: no Host field),
 * without making a string.
 */
export function hostBytesAre(h: HeaderView, value: Uint8Array): boolean {
  const b = h._buf;
  const o = h._offs;
  const names = h._names;
  const count = h._count;
  const n = value.length;
  for (let i = 0; i < count; i++) {
    if (names[i] !== Name.HOST) continue;
    const v0 = o[4 * i + 2]!;
    if (n === 0 || o[4 * i + 3]! - v0 !== n) return false;
    for (let j = 0; j < n; j++) if (b[v0 + j] !== value[j]) return false;
    // A second Host would be joined into the value (HeaderView.get).
    for (let k = i + 1; k < count; k++) if (names[k] === Name.HOST) return false;
    return true;
  }
  return n === 0;
}

/**
 * The names the Connection fields of `h` list (lower case, without close and keep-alive), as
 * connectionNames(h.get('connection')); undefined when none. A head whose Connection fields the scanner found
 * to hold only keep-alive / close tokens (HeaderView._connNames false: the usual ones) is not looked at
 * again.
 */
export function connectionNamesOf(h: HeaderView): Set<string> | undefined {
  return h._connNames ? connectionNames(h.get('connection')) : undefined;
}

/** The names a Connection field value lists (lower case), minus close / keep-alive / upgrade; undefined when none. */
export function connectionNames(v: string | null): Set<string> | undefined {
  if (v === null || v.length === 10 || v.length === 5) {
    if (v === null) return undefined;
    const l = v.toLowerCase();
    if (l === 'keep-alive' || l === 'close') return undefined; // the usual values, without a split
  }
  let s: Set<string> | undefined;
  for (const t of v.split(',')) {
    const x = t.trim().toLowerCase();
    if (x === '' || x === 'close' || x === 'keep-alive') continue;
    (s ??= new Set()).add(x);
  }
  return s;
}

/**
 * Calls `fn` if the client closes or resets its connection while the handler still waits, with the
 * request read and no response begun (checked from the server's next tick on; see ServerRequest).
 * One per request; the server forgets it when the handler returns.
 */
export function onClientGone(req: ServerRequest, fn: (() => void) | undefined): void {
  req._onGone = fn;
}

/** Puts field lines copied by forwardFields into the response head (after writeHead's fields). */
export function rawFields(res: ServerResponse, head: RawHead): void {
  res._rawFields(head);
}

/**
 * Has `w` write its field lines straight into the response head when the server builds it (after
 * writeHead's fields), instead of rawFields' copy of a RawHead: for a head built at once (endNow), since
 * whatever `w` copies from must not change before.
 */
export function rawFieldsFrom(res: ServerResponse, w: FieldWriter | undefined): void {
  res._rawFieldsFrom(w);
}

/**
 * Ends a response now when its last piece (optional) can be queued without waiting (nothing in flight,
 * a piece the write buffer takes): true, and the server's loop sends it. False: nothing was done, call
 * res.end(). Throws what res.end() rejects with.
 */
export function endNow(res: ServerResponse, piece?: Uint8Array): boolean {
  return res._endNow(piece);
}

/**
 * endNow() with the rest of a body that is whole in its connection's buffer (wholeBuffered(body)) as the
 * last piece, copied from there into the write buffer (no view of it is made): true when the response
 * ended now, the rest then taken from the body as bufferedPiece() takes it (endBody() ends it); false
 * with nothing done. Throws what endNow() throws (nothing taken).
 */
export function endNowBuffered(res: ServerResponse, body: IncomingBody): boolean {
  const src = body._src!;
  if (!res._endNowFrom(src.rbuf, src.rpos, src.rpos + body._remaining)) return false;
  body._takeWhole();
  return true;
}

/** Whether endNow(res, piece) would end the response now for a last piece of `n` bytes (0: none). */
export function canEndNow(res: ServerResponse, n: number): boolean {
  return res._canEndNow(n);
}

/** Whether the rest of a Content-Length body is already in its connection's buffer: bufferedPiece() then takes all of it. */
export function wholeBuffered(body: IncomingBody): boolean {
  return body._wholeBuffered();
}

/**
 * The handler answers `res` later without returning a promise: the server waits for release() (on its
 * lease path with no promise at all). Call it before returning undefined from the handler.
 */
export function hold(res: ServerResponse): void {
  res._held = true;
}

/**
 * Ends a hold(): the response was ended (or `err`: the handler failed with it, as a rejected handler
 * promise would). The connection goes on with its next request.
 */
export function release(res: ServerResponse, err?: unknown): void {
  res._release(err);
}

/** The client's pool handle for an origin URL ("http://host:port"), for send(). */
export function origin(client: HttpClient, url: string): unknown {
  return client._origin(url);
}

/**
 * Sends a request whose head (request line and fields, without the blank line) is `head`, through the
 * client's pool for `origin`; `call` can cancel it until its response head arrives (cancel()). Without a
 * body, `head.buf` may be exchanged for another buffer (the connection sends the head's own, uncopied):
 * once the response head arrived its bytes are gone; when the request fails they are back in
 * `head.buf` (the same length), to send again.
 */
export function send(client: HttpClient, to: unknown, method: string, head: RawHead, body: AsyncIterable<Uint8Array> | null, call: CallHandle): Promise<ClientResponse> {
  return client._send(to, method, head, body, call);
}

/**
 * send() for a bodiless request, answered through `call._onHead(res)` or `call._onFail(err)` (neither may
 * throw) instead of a promise: the usual proxied request allocates no promise here. `head.buf` as with
 * send(). The response may
 * have been parsed in the receive lease it arrived in: a body piece taken during `_onHead` should be
 * written before it returns (endNow); one kept past it holds the lease until the body is read on.
 */
export function sendTo(client: HttpClient, to: unknown, method: string, head: RawHead, call: CallHandle): void {
  client._sendTo(to, method, head, call);
}

/** Cancels a request made with send() whose response head has not arrived: it fails with ERR_RINGIO_CLOSED. */
export function cancel(client: HttpClient, call: CallHandle): void {
  client._cancel(call);
}

/** A response body's next piece when it is already in the connection's buffer (no promise), else undefined: then read(). */
export function bufferedPiece(body: IncomingBody): Uint8Array | undefined {
  return body._buffered();
}

/** After the last piece of a body was taken and written: its end (as the read past it), which frees a client's connection. */
export function endBody(body: IncomingBody): void {
  body._release();
}
