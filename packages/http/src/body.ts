/**
 * A message body read from the connection's rented buffer: by Content-Length, chunked, or (responses)
 * until the peer closes. Shared by the server's requests and the client's responses.
 *
 * Rules:
 *  1. Nothing is read from the socket until the body is pulled (read(), iteration, bytes()): the
 *     socket's flow control is the backpressure.
 *  2. A chunk from read() or iteration is a view into the rented buffer, valid until the next pull.
 *     bytes(), text() and json() copy.
 *  3. A framing error, a body over its limit, or an early end rejects with a typed error carrying the
 *     status a server answers with (`status`: 400, 413, 408), and the connection is not reused.
 */
import { ringioError } from '@ringio/runtime';
import { ChunkedDecoder } from './parse.js';

/** The connection side of a body: a rented buffer with unconsumed bytes in [rpos, rend). */
export interface BodySource {
  rbuf: Buffer;
  rpos: number;
  rend: number;
  /** Reads more bytes after rend (making room first). Resolves the count; 0 is end of stream. */
  fill(): Promise<number>;
  /** Called at the first pull (the server sends 100 Continue from here). */
  bodyStart(): Promise<void> | undefined;
}

export const MODE_NONE = 0;
export const MODE_LENGTH = 1;
export const MODE_CHUNKED = 2;
export const MODE_CLOSE = 3;

function statusError(code: 'ERR_RINGIO_HTTP_PARSE' | 'ERR_RINGIO_HTTP_TOO_LARGE', message: string, status: number): Error {
  return ringioError(code, message, { status });
}

/** A message body, read once: chunk by chunk (read(), `for await`) or whole (bytes(), text(), json()). Chunks are views into the connection's buffer, valid until the next read. */
export class IncomingBody implements AsyncIterable<Uint8Array> {
  /** @internal */ _src: BodySource | undefined;
  /** @internal */ _mode = MODE_NONE;
  /** @internal */ _remaining = 0;
  /** @internal */ _decoder: ChunkedDecoder | undefined;
  /** @internal */ _limit = Infinity;
  /** @internal */ _received = 0;
  /** @internal */ _done = true;
  /** @internal */ _started = false;
  /** @internal */ _error: Error | undefined;
  /** @internal */ _pulling = false;
  /** @internal The last piece was handed out; the end is reported when the caller comes back. */
  _endPending = false;
  /** @internal Called once when the body ends (true) or fails (false). */
  _onEnd: ((ok: boolean) => void) | undefined = undefined;

  /** @internal Sets up the body of the next message. */
  _reset(src: BodySource, mode: number, length: number, decoder: ChunkedDecoder | undefined, limit: number): void {
    this._src = src;
    this._mode = mode;
    this._remaining = length;
    this._decoder = decoder;
    if (decoder !== undefined) decoder.reset();
    this._limit = limit;
    this._received = 0;
    this._done = mode === MODE_NONE || (mode === MODE_LENGTH && length === 0);
    this._started = false;
    this._error = undefined;
    this._pulling = false;
    this._endPending = false;
    this._onEnd = undefined;
  }

  /**
   * @internal Reports an end that waits for the caller (see read()): from the next read() and from a
   * client response's close().
   */
  _release(): void {
    if (this._endPending) {
      this._endPending = false;
      this.#end(true);
    }
  }

  #end(ok: boolean): void {
    const f = this._onEnd;
    if (f !== undefined) {
      this._onEnd = undefined;
      f(ok);
    }
  }

  /** True once the whole body has been read (or there is none). */
  get done(): boolean {
    return this._done;
  }

  /** The declared length (Content-Length), or -1 when chunked or close-delimited. */
  get length(): number {
    return this._mode === MODE_LENGTH ? this._received + this._remaining : this._mode === MODE_NONE ? 0 : -1;
  }

  /**
   * @internal read() without a promise when the next piece of a Content-Length body is already in the
   * connection's buffer (a client response's: its source starts without a send); undefined when read()
   * must wait (or the body is framed otherwise, ended or failed).
   */
  _buffered(): Uint8Array | undefined {
    const src = this._src;
    if (this._mode !== MODE_LENGTH || this._done || this._pulling || this._error !== undefined || src === undefined || src.rpos >= src.rend) return undefined;
    this._started = true;
    return this.#takeLength(src);
  }

  /**
   * @internal The rest of a body whose rest is in its connection's buffer (_wholeBuffered() is true), taken
   * as _buffered() takes it but without a view: it was `rbuf[start, start + n)` of the source (its `rbuf`
   * and `rpos` before the call, n the body's `_remaining`); returns `start`.
   */
  _takeWhole(): number {
    const src = this._src!;
    const start = src.rpos;
    this._started = true;
    this.#advance(src, this._remaining);
    return start;
  }

  /** @internal Whether the rest of a Content-Length body is in the connection's buffer (then _buffered() takes all of it). */
  _wholeBuffered(): boolean {
    const src = this._src;
    return this._mode === MODE_LENGTH && !this._done && !this._pulling && this._error === undefined && src !== undefined && src.rend - src.rpos >= this._remaining;
  }

  /** The next piece of a Content-Length body from the bytes in src's buffer (some are there). */
  #takeLength(src: BodySource): Uint8Array {
    const avail = src.rend - src.rpos;
    const n = avail < this._remaining ? avail : this._remaining;
    const view = src.rbuf.subarray(src.rpos, src.rpos + n);
    this.#advance(src, n);
    return view;
  }

  /** Takes the next n bytes of a Content-Length body (n <= _remaining, all in src's buffer) as read. */
  #advance(src: BodySource, n: number): void {
    src.rpos += n;
    this._remaining -= n;
    this._received += n;
    if (this._remaining === 0) {
      // SAFETY of the bytes, not the kernel's: the view is the connection's read buffer, which
      // the next message on this connection reads into. The end (which lets a client put the
      // connection back in its pool) waits until the caller asks for more, as with every piece.
      this._done = true;
      this._endPending = true;
    }
  }

  /**
   * The next piece of the body, or null at its end. The piece is a view into the connection's read
   * buffer, valid until the next call.
   */
  async read(): Promise<Uint8Array | null> {
    if (this._error !== undefined) throw this._error;
    if (this._done) {
      this._release();
      return null;
    }
    if (this._pulling) throw ringioError('ERR_RINGIO_HTTP_BODY_USED', 'the body is already being read');
    const src = this._src!;
    this._pulling = true;
    try {
      if (!this._started) {
        this._started = true;
        const sent = src.bodyStart();
        if (sent !== undefined) await sent;
      }
      for (;;) {
        if (src.rpos < src.rend) {
          if (this._mode === MODE_LENGTH) return this.#takeLength(src);
          if (this._mode === MODE_CHUNKED) {
            const dec = this._decoder!;
            const p = dec.step(src.rbuf, src.rpos, src.rend);
            if (p < 0) throw statusError('ERR_RINGIO_HTTP_PARSE', `bad chunked body: ${dec.error}`, 400);
            src.rpos = p;
            if (dec.dataEnd > dec.dataStart) {
              this._received += dec.dataEnd - dec.dataStart;
              if (this._received > this._limit) {
                throw statusError('ERR_RINGIO_HTTP_TOO_LARGE', `the body is over its limit of ${this._limit} bytes`, 413);
              }
              return src.rbuf.subarray(dec.dataStart, dec.dataEnd);
            }
            if (dec.done) {
              this._done = true;
              this.#end(true);
              return null;
            }
            continue;
          }
          // MODE_CLOSE: everything up to the end of the stream.
          const view = src.rbuf.subarray(src.rpos, src.rend);
          this._received += src.rend - src.rpos;
          src.rpos = src.rend;
          if (this._received > this._limit) {
            throw statusError('ERR_RINGIO_HTTP_TOO_LARGE', `the body is over its limit of ${this._limit} bytes`, 413);
          }
          return view;
        }
        const n = await src.fill();
        if (n === 0) {
          if (this._mode === MODE_CLOSE) {
            this._done = true;
            this.#end(true);
            return null;
          }
          throw ringioError('ERR_RINGIO_UNEXPECTED_EOF', `the connection closed ${this._received} bytes into the body`, {
            n: this._received,
            status: 400,
          });
        }
      }
    } catch (e) {
      this._error = e as Error;
      this.#end(false);
      throw e;
    } finally {
      this._pulling = false;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** The whole body as a new Buffer. Rejects ERR_RINGIO_HTTP_TOO_LARGE past `limit` bytes. */
  async bytes(limit = this._limit): Promise<Buffer> {
    if (this._mode === MODE_LENGTH && !this._started) {
      if (this._remaining > limit) {
        throw statusError('ERR_RINGIO_HTTP_TOO_LARGE', `the body (${this._remaining} bytes) is over the limit of ${limit}`, 413);
      }
      const out = Buffer.allocUnsafe(this._remaining);
      let off = 0;
      for (let c = await this.read(); c !== null; c = await this.read()) {
        out.set(c, off);
        off += c.length;
      }
      return out;
    }
    const parts: Buffer[] = [];
    let total = 0;
    for (let c = await this.read(); c !== null; c = await this.read()) {
      total += c.length;
      if (total > limit) throw statusError('ERR_RINGIO_HTTP_TOO_LARGE', `the body is over the limit of ${limit} bytes`, 413);
      parts.push(Buffer.from(c));
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  }

  /** The whole body decoded as UTF-8. */
  async text(limit?: number): Promise<string> {
    return (await this.bytes(limit)).toString('utf8');
  }

  /** The whole body parsed as JSON (a SyntaxError for bad JSON). */
  async json(limit?: number): Promise<unknown> {
    return JSON.parse(await this.text(limit));
  }

  /** @internal Reads and drops the rest of the body, up to `max` bytes; false when it gave up. */
  async _drain(max: number): Promise<boolean> {
    if (this._done) return true;
    if (this._error !== undefined || this._pulling) return false;
    if (this._mode === MODE_CLOSE) return false;
    if (this._mode === MODE_LENGTH && this._remaining > max) return false;
    const stop = this._received + max;
    try {
      while ((await this.read()) !== null) if (this._received > stop) return false;
      return true;
    } catch {
      return false;
    }
  }
}

/** The body shorthands of a message that has a `body` (ServerRequest, ClientResponse). */
export abstract class WithBody {
  abstract readonly body: IncomingBody;

  /** The whole body as a new Buffer (body.bytes()); rejects ERR_RINGIO_HTTP_TOO_LARGE past `limit` bytes. */
  bytes(limit?: number): Promise<Buffer> {
    return this.body.bytes(limit);
  }

  /** The whole body decoded as UTF-8 (body.text()). */
  text(limit?: number): Promise<string> {
    return this.body.text(limit);
  }

  /** The whole body parsed as JSON (body.json(); a SyntaxError for bad JSON). */
  json(limit?: number): Promise<unknown> {
    return this.body.json(limit);
  }
}
