/**
 * toNetSocket: hands a freshly accepted ringio stream to libuv as a plain net.Socket, for the servers
 * that reach a JS Duplex only through node's internal JS-stream adapter (node:http2, node:tls): with a
 * net.Socket they read and write the socket's native handle in C++, at plain Node's speed. ringio then
 * does only the accept (multishot, SO_REUSEPORT per thread, the proxy's listener hand-over); the bytes go
 * through libuv, not through the runtime (docs/api/compat.md §15 says when to use it).
 *
 * Rules:
 *  1. The socket gets a duplicate of the stream's fd (`dup`, close-on-exec); the stream itself is closed
 *     (its fd only: the socket stays open), so the runtime keeps no state for the connection. On the
 *     epoll driver closing the stream removes its fd from the runtime's epoll set first, so libuv's
 *     readiness for the duplicate is its own.
 *  2. Only a stream nothing was read from: bytes a ringio read already took are not in the socket any
 *     more. A stream with a read in flight would lose what that read gets, so the caller hands the
 *     stream over before using it (which is how a server does it: right after accept).
 *  3. Only plain sockets (TcpStream, UnixStream): a TlsStream's fd carries ciphertext (TypeError).
 */
import net from 'node:net';
import { closeSync, ringioError, sys } from '@ringio/runtime';
import { TlsStream } from '@ringio/net';

/** toNetSocket's options. */
export interface NetSocketOptions {
  /** As net.Socket's: false (default) ends the write side once the peer has ended. */
  allowHalfOpen?: boolean;
}

/** What toNetSocket takes: a plain ringio socket stream (TcpStream, UnixStream), nothing read from it. */
export interface HandOverSource {
  /** The stream's fd (-1 once closed): toNetSocket duplicates it. */
  readonly fd: number;
  /** Closes the stream (its fd; the duplicate stays open): toNetSocket calls it once the socket is made. */
  close(): Promise<void>;
}

/**
 * A net.Socket on the same connection as `stream` (rule 1): `server.emit('connection', toNetSocket(stream))`
 * gives node:http2 (or node:https, node:http) a socket with a native handle. Closes `stream`; throws a
 * TypeError for a TlsStream or an object without a numeric fd and close(), ERR_RINGIO_CLOSED for a closed
 * stream, and the dup's errno error (EMFILE) if the process is out of fds (the stream is then left open).
 */
export function toNetSocket(stream: HandOverSource, opts: NetSocketOptions = {}): net.Socket {
  if (stream instanceof TlsStream) {
    throw new TypeError('toNetSocket(stream): a TlsStream carries ciphertext; hand over the TcpStream before the handshake, or use toDuplex');
  }
  if (stream === null || typeof stream !== 'object' || typeof stream.fd !== 'number' || typeof stream.close !== 'function') {
    throw new TypeError('toNetSocket(stream): stream must be a TcpStream or UnixStream (a numeric fd and close())');
  }
  if (opts === null || typeof opts !== 'object') throw new TypeError('toNetSocket(stream, opts): opts must be an object');
  const allowHalfOpen = opts.allowHalfOpen ?? false;
  if (typeof allowHalfOpen !== 'boolean') throw new TypeError('allowHalfOpen must be a boolean');
  if (stream.fd < 0) {
    throw ringioError('ERR_RINGIO_CLOSED', 'toNetSocket(stream): the stream is closed');
  }
  const fd = sys.dup(stream.fd);
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen });
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  void stream.close().catch(() => {});
  return socket;
}
