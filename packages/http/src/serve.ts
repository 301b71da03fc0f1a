/**
 * serve() and connectionServer(): options checked, the listener bound (serve), the handler (a function,
 * or a WHATWG { fetch } object adapted by fetch.ts) handed to a new HttpServer. Apart from server.ts so that fetch.ts, which needs the
 * server's request and response types, and server.ts do not import each other.
 */
import { TcpListener, TlsContext, UnixListener } from '@ringio/net';
import { fetchHandler, type FetchHandler } from './fetch.js';
import { checkKeys, optBool, optInt, optMs } from './options.js';
import { HttpServer, SERVE_KEYS, type Config, type Handler, type ServeOptions } from './server.js';

function serverConfig(o: Record<string, unknown>, handler: Handler | { fetch: FetchHandler }): [Config, Handler] {
  let h: Handler;
  if (typeof handler === 'function') h = handler;
  else if (handler !== null && typeof handler === 'object' && typeof handler.fetch === 'function') h = fetchHandler(handler.fetch.bind(handler));
  else throw new TypeError('serve(opts, handler): handler must be a function or an object with fetch()');
  const maxHeaderSize = optInt(o, 'maxHeaderSize', 16384, 64, 1 << 24);
  const config: Config = {
    maxHeaderSize,
    maxRequestLineSize: optInt(o, 'maxRequestLineSize', 8192, 16, 1 << 24),
    maxHeaders: optInt(o, 'maxHeaders', 100, 1, 65536),
    maxBodySize: optInt(o, 'maxBodySize', 16 * 1024 * 1024, 0, Infinity),
    headersTimeout: optMs(o, 'headersTimeout', 30_000),
    keepAliveTimeout: optMs(o, 'keepAliveTimeout', 5_000),
    bodyTimeout: optMs(o, 'bodyTimeout', 30_000),
    noDelay: optBool(o, 'noDelay', true),
    readSize: Math.max(16384, maxHeaderSize + 4096),
    tls: undefined,
    ownTls: false,
    handshakeTimeout: optMs(o, 'handshakeTimeout', 10_000),
  };
  if (o.tls !== undefined) {
    if (o.tls instanceof TlsContext) {
      if (!o.tls.isServer) throw new TypeError('options.tls must be a server TlsContext (TlsContext.server) or its options');
      config.tls = o.tls;
    } else if (o.tls !== null && typeof o.tls === 'object') {
      config.tls = TlsContext.server(o.tls as Parameters<typeof TlsContext.server>[0]);
      config.ownTls = true;
    } else throw new TypeError('options.tls must be a TlsContext or { cert, key, sni?, ALPNProtocols? }');
  }
  if (o.onError !== undefined && typeof o.onError !== 'function') throw new TypeError('options.onError must be a function');
  return [config, h];
}

const CONNECTION_KEYS: readonly string[] = SERVE_KEYS.filter((k) => !['host', 'port', 'reusePort', 'backlog', 'path', 'listener'].includes(k));

/**
 * A server without a listener: the caller accepts connections (its own accept loop, a proxy's shared
 * socket) and hands each to `server.serveStream(stream, peer)`. Options as serve()'s, without the
 * listening ones. Must be called inside start(); `close()` ends it as for serve().
 */
export function connectionServer(opts: Omit<ServeOptions, 'host' | 'port' | 'reusePort' | 'backlog' | 'path' | 'listener'>, handler: Handler | { fetch: FetchHandler }): HttpServer {
  if (opts === null || typeof opts !== 'object') throw new TypeError('connectionServer(opts, handler): opts must be an object');
  const o = opts as Record<string, unknown>;
  checkKeys(o, CONNECTION_KEYS, 'connectionServer');
  const [config, h] = serverConfig(o, handler);
  const server = new HttpServer(undefined, config, h, o.onError as HttpServer['_report'] | undefined);
  server._start();
  return server;
}

/** Serves HTTP/1.1 with `handler`; resolves once listening. */
export async function serve(opts: ServeOptions, handler: Handler | { fetch: FetchHandler }): Promise<HttpServer> {
  if (opts === null || typeof opts !== 'object') throw new TypeError('serve(opts, handler): opts must be an object');
  const o = opts as Record<string, unknown>;
  checkKeys(o, SERVE_KEYS, 'serve');
  const [config, h] = serverConfig(o, handler);
  let listener: TcpListener | UnixListener;
  if (o.listener !== undefined) {
    if (!(o.listener instanceof TcpListener) && !(o.listener instanceof UnixListener)) {
      throw new TypeError('options.listener must be a TcpListener or a UnixListener');
    }
    if (o.path !== undefined || o.port !== undefined || o.host !== undefined) {
      throw new TypeError('options.listener excludes host, port and path');
    }
    listener = o.listener;
  } else if (o.path !== undefined) {
    if (typeof o.path !== 'string') throw new TypeError('options.path must be a string');
    if (o.port !== undefined || o.host !== undefined) throw new TypeError('options.path excludes host and port');
    listener = await UnixListener.bind(o.path, o.backlog === undefined ? {} : { backlog: o.backlog as number });
  } else {
    const host = o.host ?? '127.0.0.1';
    if (typeof host !== 'string') throw new TypeError('options.host must be a string');
    const port = optInt(o, 'port', 0, 0, 65535);
    listener = await TcpListener.bind(
      { host, port },
      {
        reusePort: optBool(o, 'reusePort', true),
        ...(o.backlog === undefined ? {} : { backlog: o.backlog as number }),
      },
    );
  }
  const server = new HttpServer(listener, config, h, o.onError as HttpServer['_report'] | undefined);
  server._start();
  return server;
}
