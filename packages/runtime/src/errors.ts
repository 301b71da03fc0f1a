/**
 * The error registry: every error ringio raises is made here, each with a stable `code`.
 */
import { getSystemErrorName } from 'node:util';

export type RingioErrorCode =
  | 'ERR_RINGIO_NESTED_START'
  | 'ERR_RINGIO_NO_RUNTIME'
  | 'ERR_RINGIO_CLOSED'
  | 'ERR_RINGIO_TIMEOUT'
  | 'ERR_RINGIO_DRIVER_UNAVAILABLE'
  | 'ERR_RINGIO_UNEXPECTED_EOF'
  | 'ERR_RINGIO_ALIGNMENT'
  | 'ERR_RINGIO_NOT_CLONEABLE'
  | 'ERR_RINGIO_NOT_SHIPPABLE'
  | 'ERR_RINGIO_THREAD_ENTRY'
  | 'ERR_RINGIO_THREAD_EXIT'
  | 'ERR_RINGIO_TOO_MANY_THREADS'
  | 'ERR_RINGIO_ONESHOT_USED'
  | 'ERR_RINGIO_TOO_MANY_PRIMITIVES'
  | 'ERR_RINGIO_OVERLOADED'
  | 'ERR_RINGIO_DEPLOY'
  | 'ERR_RINGIO_CONFIG'
  | 'ERR_RINGIO_NO_UPSTREAM'
  | 'ERR_RINGIO_UPGRADE'
  | 'ERR_RINGIO_HTTP_PARSE'
  | 'ERR_RINGIO_HTTP_TOO_LARGE'
  | 'ERR_RINGIO_HTTP_HEADERS_SENT'
  | 'ERR_RINGIO_HTTP_BODY_USED';

const MESSAGES: Record<RingioErrorCode, string> = {
  ERR_RINGIO_NESTED_START: 'a ringio runtime is already running on this thread',
  ERR_RINGIO_NO_RUNTIME: 'no ringio runtime is running on this thread (call start() first)',
  ERR_RINGIO_CLOSED: 'the resource or runtime is closed',
  ERR_RINGIO_TIMEOUT: 'the operation timed out',
  ERR_RINGIO_DRIVER_UNAVAILABLE: 'the requested driver is unavailable',
  ERR_RINGIO_UNEXPECTED_EOF: 'the stream ended before the buffer was filled',
  ERR_RINGIO_ALIGNMENT: 'buffer, offset or length is not suitably aligned for O_DIRECT',
  ERR_RINGIO_NOT_CLONEABLE: 'the value cannot be structured-cloned to another thread',
  ERR_RINGIO_NOT_SHIPPABLE: 'the function cannot be shipped to another thread as source text',
  ERR_RINGIO_THREAD_ENTRY: "a worker thread could not find the function to run",
  ERR_RINGIO_THREAD_EXIT: 'a thread exited before it produced a result',
  ERR_RINGIO_TOO_MANY_THREADS: 'too many threads run a ringio runtime at once',
  ERR_RINGIO_ONESHOT_USED: 'this oneshot has already been used',
  ERR_RINGIO_TOO_MANY_PRIMITIVES: 'too many live channels, oneshots and watches for the process',
  ERR_RINGIO_OVERLOADED: 'the concurrency limit is reached',
  ERR_RINGIO_DEPLOY: 'a deploy failed on at least one thread; the old chain is kept everywhere',
  ERR_RINGIO_CONFIG: 'the configuration is invalid',
  ERR_RINGIO_NO_UPSTREAM: 'no upstream could be connected',
  ERR_RINGIO_UPGRADE: 'the binary upgrade failed',
  ERR_RINGIO_HTTP_PARSE: 'the peer sent a malformed HTTP message',
  ERR_RINGIO_HTTP_TOO_LARGE: 'an HTTP message or body is over its size limit',
  ERR_RINGIO_HTTP_HEADERS_SENT: 'the response head was already sent',
  ERR_RINGIO_HTTP_BODY_USED: 'the body was already read or is being read',
};

export class RingioError extends Error {
  readonly code: RingioErrorCode;
  constructor(code: RingioErrorCode, message?: string, props?: Record<string, unknown>) {
    super(message ?? MESSAGES[code]);
    this.code = code;
    this.name = 'Error';
    if (props) Object.assign(this, props);
  }
}

export function ringioError(code: RingioErrorCode, message?: string, props?: Record<string, unknown>): RingioError {
  return new RingioError(code, message, props);
}

/** An AbortError as Node makes them: `name` 'AbortError', `code` 'ABORT_ERR', with the signal's reason as cause. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  buf?: unknown;
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

export function abortError(signal?: AbortSignal, buf?: unknown): AbortError {
  const e = new AbortError(undefined, signal?.reason !== undefined ? { cause: signal.reason } : undefined);
  if (buf !== undefined) e.buf = buf;
  return e;
}

export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  buf?: unknown;
  path?: string;
}

/** An error for a negative kernel result, shaped like Node's system errors. */
export function errnoError(res: number, syscall: string, props?: Record<string, unknown>): ErrnoError {
  let code: string;
  try {
    code = getSystemErrorName(res);
  } catch {
    code = 'E' + -res;
  }
  const e = new Error(`${syscall} ${code}`) as ErrnoError;
  e.code = code;
  e.errno = res;
  e.syscall = syscall;
  if (props) Object.assign(e, props);
  return e;
}

/** Negative errno values the runtime itself looks at. */
export const ECANCELED = -125;
export const ETIME = -62;
export const ENOENT = -2;
export const EALREADY = -114;
export const EINTR = -4;
