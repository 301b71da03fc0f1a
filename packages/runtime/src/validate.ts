/**
 * Shared argument checks, exported once (from @ringio/runtime) and used by every package: bad input is
 * a TypeError or RangeError here, never a kernel surprise. The base layer: imports nothing.
 */

export function checkFd(fd: unknown, name = 'fd'): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) throw new TypeError(`${name} must be an integer, got ${typeof fd}`);
  if (fd < 0 || fd > 0x7fffffff) throw new RangeError(`${name} must be a non-negative int32, got ${fd}`);
  return fd;
}

/** Checks that `buf` is a Uint8Array (a Buffer included); TypeError `<name> must be a Uint8Array or Buffer`. */
export function checkBuffer(buf: unknown, name = 'buf'): Uint8Array {
  if (!(buf instanceof Uint8Array)) throw notBuffer(name);
  return buf;
}

// The checks below run on every read and write. Their errors are built in separate functions: with the
// message inline, V8 converted the buffer's length to a string on every call (NumberToString), error
// or not.

function notBuffer(name: string): TypeError {
  return new TypeError(`${name} must be a Uint8Array or Buffer`);
}

/**
 * Validates an (offset, length) window into buf; returns the length. Reads `buf.length`, which for a
 * byte array is its byteLength: V8 inlines `length` but calls the `byteLength` getter (about 20 ns).
 * The addon checks every window against the array's real size again, so a subclass that lies about its
 * length gets EFAULT, never memory outside the array.
 */
export function checkRange(buf: Uint8Array, offset: number, length: number | undefined): number {
  const size = buf.length;
  const len = length === undefined ? size - offset : length;
  if (
    Number.isInteger(offset) &&
    offset >= 0 &&
    offset <= size &&
    offset <= 0xffffffff &&
    Number.isInteger(len) &&
    len >= 0 &&
    offset + len <= size &&
    len <= 0x7ffff000
  ) {
    return len;
  }
  throw badRange(size, offset, length);
}

function badRange(size: number, offset: number, length: number | undefined): RangeError {
  if (!Number.isInteger(offset) || offset < 0 || offset > size) {
    return new RangeError(`offset must be an integer in 0..${size}, got ${offset}`);
  }
  if (offset > 0xffffffff) {
    // Records carry a window's offset in 32 bits (Node 22+ allows larger buffers): pass a view instead.
    return new RangeError(`offset must be below 2^32, got ${offset}: pass buf.subarray(offset) instead`);
  }
  return new RangeError(`length must be an integer with offset + length <= ${size}, got ${length}`);
}

/** A file position: a non-negative safe integer or bigint, or -1 for "the current position". */
export function checkPosition(pos: unknown): number | bigint {
  if (typeof pos === 'number' && Number.isInteger(pos) && pos >= -1 && pos <= 9007199254740991) return pos;
  return positionSlow(pos);
}

function positionSlow(pos: unknown): number | bigint {
  if (typeof pos === 'bigint') {
    if (pos < -1n || pos > 0x7fffffffffffffffn) throw new RangeError(`position out of range: ${pos}`);
    return pos === -1n ? -1 : pos;
  }
  if (typeof pos !== 'number') throw new TypeError('position must be a number or bigint');
  throw new RangeError(`position must be an integer in -1..Number.MAX_SAFE_INTEGER, got ${pos}`);
}

/** An array of 1..1024 byte arrays, for readv/writev (the addon builds one iovec per buffer). */
export function checkBufs<B extends Uint8Array>(bufs: B[]): B[] {
  if (!Array.isArray(bufs)) throw new TypeError('bufs must be an array of Uint8Array');
  if (bufs.length === 0 || bufs.length > 1024) throw new RangeError('bufs must hold 1..1024 buffers');
  for (const b of bufs) checkBuffer(b, 'bufs[i]');
  return bufs;
}

/** An optional AbortSignal option. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return signal;
}

