/** TCP: TcpListener and TcpStream. */
import { checkFd, closeSync, sys } from '@ringio/runtime';
import { decodeInet, resolveAddr, type AddrInput, type SocketAddr } from './addr.js';
import { connectError } from './connect-error.js';
import {
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_STREAM,
  SOCKADDR_MAX,
  SOL_SOCKET,
  TCP_NODELAY,
} from './constants.js';
import { checkBacklog, ListenerBase } from './listener.js';
import { ConnectOp } from './ops/connect.js';
import { SocketStream } from './stream.js';

/** TcpStream.connect's options. */
export interface TcpConnectOptions {
  /** Aborting it cancels the connect (and the name lookup's wait); it rejects AbortError. */
  signal?: AbortSignal;
  /** TCP_NODELAY (default true): send small writes at once instead of coalescing them (Nagle). */
  noDelay?: boolean;
}

/** TcpListener.bind's options. */
export interface TcpListenOptions {
  /** SO_REUSEPORT (default true): several sockets (threads) may bind the same address; the kernel spreads connections. */
  reusePort?: boolean;
  /** SO_REUSEADDR (default true): bind even while old connections on the port are in TIME_WAIT. */
  reuseAddr?: boolean;
  /** listen(2)'s backlog, 1..65535 (default 1024). */
  backlog?: number;
}

/** getsockname/getpeername's buffer, reused (this thread's): decodeInet copies out what it keeps. */
const scratch = new Uint8Array(SOCKADDR_MAX);

function sockAddr(fd: number, peer: boolean): SocketAddr {
  scratch.fill(0, 0, 2);
  sys.sockname(fd, scratch, peer);
  return decodeInet(scratch);
}

/**
 * A TCP connection: TcpStream.connect(addr), or from TcpListener#accept(). Reads and writes follow the
 * rented-buffer contract of SocketStream; `peerAddr` and `localAddr` are SocketAddrs, which every
 * address parameter accepts back. TCP_NODELAY is on by default.
 */
export class TcpStream extends SocketStream {
  #peer: SocketAddr | undefined;
  #local: SocketAddr | undefined;
  /** TCP_NODELAY as this stream last set it (undefined: not known), so setting it again costs no syscall. */
  #noDelay: boolean | undefined;

  /** @internal Use connect(), accept() or fromFd(). */
  constructor(fd: number, peer?: SocketAddr) {
    super(fd);
    this.#peer = peer;
  }

  /**
   * Adopts a connected TCP socket's fd: the stream owns it from now on (close() closes it). Streams
   * usually come from connect() and accept(); this serves fds from elsewhere, such as one passed over a
   * Unix socket (@ringio/proxy's binary upgrades).
   */
  static fromFd(fd: number): TcpStream {
    return new TcpStream(checkFd(fd));
  }

  /**
   * Connects to 'host:port', '[v6]:port' or { host, port }. Names are resolved with dns.lookup, which
   * runs on libuv's thread pool, never blocking this thread. noDelay (TCP_NODELAY) defaults to true.
   */
  static async connect(addr: AddrInput, opts: TcpConnectOptions = {}): Promise<TcpStream> {
    const sa = await resolveAddr(addr);
    const fd = sys.socket(sa.family, SOCK_STREAM);
    const stream = new TcpStream(fd);
    try {
      await stream.run(new ConnectOp(fd, sa.buf, sa.len), opts.signal);
      if (opts.noDelay !== false) stream.setNoDelay(true);
    } catch (e) {
      await stream.close();
      const to = decodeInet(sa.buf);
      throw connectError(e, to.address, to.port);
    }
    return stream;
  }

  /** TCP_NODELAY; no syscall when it is already so (accept() and connect() set it). */
  override setNoDelay(noDelay = true): this {
    const on = Boolean(noDelay);
    if (this.#noDelay === on) {
      this.openFd();
      return this;
    }
    super.setNoDelay(on);
    this.#noDelay = on;
    return this;
  }

  /** The peer's address. */
  get peerAddr(): SocketAddr {
    if (this.#peer === undefined) this.#peer = sockAddr(this.openFd(), true);
    return this.#peer;
  }

  /** This side's address. */
  get localAddr(): SocketAddr {
    if (this.#local === undefined) this.#local = sockAddr(this.openFd(), false);
    return this.#local;
  }
}

/**
 * A listening TCP socket: TcpListener.bind(addr, opts). accept() resolves [TcpStream, SocketAddr];
 * `for await (const [stream, peer] of listener)` accepts until the listener is closed.
 */
export class TcpListener extends ListenerBase<TcpStream, SocketAddr> {
  readonly #local: SocketAddr;

  /** @internal Use bind() or fromFd(). */
  constructor(fd: number) {
    super(fd);
    this.#local = sockAddr(fd, false);
  }

  /** Adopts a listening TCP socket's fd, which it owns from now on (bind() makes listeners; this serves a passed fd). */
  static fromFd(fd: number): TcpListener {
    return new TcpListener(checkFd(fd));
  }

  /** Binds and listens. Port 0 picks a free port: read it from `localAddr.port`. */
  static override async bind(addr: AddrInput, opts: TcpListenOptions = {}): Promise<TcpListener> {
    const backlog = checkBacklog(opts.backlog ?? 1024);
    const sa = await resolveAddr(addr);
    const fd = sys.socket(sa.family === AF_INET6 ? AF_INET6 : AF_INET, SOCK_STREAM);
    try {
      if (opts.reuseAddr !== false) sys.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
      if (opts.reusePort !== false) sys.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
      sys.bind(fd, sa.buf, sa.len);
      sys.listen(fd, backlog);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new TcpListener(fd);
  }

  /** The address the listener is bound to (read the port the kernel picked for port 0 here). */
  get localAddr(): SocketAddr {
    return this.#local;
  }

  /**
   * @internal acceptEach's stream, without the pair: storing into an AcceptedPair (an Array subclass with
   * an indexed accessor on its prototype) is a megamorphic keyed store, ~3% of a compat server's
   * instructions per connection (docs/benchmarks.md, "New connections and http2-handoff by instruction count").
   */
  protected override wrapStream(fd: number, addr: Uint8Array | undefined): TcpStream {
    const stream = new TcpStream(fd, addr === undefined ? undefined : decodeInet(addr));
    stream.setNoDelay(true);
    return stream;
  }

  protected wrap(fd: number, addr: Uint8Array | undefined): [TcpStream, SocketAddr] {
    if (addr === undefined) {
      // Multishot: no sockaddr came with the fd. The peer is read (getpeername) on first ask, as net.Socket does.
      const stream = new TcpStream(fd);
      stream.setNoDelay(true);
      return new AcceptedPair(stream) as unknown as [TcpStream, SocketAddr];
    }
    const peer = decodeInet(addr);
    const stream = new TcpStream(fd, peer);
    stream.setNoDelay(true);
    return [stream, peer];
  }
}

/**
 * accept()'s `[stream, peer]` on the multishot path: an array of length 2 whose element 1 is a hole, so
 * reading it (destructuring `[s, peer]`, `pair[1]`) finds this prototype's getter, which returns
 * `stream.peerAddr` (getpeername once, cached). `const [s] = pair` never reads it: no syscall.
 */
class AcceptedPair extends Array<unknown> {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  constructor(stream: TcpStream) {
    super(2);
    this[0] = stream;
  }

  get 1(): SocketAddr {
    return (this[0] as TcpStream).peerAddr;
  }

  set 1(value: unknown) {
    Object.defineProperty(this, 1, { value, writable: true, enumerable: true, configurable: true });
  }
}
