/**
 * The error registry (packages/runtime/src/errors.ts): one class per family with a real `name`, every
 * code unchanged, `instanceof RingioError` for all of them, the addon's errors converted at the
 * boundary, and errors that cross threads keep their class.
 */
import test from 'ava';
import {
  AbortError,
  ClosedError,
  ERRNO,
  IoError,
  RingioError,
  RuntimeError,
  SystemError,
  ThreadError,
  TimeoutError,
  currentRuntime,
  errnoError,
  ringioError,
  sleep,
  spawnBlocking,
  sys,
  timeout,
  type RingioErrorCode,
} from '@ringio/runtime';
import { DRIVER, rejectionOf, rt, rtTest } from './helpers.js';

const FAMILIES: [RingioErrorCode, new (...a: never[]) => RingioError, string][] = [
  ['ERR_RINGIO_NESTED_START', RuntimeError, 'RuntimeError'],
  ['ERR_RINGIO_NO_RUNTIME', RuntimeError, 'RuntimeError'],
  ['ERR_RINGIO_DRIVER_UNAVAILABLE', RuntimeError, 'RuntimeError'],
  ['ERR_RINGIO_CLOSED', ClosedError, 'ClosedError'],
  ['ERR_RINGIO_TIMEOUT', TimeoutError, 'TimeoutError'],
  ['ERR_RINGIO_UNEXPECTED_EOF', IoError, 'IoError'],
  ['ERR_RINGIO_ALIGNMENT', IoError, 'IoError'],
  ['ERR_RINGIO_NOT_CLONEABLE', ThreadError, 'ThreadError'],
  ['ERR_RINGIO_NOT_SHIPPABLE', ThreadError, 'ThreadError'],
  ['ERR_RINGIO_THREAD_ENTRY', ThreadError, 'ThreadError'],
  ['ERR_RINGIO_THREAD_EXIT', ThreadError, 'ThreadError'],
  ['ERR_RINGIO_TOO_MANY_THREADS', ThreadError, 'ThreadError'],
  ['ERR_RINGIO_ONESHOT_USED', ThreadError, 'ThreadError'],
  ['ERR_RINGIO_TOO_MANY_PRIMITIVES', ThreadError, 'ThreadError'],
];

test('every code makes an error of its family: a real name, the same code, instanceof RingioError', (t) => {
  for (const [code, Cls, name] of FAMILIES) {
    const e = ringioError(code, undefined, { buf: 1 });
    t.true(e instanceof Cls, code);
    t.true(e instanceof RingioError, code);
    t.true(e instanceof Error, code);
    t.is(e.name, name, code);
    t.is(e.code, code);
    t.is((e as RingioError & { buf?: number }).buf, 1);
    t.true(e.message.length > 0 && e.message !== code, `${code} has a default message`);
    t.true(String(e).startsWith(`${name}: `), String(e));
  }
});

test('errnoError makes a SystemError shaped like Node system errors', (t) => {
  const e = errnoError(ERRNO.ECANCELED, 'read', { buf: 7 });
  t.true(e instanceof SystemError && e instanceof RingioError);
  t.is(e.name, 'SystemError');
  t.is(e.code, 'ECANCELED');
  t.is(e.errno, -125);
  t.is(e.syscall, 'read');
  t.is(e.buf, 7);
  t.is(e.message, 'read ECANCELED');
});

test('AbortError stays Node-shaped', (t) => {
  const e = new AbortError();
  t.is(e.name, 'AbortError');
  t.is(e.code, 'ABORT_ERR');
});

test('the errno table holds Linux numbers', (t) => {
  t.is(ERRNO.EINVAL, -22);
  t.is(ERRNO.EPIPE, -32);
  t.is(ERRNO.ECANCELED, -125);
  t.is(ERRNO.ETIME, -62);
});

test("the addon's system errors arrive as SystemErrors with code, errno and syscall", (t) => {
  const err = t.throws(() => sys.listen(0x7ffffff0, 1)) as SystemError;
  t.true(err instanceof SystemError && err instanceof RingioError);
  t.is(err.name, 'SystemError');
  t.is(err.code, 'EBADF');
  t.is(err.errno, -9);
  t.is(err.syscall, 'listen');
  t.regex(err.message, /^listen EBADF/);
  t.regex(err.stack ?? '', /^SystemError: listen EBADF/);
});

test("the addon's argument errors stay TypeError / RangeError", (t) => {
  t.throws(() => sys.alignOffset(new Uint8Array(8), 3), { instanceOf: RangeError });
});

test('outside a runtime: ERR_RINGIO_NO_RUNTIME is a RuntimeError', (t) => {
  const err = t.throws(() => currentRuntime()) as RingioError;
  t.true(err instanceof RuntimeError && err instanceof RingioError);
  t.is(err.code, 'ERR_RINGIO_NO_RUNTIME');
});

rtTest('a driver the addon cannot open rejects with a RuntimeError from the boundary; nested start too', async (t) => {
  await rt(async () => {
    const nested = await rejectionOf(t, rt(async () => 1));
    t.true(nested instanceof RuntimeError);
    t.is(nested.code, 'ERR_RINGIO_NESTED_START');
    const late = await rejectionOf(t, timeout(sleep(1000), 1));
    t.true(late instanceof TimeoutError);
    t.is(late.code, 'ERR_RINGIO_TIMEOUT');
  });
  if (DRIVER === 'uring') {
    process.env.RINGIO_FAULT_URING_SETUP = 'EPERM';
    try {
      const err = await rejectionOf(t, rt(async () => 1, { driver: 'uring' }));
      t.true(err instanceof RuntimeError, String(err));
      t.is(err.code, 'ERR_RINGIO_DRIVER_UNAVAILABLE');
      t.regex(err.message, /EPERM/);
    } finally {
      delete process.env.RINGIO_FAULT_URING_SETUP;
    }
  }
});

rtTest('errors from another thread keep their ringio class and code', async (t) => {
  await rt(async () => {
    const err = await rejectionOf(
      t,
      spawnBlocking(() => {
        const e = new Error('closed over there') as Error & { code: string };
        e.name = 'ClosedError';
        e.code = 'ERR_RINGIO_CLOSED';
        throw e;
      }),
    );
    t.true(err instanceof ClosedError, String(err));
    t.true(err instanceof RingioError);
    t.is(err.code, 'ERR_RINGIO_CLOSED');
    t.is(err.message, 'closed over there');
  });
});
