/**
 * The error registry: every error ringio raises is made here, each with a stable `code`.
 */
import { getSystemErrorName } from 'node:util';

/** Every `code` a RingioError may have. */
export type RingioErrorCode =
  | 'ERR_RINGIO_NESTED_START'
  | 'ERR_RINGIO_NO_RUNTIME'
  | 'ERR_RINGIO_CLOSED'
  | 'ERR_RINGIO_TIMEOUT'
  | 'ERR_RINGIO_DRIVER_UNAVAILABLE'
  | 'ERR_RINGIO_UNEXPECTED_EOF'
  | 'ERR_RINGIO_ALIGNMENT'
  | 'ERR_RINGIO_LEASE_RELEASED'
  | 'ERR_RINGIO_POOL_IN_USE'
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
  | 'ERR_RINGIO_HTTP_BODY_USED'
  | 'ERR_RINGIO_TLS';

const MESSAGES: Record<RingioErrorCode, string> = {
  ERR_RINGIO_NESTED_START: 'a ringio runtime is already running on this thread',
  ERR_RINGIO_NO_RUNTIME: 'no ringio runtime is running on this thread (call start() first)',
  ERR_RINGIO_CLOSED: 'the resource or runtime is closed',
  ERR_RINGIO_TIMEOUT: 'the operation timed out',
  ERR_RINGIO_DRIVER_UNAVAILABLE: 'the requested driver is unavailable',
  ERR_RINGIO_UNEXPECTED_EOF: 'the stream ended before the buffer was filled',
  ERR_RINGIO_ALIGNMENT: 'buffer, offset or length is not suitably aligned for O_DIRECT',
  ERR_RINGIO_LEASE_RELEASED: 'this received buffer was already released to its pool',
  ERR_RINGIO_POOL_IN_USE: "this runtime's receive-buffer pool is already in use",
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
  ERR_RINGIO_TLS: 'the TLS session failed',
};

/** The fields that ringio's errors may carry besides `code`, depending on where they come from. */
export interface ErrorFields {
  /** The rented buffer (or buffers, for readv/writev) an op gives back with its error. */
  buf?: Uint8Array | Uint8Array[];
  /** Bytes already transferred (ERR_RINGIO_UNEXPECTED_EOF from readExact and friends). */
  n?: number;
  /** The file a file op was about (@ringio/fs). */
  path?: string;
  /** The second path of rename and symlink (@ringio/fs). */
  dest?: string;
}

/**
 * The base of every error ringio raises with a `code` (AbortError aside, which is Node's own shape).
 * Each family has its own class with a real `name`, as undici's errors do, so logs say what went wrong
 * and code can branch by class or by `code`; `code` is stable and `instanceof RingioError` holds for
 * all of them. Errors that crossed threads are rebuilt with their class.
 */
export class RingioError extends Error implements ErrorFields {
  /** An ERR_RINGIO_* code (RingioErrorCode), or the errno name ('ECONNRESET') of a SystemError: match on it. */
  readonly code: string;
  /** The rented buffer (or buffers) an op gives back with its error. */
  declare buf?: Uint8Array | Uint8Array[];
  /** Bytes already transferred (ERR_RINGIO_UNEXPECTED_EOF from readExact and friends). */
  declare n?: number;
  /** The file a file op was about (@ringio/fs). */
  declare path?: string;
  /** The second path of rename and symlink (@ringio/fs). */
  declare dest?: string;
  /** `code` picks the default message; `props` (errno, syscall, buf, path, ...) are copied onto the error. */
  constructor(code: string, message?: string, props?: Record<string, unknown>) {
    super(message ?? MESSAGES[code as RingioErrorCode] ?? code);
    this.code = code;
    if (props) Object.assign(this, props);
  }

  // On the prototype, as Node's own errors have it: stacks and String(err) read it from there.
  static {
    this.prototype.name = 'RingioError';
  }
}

/** ERR_RINGIO_CLOSED: the runtime, socket, file or primitive was closed (ops carry `buf` back). */
export class ClosedError extends RingioError {
  static {
    this.prototype.name = 'ClosedError';
  }
}

/** ERR_RINGIO_TIMEOUT: timeout(work, ms) ran out first. */
export class TimeoutError extends RingioError {
  static {
    this.prototype.name = 'TimeoutError';
  }
}

/** ERR_RINGIO_NO_RUNTIME, ERR_RINGIO_NESTED_START, ERR_RINGIO_DRIVER_UNAVAILABLE: the runtime's state or driver. */
export class RuntimeError extends RingioError {
  static {
    this.prototype.name = 'RuntimeError';
  }
}

/** ERR_RINGIO_UNEXPECTED_EOF, ERR_RINGIO_ALIGNMENT: an I/O call that cannot be done as asked. */
export class IoError extends RingioError {
  static {
    this.prototype.name = 'IoError';
  }
}

/** Thread-per-core: values or functions that cannot cross threads, thread entry and exit, limits. */
export class ThreadError extends RingioError {
  static {
    this.prototype.name = 'ThreadError';
  }
}

/** The errors of the HTTP package: a malformed message from the peer, a message over its limit, a misused response or body. */
export class HttpError extends RingioError {
  static {
    this.prototype.name = 'HttpError';
  }
}

/**
 * TLS failures (@ringio/net's TlsStream), with Node's codes where Node has one: ERR_SSL_<REASON> for a
 * protocol failure ('ERR_SSL_WRONG_VERSION_NUMBER'), the X509 verification code for a rejected
 * certificate ('DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED'), ERR_TLS_CERT_ALTNAME_INVALID for a
 * name mismatch, ERR_TLS_HANDSHAKE_TIMEOUT; ERR_RINGIO_TLS otherwise. `reason` holds OpenSSL's words.
 */
export class TlsError extends RingioError {
  static {
    this.prototype.name = 'TlsError';
  }
}

/** The errors of the service package: a concurrency limit reached, a deploy that failed on some thread. */
export class ServiceError extends RingioError {
  static {
    this.prototype.name = 'ServiceError';
  }
}

/** The errors of the proxy package: an invalid config, no upstream to connect, a failed binary upgrade. */
export class ProxyError extends RingioError {
  static {
    this.prototype.name = 'ProxyError';
  }
}

/**
 * A failed syscall, shaped like Node's system errors: `code` the errno name ('ECONNRESET'), `errno`
 * negative, `syscall`, and where it applies `path` or the rented `buf`. From a kernel result (the
 * driver) or thrown by the addon and converted at the boundary (addon.ts).
 */
export class SystemError extends RingioError {
  /** The negative errno value, as in Node (-104 for ECONNRESET). */
  errno: number;
  /** The syscall that failed: 'read', 'connect', 'open', ... */
  syscall: string;
  /** `code` is the errno name; `props` sets `errno`, `syscall` and any other field. */
  constructor(code: string, message?: string, props?: Record<string, unknown>) {
    super(code, message, undefined);
    this.errno = 0;
    this.syscall = '';
    if (props) Object.assign(this, props);
  }

  static {
    this.prototype.name = 'SystemError';
  }
}

type RingioErrorClass = new (code: string, message?: string, props?: Record<string, unknown>) => RingioError;

/** Which class each code belongs to. */
const FAMILY: Record<RingioErrorCode, RingioErrorClass> = {
  ERR_RINGIO_NESTED_START: RuntimeError,
  ERR_RINGIO_NO_RUNTIME: RuntimeError,
  ERR_RINGIO_CLOSED: ClosedError,
  ERR_RINGIO_TIMEOUT: TimeoutError,
  ERR_RINGIO_DRIVER_UNAVAILABLE: RuntimeError,
  ERR_RINGIO_UNEXPECTED_EOF: IoError,
  ERR_RINGIO_ALIGNMENT: IoError,
  ERR_RINGIO_LEASE_RELEASED: IoError,
  ERR_RINGIO_POOL_IN_USE: RuntimeError,
  ERR_RINGIO_NOT_CLONEABLE: ThreadError,
  ERR_RINGIO_NOT_SHIPPABLE: ThreadError,
  ERR_RINGIO_THREAD_ENTRY: ThreadError,
  ERR_RINGIO_THREAD_EXIT: ThreadError,
  ERR_RINGIO_TOO_MANY_THREADS: ThreadError,
  ERR_RINGIO_ONESHOT_USED: ThreadError,
  ERR_RINGIO_TOO_MANY_PRIMITIVES: ThreadError,
  ERR_RINGIO_OVERLOADED: ServiceError,
  ERR_RINGIO_DEPLOY: ServiceError,
  ERR_RINGIO_CONFIG: ProxyError,
  ERR_RINGIO_NO_UPSTREAM: ProxyError,
  ERR_RINGIO_UPGRADE: ProxyError,
  ERR_RINGIO_HTTP_PARSE: HttpError,
  ERR_RINGIO_HTTP_TOO_LARGE: HttpError,
  ERR_RINGIO_HTTP_HEADERS_SENT: HttpError,
  ERR_RINGIO_HTTP_BODY_USED: HttpError,
  ERR_RINGIO_TLS: TlsError,
};

/** The classes by name, for errors rebuilt on another thread (threads/wire.ts). */
export const ERROR_CLASSES: Readonly<Record<string, RingioErrorClass>> = {
  RingioError,
  ClosedError,
  TimeoutError,
  RuntimeError,
  IoError,
  ThreadError,
  HttpError,
  TlsError,
  ServiceError,
  ProxyError,
  SystemError,
};

/** The error for a ringio code, of its family's class. */
export function ringioError(code: RingioErrorCode, message?: string, props?: Record<string, unknown>): RingioError {
  return new FAMILY[code](code, message, props);
}

/**
 * ringioError without a stack trace: for errors made on a hot path whose stack would only show the
 * runtime's own loop, and that the caller usually drops (a close that fails the read still waiting on
 * every connection: capturing the stack was 6-9% of a server's CPU under new-connection load).
 */
export function ringioErrorNoStack(code: RingioErrorCode, message?: string, props?: Record<string, unknown>): RingioError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return ringioError(code, message, props);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** An AbortError as Node makes them: `name` 'AbortError', `code` 'ABORT_ERR', with the signal's reason as cause. */
export class AbortError extends Error {
  /** Always 'ABORT_ERR', as Node's AbortErrors have it. */
  readonly code = 'ABORT_ERR';
  /** The rented buffer of the aborted op, if it had one. */
  buf?: Uint8Array | Uint8Array[];
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** Makes the AbortError of an aborted op: `cause` = the signal's reason, `buf` = the rented buffer when given. */
export function abortError(signal?: AbortSignal, buf?: unknown): AbortError {
  const e = new AbortError(undefined, signal?.reason !== undefined ? { cause: signal.reason } : undefined);
  if (buf !== undefined) e.buf = buf as Uint8Array;
  return e;
}

/**
 * A kernel failure, shaped like Node's system errors: `code` ('ECONNRESET', 'ENOENT', ...), `errno`
 * (negative), `syscall`, and where it applies `buf`, `path`, `dest`. Not constructed: ringio's own are
 * SystemErrors (errnoError). `instanceof ErrnoError` is true for every error of that shape, not only
 * the ones ringio made: node:fs's own errors (the fallbacks of @ringio/fs), the addon's, and errors
 * rebuilt after crossing threads.
 */
export abstract class ErrnoError extends Error implements ErrorFields {
  /** The errno's name: 'ECONNRESET', 'ENOENT', ... */
  declare code: string;
  /** The negative errno value, as in Node (-104 for ECONNRESET). */
  declare errno: number;
  /** The syscall that failed: 'read', 'connect', 'open', ... */
  declare syscall: string;
  /** The rented buffer (or buffers) an op gives back with its error. */
  declare buf?: Uint8Array | Uint8Array[];
  /** Bytes already transferred, where it applies. */
  declare n?: number;
  /** The file a file op was about. */
  declare path?: string;
  /** The second path of rename and symlink. */
  declare dest?: string;

  /** Shape check: an Error with a string `code`, a number `errno` and a string `syscall`. */
  static override [Symbol.hasInstance](v: unknown): v is ErrnoError {
    return (
      v instanceof Error &&
      typeof (v as ErrnoError).code === 'string' &&
      typeof (v as ErrnoError).errno === 'number' &&
      typeof (v as ErrnoError).syscall === 'string'
    );
  }
}

function errnoName(res: number): string {
  try {
    return getSystemErrorName(res);
  } catch {
    return 'E' + -res;
  }
}

/** An error for a negative kernel result, shaped like Node's system errors (a SystemError, so an ErrnoError too). */
export function errnoError(res: number, syscall: string, props?: Record<string, unknown>): SystemError & ErrnoError {
  const code = errnoName(res);
  const e = new SystemError(code, `${syscall} ${code}`, props) as SystemError & ErrnoError;
  e.errno = res;
  e.syscall = syscall;
  return e;
}

/**
 * The boundary: an error the addon threw becomes a ringio error. Its system errors (`errno`,
 * `syscall`) become SystemErrors and its ERR_RINGIO_* codes their family's class, keeping the message
 * and every field; TypeErrors and RangeErrors for bad arguments pass through unchanged.
 */
export function fromNative(e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof RingioError || e.constructor !== Error) return e;
  const src = e as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
  if (typeof src.code !== 'string') return e;
  let out: RingioError;
  if (typeof src.errno === 'number' && typeof src.syscall === 'string') {
    out = new SystemError(src.code, e.message, { errno: src.errno, syscall: src.syscall });
  } else if (Object.hasOwn(FAMILY, src.code)) {
    out = ringioError(src.code as RingioErrorCode, e.message);
  } else {
    return e;
  }
  out.stack = e.stack?.replace(/^Error\b/, out.name);
  return out;
}

/**
 * The errno table: every errno value ringio's packages look at, negative as the kernel reports them,
 * kept here once (Linux numbers; asm-generic/errno-base.h and errno.h).
 */
export const ERRNO = {
  ENOENT: -2,
  EINTR: -4,
  EBADF: -9,
  EAGAIN: -11,
  EFAULT: -14,
  EEXIST: -17,
  ENOTDIR: -20,
  EINVAL: -22,
  EPIPE: -32,
  ETIME: -62,
  EOPNOTSUPP: -95,
  EALREADY: -114,
  ECANCELED: -125,
} as const;

/** True for an ErrnoError (optionally with this `code`): a guard that narrows `unknown` in a catch. */
export function isErrnoError(e: unknown, code?: string): e is ErrnoError {
  return e instanceof ErrnoError && (code === undefined || e.code === code);
}

/**
 * True for a RingioError (any family, SystemError included); with a `code`, only for that
 * ERR_RINGIO_* code, and `e.code` narrows to it. A guard that narrows `unknown` in a catch.
 */
export function isRingioError<C extends RingioErrorCode>(e: unknown, code: C): e is RingioError & { readonly code: C };
export function isRingioError(e: unknown): e is RingioError;
export function isRingioError(e: unknown, code?: string): boolean {
  return e instanceof RingioError && (code === undefined || e.code === code);
}

/** Whether `code` is one of ringio's ERR_RINGIO_* codes. */
export function isRingioErrorCode(code: unknown): code is RingioErrorCode {
  return typeof code === 'string' && Object.hasOwn(MESSAGES, code);
}

// The ones hot paths compare against, as plain constants (an imported const is cheaper than a property).
/** -ECANCELED: the result of an op cancelled in the kernel. */
export const ECANCELED = -125;
/** -ETIME: the result of a TIMEOUT op that expired. */
export const ETIME = -62;
export const ENOENT = -2;
export const EALREADY = -114;
export const EINTR = -4;
