/** Buffers for O_DIRECT. */
import { sys } from '@ringio/runtime';

/**
 * A zero-filled Buffer of `size` bytes whose memory starts at a multiple of `alignment` (a power of
 * two, default 4096), for File.open(path, { direct: true }).
 */
export function allocAligned(size: number, alignment = 4096): Buffer {
  if (!Number.isSafeInteger(size) || size < 0 || size > 2 ** 32) throw new RangeError('size must be an integer in 0..2^32');
  if (!Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError('alignment must be a power of two up to 1 MiB');
  }
  // A large ArrayBuffer lives outside V8's moving heap, so its address, and so the alignment, holds.
  const raw = new Uint8Array(new ArrayBuffer(size + alignment));
  const skip = sys.alignOffset(raw, alignment);
  return Buffer.from(raw.buffer, skip, size);
}
