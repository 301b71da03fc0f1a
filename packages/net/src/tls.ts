/**
 * TLS over ringio's own streams: TlsContext (certificates, SNI, ALPN, verification) and TlsStream, a
 * TLS session over a TcpStream (or any SocketStream) with the same read/write/close interface.
 * The cryptography runs in the addon (Node's bundled OpenSSL over memory BIOs, addon/tls.cc): a read
 * from the ring is handed in whole and decrypted in one call; a write is encrypted in one call and sent
 * as one op. docs/design/tls.md has the design.
 *
 * Rules:
 *  1. Writes (and the handshake's and alerts' ciphertext) go out in the order they were made: every
 *     send runs on one chain per stream.
 *  2. Reads are one at a time (a second concurrent read waits for the first). After the handshake a
 *     pooled socket is read by a readLeases() consumer: arrivals are decrypted in the dispatch into the
 *     waiting read's window; ones that find no read waiting are held in order (at most HOLD, then the
 *     consumer pauses), and the end of the stream comes after them. The TlsStream owns its socket's reads.
 *  3. close() frees the session at once; the kernel only ever holds the stream's own JS buffers, which
 *     stay referenced by their ops until the kernel answers.
 *  4. A failed handshake rejects a TlsError with Node's code and closes the TCP stream.
 */
import { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  abortError,
  checkBuffer,
  checkBufs,
  checkRange,
  ringioError,
  timeout,
  tlsNative,
  TlsError,
  TLS_HANDSHAKE_DONE,
  TLS_MORE,
  TLS_PEER_CLOSED,
  type RecvLease,
  type TlsResult,
} from '@ringio/runtime';
import type { AddrInput, SocketAddr } from './addr.js';
import { readExactFrom, splitHalves, type ReadHalf, type ReadOptions, type SocketStream, type WriteHalf, type WriteOptions } from './stream.js';
import { TcpStream, type TcpConnectOptions } from './tcp.js';

/** PEM text, or its bytes. */
export type PemInput = string | Uint8Array;

/** A certificate chain (leaf first) and its private key, for a server (or a client certificate). */
export interface TlsCertificate {
  /** The certificate chain in PEM, leaf first. */
  cert: PemInput;
  /** The private key in PEM. */
  key: PemInput;
  /** The key's passphrase, if it is encrypted. */
  passphrase?: string;
  /**
   * Server names this certificate answers (SNI): exact names or '*.example.com'. Default: the DNS names
   * of the certificate's subjectAltName.
   */
  names?: string[];
}

/** TlsContext.server's options: the default certificate, more certificates chosen by SNI, ALPN. */
export interface TlsServerOptions {
  /** The default certificate chain (PEM); with `key`. Optional when `sni` is given (its first entry is the default). */
  cert?: PemInput;
  /** The default certificate's private key (PEM). */
  key?: PemInput;
  /** The key's passphrase. */
  passphrase?: string;
  /** More certificates, chosen by the name the client asks for (SNI); an unknown name gets the default. */
  sni?: TlsCertificate[];
  /** ALPN protocols in order of preference (default ['http/1.1']). */
  ALPNProtocols?: string[];
  /** The lowest protocol version accepted: 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** TlsContext.client's options: whom to trust and what to offer. */
export interface TlsClientOptions {
  /** CA certificates (PEM, one or several) trusted instead of Node's bundled root certificates. */
  ca?: PemInput | PemInput[];
  /** Reject a peer whose certificate does not verify or does not match the name (default true). */
  rejectUnauthorized?: boolean;
  /** ALPN protocols to offer (default none). */
  ALPNProtocols?: string[];
  /** A client certificate chain (PEM), with `key`. */
  cert?: PemInput;
  /** The client certificate's private key (PEM). */
  key?: PemInput;
  /** The key's passphrase. */
  passphrase?: string;
  /** The lowest protocol version accepted: 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** TlsStream.accept's options. */
export interface TlsAcceptOptions {
  /** ms the handshake may take (default 10000; 0: no limit). Past it: ERR_TLS_HANDSHAKE_TIMEOUT. */
  handshakeTimeout?: number;
  /** Aborting it cancels the handshake. */
  signal?: AbortSignal;
}

/** TlsStream.connect's options (a TlsContext, or the options to make one, and the name to verify). */
export interface TlsConnectOptions extends TlsClientOptions {
  /** A client context to use (its ca, verification and ALPN); else one is made from these options. */
  context?: TlsContext;
  /** The name sent as SNI and checked against the certificate (default: the host connected to). */
  servername?: string;
  /** ms the TCP connect plus handshake may take (default 10000; 0: no limit). */
  timeout?: number;
  /** Aborting it cancels the connect and handshake. */
  signal?: AbortSignal;
  /** TCP_NODELAY (default true). */
  noDelay?: boolean;
}

/** What a session negotiated. */
export interface TlsInfo {
  /** 'TLSv1.3' or 'TLSv1.2'. */
  protocol: string;
  /** The cipher suite's OpenSSL name. */
  cipher: string;
  /** The ALPN protocol agreed, or null. */
  alpnProtocol: string | null;
  /** The name the client asked for (SNI), or null. */
  servername: string | null;
  /** Whether the peer's certificate verified (and matched the name, on a client). */
  authorized: boolean;
  /** Why it did not ('DEPTH_ZERO_SELF_SIGNED_CERT', 'NO_PEER_CERTIFICATE', ...), or null. */
  authorizationError: string | null;
}

const enc = new TextEncoder();

function pemBytes(v: unknown, what: string): Uint8Array {
  if (typeof v === 'string') return enc.encode(v);
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`${what} must be PEM text (a string or a Uint8Array)`);
}

function alpnWire(list: unknown, what: string): Uint8Array | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw new TypeError(`${what} must be an array of strings`);
  const parts: number[] = [];
  for (const p of list) {
    if (typeof p !== 'string' || p.length === 0 || p.length > 255) throw new TypeError(`${what} entries must be strings of 1..255 bytes`);
    parts.push(p.length, ...enc.encode(p));
  }
  return new Uint8Array(parts);
}

function minVersion(v: unknown): string {
  if (v === undefined) return 'TLSv1.2';
  if (v !== 'TLSv1.2' && v !== 'TLSv1.3') throw new RangeError("minVersion must be 'TLSv1.2' or 'TLSv1.3'");
  return v;
}

/** The DNS names of a certificate's subjectAltName (the leaf: the first PEM block). */
function certNames(cert: Uint8Array): string[] {
  const x = new X509Certificate(Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength));
  const names: string[] = [];
  for (const part of (x.subjectAltName ?? '').split(/,\s*/)) if (part.startsWith('DNS:')) names.push(part.slice(4));
  return names;
}

let rootCas: Uint8Array | undefined;
/** Node's bundled root certificates, the default trust of a client (as node:tls has it). */
function rootCertificates(): Uint8Array {
  if (rootCas === undefined) {
    const tls = createRequire(import.meta.url)('node:tls') as { rootCertificates: readonly string[] };
    rootCas = enc.encode(tls.rootCertificates.join('\n'));
  }
  return rootCas;
}

const contexts = new FinalizationRegistry<number>((id) => tlsNative.contextFree(id));
const sessions = new FinalizationRegistry<number>((id) => tlsNative.sessionFree(id));

/**
 * TLS settings made once and shared by many connections (an SSL_CTX in the addon): a server's
 * certificates (the default one plus SNI ones) and ALPN list, or a client's trusted CAs, verification and
 * ALPN. Belongs to the thread that made it; close() frees it (connections using it keep it alive until
 * they close), or the garbage collector does.
 */
export class TlsContext {
  /** True for a server context. */
  readonly isServer: boolean;
  /** @internal */ _id: number;
  /** @internal */ readonly _reject: boolean;
  readonly #children: number[] = [];

  private constructor(id: number, isServer: boolean, reject: boolean) {
    this._id = id;
    this.isServer = isServer;
    this._reject = reject;
    contexts.register(this, id, this);
  }

  /**
   * A server context. Throws a TypeError for missing or malformed options, and an Error with Node's
   * ERR_OSSL_* code for PEM that OpenSSL refuses (a key that does not match its certificate included).
   */
  static server(opts: TlsServerOptions): TlsContext {
    if (opts === null || typeof opts !== 'object') throw new TypeError('TlsContext.server(opts): opts must be an object');
    const sni = opts.sni ?? [];
    if (!Array.isArray(sni)) throw new TypeError('options.sni must be an array of { cert, key, names? }');
    const alpn = alpnWire(opts.ALPNProtocols ?? ['http/1.1'], 'options.ALPNProtocols');
    const min = minVersion(opts.minVersion);
    let def: TlsCertificate | undefined;
    if (opts.cert !== undefined || opts.key !== undefined) def = { cert: opts.cert!, key: opts.key!, passphrase: opts.passphrase };
    else if (sni.length > 0) def = sni[0];
    if (def === undefined) throw new TypeError('a TLS server needs cert and key (or sni entries)');
    const make = (c: TlsCertificate, what: string): number => {
      if (c === null || typeof c !== 'object') throw new TypeError(`${what} must be an object with cert and key`);
      return tlsNative.contextNew({
        server: true,
        cert: pemBytes(c.cert, `${what}.cert`),
        key: pemBytes(c.key, `${what}.key`),
        passphrase: c.passphrase,
        alpn,
        minVersion: min,
      });
    };
    const id = make(def, 'options');
    const ctx = new TlsContext(id, true, false);
    try {
      sni.forEach((c, i) => {
        const child = make(c, `options.sni[${i}]`);
        ctx.#children.push(child);
        const names = c.names ?? certNames(pemBytes(c.cert, `options.sni[${i}].cert`));
        if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
          throw new TypeError(`options.sni[${i}].names must be an array of server names`);
        }
        for (const n of names) tlsNative.contextSni(id, child, n);
      });
    } catch (e) {
      ctx.close();
      throw e;
    }
    return ctx;
  }

  /** A client context: Node's root certificates (or `ca`), verification on unless rejectUnauthorized is false. */
  static client(opts: TlsClientOptions = {}): TlsContext {
    if (opts === null || typeof opts !== 'object') throw new TypeError('TlsContext.client(opts): opts must be an object');
    const reject = opts.rejectUnauthorized !== false;
    let ca: Uint8Array;
    if (opts.ca === undefined) ca = rootCertificates();
    else {
      const list = Array.isArray(opts.ca) ? opts.ca : [opts.ca];
      const parts = list.map((c, i) => pemBytes(c, `options.ca[${i}]`));
      ca = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
      let at = 0;
      for (const p of parts) {
        ca.set(p, at);
        ca[at + p.length] = 10;
        at += p.length + 1;
      }
    }
    if ((opts.cert === undefined) !== (opts.key === undefined)) throw new TypeError('options.cert and options.key go together');
    const id = tlsNative.contextNew({
      server: false,
      ca,
      verify: reject,
      alpn: alpnWire(opts.ALPNProtocols, 'options.ALPNProtocols'),
      minVersion: minVersion(opts.minVersion),
      ...(opts.cert !== undefined ? { cert: pemBytes(opts.cert, 'options.cert'), key: pemBytes(opts.key, 'options.key'), passphrase: opts.passphrase } : {}),
    });
    return new TlsContext(id, false, reject);
  }

  /** True once close() freed it. */
  get closed(): boolean {
    return this._id < 0;
  }

  /** Frees the context now (connections using it keep it until they close). Idempotent. */
  close(): void {
    if (this._id < 0) return;
    contexts.unregister(this);
    tlsNative.contextFree(this._id);
    for (const c of this.#children) tlsNative.contextFree(c);
    this.#children.length = 0;
    this._id = -1;
  }
}

/** Ciphertext read from the socket per op: one whole record (16 KiB of plaintext plus its header and tag). */
const CIPHER_READ = 17 * 1024;
/** The first send buffer of a stream; it grows up to WRITE_CHUNK + WRITE_ROOM for larger writes. */
const FIRST_OUT = 16 * 1024;
/** Plaintext encrypted per call and sent per op for large writes. */
const WRITE_CHUNK = 64 * 1024;
/** Room for records' headers, tags and padding on top of WRITE_CHUNK. */
const WRITE_ROOM = 2048;
const noop = (): void => {};
/** Leases a TlsStream holds for its next reads before its consumer pauses (LeaseReader's bound too). */
const HOLD = 4;
// One executor for every consumer-path read's promise (as LeaseReader does): no closure per read.
let binding: TlsStream | undefined;
const bindRead = (resolve: (v: [number, Uint8Array]) => void, reject: (e: unknown) => void): void => binding!._bindRead(resolve, reject);
// The same for the one-send writes' promises (writeAll's common path over a SocketStream).
const bindWrite = (resolve: (v: [number, Uint8Array]) => void, reject: (e: unknown) => void): void => binding!._bindWrite(resolve, reject);
/** Plaintext that arrives with the handshake's last flight lands here first (one thread: one at a time). */
const handshakeScratch = new Uint8Array(16 * 1024);
/** readChunks() decrypts here, then copies each chunk out at its size (one thread: used synchronously). */
const chunkScratch = Buffer.allocUnsafeSlow(16 * 1024 + 256);

/**
 * A TLS session over a connected stream: read/write/close as every ringio stream (resolving [n, buf]
 * with the buffer passed in), readv/writev, readExact/writeAll, shutdown (close_notify, then SHUT_WR) and
 * intoSplit(). Made by TlsStream.accept(stream, context) on a server and TlsStream.connect(addr, opts)
 * on a client; both resolve once the handshake is complete. Errors: TlsError with Node's codes, and the
 * stream's own (ECONNRESET, ERR_RINGIO_CLOSED).
 */
export class TlsStream implements ReadHalf, WriteHalf {
  /** The TCP (or Unix) stream underneath. */
  readonly socket: SocketStream;
  #id: number;
  #host: string | undefined;
  readonly #res: TlsResult = { n: 0, pending: 0, flags: 0 };
  /** Where the ciphertext of the last receive is (a pool lease's buffer, or #cin), until #doneIn(). */
  #in: Uint8Array | undefined;
  /** The pool lease holding it (pooled receives), released by #doneIn(). */
  #lease: RecvLease | undefined;
  /** Receives go through the socket's readLease (the runtime's pool): no buffer held while waiting. */
  readonly #pooled: boolean;
  /** The ciphertext buffer of a socket without readLease (made on its first receive). */
  #cin: Uint8Array | undefined;
  #cout: Uint8Array | undefined;
  // Plaintext that came with the handshake's last flight (a copy from handshakeScratch).
  #stash: Uint8Array | undefined;
  #stashPos = 0;
  #stashEnd = 0;
  #more = false;
  #eof = false;
  #done = false;
  #tail: Promise<unknown> | undefined;
  #reading: Promise<unknown> | undefined;
  #busy = false;
  /**
   * After the handshake, a pooled socket is read by a readLeases() consumer (#onLease): each ciphertext
   * arrival is decrypted, in the completion's dispatch, straight into the window of the read waiting for
   * it, which settles once (no promise and no await per receive). A lease that finds no read waiting is
   * held (#held, in order) for the next read; at HOLD held leases the consumer pauses until a read takes one.
   */
  #consuming = false;
  /** How the consumer ended: true at the end of the stream, or its error (undefined while it runs). */
  #ended: true | Error | undefined;
  /** Leases that arrived with no read waiting, in order (made on first use). */
  #held: RecvLease[] | undefined;
  /** Resumes the paused consumer. */
  #resume: (() => void) | undefined;
  /** The window of the read waiting on the consumer (read()'s common path), and its settlers. */
  #rbuf: Uint8Array | undefined;
  #roff = 0;
  #rlen = 0;
  #rres: ((v: [number, Uint8Array]) => void) | undefined;
  #rrej: ((e: unknown) => void) | undefined;
  /** A slow-path receive (#recv) waiting on the consumer for the next lease, and its settlers. */
  #lres: ((lease: RecvLease | null) => void) | undefined;
  #lrej: ((e: unknown) => void) | undefined;
  /** The write in flight on writeAll()'s common path (#onSent), and its send's options (reused). */
  #wbuf: Uint8Array | undefined;
  #wlen = 0;
  #wsent: Promise<unknown> | undefined;
  readonly #wopts = { length: 0 };
  /** The one-send write's settlers, when it goes by the socket's _writeAllTo (#bound: the socket is a SocketStream). */
  #wres: ((v: [number, Uint8Array]) => void) | undefined;
  #wrej: ((e: unknown) => void) | undefined;
  readonly #bound: boolean;
  /** That write's send is in flight (it has no promise on #tail); #wtoDone lets what queued behind it go. */
  #wto = false;
  #wtoDone: (() => void) | undefined;
  #info: TlsInfo | undefined;
  /** readChunks()'s handler while it runs (pooled sockets), its settlers, and the pause its handler asked for. */
  #chunkFn: ((chunk: Buffer) => unknown) | undefined;
  #chunkRes: (() => void) | undefined;
  #chunkRej: ((e: unknown) => void) | undefined;
  #chunkWait: PromiseLike<unknown> | undefined;
  #chunkRunning = false;

  private constructor(socket: SocketStream, id: number, host: string | undefined) {
    this.socket = socket;
    this.#id = id;
    this.#host = host;
    this.#pooled = typeof socket.readLease === 'function';
    this.#bound = typeof (socket as Partial<SocketStream>)._writeAllTo === 'function';
    sessions.register(this, id, this);
  }

  /**
   * The server side: runs the handshake on an accepted stream with `context`'s certificates and resolves
   * the TlsStream. On failure (a bad ClientHello, a peer that leaves, the timeout) the stream is closed
   * and a TlsError (or ECONNRESET) rejects.
   */
  static async accept(stream: SocketStream, context: TlsContext, opts: TlsAcceptOptions = {}): Promise<TlsStream> {
    if (!(context instanceof TlsContext) || !context.isServer) throw new TypeError('TlsStream.accept(stream, context): context must be a server TlsContext');
    if (context._id < 0) throw ringioError('ERR_RINGIO_CLOSED', 'the TLS context is closed');
    let t: TlsStream;
    try {
      t = new TlsStream(stream, tlsNative.sessionNew(context._id), undefined);
    } catch (e) {
      await stream.close().catch(noop);
      throw e;
    }
    await t.#handshakeWithin(opts.handshakeTimeout ?? 10_000, opts.signal);
    return t;
  }

  /**
   * The client side: connects over TCP to `addr`, runs the handshake (SNI and verification against
   * `servername`, default the host) and resolves the TlsStream. A certificate that does not verify
   * rejects with its X509 code ('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', ...);
   * one that does not match the name with ERR_TLS_CERT_ALTNAME_INVALID.
   */
  static async connect(addr: AddrInput, opts: TlsConnectOptions = {}): Promise<TlsStream> {
    const host = typeof addr === 'string' ? hostOf(addr) : (addr as { host?: string }).host ?? '127.0.0.1';
    const ms = opts.timeout ?? 10_000;
    const tcpOpts: TcpConnectOptions = { noDelay: opts.noDelay !== false, ...(opts.signal ? { signal: opts.signal } : {}) };
    const tcp = ms > 0 ? await timeout((signal) => TcpStream.connect(addr, { ...tcpOpts, signal: anySignal(signal, opts.signal) }), ms) : await TcpStream.connect(addr, tcpOpts);
    return TlsStream.over(tcp, { ...opts, servername: opts.servername ?? host });
  }

  /** The client side over a stream already connected (a Unix socket, a proxy's tunnel): runs the handshake. */
  static async over(stream: SocketStream, opts: TlsConnectOptions & { servername: string }): Promise<TlsStream> {
    let ctx = opts.context;
    let own = false;
    try {
      if (ctx === undefined) {
        ctx = TlsContext.client(opts);
        own = true;
      } else if (!(ctx instanceof TlsContext) || ctx.isServer) throw new TypeError('options.context must be a client TlsContext');
      if (ctx._id < 0) throw ringioError('ERR_RINGIO_CLOSED', 'the TLS context is closed');
      const name = opts.servername;
      const t = new TlsStream(stream, tlsNative.sessionNew(ctx._id, name, ctx._reject ? name : undefined), name);
      await t.#handshakeWithin(opts.timeout ?? 10_000, opts.signal);
      return t;
    } catch (e) {
      await stream.close().catch(noop);
      throw e;
    } finally {
      if (own) ctx!.close(); // the session holds it
    }
  }

  /** The stream's fd (-1 once closed). */
  get fd(): number {
    return this.#id < 0 ? -1 : this.socket.fd;
  }

  /** What the handshake negotiated. */
  get info(): TlsInfo {
    if (this.#info === undefined) {
      if (this.#id < 0) throw ringioError('ERR_RINGIO_CLOSED', 'the TLS stream is closed');
      const i = tlsNative.info(this.#id);
      this.#info = {
        protocol: i.protocol ?? '',
        cipher: i.cipher ?? '',
        alpnProtocol: i.alpn ?? null,
        servername: i.servername ?? null,
        authorized: i.verifyCode === null,
        authorizationError: i.verifyCode ?? null,
      };
    }
    return this.#info;
  }

  /** The ALPN protocol agreed ('http/1.1', 'h2'), or null. */
  get alpnProtocol(): string | null {
    return this.info.alpnProtocol;
  }

  /** The peer's address (TCP streams). */
  get peerAddr(): SocketAddr {
    return (this.socket as TcpStream).peerAddr;
  }

  /** This side's address (TCP streams). */
  get localAddr(): SocketAddr {
    return (this.socket as TcpStream).localAddr;
  }

  /** TCP_NODELAY on the stream underneath. */
  setNoDelay(noDelay = true): this {
    (this.socket as TcpStream).setNoDelay(noDelay);
    return this;
  }

  async #handshakeWithin(ms: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      if (ms > 0) {
        await timeout((s) => this.#handshake(anySignal(s, signal)), ms).catch((e: { code?: string }) => {
          if (e?.code === 'ERR_RINGIO_TIMEOUT') throw new TlsError('ERR_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake timeout');
          throw e;
        });
      } else await this.#handshake(signal);
    } catch (e) {
      await this.close().catch(noop);
      throw e;
    }
  }

  async #handshake(signal: AbortSignal | undefined): Promise<void> {
    const res = this.#res;
    let m = 0;
    for (;;) {
      const scratch = handshakeScratch;
      let ok: boolean;
      try {
        ok = tlsNative.read(this.#live(), m > 0 ? this.#in! : null, 0, m, scratch, 0, scratch.length, res);
      } finally {
        this.#doneIn();
      }
      if (!ok) {
        const err = this.#failure();
        await this.#flush(undefined).catch(noop); // the alert, so the peer learns why
        throw err;
      }
      if (res.n > 0) {
        this.#stash = scratch.slice(0, res.n);
        this.#stashEnd = res.n;
      }
      this.#more = (res.flags & TLS_MORE) !== 0;
      if ((res.flags & TLS_PEER_CLOSED) !== 0) this.#eof = true;
      if (res.pending > 0) await this.#flush(signal);
      if ((res.flags & TLS_HANDSHAKE_DONE) !== 0) break;
      if (this.#eof) throw this.#reset();
      m = await this.#recv(signal);
      if (m === 0) throw this.#reset();
    }
    this.#done = true;
  }

  /**
   * Receives the next ciphertext from the socket: resolves its length (0 at the end of the stream), the
   * bytes being #in[0, n) until #doneIn(). A socket with readLease receives from the runtime's pool (on
   * io_uring a multishot receive into provided buffers: no submission and no poll per read once it runs),
   * and the lease goes back as soon as the session has taken the bytes (tlsNative.read copies them into
   * its read BIO); other sockets read into the stream's own buffer.
   */
  async #recv(signal: AbortSignal | undefined): Promise<number> {
    if (this.#pooled) {
      const lease = this.#consuming ? await this.#nextLease(signal) : await this.socket.readLease!(signal ? { signal } : undefined);
      if (lease === null) return 0;
      this.#lease = lease;
      this.#in = lease.buf;
      return lease.length;
    }
    const cin = (this.#cin ??= new Uint8Array(CIPHER_READ));
    const [m] = await this.socket.read(cin, signal ? { signal } : undefined);
    this.#in = cin;
    return m;
  }

  /** The next lease from the consumer (a held one, or the next arrival); null at the end of the stream. */
  #nextLease(signal: AbortSignal | undefined): Promise<RecvLease | null> {
    const held = this.#takeHeld();
    if (held !== undefined) return Promise.resolve(held);
    const ended = this.#ended;
    if (ended !== undefined) return ended === true ? Promise.resolve(null) : Promise.reject(ended);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<RecvLease | null>((resolve, reject) => {
      if (signal === undefined) {
        this.#lres = resolve;
        this.#lrej = reject;
        return;
      }
      const onAbort = (): void => {
        if (this.#lrej !== fail) return;
        this.#lres = this.#lrej = undefined;
        reject(abortError(signal)); // what arrives later is held for the next read: nothing is lost
      };
      const done = (lease: RecvLease | null): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(lease);
      };
      const fail = (e: unknown): void => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      };
      this.#lres = done;
      this.#lrej = fail;
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The session took the ciphertext of the last receive: its lease goes back to the pool. */
  #doneIn(): void {
    this.#in = undefined;
    const lease = this.#lease;
    if (lease !== undefined) {
      this.#lease = undefined;
      lease.release();
    }
  }

  #reset(): Error {
    return new TlsError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established', {
      host: this.#host,
    });
  }

  #live(buf?: unknown): number {
    if (this.#id < 0) throw ringioError('ERR_RINGIO_CLOSED', 'the TLS stream is closed', buf !== undefined ? { buf } : undefined);
    return this.#id;
  }

  /** The session's last failure as a TlsError with Node's code. */
  #failure(): TlsError {
    const d = tlsNative.error(this.#id);
    const reason = d.reason ?? 'TLS failure';
    if (d.verifyCode === 'HOSTNAME_MISMATCH' || d.verifyCode === 'IP_ADDRESS_MISMATCH') {
      return new TlsError('ERR_TLS_CERT_ALTNAME_INVALID', `Hostname/IP does not match certificate's altnames: Host: ${this.#host}`, {
        reason: d.verifyMessage,
        host: this.#host,
      });
    }
    if (d.verifyCode !== undefined) return new TlsError(d.verifyCode, d.verifyMessage ?? reason, { reason });
    const code = 'ERR_SSL_' + reason.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
    return new TlsError(code, `${d.library ?? 'SSL routines'}::${reason}`, { reason, library: d.library });
  }

  /** Sends the ciphertext waiting in the session (handshake messages, alerts, post-handshake messages). */
  #flush(signal: AbortSignal | undefined): Promise<unknown> {
    return this.#chain(() => this.#flushNow(signal));
  }

  /** Takes and sends the waiting ciphertext (on the send chain, or as its current link). */
  async #flushNow(signal: AbortSignal | undefined): Promise<void> {
    const res = this.#res;
    const out = this.#outFor(0);
    for (;;) {
      if (this.#id < 0) return;
      tlsNative.take(this.#id, out, 0, out.length, res);
      if (res.n === 0) return;
      await this.socket.writeAll(out, { length: res.n, ...(signal ? { signal } : {}) });
    }
  }

  /**
   * The stream's send buffer, with room for `plain` bytes of plaintext (grown up to WRITE_CHUNK +
   * WRITE_ROOM). Only used by the send in flight: sends run one at a time.
   */
  #outFor(plain: number): Uint8Array {
    const want = Math.min(plain, WRITE_CHUNK) + WRITE_ROOM;
    let out = this.#cout;
    if (out === undefined || out.length < want) {
      out = new Uint8Array(Math.max(want, out === undefined ? FIRST_OUT : Math.min(out.length * 2, WRITE_CHUNK + WRITE_ROOM)));
      this.#cout = out;
    }
    return out;
  }

  /** Runs `fn` after every send queued before it (one send chain per stream). */
  #chain<T>(fn: () => Promise<T>): Promise<T> {
    // Behind the one-send write in flight, if any (made only when something has to wait for it).
    const prev = this.#tail ?? (this.#wto ? new Promise<void>((go) => (this.#wtoDone = go)) : undefined);
    const p = prev === undefined ? fn() : prev.then(fn, fn);
    const tail = p.then(noop, noop);
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    return p;
  }

  /**
   * Reads plaintext into the window: at least 1 byte, or 0 at the end of the stream (close_notify, or
   * the TCP stream's end). Resolves [n, buf].
   */
  read<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      this.#live(buf);
      if (this.#busy) {
        const again = (): Promise<[number, B]> => this.read(buf, opts);
        return this.#reading!.then(again, again);
      }
      if (this.#pooled && length > 0 && opts?.signal === undefined && this.#stash === undefined && !this.#more && !this.#eof && this.#ended === undefined) {
        // The common case: the consumer decrypts the next arrival into this window and settles the read.
        for (let held = this.#takeHeld(); held !== undefined; held = this.#takeHeld()) {
          const r = this.#decrypt(held, buf, offset, length);
          if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r as [number, B]);
        }
        this.#busy = true;
        this.#rbuf = buf;
        this.#roff = offset;
        this.#rlen = length;
        binding = this;
        const p = new Promise<[number, Uint8Array]>(bindRead) as Promise<[number, B]>;
        binding = undefined;
        this.#reading = p;
        this.#consume();
        return p;
      }
      const p = this.#read(buf, offset, length, opts?.signal);
      this.#reading = p;
      return p;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal The settlers of the read being made (bindRead). */
  _bindRead(resolve: (v: [number, Uint8Array]) => void, reject: (e: unknown) => void): void {
    this.#rres = resolve;
    this.#rrej = reject;
  }

  /** Starts the readLeases() consumer once (pooled sockets, after the handshake). */
  #consume(): void {
    if (this.#consuming) return;
    this.#consuming = true;
    // recycle: a lease is released right after its decryption (or with close(), if held): none is kept past that.
    this.socket.readLeases!(this.#onLease, { recycle: true }).then(this.#onLeasesEnd, this.#onLeasesEnd);
  }

  /** The oldest held lease, if any (a paused consumer resumes: there is room again). */
  #takeHeld(): RecvLease | undefined {
    const held = this.#held;
    if (held === undefined || held.length === 0) return undefined;
    const lease = held.shift();
    const resume = this.#resume;
    if (resume !== undefined) {
      this.#resume = undefined;
      resume();
    }
    return lease;
  }

  /**
   * Decrypts a received lease into a read's window and releases it: [n, buf] when the read can settle
   * (plaintext, or the end), an Error (with `buf`) when the session failed, undefined when the ciphertext
   * held no plaintext yet (part of a record, a ticket) and the read goes on waiting.
   */
  #decrypt(lease: RecvLease, buf: Uint8Array, offset: number, length: number): [number, Uint8Array] | Error | undefined {
    const res = this.#res;
    let ok: boolean;
    try {
      if (this.#id < 0) {
        const e = ringioError('ERR_RINGIO_CLOSED', 'the TLS stream is closed', { buf });
        return e;
      }
      ok = tlsNative.read(this.#id, lease.buf, 0, lease.length, buf, offset, length, res);
    } finally {
      lease.release(); // the session copied the ciphertext into its read BIO
    }
    if (!ok) {
      const err = this.#failure();
      (err as { buf?: unknown }).buf = buf;
      return err;
    }
    this.#more = (res.flags & TLS_MORE) !== 0;
    if ((res.flags & TLS_PEER_CLOSED) !== 0) this.#eof = true;
    if (res.pending > 0) void this.#flush(undefined).catch(noop);
    if (res.n > 0 || (this.#eof && !this.#more)) return [res.n, buf];
    return undefined;
  }

  /** Settles the read waiting on the consumer. */
  #settleRead(r: [number, Uint8Array] | Error): void {
    const resolve = this.#rres!;
    const reject = this.#rrej!;
    this.#rres = this.#rrej = undefined;
    this.#rbuf = undefined;
    this.#busy = false;
    if (r instanceof Error) reject(r);
    else resolve(r);
  }

  /** The consumer's handler: each ciphertext arrival, synchronously from the completion's dispatch. */
  readonly #onLease = (lease: RecvLease): Promise<void> | undefined => {
    if (this.#chunkFn !== undefined) {
      // readChunks(): in order behind what is held, then decrypted and handed over at once unless paused.
      const held = (this.#held ??= []);
      held.push(lease);
      if (this.#chunkWait === undefined) this.#chunkRun();
      return held.length < HOLD ? undefined : new Promise<void>((resolve) => (this.#resume = resolve));
    }
    const lres = this.#lres;
    if (lres !== undefined) {
      this.#lres = this.#lrej = undefined;
      lres(lease);
      return undefined;
    }
    const buf = this.#rbuf;
    if (buf === undefined) {
      // Nobody reads now (on io_uring a batch often brings a connection's next request before its reader
      // asked again): hold it for the next read; past HOLD, pause (the socket holds what comes next).
      const held = (this.#held ??= []);
      held.push(lease);
      return held.length < HOLD ? undefined : new Promise<void>((resolve) => (this.#resume = resolve));
    }
    const r = this.#decrypt(lease, buf, this.#roff, this.#rlen);
    if (r !== undefined) this.#settleRead(r);
    return undefined;
  };

  /** The consumer ended: at the end of the stream (resolved), or with an error (a reset, close()). */
  readonly #onLeasesEnd = (e?: unknown): void => {
    // Not #eof yet: held leases come first (reads then take the slow path, which ends after them).
    this.#ended = e === undefined ? true : (e as Error);
    if (this.#chunkFn !== undefined) {
      if (this.#id < 0) this.#chunkEnd(ringioError('ERR_RINGIO_CLOSED', 'the TLS stream is closed')); // even while paused
      else if (this.#chunkWait === undefined) this.#chunkRun(); // what is held first, then the end
      return;
    }
    const lres = this.#lres;
    const lrej = this.#lrej;
    this.#lres = this.#lrej = undefined;
    if (lres !== undefined) {
      if (e === undefined) lres(null);
      else lrej!(e);
    }
    const buf = this.#rbuf;
    if (buf === undefined) return;
    if (e === undefined) {
      // The end of the stream: what the session still holds (a record cut short) is not plaintext.
      this.#settleRead([0, buf]);
      return;
    }
    if (e !== null && typeof e === 'object') (e as { buf?: unknown }).buf = buf;
    this.#settleRead(e as Error);
  };

  /**
   * Reads until the end of the stream, handing the plaintext to `handler` as it is decrypted: each chunk
   * a Buffer of its own, of exactly its size (one copy out of the session). On a pooled socket (TcpStream,
   * UnixStream) this runs synchronously from the completion's dispatch, with no promise per read (what
   * compat's toDuplex uses); on others it reads in a loop. If `handler` returns a promise (a thenable),
   * reading pauses until it settles; ciphertext that arrives meanwhile is held in order (a few receives,
   * then the socket holds the bytes). Resolves at the end of the stream (close_notify, or the TCP
   * stream's end); rejects with a TlsError, the socket's error (ECONNRESET), ERR_RINGIO_CLOSED after
   * close(), or what `handler` throws (reading stops then). While it runs, read() waits for it.
   */
  readChunks(handler: (chunk: Buffer) => unknown): Promise<void> {
    try {
      if (typeof handler !== 'function') throw new TypeError(`handler must be a function, got ${typeof handler}`);
      this.#live();
      if (this.#busy) throw new TypeError('TlsStream.readChunks: a read is in progress');
      this.#busy = true;
      const p = this.#pooled ? this.#chunkStart(handler) : this.#chunkLoop(handler);
      const done = (): void => {
        this.#busy = false;
      };
      this.#reading = p;
      void p.then(done, done);
      return p;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** readChunks() on a pooled socket: the consumer hands each arrival to #chunkRun. */
  #chunkStart(handler: (chunk: Buffer) => unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#chunkFn = handler;
      this.#chunkRes = resolve;
      this.#chunkRej = reject;
      this.#chunkRun();
      if (this.#chunkFn !== undefined) this.#consume();
    });
  }

  /** readChunks() on a socket without leases: read() into the scratch, one chunk per read. */
  async #chunkLoop(handler: (chunk: Buffer) => unknown): Promise<void> {
    for (;;) {
      const [n] = await this.#readNow(chunkScratch, 0, chunkScratch.length, undefined);
      if (n === 0) return;
      const chunk = Buffer.allocUnsafe(n);
      chunkScratch.copy(chunk, 0, 0, n);
      const r = handler(chunk);
      if (isThenable(r)) await r;
    }
  }

  /**
   * readChunks()'s engine (pooled): decrypts what the session and the held leases have, handing each
   * chunk over, until there is nothing more, the handler pauses, or the stream ends. Runs synchronously.
   */
  #chunkRun(): void {
    if (this.#chunkRunning) return; // a handler that made something arrive: the running loop takes it
    this.#chunkRunning = true;
    try {
      const res = this.#res;
      for (;;) {
        const handler = this.#chunkFn;
        if (handler === undefined || this.#chunkWait !== undefined) return;
        if (this.#id < 0) return this.#chunkEnd(ringioError('ERR_RINGIO_CLOSED', 'the TLS stream is closed'));
        let n: number;
        if (this.#stash !== undefined) {
          // Plaintext that came with the handshake's last flight.
          n = this.#stashEnd - this.#stashPos;
          chunkScratch.set(this.#stash.subarray(this.#stashPos, this.#stashEnd));
          this.#stash = undefined;
        } else {
          let ok: boolean;
          if (this.#more) ok = tlsNative.read(this.#id, null, 0, 0, chunkScratch, 0, chunkScratch.length, res);
          else {
            const lease = this.#takeHeld();
            if (lease === undefined) {
              const ended = this.#ended;
              if (this.#eof || ended === true) return this.#chunkEnd(undefined);
              if (ended !== undefined) return this.#chunkEnd(ended);
              return; // the next arrival runs it again
            }
            try {
              ok = tlsNative.read(this.#id, lease.buf, 0, lease.length, chunkScratch, 0, chunkScratch.length, res);
            } finally {
              lease.release(); // the session copied the ciphertext into its read BIO
            }
          }
          if (!ok) return this.#chunkEnd(this.#failure());
          n = res.n;
          this.#more = (res.flags & TLS_MORE) !== 0;
          if ((res.flags & TLS_PEER_CLOSED) !== 0) this.#eof = true;
          if (res.pending > 0) void this.#flush(undefined).catch(noop);
        }
        if (n === 0) continue;
        const chunk = Buffer.allocUnsafe(n);
        chunkScratch.copy(chunk, 0, 0, n);
        let r: unknown;
        try {
          r = handler(chunk);
        } catch (e) {
          return this.#chunkEnd(e);
        }
        if (isThenable(r)) {
          this.#chunkWait = r;
          r.then(this.#chunkResume, this.#chunkFail);
        }
      }
    } finally {
      this.#chunkRunning = false;
    }
  }

  readonly #chunkResume = (): void => {
    this.#chunkWait = undefined;
    this.#chunkRun();
  };

  readonly #chunkFail = (e: unknown): void => {
    this.#chunkWait = undefined;
    this.#chunkEnd(e);
  };

  /** Ends readChunks(): resolves (undefined) or rejects with `e`. Later arrivals are held for read(). */
  #chunkEnd(e: unknown): void {
    const res = this.#chunkRes;
    const rej = this.#chunkRej;
    if (res === undefined) return;
    this.#chunkFn = this.#chunkRes = this.#chunkRej = undefined;
    if (e === undefined) res();
    else rej!(e);
  }

  async #read<B extends Uint8Array>(buf: B, offset: number, length: number, signal: AbortSignal | undefined): Promise<[number, B]> {
    this.#busy = true;
    try {
      return await this.#readNow(buf, offset, length, signal);
    } finally {
      this.#busy = false;
    }
  }

  async #readNow<B extends Uint8Array>(buf: B, offset: number, length: number, signal: AbortSignal | undefined): Promise<[number, B]> {
    if (length === 0) return [0, buf];
    if (this.#stash !== undefined) {
      const n = Math.min(length, this.#stashEnd - this.#stashPos);
      buf.set(this.#stash.subarray(this.#stashPos, this.#stashPos + n), offset);
      this.#stashPos += n;
      if (this.#stashPos === this.#stashEnd) this.#stash = undefined;
      return [n, buf];
    }
    const res = this.#res;
    for (;;) {
      if (signal?.aborted) throw abortError(signal, buf);
      let ok: boolean;
      if (this.#more) {
        ok = tlsNative.read(this.#live(buf), null, 0, 0, buf, offset, length, res);
      } else {
        if (this.#eof) return [0, buf];
        let m: number;
        try {
          m = await this.#recv(signal);
        } catch (e) {
          if (e !== null && typeof e === 'object') (e as { buf?: unknown }).buf = buf;
          throw e;
        }
        if (m === 0) {
          this.#eof = true;
          return [0, buf];
        }
        try {
          ok = tlsNative.read(this.#live(buf), this.#in!, 0, m, buf, offset, length, res);
        } finally {
          this.#doneIn();
        }
      }
      if (!ok) {
        const err = this.#failure();
        (err as { buf?: unknown }).buf = buf;
        throw err;
      }
      const n = res.n;
      this.#more = (res.flags & TLS_MORE) !== 0;
      if ((res.flags & TLS_PEER_CLOSED) !== 0) this.#eof = true;
      if (res.pending > 0) void this.#flush(undefined).catch(noop);
      if (n > 0) return [n, buf];
      if (this.#eof && !this.#more) return [0, buf];
    }
  }

  /** Scatter read: fills the buffers in order with what is available. Resolves [n, bufs]. */
  async readv<B extends Uint8Array>(bufs: B[], opts?: { signal?: AbortSignal }): Promise<[number, B[]]> {
    checkBufs(bufs);
    let total = 0;
    for (const b of bufs) {
      if (b.length === 0) continue;
      const [n] = await this.read(b, opts);
      total += n;
      if (n < b.length || !(this.#more || this.#stash !== undefined)) break;
    }
    return [total, bufs];
  }

  /** Fills the window; rejects ERR_RINGIO_UNEXPECTED_EOF (with n, buf) if the stream ends first. */
  readExact<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    return readExactFrom(this, buf, opts);
  }

  /** Encrypts and sends the whole window (TLS writes are never short). Resolves [length, buf]. */
  write<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    return this.writeAll(buf, opts);
  }

  /** Encrypts and sends the whole window, in order with every other write. Resolves [length, buf]. */
  writeAll<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      const id = this.#live(buf);
      if (length === 0) return Promise.resolve([0, buf]);
      if (this.#tail === undefined && !this.#wto && length <= WRITE_CHUNK && opts?.signal === undefined) {
        // Nothing else being sent: encrypt now into the stream's send buffer and send it as one op.
        if (this.#bound) {
          // One send whose completion settles this write's promise (no promise of the op's own, no then).
          binding = this;
          const p = new Promise<[number, Uint8Array]>(bindWrite) as Promise<[number, B]>;
          binding = undefined;
          this.#sendOne(id, buf, offset, length);
          return p;
        }
        const res = this.#res;
        const out = this.#outFor(length);
        if (!tlsNative.write(id, buf, offset, length, out, 0, out.length, res)) return Promise.reject(this.#failure());
        if (res.pending > 0) return this.#sendWithPending(out, res.n, length, buf);
        // One send, settled by #onSent with no async frame (writes run one at a time on this path).
        this.#wbuf = buf;
        this.#wlen = length;
        const opts = this.#wopts;
        opts.length = res.n; // read by writeAll before it returns
        const p = this.socket.writeAll(out, opts).then(this.#onSent, this.#onSendError) as Promise<[number, B]>;
        this.#wsent = p;
        this.#tail = p;
        return p;
      }
      return this.#chain(() => this.#send([buf], offset, length, opts?.signal)).then(() => [length, buf] as [number, B]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * @internal writeAll(buf, { length }) without a promise (compat's Duplex writes each response so):
   * `resolve([length, buf])` once the kernel took the whole record, `reject(err)` with what writeAll
   * would reject with, from the send's completion. Throws ERR_RINGIO_CLOSED (with buf) once closed. The
   * caller passes a valid window (0 <= length <= buf's length). In order with every other write: one
   * that finds a send under way goes through writeAll's chain.
   */
  _writeAllTo<B extends Uint8Array>(buf: B, length: number, resolve: (r: [number, B]) => void, reject: (e: unknown) => void): void {
    const id = this.#live(buf);
    if (length === 0) {
      resolve([0, buf]);
      return;
    }
    if (this.#bound && this.#tail === undefined && !this.#wto && length <= WRITE_CHUNK) {
      this.#wres = resolve as (v: [number, Uint8Array]) => void;
      this.#wrej = reject;
      this.#sendOne(id, buf, 0, length);
      return;
    }
    this.writeAll(buf, { length }).then(resolve, reject);
  }

  /**
   * The one-send write over a SocketStream (nothing else being sent, #wres/#wrej set): encrypts the window
   * into the send buffer and sends it with the socket's _writeAllTo, whose completion settles #wres/#wrej.
   * Until then #wto is set, and a write, flush or shutdown made meanwhile queues behind it (#chain).
   */
  #sendOne(id: number, buf: Uint8Array, offset: number, length: number): void {
    const res = this.#res;
    const out = this.#outFor(length);
    if (!tlsNative.write(id, buf, offset, length, out, 0, out.length, res)) {
      this.#settleWrite(this.#failure());
      return;
    }
    if (res.pending > 0) {
      // The session has more to send (a message of its own): the chained path, then settle.
      this.#sendWithPending(out, res.n, length, buf).then(
        (r) => this.#settleWrite(r),
        (e: unknown) => this.#settleWrite(e as Error),
      );
      return;
    }
    this.#wbuf = buf;
    this.#wlen = length;
    this.#wto = true;
    try {
      (this.socket as SocketStream)._writeAllTo(out, res.n, this.#onSentTo, this.#onSendToError);
    } catch (e) {
      this.#onSendToError(e);
    }
  }

  /** Sends `n` bytes of `out`, then what the session still holds; resolves [length, buf] (on the send chain's tail). */
  #sendWithPending<B extends Uint8Array>(out: Uint8Array, n: number, length: number, buf: B): Promise<[number, B]> {
    const p: Promise<[number, B]> = this.socket.writeAll(out, { length: n }).then(
      async () => {
        await this.#flushNow(undefined);
        if (this.#tail === p) this.#tail = undefined;
        return [length, buf];
      },
      (e: unknown) => {
        if (this.#tail === p) this.#tail = undefined;
        throw e;
      },
    );
    this.#tail = p;
    return p;
  }

  /** Settles the one-send write (#wres/#wrej) with [length, buf] or an error. */
  #settleWrite(r: [number, Uint8Array] | Error): void {
    const resolve = this.#wres!;
    const reject = this.#wrej!;
    this.#wres = this.#wrej = undefined;
    if (r instanceof Error) reject(r);
    else resolve(r);
  }

  /** @internal The settlers of the one-send write being made (bindWrite). */
  _bindWrite(resolve: (v: [number, Uint8Array]) => void, reject: (e: unknown) => void): void {
    this.#wres = resolve;
    this.#wrej = reject;
  }

  /** The one-send write's send completed (over a SocketStream): what queued behind it may go, then it settles. */
  readonly #onSentTo = (): void => {
    const buf = this.#wbuf!;
    this.#wbuf = undefined;
    this.#wtoEnd();
    this.#settleWrite([this.#wlen, buf]);
  };

  readonly #onSendToError = (e: unknown): void => {
    this.#wbuf = undefined;
    this.#wtoEnd();
    this.#settleWrite(e as Error);
  };

  /** The one-send write is done: a chain link waiting for it (#chain) may run. */
  #wtoEnd(): void {
    this.#wto = false;
    const go = this.#wtoDone;
    if (go !== undefined) {
      this.#wtoDone = undefined;
      go();
    }
  }

  readonly #onSent = (): [number, Uint8Array] => {
    const buf = this.#wbuf!;
    this.#wbuf = undefined;
    if (this.#tail === this.#wsent) this.#tail = undefined;
    this.#wsent = undefined;
    return [this.#wlen, buf];
  };

  readonly #onSendError = (e: unknown): never => {
    this.#wbuf = undefined;
    if (this.#tail === this.#wsent) this.#tail = undefined;
    this.#wsent = undefined;
    throw e;
  };

  /** Gather write: the buffers, each whole, encrypted together and sent in one op where they fit. Resolves [n, bufs]. */
  writev<B extends Uint8Array>(bufs: B[], opts?: { signal?: AbortSignal }): Promise<[number, B[]]> {
    try {
      checkBufs(bufs);
      this.#live(bufs);
      let total = 0;
      for (const b of bufs) total += b.length;
      return this.#chain(() => this.#send(bufs, -1, 0, opts?.signal)).then(() => [total, bufs] as [number, B[]]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** As writeAll (the ciphertext is the stream's own buffer, so zero-copy has nothing to gain). */
  writeZeroCopy<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    return this.writeAll(buf, opts);
  }

  /**
   * Encrypts bufs (or bufs[0]'s window when offset >= 0) into the stream's ciphertext buffer and sends
   * it, one op per WRITE_CHUNK of plaintext. Runs on the send chain.
   */
  async #send(bufs: Uint8Array[], offset: number, length: number, signal: AbortSignal | undefined): Promise<void> {
    const res = this.#res;
    // The stream's send buffer is free: sends run one at a time on the chain.
    let total = 0;
    for (const b of bufs) total += b.length;
    const out = this.#outFor(offset >= 0 ? length : total);
    let fill = 0;
    const sendOut = async (): Promise<void> => {
      if (fill > 0) await this.socket.writeAll(out, { length: fill, ...(signal ? { signal } : {}) });
      fill = 0;
      for (;;) {
        tlsNative.take(this.#live(), out, 0, out.length, res);
        if (res.n === 0) break;
        await this.socket.writeAll(out, { length: res.n, ...(signal ? { signal } : {}) });
      }
    };
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs[i]!;
      let pos = offset >= 0 ? offset : 0;
      const end = offset >= 0 ? offset + length : b.length;
      while (pos < end) {
        const n = Math.min(end - pos, WRITE_CHUNK);
        if (fill > 0 && out.length - fill < n + WRITE_ROOM / 2) await sendOut();
        if (!tlsNative.write(this.#live(b), b, pos, n, out, fill, out.length - fill, res)) throw this.#failure();
        fill += res.n;
        pos += n;
        if (res.pending > 0) await sendOut();
      }
      if (offset >= 0) break;
    }
    await sendOut();
  }

  /** Sends close_notify, then shuts down the writing side: the peer reads end of stream. */
  shutdown(): Promise<void> {
    try {
      const id = this.#live();
      return this.#chain(async () => {
        if (this.#done) tlsNative.shutdown(id, this.#res);
      })
        .then(() => this.#flush(undefined))
        .then(() => this.socket.shutdown());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Closes the stream: sends close_notify when nothing else is being sent (best effort), frees the TLS
   * session, and closes the stream underneath. Idempotent.
   */
  async close(): Promise<void> {
    const id = this.#id;
    if (id < 0) return this.socket.close();
    this.#id = -1;
    sessions.unregister(this);
    for (let held = this.#takeHeld(); held !== undefined; held = this.#takeHeld()) held.release(); // the consumer then ends with the socket's close
    if (this.#done && this.#tail === undefined && !this.#wto && !this.#eof) {
      // close_notify: 24-31 bytes, into the socket buffer at once.
      tlsNative.shutdown(id, this.#res);
      const out = new Uint8Array(256);
      tlsNative.take(id, out, 0, out.length, this.#res);
      tlsNative.sessionFree(id);
      if (this.#res.n > 0) await this.socket.write(out, { length: this.#res.n }).catch(noop);
    } else tlsNative.sessionFree(id);
    await this.socket.close();
  }

  /** Splits into a read half and a write half that may be used concurrently; closing either closes the stream. */
  intoSplit(): [ReadHalf, WriteHalf] {
    return splitHalves(this);
  }
}

/** [contexts, sessions] this thread's addon holds (for leak checks). */
export function tlsCounts(): { contexts: number; sessions: number } {
  const [contexts, sessions] = tlsNative.counts();
  return { contexts, sessions };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

function hostOf(addr: string): string {
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const i = addr.lastIndexOf(':');
  return i > 0 ? addr.slice(0, i) : addr;
}

function anySignal(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b === undefined ? a : AbortSignal.any([a, b]);
}


/** Any connected ringio byte stream: a plain socket stream (TcpStream, UnixStream) or a TlsStream. */
export type ByteStream = SocketStream | TlsStream;
