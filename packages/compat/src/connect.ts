/**
 * connect / createConnection: a client socket returned at once, as net.connect does, that connects in
 * the background on the ringio runtime. Libraries that expect net.Socket (node:http's Agent, ws, pg,
 * node:tls, node:http2) take it as it is; `connector()` is the same for undici's `connect` option.
 *
 * Rules:
 *  1. The Socket is a SocketDuplex whose stream comes later: until the connect completes, reads wait, the
 *     first write (or end()) waits and node:stream queues the rest, so nothing written is lost and the
 *     queued writes leave together (one coalesced send) once connected.
 *  2. Then, in this order: the stream is attached, the options that waited (noDelay, keepAlive) are set,
 *     'connect' and 'ready' are emitted, and what waited runs.
 *  3. A failed connect destroys the Socket with node:net's error (`connect ECONNREFUSED 127.0.0.1:1`,
 *     `errno`, `code`, `syscall`, `address`, `port`); destroy() while connecting cancels the connect and
 *     'close' follows once it has settled (no fd is left behind).
 */
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { abortError, errnoError, ringioError } from '@ringio/runtime';
import { TcpStream, UnixStream } from '@ringio/net';
import { duplexOptions, own, SocketDuplex } from './to-duplex.js';

/** What `new Socket()` takes: the Duplex's options. allowHalfOpen defaults to false, as net.Socket's. */
export interface SocketOptions {
  /** Size of the rented read buffer when reads are not pooled (default 65536). */
  readSize?: number;
  /** Pooled reads (default true): an idle Socket holds no read buffer (see toDuplex's `pooled`). */
  pooled?: boolean;
  /** The Duplex's highWaterMark, both sides (default: node:stream's). */
  highWaterMark?: number;
  /** false (default, as net.Socket): end() after the peer's end. */
  allowHalfOpen?: boolean;
  /** Aborting it destroys the Socket with an AbortError (and cancels a connect under way). */
  signal?: AbortSignal;
}

/** What `connect()` takes: where to connect, and the socket's options. */
export interface ConnectOptions extends SocketOptions {
  /** TCP port (a number or a string of digits; null as not given, as node:http's options allow). */
  port?: number | string | null;
  /** Host name or IP address (default 'localhost', which is 127.0.0.1; null as not given). */
  host?: string | null;
  /** A Unix socket path instead of a TCP address (wins over port/host when set). */
  path?: string | null;
  /** TCP_NODELAY (default true, as ringio's TcpStream.connect; node:net's default is false). */
  noDelay?: boolean;
  /** SO_KEEPALIVE once connected, with the first probe after keepAliveInitialDelay ms. */
  keepAlive?: boolean;
  /** ms of idle time before the first keep-alive probe (default 0: the system's setting). */
  keepAliveInitialDelay?: number;
  /** setTimeout(timeout) on the socket: 'timeout' after this many ms without activity. */
  timeout?: number;
  /** Not supported: a TypeError when set (null and undefined are accepted, as node:http passes them). */
  localAddress?: string | null;
}

/**
 * Added as a once('connect') listener: called with no arguments once connected, as net's. Typed so that
 * the (err, socket) callbacks node:http and ws hand to `createConnection` fit too: they take the
 * returned socket at once and ignore this later call.
 */
type ConnectListener = (...args: never[]) => void;
type Target = { path: string } | { host: string; port: number };

function checkPort(port: unknown): number {
  const n = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new TypeError(`port must be an integer or a string of digits, got ${String(port)}`);
  if (n < 0 || n > 65535) throw new RangeError(`port must be in 0..65535, got ${n}`);
  return n;
}

/** node:net's argument forms: (options[, cb]), (port[, host][, cb]), (path[, cb]). */
function normalize(args: unknown[]): [ConnectOptions, ConnectListener | undefined] {
  let cb: ConnectListener | undefined;
  if (args.length > 0 && typeof args[args.length - 1] === 'function') cb = args.pop() as ConnectListener;
  const a0 = args[0];
  if (a0 !== null && typeof a0 === 'object') return [a0 as ConnectOptions, cb];
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (args[1] !== undefined && args[1] !== null && typeof args[1] !== 'string') throw new TypeError('connect(port, host): host must be a string');
    return [{ port: a0, host: (args[1] as string | undefined) ?? undefined }, cb];
  }
  if (typeof a0 === 'string') return [{ path: a0 }, cb];
  throw new TypeError('connect: expected (port[, host][, cb]), (path[, cb]) or (options[, cb])');
}

function targetOf(o: ConnectOptions): Target {
  if (o.path !== undefined && o.path !== null) {
    if (typeof o.path !== 'string' || o.path === '') throw new TypeError('connect: path must be a non-empty string');
    return { path: o.path };
  }
  if (o.port === undefined || o.port === null) throw new TypeError('connect: options must have a port (or a path)');
  const host = o.host ?? 'localhost';
  if (typeof host !== 'string') throw new TypeError('connect: host must be a string');
  return { host, port: checkPort(o.port) };
}

function checkDelay(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${String(v)}`);
  return v;
}

/**
 * A client socket shaped like net.Socket: `new Socket().connect(...)`, or `connect(...)` which does both.
 * It is a SocketDuplex that gets its stream once connected.
 */
export class Socket extends SocketDuplex {
  #state: 'idle' | 'connecting' | 'connected' = 'idle';
  #ctl: AbortController | undefined;
  /** Settles once the connect under way has (attached, failed or cancelled). */
  #settled: Promise<void> | undefined;
  #noDelay: boolean | undefined;
  #keepAlive: [boolean, number] | undefined;

  constructor(opts: SocketOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('new Socket(opts): opts must be an object');
    const o = duplexOptions(opts, false);
    super(undefined, o.readSize, o);
    const signal = opts.signal;
    if (signal !== undefined) {
      if (!(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
      const onAbort = (): void => void this.destroy(abortError(signal));
      if (signal.aborted) process.nextTick(onAbort);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  /**
   * Starts connecting and returns at once: (port[, host][, cb]), (path[, cb]) or (options[, cb]).
   * `cb` is added as a once('connect') listener. A socket that is connecting or connected is destroyed
   * with EALREADY or EISCONN, as net.Socket.
   */
  connect(options: ConnectOptions, connectListener?: ConnectListener): this;
  connect(port: number | string, host?: string, connectListener?: ConnectListener): this;
  connect(path: string, connectListener?: ConnectListener): this;
  connect(...args: unknown[]): this {
    const [o, cb] = normalize(args);
    if (this.destroyed) throw errorClosed();
    if (this.#state !== 'idle') {
      const e = errnoError(this.#state === 'connecting' ? -114 : -106, 'connect'); // EALREADY, EISCONN
      process.nextTick(() => this.destroy(e));
      return this;
    }
    if (o.localAddress !== undefined && o.localAddress !== null) {
      throw new TypeError('connect: localAddress is not supported (ringio sockets do not bind before connecting)');
    }
    const target = targetOf(o);
    const noDelay = o.noDelay ?? true;
    if (typeof noDelay !== 'boolean') throw new TypeError('connect: noDelay must be a boolean');
    if (o.keepAlive !== undefined && o.keepAlive !== null) {
      if (typeof o.keepAlive !== 'boolean') throw new TypeError('connect: keepAlive must be a boolean');
      if (o.keepAlive) this.setKeepAlive(true, checkDelay('keepAliveInitialDelay', o.keepAliveInitialDelay ?? 0));
    }
    if (o.timeout !== undefined && o.timeout !== null) this.setTimeout(checkDelay('timeout', o.timeout));
    if (cb !== undefined) this.once('connect', cb as () => void);
    this.#state = 'connecting';
    const ctl = (this.#ctl = new AbortController());
    const connecting: Promise<TcpStream | UnixStream> =
      'path' in target
        ? UnixStream.connect(target.path, { signal: ctl.signal })
        : TcpStream.connect({ host: target.host, port: target.port }, { signal: ctl.signal, noDelay });
    this.#settled = connecting.then(this.#onConnected, this.#onConnectError);
    return this;
  }

  readonly #onConnected = (stream: TcpStream | UnixStream): void => {
    this.#ctl = undefined;
    this._attach(stream); // destroyed meanwhile: _destroy closes it
    if (this.destroyed) return;
    if (this._runtimeClosing) {
      this.destroy(); // connected as the runtime shut down: nothing could use it (quiet, as at shutdown)
      return;
    }
    this.#state = 'connected';
    if (this.#noDelay !== undefined) super.setNoDelay(this.#noDelay);
    if (this.#keepAlive !== undefined) super.setKeepAlive(...this.#keepAlive);
    this.emit('connect');
    this.emit('ready');
    this._resume();
  };

  readonly #onConnectError = (e: unknown): void => {
    this.#ctl = undefined;
    this.#state = 'idle';
    if (this.destroyed || this._quiet(e)) return;
    this.destroy(own(e));
  };

  protected override _detach(): Promise<void> {
    this.#ctl?.abort(errorClosed());
    return this.#settled ?? Promise.resolve();
  }

  /** True while connecting, as net.Socket. */
  override get connecting(): boolean {
    return this.#state === 'connecting';
  }

  /** TCP_NODELAY; before the connect completes it is remembered and set once connected. */
  override setNoDelay(noDelay = true): this {
    if (this._attached) return super.setNoDelay(noDelay);
    this.#noDelay = noDelay;
    return this;
  }

  /** SO_KEEPALIVE; before the connect completes it is remembered and set once connected. */
  override setKeepAlive(enable = false, initialDelay = 0): this {
    if (this._attached) return super.setKeepAlive(enable, initialDelay);
    this.#keepAlive = [enable, checkDelay('setKeepAlive: initialDelay', initialDelay)];
    return this;
  }
}

const errorClosed = (): Error => ringioError('ERR_RINGIO_CLOSED', 'the socket is destroyed');

/**
 * Returns a Socket at once and connects it in the background, as net.connect: (port[, host][, cb]),
 * (path[, cb]) or (options[, cb]). Needs the runtime on this thread (ERR_RINGIO_NO_RUNTIME otherwise).
 */
export function connect(options: ConnectOptions, connectListener?: ConnectListener): Socket;
export function connect(port: number | string, host?: string, connectListener?: ConnectListener): Socket;
export function connect(path: string, connectListener?: ConnectListener): Socket;
export function connect(...args: unknown[]): Socket {
  const [o, cb] = normalize(args);
  return new Socket(o).connect(o, cb);
}

/** The same function as connect, under node:net's other name (for `agent.createConnection = createConnection`). */
export const createConnection = connect;

/** What undici passes its `connect` function. */
export interface ConnectorParams {
  /** The origin's host name or IP address: what is connected to (and the TLS servername unless an IP). */
  hostname: string;
  /** The origin's host with its port, as undici passes it (not used: hostname and port are). */
  host?: string;
  /** 'http:' or 'https:' ('https:' adds node:tls over the socket). */
  protocol: string;
  /** The origin's port; '' means the protocol's default (80 or 443). */
  port: string | number;
  /** The TLS servername (SNI) undici asks for; else the options' servername, else the hostname. */
  servername?: string | null;
  /** Not supported: a TypeError when set. */
  localAddress?: string | null;
  /** For https through a tunnel: the socket TLS runs over instead of a new connection. */
  httpSocket?: Duplex;
}

/** Options of connector(): the Socket's, a Unix socket path, a connect timeout, and node:tls's for https. */
export interface ConnectorOptions extends SocketOptions {
  /** Connect to this Unix socket instead of the origin's host and port. */
  socketPath?: string;
  /** ms until a connect (and TLS handshake) that has not completed fails with ETIMEDOUT (default 10000, as undici; 0: none). */
  timeout?: number;
  /** TCP_NODELAY (default true). */
  noDelay?: boolean;
  /** SO_KEEPALIVE once connected, with the first probe after keepAliveInitialDelay ms. */
  keepAlive?: boolean;
  /** ms of idle time before the first keep-alive probe (default 0: the system's setting). */
  keepAliveInitialDelay?: number;
  /** Offer HTTP/2 by ALPN on https origins (undici's allowH2). */
  allowH2?: boolean;
  /** node:tls's connect options for https origins (ca, cert, key, rejectUnauthorized, servername, …). */
  tls?: tls.ConnectionOptions;
}

/**
 * undici's connect function: `(params, callback) => socket`; callback(null, socket) once connected (and
 * TLS done), or callback(err, null). The callback is typed loosely so that undici's own type (which
 * names net.Socket) accepts this function.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Connector = (params: ConnectorParams, callback: (...args: any[]) => void) => Duplex;

/**
 * undici's `connect` option over ringio sockets: `new Pool(origin, { connect: connector() })`. Plain
 * http origins get a Socket; https origins get node:tls over one.
 */
export function connector(opts: ConnectorOptions = {}): Connector {
  if (opts === null || typeof opts !== 'object') throw new TypeError('connector(opts): opts must be an object');
  const { socketPath, timeout = 10_000, allowH2 = false, tls: tlsOpts = {}, ...sockOpts } = opts;
  checkDelay('timeout', timeout);
  duplexOptions(sockOpts, false);
  return (params, callback) => {
    const https = params.protocol === 'https:';
    const port = checkPort(params.port === '' || params.port === undefined || params.port === null ? (https ? 443 : 80) : params.port);
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null, sock?: Duplex): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      if (err !== null) callback(err, null);
      else callback(null, sock);
    };
    const tcp: Duplex =
      https && params.httpSocket !== undefined
        ? params.httpSocket
        : connect(
            socketPath !== undefined
              ? { ...sockOpts, path: socketPath, localAddress: params.localAddress }
              : { ...sockOpts, host: params.hostname, port, localAddress: params.localAddress },
          );
    let sock: Duplex = tcp;
    if (https) {
      const servername = params.servername || tlsOpts.servername || (isIP(params.hostname) ? undefined : params.hostname);
      sock = tls.connect({
        ...tlsOpts,
        socket: tcp,
        servername,
        ALPNProtocols: allowH2 ? ['http/1.1', 'h2'] : ['http/1.1'],
      });
      sock.once('secureConnect', () => finish(null, sock));
    } else {
      tcp.once('connect', () => finish(null, tcp));
    }
    sock.on('error', (e: Error) => finish(e));
    if (timeout > 0) {
      timer = setTimeout(() => {
        const e = errnoError(-110, 'connect', { address: params.hostname, port }); // ETIMEDOUT
        e.message = `connect ETIMEDOUT ${params.hostname}:${port}`;
        sock.destroy(e);
      }, timeout).unref();
    }
    return sock;
  };
}
