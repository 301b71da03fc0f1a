/**
 * The HTTP/1.1 head scanner: one pass over the rented read buffer, no string made until asked.
 *
 * Rules (RFC 9112; §6.3 and §11 on smuggling):
 *  1. The head ends at the first CRLF CRLF. Lines end in CRLF only: a bare CR or a bare LF is an error.
 *  2. A field line is `token ":" OWS value OWS CRLF`: whitespace before the colon, a line that starts
 *     with whitespace (obs-fold), an empty name, or a byte outside its class is an error.
 *  3. The scanner records four offsets per field (name and value, trimmed) in `offs`, and the framing
 *     fields (Content-Length, Transfer-Encoding, Connection, Expect, Upgrade, Host) as it passes them.
 *  4. Framing is checked as the server (`request`) or client (`response`) must: Content-Length with
 *     Transfer-Encoding, differing Content-Lengths, a Content-Length that is not 1*DIGIT, or a
 *     Transfer-Encoding whose last coding is not chunked (requests) all fail.
 *  5. A failure sets `errStatus` (the status a server answers with: 400, 414, 417, 431, 501, 505) and
 *     `errReason`; the caller closes the connection after answering.
 */

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;

// The tables are module-local on purpose: V8 reads an exported binding through its module cell with a
// TDZ check at every use, a module-local const once.
/** tchar (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(256);
/** field-value bytes: HT, SP, VCHAR, obs-text. */
const VALUE = new Uint8Array(256);
/** request-target bytes: VCHAR only. */
const TARGET = new Uint8Array(256);
/** hex digit value + 1 (0: not a hex digit). */
const HEX = new Uint8Array(256);
{
  const t = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (let i = 0; i < t.length; i++) TCHAR[t.charCodeAt(i)] = 1;
  VALUE[HT] = 1;
  for (let c = 0x20; c <= 0x7e; c++) VALUE[c] = 1;
  for (let c = 0x80; c <= 0xff; c++) VALUE[c] = 1;
  for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
  const h = '0123456789abcdef';
  for (let i = 0; i < 16; i++) {
    HEX[h.charCodeAt(i)] = i + 1;
    HEX[h.toUpperCase().charCodeAt(i)] = i + 1;
  }
}

/**
 * Field name codes (HeadParser.names): the framing fields, and the ones a proxy leaves out or reads
 * (forward.ts), so that it need not compare their names again. A const enum: TypeScript writes its
 * members as literals (an imported or exported const costs a module-cell load and TDZ check per use).
 */
export const enum Name {
  OTHER = 0,
  TE = 1,
  VIA = 2,
  HOST = 3,
  DATE = 4,
  EXPECT = 5,
  UPGRADE = 6,
  TRAILER = 7,
  FORWARDED = 8,
  CONNECTION = 9,
  KEEP_ALIVE = 10,
  CONTENT_LENGTH = 11,
  X_FORWARDED_FOR = 12,
  PROXY_CONNECTION = 13,
  X_FORWARDED_HOST = 14,
  TRANSFER_ENCODING = 15,
  X_FORWARDED_PROTO = 16,
  PROXY_AUTHENTICATE = 17,
  PROXY_AUTHORIZATION = 18,
  COUNT = 19,
}

/** Connection option flags (HeadParser.conn), as literals (see Name). */
export const enum ConnOpt {
  CLOSE = 1,
  KEEP_ALIVE = 2,
  UPGRADE = 4,
  /** A Connection field lists a token other than keep-alive and close (upgrade included): a proxy must read its names. */
  OTHER = 8,
}
/** ConnOpt.OTHER, for tests (which read the compiled module). */
export const CONN_OTHER = ConnOpt.OTHER;

/** Compares buf[s, e) with a lower-case ASCII word, ignoring the case of letters. */
export function eqLower(buf: Uint8Array, s: number, e: number, word: string): boolean {
  if (e - s !== word.length) return false;
  for (let i = 0; i < word.length; i++) {
    let c = buf[s + i]!;
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== word.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A lower-case word (4 bytes or more) for eqToken, as pairs (offset, the 4 bytes at that offset as a
 * little-endian int32): at 0, 4, 8... and, when its length is not a multiple of 4, its last 4 bytes.
 */
function word(w: string): Int32Array {
  const n = w.length;
  if (n < 4) throw new RangeError(`word shorter than 4 bytes: ${w}`);
  const k: number[] = [];
  for (let o = 0; ; o += 4) {
    if (o > n - 4) o = n - 4;
    k.push(o, (w.charCodeAt(o) | (w.charCodeAt(o + 1) << 8) | (w.charCodeAt(o + 2) << 16) | (w.charCodeAt(o + 3) << 24)) | 0);
    if (o === n - 4) break;
  }
  return Int32Array.from(k);
}

/**
 * Whether buf[s, s + n) is the lower-case word `w` (letters, digits and '-') of n bytes, ignoring the
 * case of letters, four bytes a step: `| 0x20` on each byte folds A-Z to a-z and leaves digits and '-'
 * as they are; the only other bytes it maps onto a word's (CR onto '-', 0x10-0x19 onto digits) are
 * controls, which a checked name or value cannot hold. For checked names and values only (the
 * scanner's); the caller compares the lengths (n >= 4).
 */
function eqToken(buf: Uint8Array, s: number, w: Int32Array): boolean {
  for (let j = 0; j < w.length; j += 2) {
    const p = s + w[j]!;
    if ((buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24) | 0x20202020) !== w[j + 1]) return false;
  }
  return true;
}

/** The names with a code (N_*), lower case. */
const NAMES: [number, string][] = [
  [Name.TE, 'te'], [Name.VIA, 'via'], [Name.HOST, 'host'], [Name.DATE, 'date'], [Name.EXPECT, 'expect'], [Name.UPGRADE, 'upgrade'],
  [Name.TRAILER, 'trailer'], [Name.FORWARDED, 'forwarded'], [Name.CONNECTION, 'connection'], [Name.KEEP_ALIVE, 'keep-alive'],
  [Name.CONTENT_LENGTH, 'content-length'], [Name.X_FORWARDED_FOR, 'x-forwarded-for'], [Name.PROXY_CONNECTION, 'proxy-connection'],
  [Name.X_FORWARDED_HOST, 'x-forwarded-host'], [Name.TRANSFER_ENCODING, 'transfer-encoding'], [Name.X_FORWARDED_PROTO, 'x-forwarded-proto'],
  [Name.PROXY_AUTHENTICATE, 'proxy-authenticate'], [Name.PROXY_AUTHORIZATION, 'proxy-authorization'],
];
/**
 * By a name's length (< 20) and its first byte's low 5 bits (`(len << 5) | (c & 31)`: a letter's in either
 * case): the code of the one name of NAMES with that length and first letter, or Name.OTHER. No two of
 * NAMES share both. A name with another first byte (a digit, say) may map onto a letter's entry:
 * #classify compares the whole name.
 */
const CANDIDATE = new Uint8Array(20 << 5);
/** The words of NAMES (4 bytes or longer) for eqToken, by code. */
const NAME_WORDS: (Int32Array | undefined)[] = [];
for (const [code, name] of NAMES) {
  const k = (name.length << 5) | (name.charCodeAt(0) & 31);
  if (name.length >= 20 || CANDIDATE[k] !== Name.OTHER) throw new Error(`name table: ${name}`);
  CANDIDATE[k] = code;
  NAME_WORDS[code] = name.length >= 4 ? word(name) : undefined;
}
const W_KEEP_ALIVE = word('keep-alive');
/**
 * The field section length (bytes after the start line, to the end given) from which #fieldsOnePass
 * reads four bytes at a time in a buffer it has no DataView of yet: below it, making the view costs
 * more than the words save (a request from wrk or curl), above it (an nginx response head) less.
 */
const WORDS_MIN = 64;
/** A DataView of its whole ArrayBuffer per buffer a long head was read from (see #fieldsOnePass). */
const VIEWS = new WeakMap<Buffer, DataView<ArrayBufferLike>>();
const W_UPGRADE = word('upgrade');
const W_CLOSE = word('close');
const W_100_CONTINUE = word('100-continue');

function methodOf(buf: Buffer, s: number, e: number): string {
  const c = buf[s];
  switch (e - s) {
    case 3:
      if (c === 71 && buf[s + 1] === 69 && buf[s + 2] === 84) return 'GET';
      if (c === 80 && buf[s + 1] === 85 && buf[s + 2] === 84) return 'PUT';
      break;
    case 4:
      if (c === 80 && buf[s + 1] === 79 && buf[s + 2] === 83 && buf[s + 3] === 84) return 'POST';
      if (c === 72 && buf[s + 1] === 69 && buf[s + 2] === 65 && buf[s + 3] === 68) return 'HEAD';
      break;
    case 5:
      if (buf.latin1Slice(s, e) === 'PATCH') return 'PATCH';
      if (buf.latin1Slice(s, e) === 'TRACE') return 'TRACE';
      break;
    case 6:
      if (c === 68 && buf.latin1Slice(s, e) === 'DELETE') return 'DELETE';
      break;
    case 7:
      if (c === 79 && buf.latin1Slice(s, e) === 'OPTIONS') return 'OPTIONS';
      if (c === 67 && buf.latin1Slice(s, e) === 'CONNECT') return 'CONNECT';
      break;
  }
  return buf.latin1Slice(s, e);
}

export interface HeadLimits {
  maxHeaders: number;
  maxHeaderSize: number;
  maxRequestLineSize: number;
}

export class HeadParser {
  /**
   * Whether a head whole in the buffer is scanned in one pass (request(), response()). Tests turn it
   * off to check that both ways give the same results; nothing else should.
   */
  static onePass = true;

  /** Four offsets per field line: name start, name end, value start, value end (absolute). */
  offs: Int32Array;
  /** Per field line, its name's code (N_*: the names the scanner or a proxy looks at; Name.OTHER for the rest). */
  names: Uint8Array;
  count = 0;
  readonly limits: HeadLimits;

  // Start line.
  method = '';
  targetStart = 0;
  targetEnd = 0;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor = 1;
  status = 0;
  reasonStart = 0;
  reasonEnd = 0;

  // Framing.
  /** -1: no Content-Length. */
  contentLength = -1;
  hasTE = false;
  chunked = false;
  conn = 0;
  expectContinue = false;
  hasUpgrade = false;
  hostCount = 0;

  headStart = 0;
  headEnd = 0;
  /** The buffer #fieldsOnePass last read words from, and its view (VIEWS'). */
  #viewBuf: Buffer | undefined;
  #view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  /** Where the search for the end of the head resumes (a head can arrive in drips). */
  #scanFrom = -1;

  errStatus = 0;
  errReason = '';

  constructor(limits: HeadLimits) {
    this.limits = limits;
    this.offs = new Int32Array(4 * limits.maxHeaders);
    this.names = new Uint8Array(limits.maxHeaders);
  }

  /** Forgets a partial head (the buffer was compacted or reset). */
  resetScan(): void {
    this.#scanFrom = -1;
  }

  #fail(status: number, reason: string): number {
    this.errStatus = status;
    this.errReason = reason;
    this.#scanFrom = -1;
    return -1;
  }

  /**
   * Finds the end of a head that starts at `start` (leading empty lines skipped for requests).
   * Returns the offset after CRLF CRLF, 0 when more bytes are needed, -1 on a limit error.
   */
  #findEnd(buf: Buffer, start: number, end: number, isRequest: boolean): number {
    // One pass in JS (cheaper than a native indexOf for heads of tens of bytes): find CRLF CRLF, and
    // refuse a bare LF or CR on the way (it would keep the head from ever completing).
    let q = this.#scanFrom < start ? start : this.#scanFrom;
    for (; q < end; q++) {
      const c = buf[q];
      if (c === LF) {
        if (q === start || buf[q - 1] !== CR) return this.#fail(400, 'bare LF in the head');
        if (q - 3 >= start && buf[q - 2] === LF && buf[q - 3] === CR) {
          this.#scanFrom = -1;
          if (q + 1 - start > this.limits.maxHeaderSize) return this.#lineLimit(buf, start, end, isRequest, true);
          return q + 1;
        }
      } else if (c === CR && q + 1 < end && buf[q + 1] !== LF) {
        return this.#fail(400, 'bare CR in the head');
      }
    }
    this.#scanFrom = end;
    if (end - start > this.limits.maxHeaderSize) return this.#lineLimit(buf, start, end, isRequest, true);
    return this.#lineLimit(buf, start, end, isRequest, false);
  }

  /** 414 for a request line over its limit, else 431 when `over`, else 0 (need more). */
  #lineLimit(buf: Buffer, start: number, end: number, isRequest: boolean, over: boolean): number {
    const max = this.limits.maxRequestLineSize;
    const lf = buf.indexOf(LF, start);
    const lineLen = lf < 0 || lf >= end ? end - start : lf - start;
    if (isRequest && lineLen > max) return this.#fail(414, 'request line too long');
    if (over) return this.#fail(431, 'header section too large');
    return 0;
  }

  #resetFields(): void {
    this.count = 0;
    this.contentLength = -1;
    this.hasTE = false;
    this.chunked = false;
    this.conn = 0;
    this.expectContinue = false;
    this.hasUpgrade = false;
    this.hostCount = 0;
    this.errStatus = 0;
  }

  /**
   * Scans a request head in buf[start, end). Returns the offset just past the head, 0 when the head
   * is not complete yet, or -1 (errStatus/errReason set).
   */
  request(buf: Buffer, start: number, end: number): number {
    // RFC 9112 §2.2: ignore empty lines before the request line.
    while (start + 1 < end && buf[start] === CR && buf[start + 1] === LF) start += 2;
    if (start < end && (buf[start] === CR || buf[start] === LF)) {
      if (buf[start] === LF || start + 1 < end) return this.#fail(400, 'bare CR or LF before the request line');
      return 0;
    }
    // A head the buffer holds whole and valid (the usual one) is scanned once; anything else (a head
    // still arriving, or one with an error or over a limit) goes the two-pass way, which finds the end
    // first (and resumes there as bytes drip in) and says what is wrong exactly as before.
    if (HeadParser.onePass && this.#scanFrom < start) {
      if (this.#requestOnePass(buf, start, end)) return this.headEnd;
      this.errStatus = 0;
    }
    const headEnd = this.#findEnd(buf, start, end, true);
    if (headEnd <= 0) return headEnd;
    this.#resetFields();
    this.headStart = start;
    this.headEnd = headEnd;
    let p = start;
    while (TCHAR[buf[p]!] === 1) p++;
    if (p === start || buf[p] !== SP) return this.#fail(400, 'bad method');
    this.method = methodOf(buf, start, p);
    p++;
    const t0 = p;
    while (TARGET[buf[p]!] === 1) p++;
    if (p === t0 || buf[p] !== SP) return this.#fail(400, 'bad request-target');
    this.targetStart = t0;
    this.targetEnd = p;
    p++;
    // HTTP-version CRLF
    if (buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47) {
      return this.#fail(400, 'bad HTTP version');
    }
    const major = buf[p + 5]! - 48;
    const minor = buf[p + 7]! - 48;
    if (major < 0 || major > 9 || buf[p + 6] !== 46 || minor < 0 || minor > 9) return this.#fail(400, 'bad HTTP version');
    if (buf[p + 8] !== CR || buf[p + 9] !== LF) return this.#fail(400, 'bad request line ending');
    if (major !== 1) return this.#fail(505, 'HTTP version not supported');
    this.minor = minor === 0 ? 0 : 1;
    p += 10;
    if (p - start > this.limits.maxRequestLineSize) return this.#fail(414, 'request line too long');
    if (this.#fields(buf, p, headEnd) < 0) return -1;
    return this.#requestFraming() ? headEnd : -1;
  }

  /** Framing (RFC 9112 §6.1, §6.3) of the request head just scanned: false after #fail. */
  #requestFraming(): boolean {
    if (this.hasTE) {
      if (this.contentLength >= 0) return this.#fail(400, 'both Content-Length and Transfer-Encoding') === 0;
      if (this.minor === 0) return this.#fail(400, 'Transfer-Encoding in an HTTP/1.0 request') === 0;
      if (!this.chunked) return this.#fail(400, 'Transfer-Encoding does not end in chunked') === 0;
    }
    if (this.minor === 1 && this.hostCount !== 1) {
      return this.#fail(400, this.hostCount === 0 ? 'missing Host' : 'more than one Host') === 0;
    }
    return true;
  }

  /**
   * request() in one pass over a head that is whole in buf[start, end) and valid: true with the head
   * scanned (headEnd set), as the two passes would have it. False for anything else (more bytes needed,
   * an error, a limit): the caller then takes the two passes, which redo it all. Equal results: a head
   * this accepts has no CR or LF but its line ends, so its first CRLF CRLF is where this finds its
   * empty line, and its lines are scanned by the same rules in the same order.
   */
  #requestOnePass(buf: Buffer, start: number, end: number): boolean {
    let p = start;
    while (p < end && TCHAR[buf[p]!] === 1) p++;
    if (p === start || p >= end || buf[p] !== SP) return false;
    const m1 = p;
    p++;
    const t0 = p;
    while (p < end && TARGET[buf[p]!] === 1) p++;
    if (p === t0 || p + 10 >= end || buf[p] !== SP) return false;
    const t1 = p;
    p++;
    if (buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 5] !== 49 || buf[p + 6] !== 46) return false;
    const minor = buf[p + 7]! - 48;
    if (minor < 0 || minor > 9 || buf[p + 8] !== CR || buf[p + 9] !== LF) return false;
    p += 10;
    if (p - start > this.limits.maxRequestLineSize) return false;
    this.#resetFields();
    this.method = methodOf(buf, start, m1);
    this.targetStart = t0;
    this.targetEnd = t1;
    this.minor = minor === 0 ? 0 : 1;
    const headEnd = this.#fieldsOnePass(buf, p, end, start);
    if (headEnd === 0 || !this.#requestFraming()) return false;
    this.headStart = start;
    this.headEnd = headEnd;
    return true;
  }

  /** response() in one pass (see #requestOnePass). */
  #responseOnePass(buf: Buffer, start: number, end: number): boolean {
    let p = start;
    if (p + 15 > end || buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 5] !== 49 || buf[p + 6] !== 46) return false;
    const minor = buf[p + 7]! - 48;
    if (minor < 0 || minor > 9 || buf[p + 8] !== SP) return false;
    const d0 = buf[p + 9]! - 48;
    const d1 = buf[p + 10]! - 48;
    const d2 = buf[p + 11]! - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
    p += 12;
    let r0 = p;
    if (buf[p] === SP) {
      p++;
      r0 = p;
      while (p < end && VALUE[buf[p]!] === 1) p++;
    }
    const r1 = p;
    if (p + 1 >= end || buf[p] !== CR || buf[p + 1] !== LF) return false;
    this.#resetFields();
    this.minor = minor === 0 ? 0 : 1;
    this.status = d0 * 100 + d1 * 10 + d2;
    this.reasonStart = r0;
    this.reasonEnd = r1;
    const headEnd = this.#fieldsOnePass(buf, p + 2, end, start);
    if (headEnd === 0 || (this.hasTE && this.contentLength >= 0)) return false;
    this.headStart = start;
    this.headEnd = headEnd;
    return true;
  }

  /**
   * The field lines from p and the empty line after them, in buf[p, end), of a head that starts at
   * `start`: the offset past the head, or 0 (not whole, an error or a limit: see #requestOnePass).
   */
  #fieldsOnePass(buf: Buffer, p: number, end: number, start: number): number {
    const offs = this.offs;
    const names = this.names;
    const max = this.limits.maxHeaders;
    const tchar = TCHAR;
    const candidate = CANDIDATE;
    // Four bytes at a time through a DataView (one check of the view per load, where a byte read checks
    // `buf` each time): names while all four are letters or '-', values while all four are value bytes
    // but HT, exactly (see WORDS_MIN); the bytes after the last whole word one at a time, by the tables.
    // A buffer's view is made once (buf.buffer and the DataView constructor are calls into C++) and
    // kept in VIEWS (heads come in a few buffers again and again: a receive pool's, a connection's); the
    // parser remembers the last one. A short head (WORDS_MIN) in another buffer is read byte by byte
    // (the WeakMap look-up costs about what its words would save).
    let view = this.#view;
    let wend = end;
    if (this.#viewBuf !== buf) {
      if (end - p >= WORDS_MIN) {
        let known = VIEWS.get(buf);
        if (known === undefined) VIEWS.set(buf, (known = new DataView(buf.buffer)));
        view = this.#view = known;
        this.#viewBuf = buf;
      } else wend = 0;
    }
    const base = buf.byteOffset;
    let i = 0;
    for (;;) {
      if (p + 1 >= end) return 0;
      if (buf[p] === CR) {
        if (buf[p + 1] !== LF || p + 2 - start > this.limits.maxHeaderSize) return 0;
        this.count = i;
        return p + 2;
      }
      const n0 = p;
      // A byte b is a letter iff (b | 0x20) is in 0x61-0x7a and b < 0x80; each test below is on bit 7 of
      // each byte, on 7-bit values (no carry from one byte into the next): h + 0x1f has it iff h >= 0x61,
      // h + 0x05 iff h >= 0x7b; a '-' is a zero byte of x ^ 0x2d2d2d2d (bit 7 of (d & 0x7f) + 0x7f, or of
      // d itself, is clear only for 0).
      while (p + 4 <= wend) {
        const x = view.getInt32(base + p, true);
        const h = (x | 0x20202020) & 0x7f7f7f7f;
        const d = x ^ 0x2d2d2d2d;
        const letter = (h + 0x1f1f1f1f) & ~(h + 0x05050505) & ~x;
        const dash = ~(((d & 0x7f7f7f7f) + 0x7f7f7f7f) | d);
        if (((letter | dash) & -0x7f7f7f80) !== -0x7f7f7f80) break;
        p += 4;
      }
      while (p < end && tchar[buf[p]!] === 1) p++;
      const n1 = p;
      if (n1 === n0 || p >= end || buf[p] !== COLON) return 0;
      p++;
      while (p < end && (buf[p] === SP || buf[p] === HT)) p++;
      const v0 = p;
      // No byte below 0x20 and none 0x7f: (x - 0x20202020) & ~x has a byte's bit 7 set where the first
      // byte below 0x20 is (a borrow starts only at such a byte, so none is missed and none is made up),
      // the same on x ^ 0x7f7f7f7f for a zero byte (a 0x7f in x).
      while (p + 4 <= wend) {
        const x = view.getInt32(base + p, true);
        const y = x ^ 0x7f7f7f7f;
        if ((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & -0x7f7f7f80) break;
        p += 4;
      }
      let c = 0;
      while (p < end && ((c = buf[p]!) > 31 ? c !== 127 : c === HT)) p++;
      if (p + 1 >= end || c !== CR || buf[p + 1] !== LF) return 0;
      let v1 = p;
      while (v1 > v0 && (buf[v1 - 1] === SP || buf[v1 - 1] === HT)) v1--;
      p += 2;
      if (i === max) return 0;
      const k = 4 * i;
      offs[k] = n0;
      offs[k + 1] = n1;
      offs[k + 2] = v0;
      offs[k + 3] = v1;
      // Most names are none of the scanner's: their length and first letter say so (no call).
      const len = n1 - n0;
      const cand = len < 20 ? candidate[(len << 5) | (buf[n0]! & 31)]! : Name.OTHER;
      if (cand === Name.OTHER) names[i] = Name.OTHER;
      else if (this.#classify(buf, cand, n0, v0, v1, i) < 0) return 0;
      i++;
    }
  }

  /** Scans a response head (client side). Same returns as request(). */
  response(buf: Buffer, start: number, end: number): number {
    if (HeadParser.onePass && this.#scanFrom < start) {
      if (this.#responseOnePass(buf, start, end)) return this.headEnd;
      this.errStatus = 0;
    }
    const headEnd = this.#findEnd(buf, start, end, false);
    if (headEnd <= 0) return headEnd;
    this.#resetFields();
    this.headStart = start;
    this.headEnd = headEnd;
    let p = start;
    if (buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 5] !== 49 || buf[p + 6] !== 46) {
      return this.#fail(502, 'bad status line');
    }
    const minor = buf[p + 7]! - 48;
    if (minor < 0 || minor > 9 || buf[p + 8] !== SP) return this.#fail(502, 'bad status line');
    this.minor = minor === 0 ? 0 : 1;
    p += 9;
    const d0 = buf[p]! - 48;
    const d1 = buf[p + 1]! - 48;
    const d2 = buf[p + 2]! - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.#fail(502, 'bad status code');
    this.status = d0 * 100 + d1 * 10 + d2;
    p += 3;
    if (buf[p] === SP) {
      p++;
      const r0 = p;
      while (VALUE[buf[p]!] === 1) p++;
      this.reasonStart = r0;
      this.reasonEnd = p;
    } else {
      this.reasonStart = this.reasonEnd = p;
    }
    if (buf[p] !== CR || buf[p + 1] !== LF) return this.#fail(502, 'bad status line');
    p += 2;
    if (this.#fields(buf, p, headEnd) < 0) return -1;
    if (this.hasTE && this.contentLength >= 0) return this.#fail(502, 'both Content-Length and Transfer-Encoding');
    return headEnd;
  }

  /** Field lines from p up to the final CRLF (headEnd - 2). */
  #fields(buf: Buffer, p: number, headEnd: number): number {
    const offs = this.offs;
    const names = this.names;
    const max = this.limits.maxHeaders;
    const last = headEnd - 2;
    while (p < last) {
      const c = buf[p]!;
      if (c === SP || c === HT) return this.#fail(400, 'obs-fold or whitespace at the start of a field line');
      const n0 = p;
      while (TCHAR[buf[p]!] === 1) p++;
      const n1 = p;
      if (buf[p] !== COLON) {
        if (p === n0) return this.#fail(400, 'empty or invalid field name');
        if (buf[p] === SP || buf[p] === HT) return this.#fail(400, 'whitespace before the colon');
        return this.#fail(400, 'invalid byte in a field name');
      }
      if (n1 === n0) return this.#fail(400, 'empty field name');
      p++;
      while (buf[p] === SP || buf[p] === HT) p++;
      const v0 = p;
      while (VALUE[buf[p]!] === 1) p++;
      if (buf[p] !== CR) return this.#fail(400, buf[p] === LF ? 'bare LF in a field line' : 'invalid byte in a field value');
      if (buf[p + 1] !== LF) return this.#fail(400, 'bare CR in a field line');
      let v1 = p;
      while (v1 > v0 && (buf[v1 - 1] === SP || buf[v1 - 1] === HT)) v1--;
      p += 2;
      const i = this.count;
      if (i === max) return this.#fail(431, 'too many header fields');
      offs[4 * i] = n0;
      offs[4 * i + 1] = n1;
      offs[4 * i + 2] = v0;
      offs[4 * i + 3] = v1;
      this.count = i + 1;
      const cand = n1 - n0 < 20 ? CANDIDATE[((n1 - n0) << 5) | (buf[n0]! & 31)]! : Name.OTHER;
      if (cand === Name.OTHER) names[i] = Name.OTHER;
      else if (this.#classify(buf, cand, n0, v0, v1, i) < 0) return -1;
    }
    return 0;
  }

  /**
   * Field line i, whose name may be the one of code `cand` (CANDIDATE's, not Name.OTHER): its name's code
   * (N_*, kept in `names`) once the whole name is compared, and the framing it carries.
   */
  #classify(buf: Buffer, cand: number, n0: number, v0: number, v1: number, i: number): number {
    let code = cand;
    if (cand === Name.TE) {
      if ((buf[n0]! | 0x20) !== 116 || (buf[n0 + 1]! | 0x20) !== 101) code = Name.OTHER;
    } else if (cand === Name.VIA) {
      if ((buf[n0]! | 0x20) !== 118 || (buf[n0 + 1]! | 0x20) !== 105 || (buf[n0 + 2]! | 0x20) !== 97) code = Name.OTHER;
    } else if (!eqToken(buf, n0, NAME_WORDS[cand]!)) code = Name.OTHER;
    this.names[i] = code;
    switch (code) {
      case Name.HOST:
        this.hostCount++;
        break;
      case Name.EXPECT:
        if (v1 - v0 === 12 && eqToken(buf, v0, W_100_CONTINUE)) this.expectContinue = true;
        else return this.#fail(417, 'unsupported expectation');
        break;
      case Name.UPGRADE:
        this.hasUpgrade = true;
        break;
      case Name.CONNECTION:
        // The usual value here, the rest in #connection (a call).
        if (v1 - v0 === 10 && eqToken(buf, v0, W_KEEP_ALIVE)) this.conn |= ConnOpt.KEEP_ALIVE;
        else this.#connection(buf, v0, v1);
        break;
      case Name.CONTENT_LENGTH:
        return this.#contentLength(buf, v0, v1);
      case Name.TRANSFER_ENCODING:
        return this.#transferEncoding(buf, v0, v1);
    }
    return 0;
  }

  #contentLength(buf: Buffer, v0: number, v1: number): number {
    if (v1 === v0 || v1 - v0 > 15) return this.#fail(400, 'bad Content-Length');
    let n = 0;
    for (let p = v0; p < v1; p++) {
      const d = buf[p]! - 48;
      if (d < 0 || d > 9) return this.#fail(400, 'bad Content-Length');
      n = n * 10 + d;
    }
    if (this.contentLength >= 0 && this.contentLength !== n) return this.#fail(400, 'differing Content-Length values');
    this.contentLength = n;
    return 0;
  }

  /** Transfer-Encoding: a list of codings; chunked only once and last. */
  #transferEncoding(buf: Buffer, v0: number, v1: number): number {
    let p = v0;
    while (p < v1) {
      while (p < v1 && (buf[p] === SP || buf[p] === HT || buf[p] === 44)) p++;
      if (p === v1) break;
      const t0 = p;
      while (p < v1 && TCHAR[buf[p]!] === 1) p++;
      const t1 = p;
      if (t1 === t0) return this.#fail(400, 'bad Transfer-Encoding');
      // Transfer parameters (`;q=...`) belong to the coding before them.
      while (p < v1 && buf[p] !== 44) p++;
      if (this.chunked) return this.#fail(400, 'chunked is not the last transfer coding');
      this.hasTE = true;
      this.chunked = eqLower(buf, t0, t1, 'chunked') && t1 === p;
      if (!this.chunked && eqLower(buf, t0, t1, 'chunked')) return this.#fail(400, 'bad Transfer-Encoding');
    }
    if (!this.hasTE) return this.#fail(400, 'empty Transfer-Encoding');
    return 0;
  }

  #connection(buf: Buffer, v0: number, v1: number): void {
    // The usual values, one token (the value is trimmed): no scan for separators.
    const len = v1 - v0;
    if (len === 10 && eqToken(buf, v0, W_KEEP_ALIVE)) {
      this.conn |= ConnOpt.KEEP_ALIVE;
      return;
    }
    if (len === 5 && eqToken(buf, v0, W_CLOSE)) {
      this.conn |= ConnOpt.CLOSE;
      return;
    }
    let p = v0;
    while (p < v1) {
      while (p < v1 && (buf[p] === SP || buf[p] === HT || buf[p] === 44)) p++;
      const t0 = p;
      while (p < v1 && buf[p] !== 44 && buf[p] !== SP && buf[p] !== HT) p++;
      const n = p - t0;
      if (n === 10 ? eqToken(buf, t0, W_KEEP_ALIVE) : false) this.conn |= ConnOpt.KEEP_ALIVE;
      else if (n === 5 ? eqToken(buf, t0, W_CLOSE) : false) this.conn |= ConnOpt.CLOSE;
      else if (n === 7 ? eqToken(buf, t0, W_UPGRADE) : false) this.conn |= ConnOpt.UPGRADE | ConnOpt.OTHER;
      else if (n > 0) this.conn |= ConnOpt.OTHER;
    }
  }
}

const S_SIZE = 0;
const S_EXT = 1;
const S_SIZE_LF = 2;
const S_DATA = 3;
const S_DATA_CR = 4;
const S_DATA_LF = 5;
const S_TRAILER = 6;
const S_TRAILER_LF = 7;
const S_END_LF = 8;
const S_DONE = 9;

/**
 * The chunked transfer coding (RFC 9112 §7.1) as a state machine over the rented bytes. step()
 * consumes bytes and stops after each piece of chunk data, which it leaves in [dataStart, dataEnd).
 */
export class ChunkedDecoder {
  #state = S_SIZE;
  #size = 0;
  #digits = 0;
  #remaining = 0;
  #lineBytes = 0;
  #trailerBytes = 0;
  readonly maxTrailerSize: number;
  dataStart = -1;
  dataEnd = -1;
  /** The reason of the last error (step() returned -1). */
  error = '';

  constructor(maxTrailerSize: number) {
    this.maxTrailerSize = maxTrailerSize;
  }

  reset(): void {
    this.#state = S_SIZE;
    this.#size = 0;
    this.#digits = 0;
    this.#remaining = 0;
    this.#trailerBytes = 0;
    this.#lineBytes = 0;
  }

  get done(): boolean {
    return this.#state === S_DONE;
  }

  #err(reason: string): number {
    this.error = reason;
    return -1;
  }

  /** Consumes buf[p, end); returns the new position, or -1 on a framing error. */
  step(buf: Uint8Array, p: number, end: number): number {
    this.dataStart = this.dataEnd = -1;
    while (p < end) {
      const c = buf[p]!;
      switch (this.#state) {
        case S_SIZE: {
          const h = HEX[c]!;
          if (h !== 0) {
            if (++this.#digits > 12) return this.#err('chunk size too large');
            this.#size = this.#size * 16 + (h - 1);
            p++;
            break;
          }
          if (this.#digits === 0) return this.#err('bad chunk size');
          if (c === CR) this.#state = S_SIZE_LF;
          else if (c === 59 /* ; */) {
            this.#state = S_EXT;
            this.#lineBytes = 0;
          } else return this.#err('bad chunk size');
          p++;
          break;
        }
        case S_EXT:
          if (c === CR) this.#state = S_SIZE_LF;
          else if (VALUE[c] !== 1 || ++this.#lineBytes > 4096) return this.#err('bad chunk extension');
          p++;
          break;
        case S_SIZE_LF:
          if (c !== LF) return this.#err('bare CR in a chunk size line');
          p++;
          if (this.#size === 0) {
            this.#state = S_TRAILER;
            this.#lineBytes = 0;
          } else {
            this.#remaining = this.#size;
            this.#state = S_DATA;
          }
          this.#size = 0;
          this.#digits = 0;
          break;
        case S_DATA: {
          const avail = end - p;
          const n = avail < this.#remaining ? avail : this.#remaining;
          this.dataStart = p;
          this.dataEnd = p + n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = S_DATA_CR;
          return p + n;
        }
        case S_DATA_CR:
          if (c !== CR) return this.#err('chunk data not followed by CRLF');
          this.#state = S_DATA_LF;
          p++;
          break;
        case S_DATA_LF:
          if (c !== LF) return this.#err('chunk data not followed by CRLF');
          this.#state = S_SIZE;
          p++;
          break;
        case S_TRAILER:
          if (++this.#trailerBytes > this.maxTrailerSize) return this.#err('trailer section too large');
          if (c === CR) {
            this.#state = this.#lineBytes === 0 ? S_END_LF : S_TRAILER_LF;
          } else if (this.#lineBytes === 0 && (c === SP || c === HT)) {
            return this.#err('obs-fold in the trailer section');
          } else if (VALUE[c] !== 1) {
            return this.#err('invalid byte in the trailer section');
          } else this.#lineBytes++;
          p++;
          break;
        case S_TRAILER_LF:
          if (c !== LF) return this.#err('bare CR in the trailer section');
          this.#lineBytes = 0;
          this.#state = S_TRAILER;
          p++;
          break;
        case S_END_LF:
          if (c !== LF) return this.#err('bare CR at the end of the chunked body');
          this.#state = S_DONE;
          return p + 1;
        default:
          return p;
      }
    }
    return p;
  }
}
