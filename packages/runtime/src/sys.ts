/**
 * Synchronous socket set-up for the layers above (net): plain syscalls on the cold path, each on a
 * non-blocking, close-on-exec fd. The I/O itself always goes through ops on the driver.
 */
import { native } from './addon.js';
import { checkBuffer, checkFd } from './validate.js';

/** Synchronous socket set-up syscalls (socket, bind, listen, setsockopt, ...) for the layers above. */
export const sys = {
  /** socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) */
  socket(domain: number, type: number): number {
    return native.ringio_net_socket(domain, type);
  },
  socketpair(domain: number, type: number): [number, number] {
    return native.ringio_net_socketpair(domain, type);
  },
  bind(fd: number, sockaddr: Uint8Array, len: number): void {
    native.ringio_net_bind(checkFd(fd), checkBuffer(sockaddr, 'sockaddr'), len);
  },
  listen(fd: number, backlog: number): void {
    native.ringio_net_listen(checkFd(fd), backlog);
  },
  setsockopt(fd: number, level: number, name: number, value: number): void {
    native.ringio_net_setsockopt(checkFd(fd), level, name, value);
  },
  getsockopt(fd: number, level: number, name: number): number {
    return native.ringio_net_getsockopt(checkFd(fd), level, name);
  },
  /** Sets (or clears) O_NONBLOCK on an fd. */
  setNonBlocking(fd: number, on = true): void {
    native.ringio_sys_set_nonblock(checkFd(fd), on);
  },
  /** How many bytes into `buf` its data reaches an address that is a multiple of `alignment`. */
  alignOffset(buf: Uint8Array, alignment: number): number {
    return native.ringio_sys_align_offset(checkBuffer(buf), alignment);
  },
  /** getsockname / getpeername into buf; returns the address length. */
  sockname(fd: number, buf: Uint8Array, peer: boolean): number {
    return native.ringio_net_sockname(checkFd(fd), checkBuffer(buf), peer);
  },
  /**
   * accept4 without waiting: a new non-blocking, close-on-exec fd, or -1 when no connection is queued.
   * Wait with a poll op (POLLIN) first: unlike an accept op, a poll can be cancelled without taking a
   * connection, which is what a listener that hands its socket to another process needs.
   */
  accept(fd: number): number {
    return native.ringio_net_accept(checkFd(fd));
  },
  /**
   * shutdown(2) at once, without an op (it never blocks on a socket: the FIN is queued behind the bytes
   * already in the send buffer). Returns 0 or -errno, for the caller to turn into its error (errnoError):
   * use it only while none of the caller's sends is in flight on the fd, or bytes could follow the FIN.
   */
  shutdown(fd: number, how: number): number {
    return native.ringio_net_shutdown(checkFd(fd), how);
  },
  /** A close-on-exec duplicate of fd (the same open socket: closing one leaves the other working). */
  dup(fd: number): number {
    return native.ringio_sys_dup(checkFd(fd));
  },
  /** sendmsg of `data` with `fds` attached (SCM_RIGHTS), without waiting: EAGAIN means poll POLLOUT and retry. */
  sendFds(fd: number, data: Uint8Array, fds: number[]): number {
    return native.ringio_net_send_fds(checkFd(fd), checkBuffer(data, 'data'), fds.map((f) => checkFd(f)));
  },
  /** recvmsg into `buf` taking up to maxFds fds (close-on-exec), without waiting: [bytes, fds]. */
  recvFds(fd: number, buf: Uint8Array, maxFds = 64): [number, number[]] {
    return native.ringio_net_recv_fds(checkFd(fd), checkBuffer(buf, 'buf'), maxFds);
  },
};
