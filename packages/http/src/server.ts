/**
 * The HTTP/1.1 server: serve(opts, handler) accepts connections on a ringio listener and runs one task
 * per connection that parses requests straight from its rented read buffer.
 *
 * Rules:
 *  1. Per connection, one read buffer, one write buffer, one HeadParser, one request and one response
 *     object, reused for every request on it; buffers go back to the server's pool when it closes. A
 *     request costs no allocation beyond the handler's own and the ops' promises.
 *  2. Requests on a connection are handled one at a time, in order. Responses are appended to the write
 *     buffer; the buffer is sent when no further complete request is buffered (pipelining batches
 *     responses into one send), and the next read is submitted beside that send.
 *  3. A malformed or over-limit request gets its status (400, 413, 414, 417, 431, 501, 505) with
 *     `Connection: close`, and the connection closes. Nothing the peer sends throws out of a connection
 *     task; every connection ends with its stream closed, unless req.upgrade() handed it over.
 *  4. Timeouts run on one ticker per server: a connection records the tick at which it started to wait
 *     (idle, head, body, send) and the ticker expires it; no timer per request.
 */
import { currentRuntime, LiveList, type JoinHandle, type LiveNode, type RecvLease, ringioError, sleep, spawn } from '@ringio/runtime';
import { TcpListener, TlsStream, UnixListener, type SocketAddr, type SocketStream, type ByteStream, type TlsContext, type TlsServerOptions } from '@ringio/net';
import { IncomingBody, WithBody, MODE_CHUNKED, MODE_LENGTH, MODE_NONE, type BodySource } from './body.js';
import { HeaderView } from './headers.js';
import {
  copyBytes,
  dateLine,
  H_CONNECTION_CLOSE,
  H_CONTENT_LENGTH,
  H_DATE,
  H_TRANSFER_ENCODING,
  OutBuf,
  type FieldWriter,
  type RawHead,
  statusLine,
  chunkLength,
  checkChunk,
  type HeadersInit,
} from './out.js';
import { ChunkedDecoder, ConnOpt, HeadParser } from './parse.js';
import { checkKeys, optBool, optInt, optMs } from './options.js';
import { LeaseInbox, RECYCLE } from './lease-inbox.js';

/** A request handler: answers `req` through `res`; may be async (the connection waits for it before its next request). */
export type Handler = (req: ServerRequest, res: ServerResponse) => void | Promise<void>;

/** serve()'s options: where to listen (host and port, a Unix path, or a listener of your own), limits and timeouts. */
export interface ServeOptions {
  /** The address to listen on (default '127.0.0.1'). */
  host?: string;
  /** The TCP port (default 0: one the kernel picks; see server.address). */
  port?: number;
  /** SO_REUSEPORT, so each thread can listen on the same port (default true). */
  reusePort?: boolean;
  /** The listen backlog (default: the listener's). */
  backlog?: number;
  /** Listen on a Unix socket at this path instead of TCP (excludes host and port). */
  path?: string;
  /** Serve on this listener instead (excludes host, port and path); closing the server closes it. */
  listener?: TcpListener | UnixListener;
  /** Bytes of request line plus header fields (431 past it). Default 16384. */
  maxHeaderSize?: number;
  /** Bytes of the request line (414 past it). Default 8192. */
  maxRequestLineSize?: number;
  /** Header field lines per request (431 past it). Default 100. */
  maxHeaders?: number;
  /** Bytes of a request body (413 past it). Default 16 MiB; Infinity for no limit. */
  maxBodySize?: number;
  /** ms from the first byte of a request head to its end (slowloris); 408. Default 30000. */
  headersTimeout?: number;
  /** ms a keep-alive connection may wait for its next request. Default 5000. */
  keepAliveTimeout?: number;
  /** ms a body read or a response send may make no progress; 408 while no response started. Default 30000. */
  bodyTimeout?: number;
  /** TCP_NODELAY on accepted connections. Default true. */
  noDelay?: boolean;
  /** Called with errors thrown by the handler (default: console.error). */
  onError?: (err: unknown, req: ServerRequest) => void;
  /**
   * Serve HTTPS: a server TlsContext (from @ringio/net), or the options to make one (cert, key, sni,
   * ALPNProtocols). Each connection's handshake runs in its own task before its first request.
   */
  tls?: TlsContext | TlsServerOptions;
  /** ms a TLS handshake may take before the connection is dropped (default 10000; 0: no limit). */
  handshakeTimeout?: number;
}

export const SERVE_KEYS = [
  'host', 'port', 'reusePort', 'backlog', 'path', 'listener', 'maxHeaderSize', 'maxRequestLineSize', 'maxHeaders',
  'maxBodySize', 'headersTimeout', 'keepAliveTimeout', 'bodyTimeout', 'noDelay', 'onError', 'tls', 'handshakeTimeout',
] as const;

export interface Config {
  maxHeaderSize: number;
  maxRequestLineSize: number;
  maxHeaders: number;
  maxBodySize: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  bodyTimeout: number;
  noDelay: boolean;
  readSize: number;
  /** HTTPS: the server context, and whether the server made it (then it closes it). */
  tls: TlsContext | undefined;
  ownTls: boolean;
  handshakeTimeout: number;
}

const PHASE_NONE = 0;
const PHASE_IDLE = 1;
const PHASE_HEAD = 2;
const PHASE_BODY = 3;
/** The handler runs with the request body read: a long wait gets a read that notices the client leave. */
const PHASE_HANDLER = 4;

/** Bytes of an unread request body the server reads and drops to keep the connection. */
const MAX_DRAIN = 256 * 1024;
const WRITE_SIZE = 16 * 1024;
const BIG_CHUNK = 8 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');

function isPeerError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return (
    code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_RINGIO_CLOSED' || code === 'ERR_RINGIO_UNEXPECTED_EOF' ||
    code === 'ERR_RINGIO_HTTP_PARSE' || code === 'ERR_RINGIO_HTTP_TOO_LARGE' || code === 'ERR_RINGIO_TIMEOUT' ||
    code === 'ETIMEDOUT' || code === 'ENOTCONN'
  );
}

/**
 * end() rejects only for the caller's mistakes (bad header values, a body longer than its
 * Content-Length): handlers often do not await it, and a peer that goes away must not turn into an
 * unhandled rejection. A failed send has already closed the connection.
 */
function endFailed(e: unknown): void {
  if (e instanceof TypeError || e instanceof RangeError || (e as { code?: unknown })?.code === 'ERR_RINGIO_HTTP_HEADERS_SENT') throw e;
}

/** SocketStream's internal stop of a readLeases() consumer (see Conn.upgrade). */
interface LeaseStop {
  _stopLeases(): Promise<RecvLease[]>;
}

/** The request handed to a handler. Valid until the handler settles (its bytes are rented). */
export class ServerRequest extends WithBody {
  /** The request method as sent ('GET', 'POST', ...). */
  method = '';
  /** '1.1' or '1.0'. */
  httpVersion = '1.1';
  /** The request's header fields: a view into the rented bytes, valid until the handler settles. */
  readonly headers: HeaderView;
  /** The request body (empty when the request has none). */
  readonly body: IncomingBody = new IncomingBody();
  /** @internal The peer once known: given to serveStream(), or read from the stream on first ask. */
  _peer: SocketAddr | string | undefined;
  /**
   * @internal Called when the client closes (or resets) its connection while the handler still runs
   * and has not started the response (a proxy cancels its upstream request). Checked once per server
   * tick: a handler that waits longer than a tick gets a read on the connection (its bytes are kept).
   */
  _onGone: (() => void) | undefined = undefined;
  /**
   * @internal What a handler keeps for the connection's next requests (forward.connectionState): this
   * object is the connection's, reused by each of its requests; undefined on a new connection.
   */
  _kept: unknown = undefined;
  /** @internal */ _conn: Conn;
  /** @internal */ _buf: Buffer;
  /** @internal */ _t0 = 0;
  /** @internal */ _t1 = 0;
  /** @internal */ _url: string | undefined;

  /** @internal */
  constructor(conn: Conn, buf: Buffer, offs: Int32Array, names: Uint8Array, peer: SocketAddr | string | undefined) {
    super();
    this._conn = conn;
    this._buf = buf;
    this.headers = new HeaderView(buf, offs, 0, names);
    this._peer = peer;
  }

  /**
   * The peer: a SocketAddr for TCP, the peer's path ('' when unnamed) for Unix sockets. Read from the
   * connection's stream (`peerAddr`) on first ask and kept: a server whose handlers never ask makes no
   * getpeername per connection. A connection the server closes under a running handler, or hands over
   * by `upgrade()`, keeps it readable. When the peer was gone before anyone asked (it reset the
   * connection, or the connection has ended), the address can no longer be read: '' then, as for an
   * unnamed Unix peer, never a throw.
   */
  get remoteAddr(): SocketAddr | string {
    if (this._peer === undefined) {
      try {
        this._peer = this._conn.peerAddr();
      } catch (e) {
        // A stream without peerAddr is the caller's mistake (serveStream without a peer): say so.
        if (e instanceof TypeError) throw e;
        // ENOTCONN after a reset, ERR_RINGIO_CLOSED after the close: the kernel no longer knows the peer.
        this._peer = '';
      }
    }
    return this._peer;
  }

  /** The request-target as sent ('/path?query', or 'host:port' for CONNECT). */
  get url(): string {
    return (this._url ??= this._buf.latin1Slice(this._t0, this._t1));
  }

  /**
   * Takes the connection out of HTTP: resolves the raw stream and the bytes already read past this
   * request's head (a Buffer copy), once earlier responses have been sent. The server forgets the
   * connection; the caller answers (e.g. 101 Switching Protocols) and closes the stream.
   */
  upgrade(): Promise<{ stream: ByteStream; head: Buffer }> {
    return this._conn.upgrade(this);
  }
}

/** The response of one request. */
export class ServerResponse {
  /** The status to send (default 200); set it before the head goes out. */
  statusCode = 200;
  /** @internal */ _headers: HeadersInit | undefined = undefined;
  /** @internal */ _extra: [string, string | number][] | undefined = undefined;
  /** @internal Field lines a proxy copied from a parsed head (see _rawFields). */
  _raw: RawHead | undefined = undefined;
  /** @internal Field lines a proxy writes straight into the head (see _rawFieldsFrom). */
  _fieldWriter: FieldWriter | undefined = undefined;
  /** @internal */ _conn: Conn;
  /** True once the head is in the write buffer. */
  headersSent = false;
  /** True once end() was called. */
  finished = false;
  /** @internal */ _chunked = false;
  /** @internal */ _noBody = false;
  /** @internal */ _declared = -1;
  /** @internal */ _written = 0;

  /** @internal */
  constructor(conn: Conn) {
    this._conn = conn;
  }

  /** @internal */
  _reset(noBody: boolean): void {
    this.statusCode = 200;
    this._headers = undefined;
    this._extra = undefined;
    this._raw = undefined;
    this._fieldWriter = undefined;
    this.headersSent = false;
    this.finished = false;
    this._chunked = false;
    this._noBody = noBody;
    this._declared = -1;
    this._written = 0;
    this._held = false;
  }

  /** Sets the status and header fields; they are sent with the first write() or end(). */
  writeHead(status: number, headers?: HeadersInit): this {
    if (this.headersSent) throw ringioError('ERR_RINGIO_HTTP_HEADERS_SENT');
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new RangeError(`status must be an integer in 200..999 (use req.upgrade() for 101), got ${status}`);
    }
    this.statusCode = status;
    if (headers !== undefined) {
      if (headers === null || typeof headers !== 'object') throw new TypeError('headers must be an object, an array of pairs or a Headers');
      this._headers = headers;
    }
    return this;
  }

  /**
   * @internal Field lines already checked (a proxy forwarding a head it parsed): `head.buf[0, head.len)`
   * holds `name: value\r\n` lines, `head.flags` their H_* flags and `head.declared` their Content-Length.
   * They go out after writeHead's fields; the buffer must stay unchanged until the head is written.
   */
  _rawFields(head: RawHead): this {
    if (this.headersSent) throw ringioError('ERR_RINGIO_HTTP_HEADERS_SENT');
    this._raw = head;
    return this;
  }

  /** @internal Field lines `w` writes into the head as it is built, after writeHead's fields (see forward.rawFieldsFrom). */
  _rawFieldsFrom(w: FieldWriter | undefined): this {
    if (this.headersSent) throw ringioError('ERR_RINGIO_HTTP_HEADERS_SENT');
    this._fieldWriter = w;
    return this;
  }

  /** Adds one header field to the head (before it is sent). */
  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.headersSent) throw ringioError('ERR_RINGIO_HTTP_HEADERS_SENT');
    const extra = (this._extra ??= []);
    if (Array.isArray(value)) for (const v of value) extra.push([name, v as string]);
    else extra.push([name, value as string | number]);
    return this;
  }

  /**
   * Sends a piece of the body (the head first, chunked unless a Content-Length was given). Resolves once
   * the kernel took the bytes. Do not change `chunk` until then.
   */
  async write(chunk: Uint8Array | string): Promise<void> {
    checkChunk(chunk, 'res.write');
    if (this.finished) throw ringioError('ERR_RINGIO_CLOSED', 'write after end()');
    await this._conn.writeBody(this, chunk, false);
  }

  /** @internal forward.hold: the handler returns without a promise and answers later (then _release). */
  _held = false;

  /** @internal forward.release: the held response is done (ended, or failed with `err`): the connection goes on. */
  _release(err: unknown): void {
    if (!this._held) return;
    this._held = false;
    this._conn.released(err);
  }

  /** @internal forward.canEndNow: whether _endNow() of a last piece of `n` bytes would end the response now. */
  _canEndNow(n: number): boolean {
    return this.finished || this._conn.canEndNowLength(n);
  }

  /** @internal forward.endNow: end() when it needs no promise (queued at once), else false and nothing done. */
  _endNow(chunk: Uint8Array | undefined): boolean {
    return chunk === undefined ? this._endNowFrom(undefined, 0, 0) : this._endNowFrom(chunk, 0, chunk.length);
  }

  /** @internal forward.endNowBuffered: _endNow() with the last piece src[s, e), copied from there (no view of it). */
  _endNowFrom(src: Uint8Array | undefined, s: number, e: number): boolean {
    if (this.finished) return true;
    const conn = this._conn;
    if (!conn.canEndNowLength(e - s)) return false;
    this.finished = true;
    try {
      conn.writeLast(this, src, s, e);
    } catch (err) {
      endFailed(err);
    }
    return true;
  }

  /**
   * Ends the response, with an optional last chunk. With nothing written before, the head gets a
   * Content-Length. Resolves once the response is queued on the connection (it is sent before the
   * connection reads again); a large chunk is sent at once and end() resolves when the kernel took it.
   * A failed send does not reject (the connection is closed); bad headers do.
   */
  end(chunk?: Uint8Array | string): Promise<void> {
    if (this.finished) return RESOLVED;
    try {
      if (chunk !== undefined) checkChunk(chunk, 'res.end');
      this.finished = true;
      const conn = this._conn;
      if (conn.canEndNow(chunk)) {
        // The usual end: queued now (the loop sends it before it reads again), no promise of its own.
        conn.writeLast(this, chunk);
        return RESOLVED;
      }
      return conn.writeBody(this, chunk, true).catch(endFailed);
    } catch (e) {
      return Promise.reject(e).catch(endFailed);
    }
  }
}

/** @internal One accepted connection. */
export class Conn implements BodySource {
  readonly server: HttpServer;
  /** Its entry in the server's live connections (left when the connection ends or is upgraded). */
  _live: LiveNode<Conn> | undefined;
  readonly stream: ByteStream;
  rbuf: Buffer;
  rpos = 0;
  rend = 0;
  readonly out: OutBuf;
  readonly parser: HeadParser;
  #decoder: ChunkedDecoder | undefined;
  readonly req: ServerRequest;
  readonly res: ServerResponse;
  #headCopy: Buffer | undefined;
  /** The request's head still lives in rbuf (and req points at it). */
  #headLive = false;
  phase = PHASE_NONE;
  tick = 0;
  writing = false;
  wtick = 0;
  #waiters: (() => void)[] | undefined;
  #writeError: Error | undefined;
  timedOut = false;
  keepAlive = true;
  upgraded = false;
  aborted = false;
  #continueSent = false;
  /** The read that watches for the client leaving while the handler waits (see PHASE_HANDLER); resolves its count, -1 on error. */
  #watch: Promise<number> | undefined;
  #watchError: unknown;

  constructor(server: HttpServer, stream: ByteStream, peer: SocketAddr | string | undefined) {
    this.server = server;
    this.stream = stream;
    const pool = server._pool;
    this.rbuf = pool.pop() ?? Buffer.allocUnsafe(server._config.readSize);
    this.out = new OutBuf(0);
    this.out.buf = server._wpool.pop() ?? Buffer.allocUnsafe(WRITE_SIZE);
    this.parser = new HeadParser(server._config);
    this.req = new ServerRequest(this, this.rbuf, this.parser.offs, this.parser.names, peer);
    this.res = new ServerResponse(this);
    this.#sq = typeof (stream as SocketStream).send === 'function' ? (stream as SocketStream) : undefined;
    if (this.#sq !== undefined && typeof this.#sq.readLeases === 'function' && typeof (this.#sq as unknown as LeaseStop)._stopLeases === 'function') this.#lm = this.#sq;
  }

  // ---- lease mode (plain sockets): reads handed to a callback; the usual request is handled in it ----
  //
  // The stream's reads go to #onLease (SocketStream.readLeases: no promise per read, multishot receive),
  // which copies the bytes into rbuf. While the connection task is parked at its wait for a request head,
  // a complete head without a body (and not an upgrade, not Expect: 100-continue) is handled right there
  // (#fast): the handler runs, and a response it ends at once, or holds and ends later (forward.hold /
  // release), is queued with send() and the next head is looked for, with no promise and no async frame
  // per request. Everything else wakes the task, which runs the request as before (#park resolves).

  /** The stream, when the connection reads in lease mode. */
  #lm: SocketStream | undefined;
  #handler: Handler | undefined;
  /** The parked task's resolver: 1 a head (or an error) for it at rpos, 0 the connection ends, -1 a read failed (#lerr). */
  #parked: ((v: number) => void) | undefined;
  /** A request of the fast path is between its handler and its end (held, or its tail runs). */
  #busy = false;
  /** The reads ended: 1 at end of stream, 2 with #lerr. */
  #lend = 0;
  #lerr: unknown;
  /** The lease that did not fit in rbuf yet, and the body read (fill) waiting for bytes. */
  readonly #inbox = new LeaseInbox();
  /** The task waiting for a held response (the general path). */
  #heldWait: ((v: unknown) => void) | undefined;

  readonly #parkBind = (resolve: (v: number) => void): void => {
    this.#parked = resolve;
  };

  #startLeases(stream: SocketStream, handler: Handler): void {
    this.#handler = handler;
    stream.readLeases(this.#onLease, RECYCLE).then(this.#leasesEnded, this.#leasesFailed);
  }

  readonly #onLease = (lease: RecvLease): Promise<void> | undefined => {
    const inbox = this.#inbox;
    // The usual keep-alive request: one whole bodiless head alone in the lease, rbuf empty, the task
    // parked. It is handled from the lease (no copy into rbuf), held until the request ends (#unborrow).
    if (this.rpos === this.rend && this.#parked !== undefined && !this.#busy && inbox.held === undefined && this.#borrowed === undefined && !this.upgraded && !this.aborted && this.#fastLease(lease)) return undefined;
    inbox.hold(lease);
    if (this.upgraded) return inbox.pause(); // upgrade() is stopping the reads: kept for it
    // rbuf is compacted only while no request is in flight: a body piece handed out may point into it.
    const n = this.#pull(this.#parked !== undefined && !this.#busy);
    if (inbox.held !== undefined) {
      if (n > 0) this.#arrived(n);
      // What #arrived handled may have made room and taken the rest: then reading goes on.
      return inbox.held === lease ? inbox.pause() : undefined;
    }
    this.#arrived(n);
    return undefined;
  };

  /** Copies what fits of the held lease after rend (making room in rbuf first when `compact`). */
  #pull(compact = true): number {
    if (compact) this.#makeRoom();
    const k = this.#inbox.copyInto(this.rbuf, this.rend);
    this.rend += k;
    return k;
  }

  /** `n` bytes were appended to rbuf: to the body read waiting, the fast path, or kept for the task. */
  #arrived(n: number): void {
    if (this.#inbox.wake(n)) return;
    if (this.#parked !== undefined && !this.#busy) this.#fast();
  }

  readonly #leasesEnded = (): void => {
    this.#readsEnded(1, undefined);
  };

  readonly #leasesFailed = (e: unknown): void => {
    this.#readsEnded(2, e);
  };

  #readsEnded(how: number, e: unknown): void {
    if (this.upgraded || this.#lend !== 0) return;
    this.#lend = how;
    this.#lerr = e;
    if (this.#inbox.filling) {
      this.#inbox.end(how === 1 ? undefined : this.#readError(e), how !== 1);
      return;
    }
    // A handler still waiting with its request read and its response not begun: the client left.
    if (this.req.body.done && !this.res.headersSent) this.#gone();
    if (this.#parked !== undefined && !this.#busy) this.#wake(how === 1 ? 0 : -1);
  }

  /** Wakes the parked task. */
  #wake(v: number): void {
    const p = this.#parked;
    if (p === undefined) return;
    this.#parked = undefined;
    p(v);
  }

  /** The task's wait in lease mode (see above): what #wake gives it. */
  #park(): Promise<number> {
    if (this.#lend !== 0) return Promise.resolve(this.#lend === 1 ? 0 : -1);
    return new Promise<number>(this.#parkBind);
  }

  /** fill() in lease mode: the bytes appended to rbuf (0 at end of stream). */
  #more(): Promise<number> {
    if (this.#inbox.held !== undefined) return Promise.resolve(this.#pull());
    if (this.#lend === 1) return Promise.resolve(0);
    if (this.#lend === 2) return Promise.reject(this.#lerr);
    return this.#inbox.waitFill();
  }

  /** Whether the request whose head the parser just read can take the fast path. */
  #fastable(): boolean {
    const p = this.parser;
    return !p.chunked && p.contentLength <= 0 && !p.expectContinue && !p.hasUpgrade && p.method !== 'CONNECT' && !this.writing && !this.server._closing;
  }

  /**
   * The lease whose bytes the request in progress was parsed from (#fastLease), released once when the
   * request ends (#fastDone, a failed handler, the connection's release): its bytes stay the request's
   * until then, as rbuf's would.
   */
  #borrowed: RecvLease | undefined;

  /**
   * A lease that is exactly one complete head of a fast request (nothing before it in rbuf, nothing after
   * it in the lease): the request runs with its head in the lease, and the fast path goes on (true).
   * False, with nothing done, for anything else: the lease goes into rbuf as usual and is parsed there.
   */
  #fastLease(lease: RecvLease): boolean {
    const b = lease.buf;
    const n = lease.length;
    // A bodiless head ends its bytes with CRLF CRLF: anything else is not tried (no scan twice). And only
    // while the receive pool has room: a request holds its lease until it is answered, which may take
    // other reads (a proxy's upstream response), and those must find buffers.
    if (n < 16 || b[n - 1] !== 10 || b[n - 2] !== 13 || b[n - 3] !== 10 || b[n - 4] !== 13 || !lease._roomy) return false;
    const parser = this.parser;
    parser.resetScan();
    if (parser.request(b, 0, n) !== n || !this.#fastable()) {
      parser.resetScan();
      return false;
    }
    this.#borrowed = lease;
    if (this.#fastOne(n, b)) this.#fast();
    return true;
  }

  /** Ends #borrowed's loan: the request's views point at rbuf again and the lease goes back to its pool. */
  #unborrow(): void {
    const lease = this.#borrowed;
    if (lease === undefined) return;
    this.#borrowed = undefined;
    this.req._buf = this.rbuf;
    this.req.headers._buf = this.rbuf;
    lease.release();
  }

  /** The fast path: handles the complete heads in rbuf while the task is parked (see above). */
  #fast(): void {
    const parser = this.parser;
    const server = this.server;
    for (;;) {
      if (this.aborted) return this.#wake(0);
      if (this.#inbox.held !== undefined && this.rend - this.rpos < this.rbuf.length) this.#pull();
      let headEnd = 0;
      if (this.rpos < this.rend) {
        headEnd = parser.request(this.rbuf, this.rpos, this.rend);
        if (headEnd === 0 && this.phase !== PHASE_HEAD) {
          this.phase = PHASE_HEAD;
          this.tick = server._tick;
        }
      } else if (this.phase !== PHASE_IDLE) {
        this.phase = PHASE_IDLE;
        this.tick = server._tick;
      }
      if (headEnd === 0) {
        this.flush();
        if (this.#lend !== 0) this.#wake(0);
        return;
      }
      if (headEnd < 0 || !this.#fastable()) {
        // The task runs this one: it parses the head again from rpos.
        parser.resetScan();
        return this.#wake(1);
      }
      if (!this.#fastOne(headEnd, this.rbuf)) return;
    }
  }

  /**
   * Runs the fast request whose head the parser just read from `buf` (rbuf, or #borrowed's bytes) up to
   * headEnd: true when it ended at once and the next head may be looked for.
   */
  #fastOne(headEnd: number, buf: Buffer): boolean {
    const server = this.server;
    this.#begin(headEnd, buf);
    this.phase = PHASE_HANDLER;
    this.tick = server._tick;
    const res = this.res;
    let r: void | Promise<void>;
    try {
      r = this.#handler!(this.req, res);
    } catch (e) {
      this.#busy = true;
      this.#afterFast(true, e);
      return false;
    }
    if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') {
      this.#busy = true;
      void this.#fastTail(r);
      return false;
    }
    if (res._held && !res.finished) {
      this.#busy = true; // released() goes on
      return false;
    }
    const early = this.#takeEarly();
    if (early !== undefined) {
      this.#busy = true;
      this.#afterFast(true, early);
      return false;
    }
    if (!res.finished && !this.upgraded && !this.aborted && !res._endNow(undefined)) {
      this.#busy = true;
      void this.#fastTail(undefined);
      return false;
    }
    return this.#fastDone();
  }

  /** After a fast request's response: false when the connection ends (the task is woken). */
  #fastDone(): boolean {
    this.req._onGone = undefined;
    this.phase = PHASE_NONE;
    this.#headLive = false;
    this.#unborrow();
    if (this.upgraded || this.aborted || !this.keepAlive) {
      // The task's end sends what is queued (see #serve), then closes.
      this.#wake(0);
      return false;
    }
    return true;
  }

  /** A fast request that needs waiting: its handler's promise or the end of its response. */
  async #fastTail(r: Promise<void> | undefined): Promise<void> {
    const res = this.res;
    try {
      if (r !== undefined) await r;
      if (res._held && !res.finished) return; // released() goes on
      const early = this.#takeEarly();
      if (early !== undefined) throw early;
      if (!res.finished && !this.upgraded && !this.aborted) await res.end();
    } catch (e) {
      this.#afterFast(true, e);
      return;
    }
    this.#afterFast(false, undefined);
  }

  /** Ends a fast request (and goes on with the next one) or, after an error, the connection. */
  #afterFast(failed: boolean, err: unknown): void {
    if (failed) {
      void this.#handlerFailed(err).then(() => {
        this.#unborrow();
        this.#busy = false;
        this.req._onGone = undefined;
        this.phase = PHASE_NONE;
        this.#headLive = false;
        this.#wake(0);
      });
      return;
    }
    this.#busy = false;
    if (this.#fastDone()) this.#fast();
  }

  /** @internal res._release: a held response is done (or failed with `err`). */
  released(err: unknown): void {
    const w = this.#heldWait;
    if (w !== undefined) {
      // The task waits for it (the general path).
      this.#heldWait = undefined;
      w(err);
      return;
    }
    if (!this.#busy) {
      // Released before its handler returned: the handler's return goes on with it (#early).
      this.#early = true;
      this.#earlyErr = err;
      return;
    }
    const res = this.res;
    if (err === undefined && !res.finished && !this.upgraded && !this.aborted && !res._endNow(undefined)) {
      void this.#fastTail(undefined);
      return;
    }
    this.#afterFast(err !== undefined, err);
  }

  /** A held response released before its handler returned, and its error. */
  #early = false;
  #earlyErr: unknown;

  /** The error of a response released before its handler returned (undefined: none, or released fine). */
  #takeEarly(): unknown {
    if (!this.#early) return undefined;
    this.#early = false;
    const e = this.#earlyErr;
    this.#earlyErr = undefined;
    return e;
  }

  /** The general path's wait for a held response: rejects with its error. */
  #waitHeld(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#heldWait = (e) => (e === undefined ? resolve() : reject(e));
    });
  }

  /** Sets up the request whose head the parser read (ending at headEnd); returns its body mode and length. */
  #begin(headEnd: number, buf: Buffer = this.rbuf): void {
    const parser = this.parser;
    const req = this.req;
    const cfg = this.server._config;
    this.server._requests++;
    req.method = parser.method;
    req.httpVersion = parser.minor === 1 ? '1.1' : '1.0';
    req._buf = buf;
    req._t0 = parser.targetStart;
    req._t1 = parser.targetEnd;
    req._url = undefined;
    const h = req.headers;
    h._buf = buf;
    h._offs = parser.offs;
    h._names = parser.names;
    h._count = parser.count;
    h._connNames = (parser.conn & ConnOpt.OTHER) !== 0;
    this.#continueSent = false;
    this.#toldGone = false;
    // A head in #borrowed's lease needs no detaching from rbuf, and consumed none of it.
    if (buf === this.rbuf) {
      this.#headLive = true;
      this.rpos = headEnd;
    } else this.#headLive = false;
    this.keepAlive = parser.minor === 1 ? (parser.conn & ConnOpt.CLOSE) === 0 : (parser.conn & ConnOpt.KEEP_ALIVE) !== 0;
    let mode = MODE_NONE;
    let length = 0;
    if (parser.chunked) mode = MODE_CHUNKED;
    else if (parser.contentLength > 0) {
      mode = MODE_LENGTH;
      length = parser.contentLength;
    }
    if (mode === MODE_CHUNKED) this.#decoder ??= new ChunkedDecoder(cfg.maxHeaderSize);
    req.body._reset(this, mode, length, this.#decoder, cfg.maxBodySize);
    this.res._reset(req.method === 'HEAD');
    req._onGone = undefined;
    this.#early = false;
    this.#earlyErr = undefined;
  }

  /**
   * Gives the buffers back to the server's pool (only once the stream is closed). Write buffers still
   * held by queued sends stay out: the kernel may read them until their completions.
   */
  release(): void {
    const server = this.server;
    // A lease held while reading was paused, or one a request was parsed from, goes back to the receive pool.
    this.#inbox.drop();
    this.#unborrow();
    if (this.rbuf.length === server._config.readSize && server._pool.length < 4096) server._pool.push(this.rbuf);
    if (this.out.buf.length === WRITE_SIZE && !this.writing && server._wpool.length < 4096) server._wpool.push(this.out.buf);
    if (this.#queued() === 0) {
      const spare = this.#spare;
      if (spare !== undefined && server._wpool.length < 4096) server._wpool.push(spare);
    }
    this.#spare = undefined;
    this.#dropHeld();
  }

  // ---- reading ----

  /** Makes room after rend: resets an empty buffer, compacts a full one (detaching a live head first). */
  #makeRoom(): void {
    if (this.rpos === this.rend) {
      if (this.#headLive) this.#detachHead();
      this.rpos = this.rend = 0;
      this.parser.resetScan();
    } else if (this.rend === this.rbuf.length) {
      if (this.#headLive) this.#detachHead();
      this.rbuf.copyWithin(0, this.rpos, this.rend);
      this.rend -= this.rpos;
      this.rpos = 0;
      this.parser.resetScan();
    }
  }

  /** The read into rbuf[rend..]; one options object per connection, read synchronously by read(). */
  #read(): Promise<[number, Buffer]> {
    const o = this.#readOpts;
    o.offset = this.rend;
    o.length = this.rbuf.length - this.rend;
    return this.stream.read(this.rbuf, o);
  }

  #readOpts = { offset: 0, length: 0 };

  #readError(e: unknown): unknown {
    return this.timedOut ? ringioError('ERR_RINGIO_TIMEOUT', 'the request timed out', { status: 408 }) : e;
  }

  /** BodySource.fill: reads more of a body. */
  async fill(): Promise<number> {
    this.#makeRoom();
    this.phase = PHASE_BODY;
    this.tick = this.server._tick;
    try {
      if (this.#lm !== undefined) return await this.#more(); // appended to rbuf by #pull
      const [n] = await this.#read();
      this.rend += n;
      return n;
    } catch (e) {
      throw this.#readError(e);
    } finally {
      this.phase = PHASE_HANDLER;
      this.tick = this.server._tick;
    }
  }

  /**
   * The handler has waited a tick with the request read and no response begun: a read on the connection
   * notices a client that leaves (EOF or reset) and calls req._onGone. Bytes that arrive instead (a
   * pipelined request) stay in rbuf; the connection loop takes this read as its next one.
   */
  watchPeer(): void {
    const req = this.req;
    if (this.#lm !== undefined) return; // the lease reads see the client leave at once (#readsEnded)
    if (this.#watch !== undefined || req._onGone === undefined || !req.body.done || req.body._endPending) return;
    if (this.res.headersSent || this.upgraded || this.aborted || this.writing) return;
    this.#makeRoom();
    if (this.rend === this.rbuf.length) return; // full of pipelined bytes: nothing left to watch with
    this.#watch = this.#read().then(
      ([n]) => {
        this.rend += n;
        if (n === 0) this.#gone();
        return n;
      },
      (e: unknown) => {
        this.#watchError = e;
        this.#gone();
        return -1;
      },
    );
  }

  #gone(): void {
    const f = this.req._onGone;
    if (f !== undefined && this.phase === PHASE_HANDLER) {
      this.req._onGone = undefined;
      this.#toldGone = true;
      f();
    }
  }

  /**
   * The handler of the current request was told the client left (req._onGone: its end of stream or
   * reset while the response had not begun). If the handler then fails (the proxy cancels its upstream
   * request), the connection closes without an answer, as nginx does (its 499): no 500 to a client
   * that only half-closed and is still reading, no server error reported for the client's leaving.
   */
  #toldGone = false;

  bodyStart(): Promise<void> | undefined {
    if (!this.parser.expectContinue || this.res.headersSent || this.#continueSent) return undefined;
    this.#continueSent = true;
    return this.waitWritable().then(() => {
      this.out.bytes(CONTINUE);
      this.flush();
    });
  }

  #detachHead(): void {
    const p = this.parser;
    const len = p.headEnd - p.headStart;
    let copy = this.#headCopy;
    if (copy === undefined || copy.length < len) copy = this.#headCopy = Buffer.allocUnsafe(Math.max(len, 1024));
    this.rbuf.copy(copy, 0, p.headStart, p.headEnd);
    const req = this.req;
    req._buf = copy;
    req._t0 -= p.headStart;
    req._t1 -= p.headStart;
    req.headers._rebase(copy, p.headStart);
    this.#headLive = false;
  }

  // ---- writing ----

  #writeOpts = { offset: 0, length: 0 };
  /** The stream queues sends (SocketStream.send): responses go out without a promise per write. */
  readonly #sq: SocketStream | undefined;
  /**
   * Queued sends: write buffers the stream's queue holds (until it is empty, see #queued) and a free
   * one. The write buffer is handed to send() and replaced by the other: the usual response costs no
   * promise, and the two buffers alternate.
   */
  readonly #held: (Buffer | undefined)[] = [];
  /**
   * How many of #held's slots are in use (the rest are undefined). A count rather than the array's
   * length: `held.length = 0` is a runtime call in V8 and trims the store, so the next push grows it
   * again (the proxy profile: ArrayLengthSetter and GrowFastSmiOrObjectElements per response).
   */
  #heldN = 0;
  #spare: Buffer | undefined;

  /** Forgets the held write buffers (release(): the kernel may still read them; they are not pooled). */
  #dropHeld(): void {
    const held = this.#held;
    for (let i = 0; i < this.#heldN; i++) held[i] = undefined;
    this.#heldN = 0;
  }

  /** Bytes queued by send() and not yet sent. */
  #queued(): number {
    return this.#sq === undefined ? 0 : this.#sq.sendQueued;
  }

  /** Bytes queued by send() and not yet sent (the server's ticker and close). */
  sendQueued(): number {
    return this.#queued();
  }

  /** Sends what the write buffer holds; the send runs beside whatever this task does next. */
  flush(): void {
    const out = this.out;
    if (out.len === 0 || this.writing || this.aborted) return;
    const len = out.len;
    out.len = 0;
    const o = this.#writeOpts;
    o.length = len;
    if (this.#sq !== undefined) return this.#send(this.#sq, out, o);
    this.writing = true;
    this.wtick = this.server._tick;
    this.stream.writeAll(out.buf, o).then(this.#written, this.#writeFailed);
  }

  /** flush() through the stream's send queue: the buffer is the queue's until it is empty. */
  #send(stream: SocketStream, out: OutBuf, o: { offset: number; length: number }): void {
    // What the queue held is free once it is empty (its bytes were sent).
    const held = this.#held;
    let n = this.#heldN;
    if (stream.sendQueued === 0 && n > 0) {
      for (let i = 0; i < n; i++) {
        const b = held[i]!;
        held[i] = undefined;
        if (this.#spare === undefined) this.#spare = b;
        else if (this.server._wpool.length < 4096 && b.length === WRITE_SIZE) this.server._wpool.push(b);
      }
      this.#heldN = n = 0;
    }
    const buf = out.buf;
    let below: boolean;
    try {
      below = stream.send(buf, o);
    } catch (e) {
      this.#writeFailed(e as Error);
      return;
    }
    if (n < held.length) held[n] = buf;
    else held.push(buf);
    this.#heldN = n + 1;
    out.buf = this.#spare ?? this.server._wpool.pop() ?? Buffer.allocUnsafe(WRITE_SIZE);
    this.#spare = undefined;
    // Past the high-water mark: wait for the queue as for a send in flight (backpressure, send timeout).
    if (!below) this.#waitQueue();
  }

  /** The queue holds bytes the caller must wait for: `writing` until it is empty. */
  #waitQueue(): void {
    this.writing = true;
    this.wtick = this.server._tick;
    this.#sq!.flush().then(this.#written, this.#writeFailed);
  }

  #written = (): void => {
    this.writing = false;
    const w = this.#waiters;
    if (w !== undefined) {
      this.#waiters = undefined;
      for (const f of w) f();
    }
  };

  #writeFailed = (e: Error): void => {
    this.#writeError ??= e;
    this.abort();
    this.#written();
  };

  /**
   * Sends the write buffer followed by `chunk` (writev, finished with writeAll if short). Marks the
   * connection as writing synchronously; the caller has waited for any earlier send.
   */
  #sendWith(chunk: Uint8Array): Promise<void> {
    const out = this.out;
    const len = out.len;
    out.len = 0;
    this.writing = true;
    this.wtick = this.server._tick;
    const head = out.buf.subarray(0, len);
    const total = len + chunk.length;
    const stream = this.stream;
    const send = async (): Promise<void> => {
      let [n] = len > 0 ? await stream.writev([head, chunk]) : await stream.write(chunk);
      if (n < len) {
        await stream.writeAll(head, { offset: n, length: len - n });
        n = len;
      }
      if (n < total) await stream.writeAll(chunk, { offset: n - len, length: total - n });
    };
    return send().then(this.#written, (e: Error) => {
      this.#writeFailed(e);
      throw e;
    });
  }

  /** Resolves once no send is in flight or queued (rejects with the send's error if one failed). */
  waitWritable(): Promise<void> {
    if (this.#writeError !== undefined) return Promise.reject(this.#writeError);
    if (!this.writing) {
      if (this.#queued() === 0) return RESOLVED;
      this.#waitQueue();
    }
    return new Promise<void>((resolve, reject) => {
      (this.#waiters ??= []).push(() => (this.#writeError !== undefined ? reject(this.#writeError) : resolve()));
    });
  }

  /** Sends everything queued and waits until the kernel took it. */
  async drainWrites(): Promise<void> {
    await this.waitWritable();
    this.flush();
    await this.waitWritable();
  }

  /** Puts the response head in the write buffer. `known`: the whole body length, or -1. */
  #head(res: ServerResponse, known: number): void {
    const out = this.out;
    const req = this.req;
    out.bytes(statusLine(res.statusCode));
    out.declaredLength = -1;
    let flags = out.fields(res._headers);
    if (res._extra !== undefined) flags |= out.fields(res._extra);
    const raw = res._raw;
    if (raw !== undefined) {
      out.ensure(raw.len);
      copyBytes(raw.buf, 0, raw.len, out.buf, out.len);
      out.len += raw.len;
      flags |= raw.flags;
      if (raw.flags & H_CONTENT_LENGTH) out.declaredLength = raw.declared;
    }
    const fw = res._fieldWriter;
    if (fw !== undefined) {
      out.flags = 0;
      fw.writeFields(out);
      flags |= out.flags;
    }
    if ((flags & H_DATE) === 0) out.bytes(dateLine());
    const status = res.statusCode;
    const bodiless = status === 204 || status === 304;
    if (flags & H_CONTENT_LENGTH) {
      res._declared = out.declaredLength;
      if (flags & H_TRANSFER_ENCODING) throw new TypeError('a response cannot have both Content-Length and Transfer-Encoding');
    } else if (flags & H_TRANSFER_ENCODING) {
      // The caller frames the body; only chunked keeps the connection.
      res._chunked = false;
      this.keepAlive = false;
    } else if (!bodiless) {
      if (known >= 0) {
        out.latin1(`Content-Length: ${known}\r\n`);
        res._declared = known;
      } else if (req.httpVersion === '1.1') {
        out.latin1('Transfer-Encoding: chunked\r\n');
        res._chunked = !res._noBody;
      } else {
        this.keepAlive = false;
      }
    }
    if (bodiless) res._noBody = true;
    if (flags & H_CONNECTION_CLOSE) this.keepAlive = false;
    if (this.server._closing) this.keepAlive = false;
    if (!this.keepAlive) {
      if ((flags & H_CONNECTION_CLOSE) === 0) out.latin1('Connection: close\r\n');
    } else if (req.httpVersion === '1.0') out.latin1('Connection: keep-alive\r\n');
    out.bytes(CRLF);
    res.headersSent = true;
  }

  async writeBody(res: ServerResponse, chunk: Uint8Array | string | undefined, last: boolean): Promise<void> {
    if (this.writing || this.#writeError !== undefined) await this.waitWritable();
    const big = this.#put(res, chunk, last);
    if (big !== undefined) {
      if (this.#queued() > 0) await this.waitWritable(); // the writev goes after what the queue holds
      // Large: what the write buffer holds and the chunk itself (not copied) in one writev. The send
      // counts as in flight from this moment, so the connection waits for it before it closes.
      await this.#sendWith(big);
      this.#putEnd(res, big.length, last);
    }
    if (!last) await this.drainWrites();
  }

  /** end()'s piece queued now (see canEndNow), or its bytes [from, to) when `to` >= 0; throws as writeBody rejects. */
  writeLast(res: ServerResponse, chunk: Uint8Array | string | undefined, from = 0, to = -1): void {
    this.#put(res, chunk, true, from, to);
  }

  /** Whether end(chunk) can queue its piece now, without a promise (nothing in flight, a piece the write buffer takes). */
  canEndNow(chunk: Uint8Array | string | undefined): boolean {
    return this.canEndNowLength(chunk === undefined ? 0 : chunkLength(chunk));
  }

  /** canEndNow() for a last piece of `n` bytes. */
  canEndNowLength(n: number): boolean {
    return !this.writing && this.#writeError === undefined && n <= BIG_CHUNK;
  }

  /**
   * Queues a body piece (and the head first, when not sent): returns a large chunk the caller sends
   * uncopied and then ends with #putEnd, else undefined (done; `last` finished the response). With `to`
   * >= 0 the piece is chunk[from, to) (bytes), copied from there.
   */
  #put(res: ServerResponse, chunk: Uint8Array | string | undefined, last: boolean, from = 0, to = -1): Uint8Array | undefined {
    if (this.upgraded) throw ringioError('ERR_RINGIO_CLOSED', 'the connection was upgraded');
    let len = chunk === undefined ? 0 : to >= 0 ? to - from : chunkLength(chunk);
    if (!res.headersSent) {
      const mark = this.out.len;
      try {
        this.#head(res, last ? len : -1);
      } catch (e) {
        this.out.len = mark;
        res.finished = false;
        throw e;
      }
    }
    const out = this.out;
    if (res._noBody) {
      if (last) this.#finishedResponse();
      return undefined;
    }
    if (res._declared >= 0 && res._written + len > res._declared) {
      this.keepAlive = false;
      throw new RangeError(`the body is longer than its Content-Length (${res._declared})`);
    }
    res._written += len;
    if (len > 0 && typeof chunk === 'string') {
      chunk = Buffer.from(chunk, 'utf8');
      len = chunk.length;
    }
    const bytes = chunk as Uint8Array | undefined;
    if (res._chunked && len > 0) out.latin1(`${len.toString(16)}\r\n`);
    if (len > BIG_CHUNK && len > out.free) return to >= 0 ? bytes!.subarray(from, to) : bytes;
    if (len > 0) {
      if (to >= 0) out.range(bytes!, from, to);
      else out.bytes(bytes!);
    }
    this.#putEnd(res, len, last);
    return undefined;
  }

  /** After a body piece of `len` bytes: its chunk's CRLF (and the last chunk), and the end of the response when `last`. */
  #putEnd(res: ServerResponse, len: number, last: boolean): void {
    const out = this.out;
    if (res._chunked) {
      if (len > 0) out.bytes(CRLF);
      if (last) out.bytes(LAST_CHUNK);
    }
    if (last) {
      if (res._declared >= 0 && res._written < res._declared) this.keepAlive = false;
      this.#finishedResponse();
    }
  }

  #finishedResponse(): void {
    // Pipelined requests already buffered get their responses appended; the loop sends before reading.
    if (this.out.len >= WRITE_SIZE / 2) this.flush();
  }

  /** Writes a complete status-only response (errors, timeouts). */
  #simple(status: number, reason: string): void {
    const out = this.out;
    const body = `${reason}\n`;
    out.bytes(statusLine(status));
    out.bytes(dateLine());
    out.latin1(`Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    this.keepAlive = false;
  }

  // ---- lifecycle ----

  /** The stream's peer address (the request's remoteAddr reads it once). */
  peerAddr(): SocketAddr | string {
    const peer = (this.stream as { readonly peerAddr?: SocketAddr | string }).peerAddr;
    if (peer === undefined) throw new TypeError('the connection\'s stream has no peerAddr: pass the peer to serveStream(stream, peer)');
    return peer;
  }

  /**
   * Reads the peer into `req` while the fd is still open, for a request that outlives this connection's
   * hold on its stream (abort under a running handler, upgrade).
   */
  #keepPeer(req: ServerRequest): void {
    if (req._peer !== undefined) return;
    try {
      req._peer = this.peerAddr();
    } catch {
      // The peer had already reset (or the stream has no peerAddr): remoteAddr says so when asked.
    }
  }

  /** Closes the stream (cancelling its ops); the task finishes. */
  abort(): void {
    if (this.aborted || this.upgraded) return;
    this.aborted = true;
    // A handler still running may read req.remoteAddr after this close.
    if (this.phase === PHASE_HANDLER) this.#keepPeer(this.req);
    this.stream.close().catch(() => {});
  }

  /** The ticker found this connection past its deadline. */
  expire(): void {
    this.timedOut = true;
    const answer = (this.phase === PHASE_HEAD || (this.phase === PHASE_BODY && !this.res.headersSent)) && !this.writing;
    if (answer) {
      this.out.len = 0;
      this.#simple(408, 'Request Timeout');
      const len = this.out.len;
      this.out.len = 0;
      this.writing = true;
      const done = (): void => this.abort();
      const sq = this.#sq;
      if (sq !== undefined) {
        try {
          sq.send(this.out.buf, { length: len });
          sq.flush().then(done, done);
        } catch {
          done();
        }
      } else this.stream.writeAll(this.out.buf, { length: len }).then(done, done);
    } else {
      this.abort();
    }
  }

  async upgrade(req: ServerRequest): Promise<{ stream: ByteStream; head: Buffer }> {
    if (req !== this.req || this.upgraded) throw ringioError('ERR_RINGIO_CLOSED', 'the connection was already upgraded or closed');
    if (this.res.headersSent) throw ringioError('ERR_RINGIO_HTTP_HEADERS_SENT', 'upgrade() after the response started');
    await this.drainWrites();
    if (this.aborted) throw ringioError('ERR_RINGIO_CLOSED', 'the connection closed');
    this.upgraded = true;
    this.server._forget(this);
    // The stream is the caller's from here (closing it is theirs): the request keeps its peer.
    this.#keepPeer(req);
    if (this.#lm !== undefined) {
      // The reads stop (nothing stays armed), and what they took past this head goes with it.
      const leases = await (this.#lm as unknown as LeaseStop)._stopLeases();
      const parts: Uint8Array[] = [this.rbuf.subarray(this.rpos, this.rend)];
      const rest = this.#inbox.rest();
      if (rest !== undefined) parts.push(rest);
      for (const l of leases) parts.push(l.bytes);
      const head = Buffer.concat(parts);
      this.#inbox.drop();
      for (const l of leases) l.release();
      this.rpos = this.rend;
      return { stream: this.stream, head };
    }
    const head = Buffer.from(this.rbuf.subarray(this.rpos, this.rend));
    this.rpos = this.rend;
    return { stream: this.stream, head };
  }

  /** The connection task. */
  async run(handler: Handler): Promise<void> {
    const server = this.server;
    const cfg = server._config;
    const parser = this.parser;
    const req = this.req;
    const res = this.res;
    if (this.#lm !== undefined) this.#startLeases(this.#lm, handler);
    for (;;) {
      // Find the next request head.
      let headEnd = 0;
      for (;;) {
        if (this.rpos < this.rend) {
          headEnd = parser.request(this.rbuf, this.rpos, this.rend);
          if (headEnd !== 0) break;
          if (this.phase !== PHASE_HEAD) {
            this.phase = PHASE_HEAD;
            this.tick = server._tick;
          }
        } else if (this.phase !== PHASE_IDLE) {
          this.phase = PHASE_IDLE;
          this.tick = server._tick;
        }
        if (this.out.len > 0) {
          if (this.writing) await this.waitWritable();
          this.flush();
        }
        if (this.aborted) return;
        // Closing without a ticker: nothing would end an idle connection later, so it ends now. With one,
        // it waits for a request (answered with Connection: close) or for its next tick idle (#expire).
        if (server._closing && this.rpos === this.rend && !server._ticking) return;
        if (this.#watch !== undefined) {
          // The watch read is this loop's read: its bytes are already in rbuf.
          const w = this.#watch;
          this.#watch = undefined;
          const got = await w;
          if (got < 0) throw this.#readError(this.#watchError);
          if (got === 0) return;
          continue;
        }
        if (this.#lm !== undefined) {
          // Lease mode: bytes arrive in rbuf by themselves; the usual requests are handled without this task.
          if (this.#inbox.held !== undefined) {
            this.#pull();
            continue;
          }
          const v = await this.#park();
          if (v === 0) return;
          if (v < 0) throw this.#readError(this.#lerr);
          continue;
        }
        // The head's read, inline (no async wrapper per request).
        this.#makeRoom();
        let n: number;
        try {
          [n] = await this.#read();
        } catch (e) {
          throw this.#readError(e);
        }
        if (n === 0) return;
        this.rend += n;
      }
      if (headEnd < 0) {
        this.phase = PHASE_NONE;
        await this.waitWritable();
        this.#simple(parser.errStatus, parser.errReason);
        await this.drainWrites();
        server._clientErrors++;
        return;
      }
      this.phase = PHASE_NONE;
      this.#begin(headEnd);
      if (!parser.chunked && parser.contentLength > cfg.maxBodySize) {
        await this.waitWritable();
        this.#simple(413, 'Content Too Large');
        await this.drainWrites();
        server._clientErrors++;
        return;
      }
      // Run the handler.
      req._onGone = undefined;
      this.phase = PHASE_HANDLER;
      this.tick = server._tick;
      let failed = false;
      try {
        const r = handler(req, res);
        if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') await r;
        if (res._held && !res.finished) await this.#waitHeld();
        const early = this.#takeEarly();
        if (early !== undefined) throw early;
        if (!res.finished && !this.upgraded && !this.aborted) await res.end();
      } catch (e) {
        failed = true;
        await this.#handlerFailed(e);
      }
      req._onGone = undefined;
      this.phase = PHASE_NONE;
      if (this.upgraded) return;
      this.#headLive = false;
      if (failed || this.aborted) {
        if (!this.aborted) await this.drainWrites().catch(() => {});
        return;
      }
      if (!req.body.done) {
        const canDrain = this.keepAlive && !(parser.expectContinue && !this.#continueSent);
        if (!canDrain || !(await req.body._drain(MAX_DRAIN))) this.keepAlive = false;
      }
      if (!this.keepAlive) {
        await this.drainWrites().catch(() => {});
        return;
      }
    }
  }

  async #handlerFailed(e: unknown): Promise<void> {
    const server = this.server;
    if (this.#toldGone) {
      // The handler failed after it was told the client left (see #toldGone): a client error, no answer.
      server._clientErrors++;
      this.abort();
      return;
    }
    if (isPeerError(e)) server._clientErrors++;
    else server._report(e, this.req);
    if (this.upgraded || this.aborted) return;
    this.keepAlive = false;
    try {
      await this.waitWritable();
    } catch {
      return;
    }
    if (!this.res.headersSent) {
      const status = (e as { status?: unknown })?.status;
      this.out.len = 0;
      if (typeof status === 'number' && status >= 400 && status < 600) this.#simple(status, 'Bad Request');
      else this.#simple(500, 'Internal Server Error');
      this.res.headersSent = true;
      this.res.finished = true;
    } else {
      // The response started: all the client can be told is that it ends early.
      this.abort();
    }
  }
}

/** server.stats(): this server's counters, a snapshot. */
export interface HttpServerStats {
  /** Connections open now. */
  connections: number;
  /** Requests whose head was parsed. */
  requests: number;
  /** Requests refused (4xx from the server itself), broken or timed out by the peer. */
  clientErrors: number;
  /** Errors thrown by the handler. */
  handlerErrors: number;
  /** TLS handshakes that failed (bad ClientHello, certificate refused, timeout, peer gone). */
  tlsErrors: number;
}

/** A listening HTTP/1.1 server (see serve()). */
export class HttpServer {
  /** @internal */ _config: Config;
  /** @internal */ _pool: Buffer[] = [];
  /** @internal */ _wpool: Buffer[] = [];
  /** @internal */ _tick = 0;
  /** @internal */ _closing = false;
  /** @internal */ _requests = 0;
  /** @internal */ _clientErrors = 0;
  /** @internal Whether a ticker runs (it ends idle connections while closing). */
  _ticking = false;
  /** @internal */ _handlerErrors = 0;
  /** @internal */ _tlsErrors = 0;
  readonly #handshakes = new LiveList<AbortController>(); // LiveLists, not Sets: closed connections die young
  readonly #listener: TcpListener | UnixListener | undefined;
  readonly #conns = new LiveList<Conn>();
  readonly #handler: Handler;
  readonly #onError: ((err: unknown, req: ServerRequest) => void) | undefined;
  /** The accept loop (acceptEach), settled once the listener closes. */
  #accepting: Promise<void> | undefined;
  #ticker: JoinHandle<void> | undefined;
  readonly #tickCtl = new AbortController();
  #closed: Promise<void> | undefined;
  #allGone: (() => void) | undefined;
  #done: Promise<void>;
  #resolveDone!: () => void;

  /** @internal */
  constructor(listener: TcpListener | UnixListener | undefined, config: Config, handler: Handler, onError: HttpServer['_report'] | undefined) {
    this.#listener = listener;
    this._config = config;
    this.#handler = handler;
    this.#onError = onError;
    this.#done = new Promise((r) => (this.#resolveDone = r));
  }

  /** The listening address: a SocketAddr for TCP, the path for a Unix socket; '' for a server without a listener. */
  get address(): SocketAddr | string {
    return this.#listener?.localAddr ?? '';
  }

  /** This server's counters: open connections, requests, client and handler errors. */
  stats(): HttpServerStats {
    return {
      connections: this.#conns.size,
      requests: this._requests,
      clientErrors: this._clientErrors,
      handlerErrors: this._handlerErrors,
      tlsErrors: this._tlsErrors,
    };
  }

  /** @internal */
  _start(): void {
    // Sockets outlive a runtime: the server closes its listener and connections when its runtime shuts down.
    currentRuntime().signal.addEventListener('abort', () => void this.closeAll(), { once: true });
    if (this.#listener !== undefined) this.#accepting = this.#accept(this.#listener);
    const c = this._config;
    const timeouts = [c.headersTimeout, c.keepAliveTimeout, c.bodyTimeout].filter((t) => t > 0);
    if (timeouts.length > 0) {
      this._ticking = true;
      const tickMs = Math.max(5, Math.min(1000, Math.floor(Math.min(...timeouts) / 8)));
      const signal = this.#tickCtl.signal;
      this.#ticker = spawn(async () => {
        while (!signal.aborted) {
          try {
            await sleep(tickMs, { signal });
          } catch {
            return;
          }
          this._tick++;
          this.#expire(tickMs);
        }
      });
    }
  }

  #idleToClose(c: Conn): boolean {
    return c.phase === PHASE_IDLE && c.rpos === c.rend && !c.writing && c.sendQueued() === 0;
  }

  #expire(tickMs: number): void {
    const c = this._config;
    const now = this._tick;
    this.#conns.forEach((conn) => {
      if (conn.aborted || conn.timedOut) return;
      if (this._closing && this.#idleToClose(conn) && now - conn.tick >= 1) {
        conn.abort();
        return;
      }
      const waited = (now - conn.tick) * tickMs;
      if (conn.phase === PHASE_HANDLER) {
        if (waited >= tickMs) conn.watchPeer();
        if (!conn.writing || c.bodyTimeout <= 0 || (now - conn.wtick) * tickMs < c.bodyTimeout) return;
      }
      let limit = 0;
      switch (conn.phase) {
        case PHASE_IDLE:
          limit = c.keepAliveTimeout;
          break;
        case PHASE_HEAD:
          limit = c.headersTimeout;
          break;
        case PHASE_BODY:
          limit = c.bodyTimeout;
          break;
      }
      if (limit > 0 && waited >= limit) {
        this._clientErrors++;
        conn.expire();
      } else if (conn.writing && c.bodyTimeout > 0 && (now - conn.wtick) * tickMs >= c.bodyTimeout) {
        this._clientErrors++;
        conn.expire();
      }
    });
  }

  /**
   * Accepts with listener.serveEach (acceptEach, going on past a failed connection or a passing accept
   * error): each connection is set up during the accept's completion (no promise, no task for the
   * accept; the connection's own task starts in #serve). A connection whose setup throws is closed and
   * reported (onError, counted in handlerErrors), as are accept errors. Settles once the listener closes.
   */
  #accept(listener: TcpListener | UnixListener): Promise<void> {
    const onConnection = (stream: ByteStream): void => {
      if (this._closing) stream.close().catch(() => {});
      else this.#serve(stream, undefined);
    };
    return (listener as TcpListener).serveEach(onConnection, (e) => this._report(e, undefined));
  }

  /**
   * Serves one connection accepted elsewhere (a server made by `connectionServer()`, or any server): the
   * server owns the stream from now on. `peer` becomes the requests' remoteAddr; without it, remoteAddr is
   * read from `stream.peerAddr` on first ask. Resolves once the connection has ended (or was upgraded).
   */
  serveStream(stream: ByteStream, peer?: SocketAddr | string): PromiseLike<void> {
    if (this._closing) return stream.close().catch(() => {});
    return this.#serve(stream, peer);
  }

  #serve(stream: ByteStream, peer: SocketAddr | string | undefined): PromiseLike<void> {
    const tls = this._config.tls;
    if (tls !== undefined && !(stream instanceof TlsStream)) return this.#serveTls(stream, peer, tls);
    if (this._config.noDelay && stream.constructor.name === 'TcpStream') {
      try {
        stream.setNoDelay(true);
      } catch {
        // The peer may already be gone; the first read says so.
      }
    }
    const conn = new Conn(this, stream, peer);
    conn._live = this.#conns.add(conn);
    return spawn(async () => {
      try {
        await conn.run(this.#handler);
      } catch (e) {
        if (!isPeerError(e)) this._report(e, undefined);
        else this._clientErrors++;
      } finally {
        if (!conn.upgraded) {
          // Responses still buffered or queued go out before the close (it would drop them); the ticker's send timeout bounds the wait.
          if (!conn.aborted && (conn.writing || conn.out.len > 0 || conn.sendQueued() > 0)) await conn.drainWrites().catch(() => {});
          await stream.close().catch(() => {});
          conn.release();
          this._forget(conn);
        }
      }
    });
  }

  /** The TLS handshake, then the connection; a failed handshake closes the stream (and is counted). */
  #serveTls(stream: ByteStream, peer: SocketAddr | string | undefined, tls: TlsContext): PromiseLike<void> {
    if (this._config.noDelay && stream.constructor.name === 'TcpStream') {
      try {
        stream.setNoDelay(true);
      } catch {
        // The peer may already be gone; the handshake says so.
      }
    }
    const ctl = new AbortController();
    const handshake = this.#handshakes.add(ctl);
    return spawn(async () => {
      let t: TlsStream;
      try {
        t = await TlsStream.accept(stream as SocketStream, tls, { handshakeTimeout: this._config.handshakeTimeout, signal: ctl.signal });
      } catch {
        this._tlsErrors++;
        return;
      } finally {
        handshake.leave();
      }
      if (this._closing) {
        await t.close().catch(() => {});
        return;
      }
      await this.#serve(t, peer);
    });
  }

  /** @internal */
  _forget(conn: Conn): void {
    conn._live?.leave();
    if (this.#conns.size === 0 && this.#allGone !== undefined) this.#allGone();
  }

  /** @internal */
  _report(err: unknown, req: ServerRequest | undefined): void {
    this._handlerErrors++;
    try {
      if (this.#onError !== undefined) this.#onError(err, req as ServerRequest);
      else console.error('@ringio/http: the handler failed:', err);
    } catch (e) {
      console.error('@ringio/http: onError threw:', e);
    }
  }

  /**
   * Stops accepting, lets requests in progress finish (their responses get `Connection: close`),
   * closes idle keep-alive connections, and resolves once every connection is closed.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this._closing = true;
    this.#closed = (async () => {
      await this.#stopListening();
      for (const h of this.#handshakes.values()) h.abort();
      const gone = new Promise<void>((r) => (this.#allGone = r));
      // Idle keep-alive connections end once idle for a tick: one whose client has just sent its next
      // request (still in flight to us) gets an answer with Connection: close instead of a reset.
      this.#conns.forEach((c) => {
        if (this.#idleToClose(c) && (!this._ticking || this._tick - c.tick >= 1)) c.abort();
      });
      if (this.#conns.size > 0) await gone;
      this.#tickCtl.abort();
      if (this._config.ownTls) this._config.tls?.close();
      try {
      await this.#ticker;
    } catch {
      // Aborted by the runtime's shutdown.
    }
      this.#resolveDone();
    })();
    return this.#closed;
  }

  /** Closes the listener and every connection now, requests in progress included. */
  async closeAll(): Promise<void> {
    const closing = this.close();
    this.#conns.forEach((c) => c.abort());
    await closing;
  }

  /** Resolves once the server has closed (after close() or closeAll()). */
  wait(): Promise<void> {
    return this.#done;
  }

  async #stopListening(): Promise<void> {
    // A listener passed in opts.listener is closed too: it is the only way to end its accept loop.
    if (this.#listener === undefined) return;
    await this.#listener.close();
    try {
      await this.#accepting;
    } catch {
      // Aborted by the runtime's shutdown.
    }
  }
}
