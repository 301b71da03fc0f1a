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
  | 'ERR_RINGIO_NOT_CLONEABLE'
  | 'ERR_RINGIO_NOT_SHIPPABLE'
  | 'ERR_RINGIO_THREAD_ENTRY'
  | 'ERR_RINGIO_THREAD_EXIT'
  | 'ERR_RINGIO_TOO_MANY_THREADS'
  | 'ERR_RINGIO_ONESHOT_USED'
  | 'ERR_RINGIO_TOO_MANY_PRIMITIVES';

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
 * A runtime condition, with a stable `code` (ERR_RINGIO_*). Errors that crossed threads are rebuilt as
 * RingioErrors too when their code is one of these.
 */
export class RingioError extends Error implements ErrorFields {
  /** The ERR_RINGIO_* code: match on it. */
  readonly code: RingioErrorCode;
  buf?: Uint8Array | Uint8Array[];
  n?: number;
  path?: string;
  dest?: string;
  constructor(code: RingioErrorCode, message?: string, props?: Record<string, unknown>) {
    super(message ?? MESSAGES[code]);
    this.code = code;
    this.name = 'Error';
    if (props) Object.assign(this, props);
  }
}

/** Makes a RingioError (the message defaults to the code's fixed text; props are copied onto it). */
export function ringioError(code: RingioErrorCode, message?: string, props?: Record<string, unknown>): RingioError {
  return new RingioError(code, message, props);
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
 * (negative), `syscall`, and where it applies `buf`, `path`, `dest`. `instanceof ErrnoError` is true for
 * every error of that shape, not only the ones ringio made: node:fs's own errors (the fallbacks of
 * @ringio/fs), the addon's, and errors rebuilt after crossing threads.
 */
export class ErrnoError extends Error implements ErrorFields {
  /** The errno's name: 'ECONNRESET', 'ENOENT', ... */
  code: string;
  /** The negative errno value, as in Node (-104 for ECONNRESET). */
  errno: number;
  /** The syscall that failed: 'read', 'connect', 'open', ... */
  syscall: string;
  buf?: Uint8Array | Uint8Array[];
  n?: number;
  path?: string;
  dest?: string;

  constructor(res: number, syscall: string, props?: Record<string, unknown>) {
    let code: string;
    try {
      code = getSystemErrorName(res);
    } catch {
      code = 'E' + -res;
    }
    super(`${syscall} ${code}`);
    this.name = 'Error';
    this.code = code;
    this.errno = res;
    this.syscall = syscall;
    if (props) Object.assign(this, props);
  }

  static override [Symbol.hasInstance](v: unknown): v is ErrnoError {
    return (
      v instanceof Error &&
      typeof (v as ErrnoError).code === 'string' &&
      typeof (v as ErrnoError).errno === 'number' &&
      typeof (v as ErrnoError).syscall === 'string'
    );
  }
}

/** An error for a negative kernel result, shaped like Node's system errors. */
export function errnoError(res: number, syscall: string, props?: Record<string, unknown>): ErrnoError {
  return new ErrnoError(res, syscall, props);
}

/** True for an ErrnoError (optionally with this `code`): a guard that narrows `unknown` in a catch. */
export function isErrnoError(e: unknown, code?: string): e is ErrnoError {
  return e instanceof ErrnoError && (code === undefined || e.code === code);
}

/** True for a RingioError (optionally with this `code`): a guard that narrows `unknown` in a catch. */
export function isRingioError<C extends RingioErrorCode = RingioErrorCode>(e: unknown, code?: C): e is RingioError & { readonly code: C } {
  return e instanceof RingioError && (code === undefined || e.code === code);
}

/** Whether `code` is one of ringio's ERR_RINGIO_* codes. */
export function isRingioErrorCode(code: unknown): code is RingioErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(MESSAGES, code);
}

/** Negative errno values the runtime itself looks at. */
/** -ECANCELED: the result of an op cancelled in the kernel. */
export const ECANCELED = -125;
/** -ETIME: the result of a TIMEOUT op that expired. */
export const ETIME = -62;
export const ENOENT = -2;
export const EALREADY = -114;
export const EINTR = -4;
