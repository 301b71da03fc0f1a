/**
 * Plain fd operations over the driver, for pipes, eventfds and anything else with an fd, plus the two
 * helpers that make such fds. Reads and writes follow the rented-buffer contract: they resolve to
 * [n, buf] with the same buffer, which the caller must not touch until the promise settles.
 */
import { native } from './addon.js';
import { type SignalOptions } from './op.js';
import { checkFd } from './validate.js';
import { CloseOp } from './ops/close.js';
import { NopOp } from './ops/nop.js';
import { PollOp } from './ops/poll.js';
import { ReadOp } from './ops/read.js';
import { WriteOp } from './ops/write.js';
import { submit } from './context.js';

/** Options of read() and write() on a plain fd. */
export interface IoOptions {
  /** File position, or -1 (default) for the fd's current position / a stream. */
  position?: number | bigint;
  /** Where the window starts in buf (default 0). */
  offset?: number;
  /** The window's length (default: the rest of buf after offset). */
  length?: number;
  /** Aborting it cancels the op; it rejects AbortError (with buf) once the kernel answered. */
  signal?: AbortSignal;
}

/** A NOP op through the driver: resolves 0. Measures the runtime's own cost per op. */
export function nop(opts?: SignalOptions): Promise<number> {
  return submit(new NopOp(), opts);
}

/** Reads from `fd` into a window of `buf` (rented until it settles): resolves [n, buf], the same buffer; 0 is end of file. */
export function read<B extends Uint8Array>(fd: number, buf: B, opts: IoOptions = {}): Promise<[number, B]> {
  try {
    return submit(new ReadOp(fd, buf, opts.offset ?? 0, opts.length, opts.position ?? -1), opts);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Writes a window of `buf` to `fd` (rented until it settles): resolves [n, buf]; n may be short. */
export function write<B extends Uint8Array>(fd: number, buf: B, opts: IoOptions = {}): Promise<[number, B]> {
  try {
    return submit(new WriteOp(fd, buf, opts.offset ?? 0, opts.length, opts.position ?? -1), opts);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Waits until `fd` has one of `events` (POLLIN, POLLOUT, ...): resolves the events that occurred. */
export function poll(fd: number, events: number, opts?: SignalOptions): Promise<number> {
  try {
    return submit(new PollOp(fd, events), opts);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Closes `fd` through the driver (IORING_OP_CLOSE, close(2) on epoll). */
export function close(fd: number): Promise<void> {
  try {
    return submit(new CloseOp(fd));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** A non-blocking, close-on-exec pipe: [readFd, writeFd]. Close both with close() when done. */
export function pipe(): [number, number] {
  return native.ringio_sys_pipe();
}

/** A non-blocking, close-on-exec eventfd. */
export function eventfd(initval = 0): number {
  if (!Number.isInteger(initval) || initval < 0 || initval > 0xffffffff) throw new RangeError('initval must be a uint32');
  return native.ringio_sys_eventfd(initval);
}

/** Closes an fd at once, outside the driver (for fds no op is using). */
export function closeSync(fd: number): void {
  native.ringio_sys_close(checkFd(fd));
}
