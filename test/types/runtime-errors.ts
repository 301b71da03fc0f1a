// Errors: classes that work with instanceof at run time, guards that narrow `unknown`, typed fields.
import {
  start,
  read,
  AbortError,
  ClosedError,
  SystemError,
  ErrnoError,
  RingioError,
  isErrnoError,
  isRingioError,
  errnoError,
  ringioError,
  type RingioErrorCode,
  type ErrorFields,
} from '@ringio/runtime';

await start(async () => {
  try {
    await read(12345, Buffer.alloc(16));
  } catch (e) {
    if (e instanceof ErrnoError) {
      const code: string = e.code;
      const errno: number = e.errno;
      const syscall: string = e.syscall;
      const buf: Uint8Array | Uint8Array[] | undefined = e.buf;
      const path: string | undefined = e.path;
      void [code, errno, syscall, buf, path];
    }
    if (isErrnoError(e, 'EBADF')) {
      const n: number | undefined = e.n;
      void n;
    }
    if (e instanceof RingioError) {
      // Every family, SystemError included: an ERR_RINGIO_* code or an errno name.
      const code: string = e.code;
      // @ts-expect-error not narrowed to the ringio codes (a SystemError's code is an errno name)
      const narrow: RingioErrorCode = e.code;
      void [code, narrow];
    }
    if (e instanceof SystemError) {
      const errno: number = e.errno;
      const asErrno: ErrnoError = e;
      void [errno, asErrno];
    }
    if (e instanceof ClosedError) {
      const buf: Uint8Array | Uint8Array[] | undefined = e.buf;
      void buf;
    }
    if (isRingioError(e, 'ERR_RINGIO_UNEXPECTED_EOF')) {
      const n: number | undefined = e.n;
      const code: 'ERR_RINGIO_UNEXPECTED_EOF' = e.code;
      void [n, code];
    }
    if (e instanceof AbortError) {
      const code: 'ABORT_ERR' = e.code;
      const buf = e.buf;
      void [code, buf];
    }
  }
  const mine = ringioError('ERR_RINGIO_TIMEOUT');
  const fields: ErrorFields = mine;
  const sys: ErrnoError = errnoError(-2, 'open', { path: '/x' });
  void [fields, sys];
  // @ts-expect-error codes are checked
  ringioError('ERR_RINGIO_NOPE');
  // @ts-expect-error a guard's code is checked too
  isRingioError(sys, 'ERR_NOPE');
});
