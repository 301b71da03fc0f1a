/**
 * Datagram sockets: UdpSocket (addresses as for TCP) and UnixDatagram (paths). Rented buffers as for
 * streams: sendTo resolves [n, buf]; recvFrom resolves [n, buf, from]. A datagram larger than buf is
 * truncated to buf's length, as recvfrom(2) does.
 */
import { checkBuffer, checkRange, closeSync, sys } from '@ringio/runtime';
import { decodeInet, decodeUnix, encodeUnix, resolveAddr, type AddrInput, type Sockaddr, type SocketAddr } from './addr.js';
import { AF_INET, AF_INET6, AF_UNIX, SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOCKADDR_MAX, SOL_SOCKET } from './constants.js';
import { ConnectOp } from './ops/connect.js';
import { RecvOp } from './ops/recv.js';
import { RecvmsgOp } from './ops/recvmsg.js';
import { SendOp } from './ops/send.js';
import { SendmsgOp } from './ops/sendmsg.js';
import { SocketBase } from './socket.js';
import type { ReadOptions, WriteOptions } from './stream.js';

/** UdpSocket.bind's options. */
export interface UdpBindOptions {
  /** SO_REUSEADDR (default false). */
  reuseAddr?: boolean;
  /** SO_REUSEPORT (default false): several sockets may bind the same address. */
  reusePort?: boolean;
}

abstract class DatagramBase<A, In> extends SocketBase {
  protected abstract encode(addr: In): Promise<Sockaddr> | Sockaddr;
  protected abstract decode(name: Uint8Array): A;

  /** Sends buf as one datagram to `to`. Resolves [n, buf]. */
  async sendTo<B extends Uint8Array>(buf: B, to: In, opts?: { signal?: AbortSignal }): Promise<[number, B]> {
    checkBuffer(buf);
    const sa = await this.encode(to);
    const n = await this.run(new SendmsgOp(this.openFd(buf), buf, sa.buf.subarray(0, sa.len)), opts?.signal);
    return [n, buf];
  }

  /** Receives one datagram into buf. Resolves [n, buf, from]. */
  async recvFrom<B extends Uint8Array>(buf: B, opts?: { signal?: AbortSignal }): Promise<[number, B, A]> {
    checkBuffer(buf);
    const name = new Uint8Array(SOCKADDR_MAX);
    const n = await this.run(new RecvmsgOp(this.openFd(buf), buf, name), opts?.signal);
    return [n, buf, this.decode(name)];
  }

  /** Sets the default destination (and the only source recv accepts). */
  async connect(to: In, opts?: { signal?: AbortSignal }): Promise<void> {
    const sa = await this.encode(to);
    await this.run(new ConnectOp(this.openFd(), sa.buf, sa.len), opts?.signal);
  }

  /** Sends to the connected peer. Resolves [n, buf]. */
  send<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      return this.run(new SendOp(this.openFd(buf), buf, offset, length), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Receives from the connected peer. Resolves [n, buf]. */
  recv<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      return this.run(new RecvOp(this.openFd(buf), buf, offset, length), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

/**
 * A UDP socket: UdpSocket.bind(addr). sendTo(buf, to) sends one datagram; recvFrom(buf) resolves
 * [n, buf, from] with `from` a SocketAddr that sendTo accepts back; connect(to) fixes the peer for
 * send/recv.
 */
export class UdpSocket extends DatagramBase<SocketAddr, AddrInput> {
  /** Binds a UDP socket. Port 0 picks a free port. */
  static override async bind(addr: AddrInput, opts: UdpBindOptions = {}): Promise<UdpSocket> {
    const sa = await resolveAddr(addr);
    const fd = sys.socket(sa.family === AF_INET6 ? AF_INET6 : AF_INET, SOCK_DGRAM);
    try {
      if (opts.reuseAddr) sys.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
      if (opts.reusePort) sys.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
      sys.bind(fd, sa.buf, sa.len);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new UdpSocket(fd);
  }

  /** The address the socket is bound to (a SocketAddr, accepted back by every address parameter). */
  get localAddr(): SocketAddr {
    const buf = new Uint8Array(SOCKADDR_MAX);
    sys.sockname(this.openFd(), buf, false);
    return decodeInet(buf);
  }

  protected encode(addr: AddrInput): Promise<Sockaddr> {
    return resolveAddr(addr);
  }

  protected decode(name: Uint8Array): SocketAddr {
    return decodeInet(name);
  }
}

/**
 * A Unix-domain datagram socket: UnixDatagram.bind(path), unbound() or pair(). Addresses are paths
 * ('' for an unnamed sender).
 */
export class UnixDatagram extends DatagramBase<string, string> {
  /** Binds a Unix datagram socket at `path` ('\0name' for the abstract namespace). */
  static override bind(path: string): Promise<UnixDatagram> {
    try {
      const sa = encodeUnix(path);
      const fd = sys.socket(AF_UNIX, SOCK_DGRAM);
      try {
        sys.bind(fd, sa.buf, sa.len);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      return Promise.resolve(new UnixDatagram(fd));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** An unbound Unix datagram socket (it can send; replies cannot reach it). */
  static unbound(): UnixDatagram {
    return new UnixDatagram(sys.socket(AF_UNIX, SOCK_DGRAM));
  }

  /** A connected pair (socketpair). */
  static pair(): [UnixDatagram, UnixDatagram] {
    const [a, b] = sys.socketpair(AF_UNIX, SOCK_DGRAM);
    return [new UnixDatagram(a), new UnixDatagram(b)];
  }

  /** The path the socket is bound to ('' for an unbound or unnamed socket). */
  get localAddr(): string {
    const buf = new Uint8Array(SOCKADDR_MAX);
    const len = sys.sockname(this.openFd(), buf, false);
    return decodeUnix(buf, len);
  }

  protected encode(path: string): Sockaddr {
    return encodeUnix(path);
  }

  protected decode(name: Uint8Array): string {
    return decodeUnix(name);
  }
}
