/** Unix-domain streams: UnixListener and UnixStream (paths, or '\0name' for the abstract namespace). */
import { checkFd, closeSync, sys } from '@ringio/runtime';
import { decodeUnix, encodeUnix } from './addr.js';
import { AF_UNIX, SOCK_STREAM, SOCKADDR_MAX } from './constants.js';
import { connectError } from './connect-error.js';
import { checkBacklog, ListenerBase } from './listener.js';
import { ConnectOp } from './ops/connect.js';
import { SocketStream } from './stream.js';

/** UnixListener.bind's options. */
export interface UnixListenOptions {
  /** listen(2)'s backlog, 1..65535 (default 1024). */
  backlog?: number;
}

function unixName(fd: number, peer: boolean): string {
  const buf = new Uint8Array(SOCKADDR_MAX);
  const len = sys.sockname(fd, buf, peer);
  return decodeUnix(buf, len);
}

/**
 * A Unix-domain stream connection: UnixStream.connect(path), UnixStream.pair(), or from
 * UnixListener#accept(). Addresses are paths ('' for an unnamed socket, '\0name' in the abstract namespace).
 */
export class UnixStream extends SocketStream {
  /** @internal Use connect(), pair(), accept() or fromFd(). */
  constructor(fd: number) {
    super(fd);
  }

  /** Adopts a connected Unix stream socket's fd, which the stream owns from now on (close() closes it). */
  static fromFd(fd: number): UnixStream {
    return new UnixStream(checkFd(fd));
  }

  /** Connects to a listening Unix socket at `path`. */
  static async connect(path: string, opts: { signal?: AbortSignal } = {}): Promise<UnixStream> {
    const sa = encodeUnix(path);
    const fd = sys.socket(AF_UNIX, SOCK_STREAM);
    const stream = new UnixStream(fd);
    try {
      await stream.run(new ConnectOp(fd, sa.buf, sa.len), opts.signal);
    } catch (e) {
      await stream.close();
      throw connectError(e, path);
    }
    return stream;
  }

  /** A connected pair of Unix streams (socketpair). */
  static pair(): [UnixStream, UnixStream] {
    const [a, b] = sys.socketpair(AF_UNIX, SOCK_STREAM);
    return [new UnixStream(a), new UnixStream(b)];
  }

  /** The peer's path ('' when unnamed, as for a connecting client or a pair). */
  get peerAddr(): string {
    return unixName(this.openFd(), true);
  }

  /** This side's path ('' when unnamed). */
  get localAddr(): string {
    return unixName(this.openFd(), false);
  }
}

/**
 * A listening Unix-domain socket: UnixListener.bind(path). accept() resolves [UnixStream, path of the
 * peer]; `for await` accepts until the listener is closed. The socket file is not removed on close.
 */
export class UnixListener extends ListenerBase<UnixStream, string> {
  readonly #path: string;

  /** @internal Use bind() or fromFd(). */
  constructor(fd: number, path: string) {
    super(fd);
    this.#path = path;
  }

  /** Adopts a listening Unix socket's fd, bound at `path`, which it owns from now on (bind() makes listeners; this serves a passed fd). */
  static fromFd(fd: number, path: string): UnixListener {
    if (typeof path !== 'string') throw new TypeError('path must be a string');
    return new UnixListener(checkFd(fd), path);
  }

  /** Binds and listens at `path` (which must not exist; remove stale sockets first). */
  static override bind(path: string, opts: UnixListenOptions = {}): Promise<UnixListener> {
    try {
      const backlog = checkBacklog(opts.backlog ?? 1024);
      const sa = encodeUnix(path);
      const fd = sys.socket(AF_UNIX, SOCK_STREAM);
      try {
        sys.bind(fd, sa.buf, sa.len);
        sys.listen(fd, backlog);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      return Promise.resolve(new UnixListener(fd, path));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The path the listener is bound to. */
  get localAddr(): string {
    return this.#path;
  }

  protected wrap(fd: number, addr: Uint8Array | undefined): [UnixStream, string] {
    return [new UnixStream(fd), addr !== undefined ? decodeUnix(addr) : unixName(fd, true)];
  }
}
