/**
 * Copying between streams, for proxies: copy (through one rented buffer), copyBidirectional (both ways,
 * propagating half-close), and spliceCopy (through a pipe in the kernel: no bytes in user space).
 */
import { POLLIN, POLLOUT, PollOp, closeSync, pipe, submit, type Interest } from '@ringio/runtime';
import { SpliceOp } from './ops/splice.js';
import type { ReadHalf, WriteHalf } from './stream.js';

/** spliceCopy's options. */
export interface SpliceCopyOptions {
  /** Bytes per splice (default 64 KiB). */
  chunk?: number;
  /** Aborting it stops the copy; the promise rejects AbortError. */
  signal?: AbortSignal;
}

/** Options of copy and copyBidirectional. */
export interface CopyOptions {
  /** The rented buffer's size (default 64 KiB). */
  bufferSize?: number;
  /** Aborting it stops the copy; the promise rejects AbortError. */
  signal?: AbortSignal;
}

type Reader = Pick<ReadHalf, 'read'>;
type Writer = Pick<WriteHalf, 'writeAll'>;

/** Copies from reader to writer until the reader ends. Resolves the byte count. */
export async function copy(reader: Reader, writer: Writer, opts: CopyOptions = {}): Promise<number> {
  const size = opts.bufferSize ?? 65536;
  if (!Number.isInteger(size) || size < 1 || size > 0x7ffff000) throw new RangeError('bufferSize must be a positive integer');
  let buf = Buffer.allocUnsafe(size);
  let total = 0;
  for (;;) {
    const [n, b] = await reader.read(buf, { signal: opts.signal });
    if (n === 0) return total;
    const [, back] = await writer.writeAll(b, { length: n, signal: opts.signal });
    buf = back;
    total += n;
  }
}

/**
 * Copies a → b and b → a at once. When one side ends, the other side's write half is shut down, so
 * half-close passes through. Resolves [bytes a → b, bytes b → a].
 */
export async function copyBidirectional(
  a: Reader & Writer & Pick<WriteHalf, 'shutdown'>,
  b: Reader & Writer & Pick<WriteHalf, 'shutdown'>,
  opts: CopyOptions = {},
): Promise<[number, number]> {
  const one = async (from: Reader, to: Writer & Pick<WriteHalf, 'shutdown'>): Promise<number> => {
    const n = await copy(from, to, opts);
    await to.shutdown().catch(() => {});
    return n;
  };
  return Promise.all([one(a, b), one(b, a)]);
}

/**
 * One splice of up to `len` bytes (one of the fds must be a pipe), waiting for readiness when needed:
 * io_uring runs a splice without polling first, and the sockets are non-blocking, so EAGAIN means "not
 * ready": wait with a poll op on `interest` and go again (the epoll path waits by itself). Resolves the
 * bytes moved (0: fdIn is at end of stream).
 */
export async function spliceOnce(fdIn: number, fdOut: number, len: number, interest: Interest, signal?: AbortSignal): Promise<number> {
  for (;;) {
    try {
      return await submit(new SpliceOp(fdIn, fdOut, len, interest), { signal });
    } catch (e) {
      if ((e as { code?: string }).code !== 'EAGAIN') throw e;
      await submit(new PollOp(interest.fd, interest.direction === 'readable' ? POLLIN : POLLOUT), { signal });
    }
  }
}

/**
 * Copies from one socket to another through a pipe with splice, so no byte is copied into user space.
 * Works on both drivers. Resolves the byte count once `from` ends.
 */
export async function spliceCopy(
  from: { readonly fd: number },
  to: { readonly fd: number },
  opts: SpliceCopyOptions = {},
): Promise<number> {
  const chunk = opts.chunk ?? 65536;
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError('chunk must be a positive integer');
  const [pr, pw] = pipe();
  const signal = opts.signal;
  const splice = (fdIn: number, fdOut: number, len: number, interest: Interest): Promise<number> => spliceOnce(fdIn, fdOut, len, interest, signal);
  let total = 0;
  try {
    for (;;) {
      const inFd = from.fd;
      const outFd = to.fd;
      const n = await splice(inFd, pw, chunk, { fd: inFd, direction: 'readable' });
      if (n === 0) return total;
      let left = n;
      while (left > 0) left -= await splice(pr, outFd, left, { fd: outFd, direction: 'writable' });
      total += n;
    }
  } finally {
    closeSync(pr);
    closeSync(pw);
  }
}
