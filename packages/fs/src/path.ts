/** Paths travel to the kernel as NUL-terminated byte strings in rented buffers. */
export function encodePath(path: unknown, name = 'path'): Uint8Array {
  let bytes: Buffer;
  if (typeof path === 'string') bytes = Buffer.from(path, 'utf8');
  else if (path instanceof URL) {
    if (path.protocol !== 'file:') throw new TypeError(`${name} must be a file: URL`);
    bytes = Buffer.from(decodeURIComponent(path.pathname), 'utf8');
  } else if (path instanceof Uint8Array) bytes = Buffer.from(path);
  else throw new TypeError(`${name} must be a string, Buffer or file: URL`);
  if (bytes.includes(0)) throw new TypeError(`${name} must not contain NUL bytes`);
  if (bytes.length === 0) throw new TypeError(`${name} must not be empty`);
  const out = Buffer.allocUnsafe(bytes.length + 1);
  bytes.copy(out);
  out[bytes.length] = 0;
  return out;
}

export function pathString(path: string | URL | Uint8Array): string {
  if (typeof path === 'string') return path;
  if (path instanceof URL) return decodeURIComponent(path.pathname);
  return Buffer.from(path).toString('utf8');
}

/** A path: a string, a file: URL, or the path's bytes (a Buffer or Uint8Array, without NUL bytes). */
export type PathLike = string | URL | Uint8Array;
