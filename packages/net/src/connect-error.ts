/**
 * Node's details on a failed connect: the kernel's errno error gets the `address` (and `port`) it was
 * connecting to, in its fields and its message (`connect ECONNREFUSED 127.0.0.1:1`), as node:net's.
 */
export function connectError(e: unknown, address: string, port?: number): unknown {
  if (e === null || typeof e !== 'object') return e;
  const err = e as Error & { syscall?: unknown; errno?: unknown; code?: unknown; address?: string; port?: number };
  if (err.syscall !== 'connect' || typeof err.errno !== 'number' || typeof err.code !== 'string') return e;
  err.address = address;
  if (port !== undefined) err.port = port;
  const was = err.message;
  err.message = `connect ${err.code} ${port !== undefined ? `${address}:${port}` : address}`;
  if (typeof err.stack === 'string' && err.stack.includes(was)) err.stack = err.stack.replace(was, err.message);
  return e;
}
