/**
 * listenSecure: HTTPS (or any TLS service) for node:http servers, express and fastify, with the TLS done
 * by ringio (@ringio/net's TlsStream, OpenSSL over memory BIOs in the addon) instead of node:tls over a
 * JS Duplex. Connections come through the listener's acceptEach (no promise or task for the accept);
 * each one's handshake runs on its own, and its end hands `toDuplex(tlsStream)` to the server with
 * emit('connection'), so node:http sees plaintext through the same Duplex as plain HTTP over compat:
 * HTTPS costs about what HTTP does, plus the cryptography.
 */
import { LiveList } from '@ringio/runtime';
import { TcpListener, TlsContext, TlsStream, type SocketAddr, type TcpStream, type TlsServerOptions } from '@ringio/net';
import { toDuplex, type SocketDuplex, type ToDuplexOptions } from './to-duplex.js';

/** What listenSecure hands connections to: node:http's Server, https.Server, a net.Server, fastify's `server`. */
export interface ConnectionTarget {
  /** 'connection' with each handshaken connection's Duplex; 'listening' once, when accepting starts. */
  emit(event: 'connection', socket: SocketDuplex): boolean;
  /** 'listening' once, when accepting starts (node:http tracks its connections from then on). */
  emit(event: 'listening'): boolean;
}

/** listenSecure's options: where to listen, the certificates, and the Duplex options. */
export interface SecureListenOptions {
  /** The address to listen on (default '127.0.0.1'). */
  host?: string;
  /** The TCP port (default 0: read the one picked from `address`). */
  port?: number;
  /** Listen on this listener instead (closing the handle closes it). */
  listener?: TcpListener;
  /** A server TlsContext, or its options ({ cert, key, sni?, ALPNProtocols? }). */
  tls: TlsContext | TlsServerOptions;
  /** ms a handshake may take (default 10000). */
  handshakeTimeout?: number;
  /** SO_REUSEPORT (default true), so each thread can listen on the same port. */
  reusePort?: boolean;
  /** Options for each connection's toDuplex. */
  duplex?: ToDuplexOptions;
  /** Called with each failed handshake's error (default: ignored; they are counted in `handshakeErrors`). */
  onHandshakeError?: (err: unknown) => void;
  /**
   * Called with what a connection's hand-over threw (toDuplex, or a 'connection' listener: that connection
   * is closed, counted in `connectionErrors`, and accepting goes on) and with accept errors (default:
   * console.error).
   */
  onError?: (err: unknown) => void;
}

/** A running listenSecure: its address, counters, and close(). */
export interface SecureListener {
  /** The address listened on. */
  readonly address: SocketAddr;
  /** Handshakes that failed (bad ClientHello, timeout, peer gone). */
  readonly handshakeErrors: number;
  /** Connections closed because their hand-over to the server threw (see onError). */
  readonly connectionErrors: number;
  /** Stops accepting (connections already handed over stay with the server) and frees an owned context. */
  close(): Promise<void>;
}

/**
 * Accepts TLS connections with ringio and hands each, once its handshake is done, to `server` as
 * `server.emit('connection', toDuplex(tlsStream))`. `server` is a plain node:http Server (not https):
 * it only ever sees plaintext. The Duplex has `encrypted = true`, so `req.socket.encrypted` (express's
 * `req.secure`, `req.protocol === 'https'`) reads as on node:https. Must run inside start().
 */
export async function listenSecure(server: ConnectionTarget, opts: SecureListenOptions): Promise<SecureListener> {
  if (server === null || typeof server !== 'object' || typeof (server as { emit?: unknown }).emit !== 'function') {
    throw new TypeError('listenSecure(server, opts): server must have emit() (a node:http Server)');
  }
  if (opts === null || typeof opts !== 'object') throw new TypeError('listenSecure(server, opts): opts must be an object');
  let ctx: TlsContext;
  let own = false;
  if (opts.tls instanceof TlsContext) {
    if (!opts.tls.isServer) throw new TypeError('opts.tls must be a server TlsContext');
    ctx = opts.tls;
  } else if (opts.tls !== null && typeof opts.tls === 'object') {
    ctx = TlsContext.server(opts.tls);
    own = true;
  } else throw new TypeError('opts.tls must be a TlsContext or { cert, key, sni?, ALPNProtocols? }');
  const handshakeTimeout = opts.handshakeTimeout ?? 10_000;
  if (!Number.isFinite(handshakeTimeout) || handshakeTimeout < 0) throw new RangeError('opts.handshakeTimeout must be a number of ms >= 0');
  let listener: TcpListener;
  try {
    listener = opts.listener ?? (await TcpListener.bind({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 }, { reusePort: opts.reusePort !== false }));
  } catch (e) {
    if (own) ctx.close();
    throw e;
  }
  if (opts.onError !== undefined && typeof opts.onError !== 'function') throw new TypeError('opts.onError must be a function');
  const report = (e: unknown): void => {
    try {
      if (opts.onError !== undefined) opts.onError(e);
      else console.error('@ringio/compat: listenSecure:', e);
    } catch (e2) {
      console.error('@ringio/compat: listenSecure: onError threw:', e2);
    }
  };
  let failed = 0;
  let broken = 0;
  const pending = new LiveList<AbortController>(); // not a Set: see LiveList
  /** The handshake's end: the plaintext Duplex to the server; a throw closes that connection only. */
  const handOver = (t: TlsStream): void => {
    let d: SocketDuplex | undefined;
    try {
      d = toDuplex(t, opts.duplex);
      (d as SocketDuplex & { encrypted?: boolean }).encrypted = true;
      server.emit('connection', d);
    } catch (e) {
      broken++;
      if (d !== undefined) d.destroy();
      else t.close().catch(() => {});
      report(e);
    }
  };
  const handshakeFailed = (e: unknown): void => {
    failed++;
    try {
      opts.onHandshakeError?.(e);
    } catch (e2) {
      report(e2);
    }
  };
  // Called during the accept's completion (serveEach): the handshake starts at once, settled by callbacks.
  const onConnection = (stream: TcpStream): void => {
    const ctl = new AbortController();
    const node = pending.add(ctl);
    TlsStream.accept(stream, ctx, { handshakeTimeout, signal: ctl.signal }).then(
      (t) => {
        node.leave();
        handOver(t);
      },
      (e: unknown) => {
        node.leave();
        handshakeFailed(e);
      },
    );
  };
  server.emit('listening');
  const accepting = listener.serveEach(onConnection, report);
  let closed: Promise<void> | undefined;
  return {
    address: listener.localAddr,
    get handshakeErrors() {
      return failed;
    },
    get connectionErrors() {
      return broken;
    },
    close() {
      closed ??= (async () => {
        await listener.close();
        for (const c of pending.values()) c.abort();
        await accepting;
        if (own) ctx.close();
      })();
      return closed;
    },
  };
}
