/**
 * The HTTP/1.1 client: HttpClient pools keep-alive connections per origin (per thread: a client lives
 * on the thread that made it), and request(url, opts) uses one default client per thread.
 *
 * Rules:
 *  1. A connection goes back to its pool only after a complete response whose framing allows reuse
 *     (Content-Length or chunked, no `Connection: close`); anything else closes it.
 *  2. A connection idle for two ticks gets a watching read: a close by the server (or stray bytes) is
 *     noticed and the connection dropped. Reuse within two ticks costs no extra op.
 *  3. A request on a reused connection that fails before any response byte arrived (reset, EOF) is
 *     retried once on a new connection when its method is idempotent and its body is not a stream.
 *  4. Request bodies from async iterables are sent chunked, one chunk at a time (backpressure); response
 *     bodies are pulled from the socket as they are read.
 *  5. Timeouts (connect, headers, body) run on one ticker per client; `signal` closes the connection.
 *  6. A plain socket (TCP, Unix) is read through leases (SocketStream.readLeases: a multishot receive
 *     stays armed, no read op or promise per response): each arrival is copied into the connection's
 *     buffer and goes to the head or body read waiting for it. An idle pooled connection needs no
 *     watch: its end of stream or stray bytes arrive like any other and drop it (rule 2 is for TLS,
 *     and for a connection on read() after a large body). A Content-Length body with more than 16 KiB
 *     to come is read with read() (64 KiB at a time, no copy): see ClientConn.bodyReads.
 *  7. A bodiless raw head (forward.send / sendTo) is sent from its own buffer, not copied: the connection
 *     takes that buffer and gives the head its own free one (ClientConn.sendHead). A request that fails
 *     before its response head gets the head's bytes back first (restoreHead), so rule 3's retry, and
 *     the caller's own, send them again.
 */
import { abortError, currentRuntime, LiveList, ringioError, sleep, spawn, timeout, type JoinHandle, type LiveNode, type RecvLease } from '@ringio/runtime';
import { TcpStream, TlsContext, TlsStream, UnixStream, type ByteStream, type SocketStream, type TlsClientOptions } from '@ringio/net';
import { IncomingBody, WithBody, MODE_CHUNKED, MODE_CLOSE, MODE_LENGTH, MODE_NONE, type BodySource } from './body.js';
import { HeaderView } from './headers.js';
import { checkChunk, copyBytes, type RawHead, H_CONNECTION, H_CONTENT_LENGTH, H_HOST, H_TRANSFER_ENCODING, OutBuf, type HeadersInit } from './out.js';
import { ChunkedDecoder, ConnOpt, HeadParser } from './parse.js';
import { checkKeys, optInt, optMs } from './options.js';
import { LeaseInbox, RECYCLE } from './lease-inbox.js';

/** What a request may send: bytes or a string (sent with Content-Length), an iterable or async iterable of them (sent chunked, one chunk at a time), or nothing. */
export type RequestBody = Uint8Array | string | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> | null | undefined;

/** request()'s options: method, headers, body, a signal, an upgrade, a Unix socket. */
export interface RequestOptions {
  /** The request method (default 'GET'). */
  method?: string;
  /** Header fields to send: a Headers, an object or [name, value] pairs. */
  headers?: HeadersInit;
  /** The body to send (none by default). */
  body?: RequestBody;
  /** Aborting it fails the request with an AbortError and closes its connection. */
  signal?: AbortSignal;
  /** A protocol to upgrade to (sends `Connection: upgrade` and `Upgrade: <it>`); a 101 hands over the stream. */
  upgrade?: string;
  /** Connect to this Unix socket instead of the URL's host (the URL still gives Host and path). */
  socketPath?: string;
}

/** The options of a Client: pool size, timeouts and head limits. */
export interface ClientOptions {
  /** Connections per origin, busy and idle. Default 64. */
  maxConnections?: number;
  /** ms an idle connection stays in the pool. Default 4000. */
  keepAliveTimeout?: number;
  /** ms a connect may take before it fails. Default 10000. */
  connectTimeout?: number;
  /** ms from the end of the request to the end of the response head. Default 30000. */
  headersTimeout?: number;
  /** ms a body read or send may make no progress. Default 30000. */
  bodyTimeout?: number;
  /** Largest response head accepted, in bytes. Default 16384. */
  maxHeaderSize?: number;
  /** Most header fields accepted in a response head. Default 100. */
  maxHeaders?: number;
  /**
   * For https: URLs: a client TlsContext (from @ringio/net), or its options (ca, rejectUnauthorized,
   * ALPNProtocols, a client cert/key), or a function of the origin returning either, with an optional
   * `servername` (asked once per origin). Default: Node's root certificates, verification on.
   */
  tls?: ClientTls | ((origin: URL) => ClientTls & { servername?: string });
}

/** What HttpClient's `tls` option gives for an origin: a client TlsContext, or the options to make one. */
export type ClientTls = TlsContext | TlsClientOptions;

const CLIENT_KEYS = ['maxConnections', 'keepAliveTimeout', 'connectTimeout', 'headersTimeout', 'bodyTimeout', 'maxHeaderSize', 'maxHeaders', 'tls'] as const;
const REQUEST_KEYS = ['method', 'headers', 'body', 'signal', 'upgrade', 'socketPath'] as const;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
const METHOD_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const BIG = 16 * 1024;
/** The read buffer of a connection once it reads a body larger than its 16 KiB. */
const BODY_READ = 64 * 1024;
const EMPTY_OPTS: RequestOptions = Object.freeze({});
const WATCH_TAKEN = Object.freeze({ reason: 'the idle connection was taken for a request' });

const PHASE_NONE = 0;
const PHASE_IDLE = 1;
const PHASE_HEAD = 2;
const PHASE_BODY = 3;
const PHASE_SEND = 4;

/**
 * A request its caller may cancel without an AbortSignal (one reusable object per proxied
 * request): the connection it runs on, and whether it was cancelled.
 */
export interface CallHandle {
  _conn: unknown;
  _cancelled: boolean;
  /** HttpClient._sendTo: the response head arrived (must not throw). */
  _onHead?(res: ClientResponse): void;
  /** HttpClient._sendTo: the request failed before its response head (must not throw). */
  _onFail?(e: unknown): void;
}

/**
 * A response. Its body must be read to its end (the read() that returns null) or close() called to free
 * the connection: until then the last piece read may still point into the connection's buffer.
 */
export class ClientResponse extends WithBody {
  /** The status code (200, 404, ...). */
  readonly status: number;
  /** The reason phrase as sent ('OK'; may be empty). */
  readonly statusText: string;
  /** '1.1' or '1.0', from the status line. */
  readonly httpVersion: string;
  /** The response's header fields (a view that owns a copy of the head; forward.send's: valid until the body is read). */
  readonly headers: HeaderView;
  /** The response body: read it, or close() the response, to free the connection. */
  readonly body: IncomingBody;
  /** After a 101 (or a 2xx to CONNECT): the raw stream, now the caller's to use and close. */
  readonly stream: ByteStream | undefined;
  /** After an upgrade: bytes the server sent past the head. */
  readonly head: Buffer | undefined;
  /** @internal */ _conn: ClientConn | undefined;

  /** @internal */
  constructor(status: number, statusText: string, minor: number, headers: HeaderView, body: IncomingBody, conn: ClientConn | undefined, stream?: ByteStream, head?: Buffer) {
    super();
    this.status = status;
    this.statusText = statusText;
    this.httpVersion = minor === 1 ? '1.1' : '1.0';
    this.headers = headers;
    this.body = body;
    this._conn = conn;
    this.stream = stream;
    this.head = head;
  }

  /** @internal Reuses a proxied request's response for the next one on its connection. */
  _init(status: number, statusText: string, minor: number, headers: HeaderView, body: IncomingBody, conn: ClientConn): void {
    const m = this as { -readonly [K in keyof ClientResponse]: ClientResponse[K] };
    m.status = status;
    m.statusText = statusText;
    m.httpVersion = minor === 1 ? '1.1' : '1.0';
    m.headers = headers;
    m.body = body;
    this._conn = conn;
  }

  /** Drops the rest of the body: the connection closes unless the body was already read. */
  async close(): Promise<void> {
    const c = this._conn;
    this._conn = undefined;
    if (c === undefined) return;
    if (!this.body.done) await c.destroy();
    else this.body._release(); // the last piece was read: the connection may go back to its pool
  }
}

/** SocketStream's internal stop of a readLeases() consumer (an upgraded connection is handed over). */
interface LeaseStop {
  _stopLeases(): Promise<RecvLease[]>;
}

/** @internal One connection to an origin. */
class ClientConn implements BodySource {
  readonly pool: Pool;
  /** Its entry in the pool's connections (left by Pool.remove). */
  _live: LiveNode<ClientConn> | undefined;
  readonly stream: ByteStream;
  rbuf: Buffer = Buffer.allocUnsafe(16384);
  rpos = 0;
  rend = 0;
  readonly out = new OutBuf(4096);
  readonly parser: HeadParser;
  #decoder: ChunkedDecoder | undefined;
  phase = PHASE_NONE;
  tick = 0;
  used = 0;
  dead = false;
  timedOut = false;
  aborted: AbortSignal | undefined;
  /** Cancelled through a CallHandle (its caller went away). */
  cancelled = false;
  /** A request body still being sent beside the response, and how it failed. */
  sending: Promise<void> | undefined;
  sendError: unknown;
  /** A watching read while idle, and its controller. */
  watch: Promise<number> | undefined;
  watchCtl: AbortController | undefined;

  constructor(pool: Pool, stream: ByteStream) {
    this.pool = pool;
    this.stream = stream;
    this.parser = new HeadParser(pool.client._limits);
    const s = stream as SocketStream;
    if (typeof s.readLeases === 'function' && typeof (s as unknown as LeaseStop)._stopLeases === 'function') {
      this.#lm = s;
      this.#startReads();
    }
  }

  // ---- lease mode (rule 6): what arrives is copied into rbuf by #onLease and goes to the read waiting ----

  /** The stream, when the connection reads through leases. */
  #lm: SocketStream | undefined;
  /** The lease not yet wholly copied into rbuf, and the fill() waiting for bytes. */
  readonly #inbox = new LeaseInbox();
  /** The reads ended: 1 at end of stream, 2 with #lerr. */
  #lend = 0;
  #lerr: unknown;
  /** A response head is awaited by callbacks (#headStep goes on when bytes arrive). */
  #headWait = false;
  /** The lease reads are being stopped (takeOver, #ownReads): arrivals are kept for what comes next. */
  #stopping = false;
  /** Which start of the lease reads is current (an ended one's settling is ignored by a later one). */
  #gen = 0;
  /** Reads go into rbuf with read() (the lease reads stopped after a large body): see bodyReads. */
  #own = false;
  /** In #own mode: the last response was not large, the lease reads start again back in the pool. */
  #back = false;
  /** The stop of the lease reads for #own, until what they took is in rbuf. */
  #stopP: Promise<void> | undefined;

  #startReads(): void {
    const gen = ++this.#gen;
    this.#stopping = false;
    this.#lm!.readLeases(this.#onLease, RECYCLE).then(
      () => this.#readsEnded(gen, 1, undefined),
      (e: unknown) => this.#readsEnded(gen, 2, e),
    );
  }

  /** Whether reads go through leases now (a plain socket, not in #own mode). */
  #leasing(): boolean {
    return this.#lm !== undefined && !this.#own;
  }

  /**
   * After a response head, for a connection that can read through leases: a Content-Length body with
   * more than BIG bytes still to arrive is read with read() into rbuf (64 KiB at a time, straight from
   * the socket), not through 16 KiB leases copied one by one: the lease reads stop here, and the
   * connection stays on read() (the old rule 2 watch when idle) until a response that is not large,
   * after which it reads through leases again once back in its pool (toPool). A run of large responses
   * thus pays for one stop, not one per response.
   */
  bodyReads(): void {
    const lm = this.#lm;
    if (lm === undefined) return;
    const b = this.body;
    const large = b !== undefined && !b.done && b._mode === MODE_LENGTH && b._remaining - (this.rend - this.rpos) - this.#inbox.left > BIG;
    if (this.#own) {
      // Back to leases only after a response whose whole body is small: with its 64 KiB reads, a large
      // body often comes nearly whole with its head, and must not flip the connection back and forth.
      this.#back = b === undefined || b.done || (b.length >= 0 && b.length <= BIG);
      return;
    }
    if (!large) return;
    this.#own = true;
    this.#back = false;
    this.#stopping = true;
    this.#stopP = (lm as unknown as LeaseStop)._stopLeases().then(this.#stopped);
  }

  /** The lease reads stopped (#ownReads): what they took goes to rbuf after rend (views handed out stay valid). */
  readonly #stopped = (leases: RecvLease[]): void => {
    this.#stopP = undefined;
    this.#absorb(leases);
  };

  /**
   * The lease reads stopped: the held lease's rest, then what they had queued, go to rbuf after rend (in
   * arrival order; views handed out stay valid), and every lease goes back to the pool.
   */
  #absorb(leases: RecvLease[]): void {
    const rest = this.#inbox.rest();
    if (rest !== undefined && !this.dead) this.#append(rest);
    this.#inbox.drop();
    for (const l of leases) {
      if (!this.dead) this.#append(l.bytes);
      l.release();
    }
  }

  /** A connection after a complete, reusable response goes back to its pool (reading through leases again). */
  toPool(): void {
    // The response was read to its end: what it read in place is given back when its reader returns
    // (#borrow; a bodiless response gets here before its reader has seen its head).
    if (this.#borrowed !== undefined) this.#returned = true;
    this.#dropRetired();
    if (this.#own && this.#back) {
      this.#own = false;
      this.#startReads();
    }
    this.pool.release(this);
  }

  readonly #onLease = (lease: RecvLease): Promise<void> | undefined => {
    if (this.phase === PHASE_IDLE || this.dead) {
      // Bytes on an idle pooled connection answer nothing: it is not reusable.
      lease.release();
      void this.destroy();
      return undefined;
    }
    const inbox = this.#inbox;
    // A head awaited by callbacks (forward.sendTo: its reader runs within this call) may be read in place.
    if (this.#headWait && this.rpos === this.rend && inbox.held === undefined && !this.#stopping && this.#borrowed === undefined && this.#hResolve === undefined && this.#hCall !== undefined) {
      this.#dropRetired(); // a head waits: nothing handed out from it is in use
      if (lease._roomy) {
        this.#borrow(lease);
        return undefined;
      }
    }
    inbox.hold(lease);
    if (this.#stopping) return inbox.pause(); // kept for #takeOver
    // rbuf is compacted only while a read waits: otherwise a head view or a body piece may point into it.
    const waiting = this.#headWait || inbox.filling;
    let n = this.#pull(waiting);
    if (inbox.held !== undefined && !waiting && this.rbuf.length < BODY_READ && this.bodyLeft() > this.rend - this.rpos) {
      // A body larger than the buffer arrives while its reader is busy with the last piece: its bytes
      // move to a larger buffer (pieces already handed out keep the old one), so the next read takes
      // them all at once (one write by a proxy per 64 KiB, not per lease).
      const b = Buffer.allocUnsafe(BODY_READ);
      copyBytes(this.rbuf, this.rpos, this.rend, b, 0);
      this.rend -= this.rpos;
      this.rpos = 0;
      this.rbuf = b;
      n += this.#pull(false);
    }
    if (n > 0) this.#arrived(n);
    return inbox.held === lease ? inbox.pause() : undefined;
  };

  // ---- a response parsed in its lease (#borrow): no copy into rbuf for the usual proxied response ----

  /** The lease rbuf is during #borrow, and the connection's own buffer meanwhile. */
  #borrowed: RecvLease | undefined;
  #ownBuf: Buffer | undefined;
  /** A borrowed lease a body piece may still point into: released at the next point where rbuf may be compacted. */
  #retired: RecvLease | undefined;

  /**
   * A lease that arrives while a response head is awaited and rbuf is empty is read in place: rbuf is
   * the lease's buffer while the head's reader runs (a proxy relays a whole response and the connection
   * goes back to its pool at once: toPool ends the loan). Whatever is left when it returns (a head not
   * whole yet, a response still being read) is copied into the connection's own buffer at the same
   * offsets, so the lease never outlives this call, except when a body piece was handed out (#retired).
   */
  #borrow(lease: RecvLease): void {
    this.#borrowed = lease;
    this.#ownBuf = this.rbuf;
    this.#returned = false;
    this.rbuf = lease.buf;
    this.rpos = 0;
    this.rend = lease.length;
    this.parser.resetScan();
    this.#arrived(lease.length);
    this.#unborrow(!this.#returned);
  }

  /** The response read in place was read to its end (toPool) during #borrow: nothing to keep. */
  #returned = false;

  /** Ends #borrow's loan: rbuf is the connection's own again, with the unread bytes at the same offsets when `keep`. */
  #unborrow(keep: boolean): void {
    const lease = this.#borrowed!;
    const lent = lease.buf;
    let own = this.#ownBuf!;
    this.#borrowed = undefined;
    this.#ownBuf = undefined;
    if (this.rbuf !== lent) {
      // rbuf grew meanwhile (#makeRoom): the new one holds the bytes, at the same offsets.
    } else if (keep && this.rend > 0) {
      if (own.length < this.rend) own = Buffer.allocUnsafe(Math.max(own.length * 2, this.rend));
      copyBytes(lent, 0, this.rend, own, 0);
      this.rbuf = own;
    } else {
      this.rpos = this.rend = 0;
      this.parser.resetScan();
      this.rbuf = own;
    }
    const h = this.headers;
    if (h !== undefined && h._buf === lent) h._buf = this.rbuf;
    // A body piece handed out may point into the lease (valid until its reader asks for more); a dead
    // connection's response has failed with it (and nothing would release the lease later).
    const b = this.body;
    if (keep && !this.dead && b !== undefined && b._started && (!b.done || b._endPending)) this.#retired = lease;
    else lease.release();
  }

  /** Releases #retired: called where rbuf may be compacted (no piece handed out is in use). */
  #dropRetired(): void {
    const r = this.#retired;
    if (r === undefined) return;
    this.#retired = undefined;
    r.release();
  }

  /** Copies what fits of the held lease after rend (making room in rbuf first when `compact`). */
  #pull(compact: boolean): number {
    if (compact) this.#makeRoom();
    const k = this.#inbox.copyInto(this.rbuf, this.rend);
    this.rend += k;
    return k;
  }

  /** `n` bytes were appended to rbuf: to the head or the body read waiting (else kept for the next one). */
  #arrived(n: number): void {
    if (this.#headWait) {
      this.#headWait = false;
      this.#headStep();
      return;
    }
    this.#inbox.wake(n);
  }

  #readsEnded(gen: number, how: number, e: unknown): void {
    if (gen !== this.#gen || this.#stopping || this.#lend !== 0) return;
    this.#lend = how;
    this.#lerr = e;
    if (this.#inbox.end(e, how !== 1)) return;
    if (this.#headWait) {
      this.#headWait = false;
      this.#headStep();
      return;
    }
    if (this.phase === PHASE_IDLE) void this.destroy(); // the server closed an idle connection
  }

  /** fill() in lease mode (after #makeRoom): the bytes appended to rbuf, 0 at end of stream. */
  #more(): Promise<number> {
    if (this.#inbox.held !== undefined) return Promise.resolve(this.#pull(true));
    if (this.#lend === 1) return Promise.resolve(0);
    if (this.#lend === 2) return Promise.reject(this.#lerr);
    return this.#inbox.waitFill();
  }

  /** Whether a response with this status hands the connection's stream over (an upgrade, a CONNECT tunnel). */
  static handsOver(method: string, status: number): boolean {
    return status === 101 || (method === 'CONNECT' && status >= 200 && status < 300);
  }

  /**
   * Before an upgraded stream is handed over in lease mode: the reads stop (nothing stays armed) and
   * what they took past rend is appended to rbuf (growing it, offsets kept: the head is still parsed
   * there), so the new owner gets it as the response's `head` and reads the stream itself.
   */
  async takeOver(): Promise<void> {
    const lm = this.#lm;
    if (lm === undefined || this.#own) return;
    this.#stopping = true;
    this.#absorb(await (lm as unknown as LeaseStop)._stopLeases());
    this.#lm = undefined;
  }

  #append(b: Uint8Array): void {
    if (this.rend + b.length > this.rbuf.length) {
      const nb = Buffer.allocUnsafe(Math.max(this.rbuf.length * 2, this.rend + b.length));
      this.rbuf.copy(nb, 0, 0, this.rend);
      this.rbuf = nb;
    }
    this.rbuf.set(b, this.rend);
    this.rend += b.length;
  }

  /** Whether the connection may go back to its pool after a response (everything read, nothing more came). */
  reusable(): boolean {
    return !this.dead && this.rpos === this.rend && this.#lend === 0 && this.#inbox.held === undefined && this.#stopP === undefined;
  }

  async fill(): Promise<number> {
    this.#makeRoom();
    if (this.phase !== PHASE_HEAD) this.phase = PHASE_BODY;
    this.tick = this.pool.client._tick;
    try {
      if (this.#leasing()) return await this.#more();
      if (this.#stopP !== undefined) {
        // #ownReads: what the lease reads took comes first.
        const start = this.rend;
        await this.#stopP;
        if (this.rend > start) return this.rend - start;
      }
      const [n] = await this.stream.read(this.rbuf, { offset: this.rend, length: this.rbuf.length - this.rend });
      this.rend += n;
      return n;
    } catch (e) {
      throw this.mapError(e);
    }
  }

  /** Makes room after rend for the next read: resets an empty buffer, compacts or grows a full one. */
  #makeRoom(): void {
    this.#dropRetired();
    if (this.rpos === this.rend) {
      this.rpos = this.rend = 0;
      this.parser.resetScan();
      // A large body is read in large pieces: one read (and one write by a proxy) per 64 KiB, not per
      // 16 KiB. The buffer is empty and no read is in flight on it; the last piece handed out was
      // consumed (the caller asked for more), so the old buffer is free.
      if (this.rbuf.length < BODY_READ && this.phase !== PHASE_HEAD && this.bodyLeft() > this.rbuf.length) this.rbuf = Buffer.allocUnsafe(BODY_READ);
    } else if (this.rend === this.rbuf.length) {
      if (this.rpos === 0) {
        const b = Buffer.allocUnsafe(this.rbuf.length * 2);
        this.rbuf.copy(b, 0, 0, this.rend);
        this.rbuf = b;
      } else {
        this.rbuf.copyWithin(0, this.rpos, this.rend);
        this.rend -= this.rpos;
        this.rpos = 0;
      }
      this.parser.resetScan();
    }
  }

  // ---- a proxied request's response head (HttpClient._send), read by callbacks: no async frame ----

  #hMethod = '';
  #hCall: CallHandle | undefined;
  #hHead: RawHead | undefined;
  #hReused = false;
  #hGot = false;
  #hResolve: ((r: ClientResponse | PromiseLike<ClientResponse>) => void) | undefined;
  #hReject: ((e: unknown) => void) | undefined;
  readonly #hBind = (resolve: (r: ClientResponse | PromiseLike<ClientResponse>) => void, reject: (e: unknown) => void): void => {
    this.#hResolve = resolve;
    this.#hReject = reject;
  };
  readonly #hReadOpts = { offset: 0, length: 0 };

  /**
   * Receives the response head of the request whose head `head` was just sent on this connection (see
   * HttpClient._send): each read's completion parses what arrived and reads again or settles the
   * promise. A reused connection found dead before any response byte retries once on a new one.
   */
  receiveHead(method: string, call: CallHandle, head: RawHead, reused: boolean): Promise<ClientResponse> {
    const p = new Promise<ClientResponse>(this.#hBind);
    this.#receiveHead(method, call, head, reused);
    return p;
  }

  /** receiveHead, answered through call._onHead / call._onFail instead of a promise (HttpClient._sendTo). */
  receiveHeadTo(method: string, call: CallHandle, head: RawHead, reused: boolean): void {
    this.#hResolve = undefined;
    this.#hReject = undefined;
    this.#receiveHead(method, call, head, reused);
  }

  #receiveHead(method: string, call: CallHandle, head: RawHead, reused: boolean): void {
    this.phase = PHASE_HEAD;
    this.tick = this.pool.client._tick;
    this.#hMethod = method;
    this.#hCall = call;
    this.#hHead = head;
    this.#hReused = reused;
    this.#hGot = false;
    this.#headStep();
  }

  #headStep(): void {
    const p = this.parser;
    for (;;) {
      while (this.rpos < this.rend) {
        this.#hGot = true;
        const end = p.response(this.rbuf, this.rpos, this.rend);
        if (end === 0) break;
        if (end < 0) return this.#headFailed(ringioError('ERR_RINGIO_HTTP_PARSE', `bad response: ${p.errReason}`, { status: p.errStatus }));
        if (p.status >= 100 && p.status < 200 && p.status !== 101) {
          this.rpos = end; // an interim response: skipped
          continue;
        }
        if (this.#leasing() && ClientConn.handsOver(this.#hMethod, p.status)) {
          // The stream is handed over: its lease reads stop first (what they took goes with it).
          this.takeOver().then(() => this.#headArrived(end), (e: unknown) => this.#headFailed(e));
          return;
        }
        return this.#headArrived(end);
      }
      if (!this.#leasing()) break;
      // Lease mode: a held lease first, then the end of the reads, else wait for #onLease.
      if (this.#inbox.held !== undefined && this.#pull(true) > 0) continue;
      if (this.#lend === 1) return this.#headEof();
      if (this.#lend === 2) return this.#headFailed(this.mapError(this.#lerr));
      this.#headWait = true;
      return;
    }
    this.#makeRoom();
    const o = this.#hReadOpts;
    o.offset = this.rend;
    o.length = this.rbuf.length - this.rend;
    this.stream.read(this.rbuf, o).then(this.#headRead, this.#headError);
  }

  /** The response head ending at `end` is complete: to the caller's promise or callback. */
  #headArrived(end: number): void {
    const resolve = this.#hResolve;
    const call = this.#hCall!;
    const method = this.#hMethod;
    this.#headDone();
    call._conn = undefined; // the head arrived: the caller closes the response instead
    const res = this.pool.client._response(this, method, end);
    if (resolve !== undefined) resolve(res);
    else call._onHead!(res);
  }

  #headEof(): void {
    this.#headFailed(
      this.#hGot
        ? ringioError('ERR_RINGIO_UNEXPECTED_EOF', 'the server closed the connection inside the response head', { n: this.rend - this.rpos })
        : ringioError('ERR_RINGIO_UNEXPECTED_EOF', 'the server closed the connection before responding', { n: 0, noResponse: true }),
    );
  }

  readonly #headRead = (r: [number, Buffer]): void => {
    const n = r[0];
    if (n === 0) return this.#headEof();
    this.rend += n;
    this.#headStep();
  };

  readonly #headError = (e: unknown): void => {
    this.#headFailed(this.mapError(e));
  };

  #headDone(): void {
    this.#hResolve = undefined;
    this.#hReject = undefined;
    this.#hCall = undefined;
    this.#hHead = undefined;
  }

  /** The head's receive failed: as HttpClient.#run's catch (a failed send explains it better; one retry on a new connection). */
  #headFailed(e: unknown): void {
    const call = this.#hCall!;
    const resolve = this.#hResolve ?? ((r: PromiseLike<ClientResponse>) => void r.then(call._onHead!, call._onFail!));
    const reject = this.#hReject ?? call._onFail!;
    const head = this.#hHead!;
    const method = this.#hMethod;
    const reused = this.#hReused;
    this.#headDone();
    call._conn = undefined;
    this.restoreHead(); // before anyone learns of the failure: a retry (ours or the caller's) sends the head again
    this.#waitQueued();
    const sending = this.sending;
    void (async () => {
      if (sending !== undefined) await sending;
      const err = this.sendError ?? e;
      await this.destroy();
      const client = this.pool.client;
      if (reused && client._replayable(err, method) && this.aborted === undefined && !this.cancelled) resolve(client._retry(this.pool, method, head, call));
      else reject(err);
    })();
  }

  mapError(e: unknown): unknown {
    if (this.aborted !== undefined) return abortError(this.aborted);
    if (this.cancelled) return ringioError('ERR_RINGIO_CLOSED', 'the request was cancelled by its caller');
    if (this.timedOut) return ringioError('ERR_RINGIO_TIMEOUT', 'the request timed out');
    return e;
  }

  bodyStart(): undefined {
    return undefined;
  }

  async send(buf: Uint8Array, length: number): Promise<void> {
    this.phase = PHASE_SEND;
    this.tick = this.pool.client._tick;
    try {
      await this.stream.writeAll(buf, { length });
    } catch (e) {
      throw this.mapError(e);
    }
  }

  /**
   * Sends a head beside the wait for the response, without an async frame (the proxy's bodiless
   * request): `sending` is the write's own promise; its failure closes the connection. The options
   * object is the connection's own (writeAll reads it before it returns).
   */
  sendHead(head: RawHead): void {
    this.phase = PHASE_SEND;
    this.tick = this.pool.client._tick;
    const o = this.#sendOpts;
    o.length = head.len;
    const stream = this.stream as SocketStream;
    if (typeof stream.send === 'function') {
      // Queued, without a promise and without a copy: the connection takes the head's buffer as its own
      // (the queue holds it until it is sent, and nothing else writes out.buf until the queue is empty:
      // finish()), and gives the head its own one, which nothing holds (an idle or new connection has
      // nothing queued), for the caller's next head. Until the response head arrives, restoreHead()
      // copies the bytes back should the request fail (a retry sends them again).
      const out = this.out;
      const sent = head.buf;
      head.buf = out.buf;
      out.buf = sent;
      out.len = 0;
      this.#taken = head;
      try {
        stream.send(sent, o);
      } catch (e) {
        this.#sendFailed(e);
      }
      return;
    }
    this.sending = stream.writeAll(head.buf, o).then(this.#sent, this.#sendFailed);
  }

  /** The head whose buffer sendHead took, until its response head arrives (headAnswered) or it fails (restoreHead). */
  #taken: RawHead | undefined;

  /** The response head of the request sent with sendHead arrived: its head's bytes are not needed again. */
  headAnswered(): void {
    this.#taken = undefined;
  }

  /**
   * The request sent with sendHead failed before its response head: its head gets its bytes back
   * (copied from out.buf, which the send only read and nothing wrote since), to be sent again.
   */
  restoreHead(): void {
    const head = this.#taken;
    if (head === undefined) return;
    this.#taken = undefined;
    if (head.buf.length < head.len) head.buf = Buffer.allocUnsafe(head.len);
    copyBytes(this.out.buf, 0, head.len, head.buf, 0);
  }

  /** A queued head still going out: `sending` until it is sent (see sendHead). */
  #waitQueued(): void {
    const stream = this.stream as SocketStream;
    if (this.sending === undefined && typeof stream.send === 'function' && stream.sendQueued > 0) this.sending = stream.flush().then(this.#sent, this.#sendFailed);
  }

  readonly #sendOpts = { length: 0 };
  readonly #sent = (): void => {
    this.sending = undefined;
  };
  readonly #sendFailed = (e: unknown): void => {
    this.sendError = this.mapError(e);
    void this.destroy();
  };

  async destroy(): Promise<void> {
    if (this.dead) return this.stream.close();
    this.dead = true;
    this.pool.remove(this);
    // A lease held while reading was paused goes back to the receive pool (rbuf has copies only), as
    // does one a body piece may point into (the response fails with the connection).
    this.#inbox.drop();
    this.#dropRetired();
    await this.stream.close().catch(() => {});
  }

  /** Starts watching an idle connection for a close by the server. */
  startWatch(): void {
    if (this.#leasing()) return; // the lease reads see a close at once (#readsEnded)
    if (this.watch !== undefined || this.dead || this.phase !== PHASE_IDLE) return;
    if (this.rpos === this.rend) {
      // An empty buffer watches from its start (a full one would make a read of 0 bytes: a false EOF).
      this.rpos = this.rend = 0;
      this.parser.resetScan();
    }
    const ctl = (this.watchCtl = new AbortController());
    this.watch = this.stream.read(this.rbuf, { offset: this.rend, length: this.rbuf.length - this.rend, signal: ctl.signal }).then(
      ([n]) => {
        // EOF or stray bytes on an idle connection (the result wins over the abort): not reusable.
        this.rend += n;
        void this.destroy();
        return n;
      },
      () => {
        if (!ctl.signal.aborted) void this.destroy();
        return -1;
      },
    );
  }

  /** Takes an idle connection back into use; false when it turned out dead. */
  async unwatch(): Promise<boolean> {
    const w = this.watch;
    if (w === undefined) return !this.dead;
    this.watchCtl!.abort(WATCH_TAKEN); // a constant reason: no DOMException (and its stack) per reuse
    await w;
    this.watch = undefined;
    this.watchCtl = undefined;
    if (this.rend > this.rpos) {
      await this.destroy();
      return false;
    }
    return !this.dead;
  }

  /** The response body being read and what is left of it (-1: chunked or to the end of the stream). */
  body: IncomingBody | undefined;
  /** A proxied request's response and header view, reused by the next one (see #response). */
  res: ClientResponse | undefined;
  pbody: IncomingBody | undefined;
  headers: HeaderView | undefined;
  /** Whether the proxied response's connection may be reused. */
  keep = false;
  /** The end of a proxied response's body: the connection goes back to its pool (or closes). */
  readonly finish = (ok: boolean): void => {
    if (this.res !== undefined) this.res._conn = undefined;
    this.#waitQueued();
    if (this.sending !== undefined) {
      // The response ended before the request did: reuse only once the request is out.
      void this.sending.then(() => this.finish(ok && this.sendError === undefined));
      return;
    }
    if (ok && this.keep && this.reusable()) this.toPool();
    else void this.destroy();
  };
  bodyLeft(): number {
    const b = this.body;
    if (b === undefined || b.done) return 0;
    return b.length < 0 ? BODY_READ : b.length - b._received;
  }

  decoder(): ChunkedDecoder {
    return (this.#decoder ??= new ChunkedDecoder(this.pool.client._limits.maxHeaderSize));
  }
}

/** @internal Connections to one origin. */
class Pool {
  readonly client: HttpClient;
  readonly key: string;
  readonly connect: () => Promise<ByteStream>;
  readonly idle: ClientConn[] = [];
  /** Every connection of the pool, idle or busy (a LiveList, not a Set: closed ones die young). */
  readonly all = new LiveList<ClientConn>();
  readonly waiters: ((c: ClientConn | undefined) => void)[] = [];
  connecting = 0;

  constructor(client: HttpClient, key: string, connect: () => Promise<ByteStream>) {
    this.client = client;
    this.key = key;
    this.connect = connect;
  }

  /** An idle connection, a new one, or (at maxConnections) the next one released. */
  async acquire(fresh: boolean): Promise<ClientConn> {
    for (;;) {
      if (!fresh) {
        const c = this.idle.pop();
        if (c !== undefined) {
          // Out of the idle phase before the first await: a ticker scan that runs between the
          // continuations below must not start a new watch read on a connection being taken.
          c.phase = PHASE_NONE;
          if (await c.unwatch()) return c;
          continue;
        }
      }
      if (this.all.size + this.connecting < this.client._maxConnections) {
        this.connecting++;
        let stream: ByteStream;
        try {
          stream = await this.connect();
        } finally {
          this.connecting--;
        }
        if (this.client._closed) {
          await stream.close();
          throw ringioError('ERR_RINGIO_CLOSED', 'the HttpClient is closed');
        }
        const c = new ClientConn(this, stream);
        c._live = this.all.add(c);
        return c;
      }
      const c = await new Promise<ClientConn | undefined>((resolve) => this.waiters.push(resolve));
      if (c !== undefined) return c;
    }
  }

  /** The last idle connection when no watch read runs on it (taken without an await), else undefined. */
  takeIdle(): ClientConn | undefined {
    const idle = this.idle;
    const n = idle.length;
    // Not idle[-1] on an empty list: a negative index is a named-property load, which turns the site
    // megamorphic for good (a generic keyed load per request after the first empty pool).
    if (n === 0) return undefined;
    const c = idle[n - 1]!;
    if (c.watch !== undefined || c.dead) return undefined;
    idle.pop();
    c.phase = PHASE_NONE;
    return c;
  }

  /** A connection after a complete, reusable response. */
  release(c: ClientConn): void {
    if (c.dead) return;
    if (this.client._closed) {
      void c.destroy();
      return;
    }
    c.phase = PHASE_IDLE;
    c.tick = this.client._tick;
    const w = this.waiters.shift();
    if (w !== undefined) {
      c.phase = PHASE_NONE; // taken, not idle: no watch read may start on it
      w(c);
    } else this.idle.push(c);
  }

  remove(c: ClientConn): void {
    c._live?.leave();
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // A slot opened: a waiter may connect.
    const w = this.waiters.shift();
    if (w !== undefined) w(undefined);
  }
}

/** A reason phrase: the usual "OK" without a string per response. */
function reasonText(b: Buffer, s: number, e: number): string {
  if (e === s) return '';
  if (e - s === 2 && b[s] === 79 && b[s + 1] === 75) return 'OK';
  return b.latin1Slice(s, e);
}

/**
 * Whether a request failed because its reused connection was dead before any response byte: a reset, or
 * ERR_RINGIO_CLOSED (the pooled socket was closed under the request: its idle watch saw the server's
 * close as the request took it), or an end of stream before the response.
 */
function isDead(e: unknown, clientClosed: boolean): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || (code === 'ERR_RINGIO_CLOSED' && !clientClosed) || (e as { noResponse?: boolean } | null)?.noResponse === true;
}

function isIterable(b: unknown): b is AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> {
  return b !== null && typeof b === 'object' && (Symbol.asyncIterator in b || Symbol.iterator in b) && !(b instanceof Uint8Array);
}

/** A pool of keep-alive connections per origin, on the thread that created it. */
export class HttpClient {
  /** @internal */ _maxConnections: number;
  /** @internal */ _keepAlive: number;
  /** @internal */ _connectTimeout: number;
  /** @internal */ _headersTimeout: number;
  /** @internal */ _bodyTimeout: number;
  /** @internal */ _limits: { maxHeaderSize: number; maxHeaders: number; maxRequestLineSize: number };
  /** @internal */ _tick = 0;
  /** @internal */ _closed = false;
  #tlsOpts: ClientOptions['tls'];
  // Client contexts per https origin, and whether this client made (and closes) them.
  readonly #contexts = new Map<string, { ctx: TlsContext; own: boolean; servername: string | undefined }>();
  readonly #pools = new Map<string, Pool>();
  #ticker: JoinHandle<void> | undefined;
  readonly #tickCtl = new AbortController();
  #tickMs: number;

  constructor(opts: ClientOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('new HttpClient(opts): opts must be an object');
    const o = opts as Record<string, unknown>;
    checkKeys(o, CLIENT_KEYS, 'HttpClient');
    this._maxConnections = optInt(o, 'maxConnections', 64, 1, 1 << 20);
    this._keepAlive = optMs(o, 'keepAliveTimeout', 4000);
    this._connectTimeout = optMs(o, 'connectTimeout', 10_000);
    this._headersTimeout = optMs(o, 'headersTimeout', 30_000);
    this._bodyTimeout = optMs(o, 'bodyTimeout', 30_000);
    const maxHeaderSize = optInt(o, 'maxHeaderSize', 16384, 64, 1 << 24);
    this._limits = { maxHeaderSize, maxHeaders: optInt(o, 'maxHeaders', 100, 1, 65536), maxRequestLineSize: maxHeaderSize };
    if (o.tls !== undefined) {
      if (o.tls instanceof TlsContext ? o.tls.isServer : typeof o.tls !== 'function' && (o.tls === null || typeof o.tls !== 'object')) {
        throw new TypeError('options.tls must be a client TlsContext, { ca?, rejectUnauthorized?, ... } or a function of the origin');
      }
      this.#tlsOpts = o.tls as ClientOptions['tls'];
    }
    const ts = [this._keepAlive, this._headersTimeout, this._bodyTimeout].filter((t) => t > 0);
    this.#tickMs = Math.max(5, Math.min(1000, Math.floor(Math.min(1000, ...ts) / 8)));
  }

  #startTicker(): void {
    if (this.#ticker !== undefined) return;
    // Sockets outlive a runtime: the client closes its connections when its runtime shuts down.
    currentRuntime().signal.addEventListener('abort', () => void this.close(), { once: true });
    const signal = this.#tickCtl.signal;
    this.#ticker = spawn(async () => {
      while (!signal.aborted) {
        try {
          await sleep(this.#tickMs, { signal });
        } catch {
          return;
        }
        this._tick++;
        this.#scan();
      }
    });
  }

  #scan(): void {
    const now = this._tick;
    const ms = this.#tickMs;
    for (const pool of this.#pools.values()) {
      pool.all.forEach((c) => {
        const waited = (now - c.tick) * ms;
        let limit = 0;
        switch (c.phase) {
          case PHASE_IDLE:
            // Idle across two ticks: a connection reused every few ms under load never pays for a watch.
            if (waited >= 2 * ms) c.startWatch();
            limit = this._keepAlive;
            break;
          case PHASE_HEAD:
            limit = this._headersTimeout;
            break;
          case PHASE_BODY:
          case PHASE_SEND:
            limit = this._bodyTimeout;
            break;
        }
        if (limit > 0 && waited >= limit) {
          if (c.phase !== PHASE_IDLE) c.timedOut = true;
          void c.destroy(); // takes c (only) off pool.all at once: forEach allows that
        }
      });
    }
  }

  /** Sends a request; resolves once the response head has arrived. */
  async request(url: string | URL, opts: RequestOptions = {}): Promise<ClientResponse> {
    if (this._closed) throw ringioError('ERR_RINGIO_CLOSED', 'the HttpClient is closed');
    if (opts === null || typeof opts !== 'object') throw new TypeError('request(url, opts): opts must be an object');
    checkKeys(opts as Record<string, unknown>, REQUEST_KEYS, 'request');
    const u = typeof url === 'string' ? new URL(url) : url;
    if (!(u instanceof URL)) throw new TypeError('url must be a string or a URL');
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`unsupported protocol ${u.protocol} (only http: and https:)`);
    const method = opts.method ?? 'GET';
    if (typeof method !== 'string' || !METHOD_RE.test(method)) throw new TypeError(`bad method ${String(method)}`);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('opts.signal must be an AbortSignal');
    if (signal?.aborted) throw abortError(signal);
    const body = opts.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array) && !isIterable(body)) {
      throw new TypeError('opts.body must be a string, a Uint8Array or an (async) iterable of them');
    }
    const socketPath = opts.socketPath;
    if (socketPath !== undefined && typeof socketPath !== 'string') throw new TypeError('opts.socketPath must be a string');
    if (opts.upgrade !== undefined && (typeof opts.upgrade !== 'string' || !METHOD_RE.test(opts.upgrade))) {
      throw new TypeError('opts.upgrade must be a protocol token');
    }
    this.#startTicker();
    return this.#run(this.#pool(u, socketPath), u, method, opts, body, undefined, undefined, false);
  }

  /** @internal The pool of an origin ("http://host:port" or "https://host:port"), for _send. */
  _origin(url: string): unknown {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`unsupported protocol ${u.protocol} (only http: and https:)`);
    return this.#pool(u, undefined);
  }

  /**
   * @internal Sends a request whose head the caller built (see RawHead) to an origin from _origin();
   * `call` lets the caller cancel it (_cancel). The same pooling, retry and timeouts as request().
   */
  _send(origin: unknown, method: string, head: RawHead, body: AsyncIterable<Uint8Array> | null, call: CallHandle): Promise<ClientResponse> {
    if (this._closed) return Promise.reject(ringioError('ERR_RINGIO_CLOSED', 'the HttpClient is closed'));
    this.#startTicker();
    const pool = origin as Pool;
    if (body === null) {
      // The usual proxied request: no async frame (see ClientConn.receiveHead).
      const conn = this.#sendOnIdle(pool, head, call);
      if (conn !== undefined) return conn.receiveHead(method, call, head, conn.used > 1);
    }
    return this.#run(pool, undefined, method, EMPTY_OPTS, body, head, call, false);
  }

  /**
   * @internal _send for a bodiless request, answered through call._onHead / call._onFail (no promise of
   * its own on the usual path: an idle pooled connection).
   */
  _sendTo(origin: unknown, method: string, head: RawHead, call: CallHandle): void {
    if (this._closed) return call._onFail!(ringioError('ERR_RINGIO_CLOSED', 'the HttpClient is closed'));
    this.#startTicker();
    const pool = origin as Pool;
    const conn = this.#sendOnIdle(pool, head, call);
    if (conn !== undefined) return conn.receiveHeadTo(method, call, head, conn.used > 1);
    this.#run(pool, undefined, method, EMPTY_OPTS, null, head, call, false).then(call._onHead!, call._onFail!);
  }

  /**
   * A bodiless head sent on an idle pooled connection, beside the read of its response head (the caller
   * starts that read); undefined when the call is cancelled or no connection is idle.
   */
  #sendOnIdle(pool: Pool, head: RawHead, call: CallHandle): ClientConn | undefined {
    if (call._cancelled) return undefined;
    const conn = pool.takeIdle();
    if (conn === undefined) return undefined;
    call._conn = conn;
    conn.used++;
    conn.sendHead(head);
    return conn;
  }

  /** @internal A bodiless proxied request again, on a new connection (its pooled one was found dead). */
  _retry(pool: Pool, method: string, head: RawHead, call: CallHandle): Promise<ClientResponse> {
    return this.#run(pool, undefined, method, EMPTY_OPTS, null, head, call, true);
  }

  /** @internal Whether a request that failed with `e` before its response on a reused connection may be sent again. */
  _replayable(e: unknown, method: string): boolean {
    return IDEMPOTENT.has(method) && isDead(e, this._closed);
  }

  /** @internal The response whose head ends at `end` in conn's buffer (a proxied request's, see #response). */
  _response(conn: ClientConn, method: string, end: number): ClientResponse {
    return this.#response(conn, method, EMPTY_OPTS, end, true);
  }

  /** @internal Cancels a request sent with _send: its connection closes, the request fails with ERR_RINGIO_CLOSED. */
  _cancel(call: CallHandle): void {
    if (call._cancelled) return;
    call._cancelled = true;
    const c = call._conn as ClientConn | undefined;
    if (c !== undefined) {
      c.cancelled = true;
      void c.destroy();
    }
  }

  async #run(pool: Pool, u: URL | undefined, method: string, opts: RequestOptions, body: RequestBody, raw: RawHead | undefined, call: CallHandle | undefined, fresh: boolean): Promise<ClientResponse> {
    const signal = opts.signal;
    const replayable = !isIterable(body) && IDEMPOTENT.has(method);
    for (;;) {
      // An idle connection without a watch read is taken without an await (the usual case under load).
      const conn = (fresh ? undefined : pool.takeIdle()) ?? (await pool.acquire(fresh));
      if (call !== undefined) {
        if (call._cancelled) {
          pool.release(conn);
          throw ringioError('ERR_RINGIO_CLOSED', 'the request was cancelled by its caller');
        }
        call._conn = conn;
      }
      const reused = conn.used > 0;
      conn.used++;
      let onAbort: (() => void) | undefined;
      if (signal !== undefined) {
        onAbort = () => {
          conn.aborted = signal;
          void conn.destroy();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      try {
        const res = await (raw !== undefined ? this.#exchangeRaw(conn, method, body, raw) : this.#exchange(conn, u!, method, opts, body));
        if (call !== undefined) call._conn = undefined; // the head arrived: the caller closes the response instead
        if (onAbort !== undefined && !res.body.done) {
          // The signal also covers the body: stop listening once it ends.
          const stop = onAbort;
          onAbort = undefined;
          const prev = res.body._onEnd;
          res.body._onEnd = (ok) => {
            signal!.removeEventListener('abort', stop);
            prev?.(ok);
          };
        }
        return res;
      } catch (e) {
        if (call !== undefined) call._conn = undefined;
        conn.restoreHead(); // a raw head sent by sendHead: its bytes, for the retry here or the caller's
        await conn.destroy();
        if (reused && isDead(e, this._closed) && replayable && !fresh && conn.aborted === undefined && !conn.cancelled) {
          fresh = true;
          continue;
        }
        throw e;
      } finally {
        if (onAbort !== undefined) signal!.removeEventListener('abort', onAbort);
      }
    }
  }

  #pool(u: URL, socketPath: string | undefined): Pool {
    const secure = u.protocol === 'https:';
    const key = (secure ? 'https://' : '') + (socketPath !== undefined ? `unix:${socketPath}` : u.host);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
      const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port);
      const ms = this._connectTimeout;
      const plain: (signal?: AbortSignal) => Promise<SocketStream> = socketPath !== undefined
        ? (signal?: AbortSignal) => UnixStream.connect(socketPath, signal ? { signal } : {})
        : (signal?: AbortSignal) => TcpStream.connect({ host, port }, signal ? { signal, noDelay: true } : { noDelay: true });
      // https: the TCP connect and the handshake share the connect timeout.
      const open: (signal?: AbortSignal) => Promise<ByteStream> = secure
        ? async (signal?: AbortSignal) => {
            const t = this.#context(u);
            return TlsStream.over(await plain(signal), { context: t.ctx, servername: t.servername ?? host, timeout: 0, ...(signal ? { signal } : {}) });
          }
        : plain;
      const connect = () => (ms > 0 ? timeout((signal) => open(signal), ms) : open());
      pool = new Pool(this, key, connect as () => Promise<ByteStream>);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /**
   * The caller's complete head (framing fields and the blank line included), sent from its buffer (which
   * the caller keeps until the response head arrives; a bodiless head's buffer is exchanged, see sendHead). The send and the response's first read go to the
   * kernel together: no turn of the loop between them. Not async: the receive's promise is the result.
   */
  #exchangeRaw(conn: ClientConn, method: string, body: RequestBody, raw: RawHead): Promise<ClientResponse> {
    if (body === null || body === undefined) conn.sendHead(raw);
    else {
      const chunked = (raw.flags & H_TRANSFER_ENCODING) !== 0;
      this.#sendBeside(conn, conn.send(raw.buf, raw.len).then(() => this.#sendStream(conn, body as AsyncIterable<Uint8Array>, chunked)));
    }
    return this.#receive(conn, method, EMPTY_OPTS, true);
  }

  async #exchange(conn: ClientConn, u: URL, method: string, opts: RequestOptions, body: RequestBody): Promise<ClientResponse> {
    const out = conn.out;
    out.len = 0;
    const target = method === 'CONNECT' ? u.host : `${u.pathname}${u.search}`;
    out.latin1(`${method} ${target} HTTP/1.1\r\n`);
    const flags = out.fields(opts.headers);
    if ((flags & H_HOST) === 0) out.latin1(`Host: ${u.host}\r\n`);
    if (opts.upgrade !== undefined) {
      if ((flags & H_CONNECTION) === 0) out.latin1('Connection: Upgrade\r\n');
      out.latin1(`Upgrade: ${opts.upgrade}\r\n`);
    }
    let chunked = false;
    let bytes: Uint8Array | undefined;
    if (typeof body === 'string') bytes = Buffer.from(body);
    else if (body instanceof Uint8Array) bytes = body;
    if (flags & (H_CONTENT_LENGTH | H_TRANSFER_ENCODING)) {
      if (bytes === undefined && !isIterable(body)) throw new TypeError('Content-Length or Transfer-Encoding given without a body');
      chunked = (flags & H_TRANSFER_ENCODING) !== 0;
      if (bytes !== undefined && (flags & H_CONTENT_LENGTH) !== 0 && out.declaredLength !== bytes.length) {
        throw new RangeError(`Content-Length ${out.declaredLength} does not match the body (${bytes.length} bytes)`);
      }
    } else if (bytes !== undefined) {
      out.latin1(`Content-Length: ${bytes.length}\r\n`);
    } else if (isIterable(body)) {
      out.latin1('Transfer-Encoding: chunked\r\n');
      chunked = true;
    } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      out.latin1('Content-Length: 0\r\n');
    }
    out.bytes(CRLF);
    // Send.
    if (bytes !== undefined && bytes.length <= BIG) {
      out.bytes(bytes);
      await conn.send(out.buf, out.len);
    } else {
      await conn.send(out.buf, out.len);
    }
    if ((bytes !== undefined && bytes.length > BIG) || isIterable(body)) {
      // A large or streamed body is sent beside the wait for the response: a server that answers
      // early (413), or streams its answer while it reads (an echo), does not deadlock with us.
      this.#sendBeside(conn, bytes !== undefined ? conn.send(bytes, bytes.length) : this.#sendStream(conn, body as Iterable<Uint8Array>, chunked));
    }
    return this.#receive(conn, method, opts, false);
  }

  /** Lets a body's send run beside the wait for the response (its failure closes the connection). */
  #sendBeside(conn: ClientConn, sending: Promise<void>): void {
    conn.sending = sending.then(
      () => {
        conn.sending = undefined;
      },
      (e: unknown) => {
        conn.sendError = e;
        void conn.destroy();
      },
    );
  }

  /** Receives the response head (1xx interim responses are skipped, except 101): one async frame per request. */
  async #receive(conn: ClientConn, method: string, opts: RequestOptions, pooled: boolean): Promise<ClientResponse> {
    conn.phase = PHASE_HEAD;
    conn.tick = this._tick;
    const p = conn.parser;
    let gotAny = false;
    try {
      for (;;) {
        let end = 0;
        for (;;) {
          if (conn.rpos < conn.rend) {
            gotAny = true;
            end = p.response(conn.rbuf, conn.rpos, conn.rend);
            if (end !== 0) break;
          }
          const n = await conn.fill();
          if (n === 0) {
            if (!gotAny) throw ringioError('ERR_RINGIO_UNEXPECTED_EOF', 'the server closed the connection before responding', { n: 0, noResponse: true });
            throw ringioError('ERR_RINGIO_UNEXPECTED_EOF', 'the server closed the connection inside the response head', { n: conn.rend - conn.rpos });
          }
        }
        if (end < 0) throw ringioError('ERR_RINGIO_HTTP_PARSE', `bad response: ${p.errReason}`, { status: p.errStatus });
        if (p.status >= 100 && p.status < 200 && p.status !== 101) {
          conn.rpos = end;
          continue;
        }
        if (ClientConn.handsOver(method, p.status)) await conn.takeOver(); // (nothing to stop unless it reads through leases)
        return this.#response(conn, method, opts, end, pooled);
      }
    } catch (e) {
      // A failed send explains a failed receive better than the receive's own error.
      if (conn.sending !== undefined) await conn.sending;
      throw conn.sendError ?? e;
    }
  }

  async #sendStream(conn: ClientConn, body: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, chunked: boolean): Promise<void> {
    const out = conn.out;
    for await (const c of body as AsyncIterable<Uint8Array | string>) {
      checkChunk(c, 'request body');
      const chunk = typeof c === 'string' ? Buffer.from(c) : c;
      if (chunk.length === 0) continue;
      out.len = 0;
      if (chunked) out.latin1(`${chunk.length.toString(16)}\r\n`);
      if (chunk.length <= BIG) {
        out.bytes(chunk);
        if (chunked) out.bytes(CRLF);
        await conn.send(out.buf, out.len);
      } else {
        if (out.len > 0) await conn.send(out.buf, out.len);
        await conn.send(chunk, chunk.length);
        if (chunked) await conn.send(CRLF, 2);
      }
    }
    if (chunked) await conn.send(LAST_CHUNK, LAST_CHUNK.length);
  }

  /**
   * The response whose head ends at `end` in conn's buffer. `pooled` (a proxied request, see _send): the
   * connection's own response, body and header view are reused, the view points into the read buffer
   * (valid until the body is read), and the end is reported by the connection's own callback.
   */
  #response(conn: ClientConn, method: string, opts: RequestOptions, end: number, pooled: boolean): ClientResponse {
    conn.headAnswered();
    const p = conn.parser;
    const status = p.status;
    const upgraded = status === 101 || (method === 'CONNECT' && status >= 200 && status < 300);
    let headers: HeaderView;
    let statusText: string;
    if (pooled && !upgraded) {
      headers = conn.headers ??= new HeaderView(conn.rbuf, p.offs, 0, p.names);
      headers._buf = conn.rbuf;
      headers._offs = p.offs;
      headers._names = p.names;
      headers._count = p.count;
      headers._connNames = (p.conn & ConnOpt.OTHER) !== 0;
      statusText = reasonText(conn.rbuf, p.reasonStart, p.reasonEnd);
    } else {
      // The response owns a copy of its head: headers stay valid after the body reuses the buffer.
      const head = Buffer.allocUnsafe(end - p.headStart);
      conn.rbuf.copy(head, 0, p.headStart, end);
      const delta = p.headStart;
      const offs = p.offs.slice(0, 4 * p.count);
      for (let i = 0; i < offs.length; i++) offs[i] = offs[i]! - delta;
      headers = new HeaderView(head, offs, p.count, p.names.slice(0, p.count), (p.conn & ConnOpt.OTHER) !== 0);
      statusText = head.latin1Slice(p.reasonStart - delta, p.reasonEnd - delta);
    }
    conn.rpos = end;
    conn.phase = PHASE_NONE;
    if (upgraded) {
      // Upgraded: the stream is the caller's now.
      conn.dead = true;
      conn.pool.remove(conn);
      const rest = Buffer.from(conn.rbuf.subarray(conn.rpos, conn.rend));
      const body = new IncomingBody();
      body._reset(conn, MODE_NONE, 0, undefined, Infinity);
      return new ClientResponse(status, statusText, p.minor, headers, body, undefined, conn.stream, rest);
    }
    let keep = p.minor === 1 ? (p.conn & ConnOpt.CLOSE) === 0 : (p.conn & ConnOpt.KEEP_ALIVE) !== 0;
    let mode = MODE_NONE;
    let length = 0;
    if (method === 'HEAD' || status === 204 || status === 304) mode = MODE_NONE;
    else if (p.hasTE) {
      if (p.chunked) mode = MODE_CHUNKED;
      else {
        mode = MODE_CLOSE;
        keep = false;
      }
    } else if (p.contentLength >= 0) {
      mode = MODE_LENGTH;
      length = p.contentLength;
    } else {
      mode = MODE_CLOSE;
      keep = false;
    }
    if (pooled) {
      const body = (conn.pbody ??= new IncomingBody());
      conn.body = body;
      body._reset(conn, mode, length, mode === MODE_CHUNKED ? conn.decoder() : undefined, Infinity);
      let res = conn.res;
      if (res === undefined) res = conn.res = new ClientResponse(status, statusText, p.minor, headers, body, conn);
      else res._init(status, statusText, p.minor, headers, body, conn);
      conn.keep = keep;
      conn.bodyReads();
      if (body.done) conn.finish(true);
      else body._onEnd = conn.finish;
      return res;
    }
    const body = new IncomingBody();
    body._reset(conn, mode, length, mode === MODE_CHUNKED ? conn.decoder() : undefined, Infinity);
    conn.body = body;
    const res = new ClientResponse(status, statusText, p.minor, headers, body, conn);
    const finish = (ok: boolean): void => {
      res._conn = undefined;
      if (conn.sending !== undefined) {
        // The response ended before the request did: reuse only once the request is out.
        void conn.sending.then(() => finish(ok && conn.sendError === undefined));
        return;
      }
      if (ok && keep && conn.reusable()) conn.toPool();
      else void conn.destroy();
    };
    conn.bodyReads();
    if (body.done) finish(true);
    else body._onEnd = finish;
    void opts;
    return res;
  }

  /** The client TLS context of an https: origin, made on first use. */
  #context(u: URL): { ctx: TlsContext; own: boolean; servername: string | undefined } {
    const key = u.host;
    let c = this.#contexts.get(key);
    if (c === undefined || c.ctx.closed) {
      let o = this.#tlsOpts;
      let servername: string | undefined;
      if (typeof o === 'function') {
        const got = o(u);
        servername = (got as { servername?: string })?.servername;
        o = got;
      }
      if (o instanceof TlsContext) c = { ctx: o, own: false, servername };
      else c = { ctx: TlsContext.client((o as TlsClientOptions | undefined) ?? {}), own: true, servername };
      this.#contexts.set(key, c);
    }
    return c;
  }

  /** Closes every connection (idle and busy) and stops the ticker. */
  async close(): Promise<void> {
    if (this._closed) return;
    this._closed = true;
    this.#tickCtl.abort();
    const all: Promise<void>[] = [];
    for (const pool of this.#pools.values()) {
      for (const c of pool.all.values()) all.push(c.destroy());
      for (const w of pool.waiters.splice(0)) w(undefined);
    }
    await Promise.all(all);
    for (const c of this.#contexts.values()) if (c.own) c.ctx.close();
    this.#contexts.clear();
    try {
      await this.#ticker;
    } catch {
      // Aborted by the runtime's shutdown.
    }
  }
}

const defaultClients = new WeakMap<object, HttpClient>();

/** request() through the default HttpClient of this thread's runtime. */
export function request(url: string | URL, opts?: RequestOptions): Promise<ClientResponse> {
  try {
    const rt = currentRuntime();
    let client = defaultClients.get(rt);
    if (client === undefined) defaultClients.set(rt, (client = new HttpClient()));
    return client.request(url, opts);
  } catch (e) {
    return Promise.reject(e);
  }
}
