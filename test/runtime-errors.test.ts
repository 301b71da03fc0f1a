/**
 * The error registry (packages/runtime/src/errors.ts): one class per family with a real `name`, every
 * code unchanged, `instanceof RingioError` for all of them, the addon's errors converted at the
 * boundary, and errors that cross threads keep their class. ErrnoError (instanceof for every Node-style
 * system error, ringio's SystemErrors and node:fs's own) and the guards isErrnoError / isRingioError.
 */
import { readFile as nodeReadFile } from 'node:fs/promises';
import test from 'ava';
import {
  AbortError,
  ClosedError,
  ERRNO,
  ErrnoError,
  IoError,
  RingioError,
  RuntimeError,
  SystemError,
  ThreadError,
  TimeoutError,
  currentRuntime,
  errnoError,
  isErrnoError,
  isRingioError,
  read,
  ringioError,
  sleep,
  spawnBlocking,
  sys,
  timeout,
  type RingioErrorCode,
} from '@ringio/runtime';
import { DRIVER, fixture, rejectionOf, rt, rtTest } from './helpers.js';

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
    t.is((e as { buf?: unknown }).buf, 1);
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
  t.is(e.buf as unknown, 7);
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

rtTest('ErrnoError is a runtime class: instanceof holds for ringio, node:fs and rebuilt errors', async (t) => {
  await rt(async () => {
    const e = await rejectionOf(t, read(1 << 20, Buffer.alloc(4)));
    t.true(e instanceof ErrnoError);
    t.true(isErrnoError(e, 'EBADF'));
    t.false(isErrnoError(e, 'ENOENT'));
    t.true(isErrnoError(e) && e.buf instanceof Uint8Array);
    t.true(e instanceof SystemError && e instanceof RingioError, 'ringio makes SystemErrors');
    const made = errnoError(-2, 'open', { path: '/nope' });
    t.true(made instanceof ErrnoError);
    t.is(made.code, 'ENOENT');
    t.is(made.errno, -2);
    t.is(made.path, '/nope');
    t.is(made.name, 'SystemError');
    const fromNode = await rejectionOf(t, nodeReadFile('/nonexistent/ringio'));
    t.true(fromNode instanceof ErrnoError, "node:fs's own errors have the shape");
    t.false(new Error('x') instanceof ErrnoError);
    t.false(ringioError('ERR_RINGIO_CLOSED') instanceof ErrnoError);
    t.false(new AbortError() instanceof ErrnoError);
  });
});

rtTest('isRingioError narrows by code', (t) => {
  const e: unknown = ringioError('ERR_RINGIO_UNEXPECTED_EOF', 'eof', { n: 3 });
  t.true(isRingioError(e));
  t.true(isRingioError(e, 'ERR_RINGIO_UNEXPECTED_EOF') && e.n === 3);
  t.false(isRingioError(e, 'ERR_RINGIO_CLOSED'));
  t.false(isRingioError(new Error('x')));
});

rtTest('spawnBlocking: ringio errors made in the worker arrive as RingioErrors, errno errors as ErrnoErrors', async (t) => {
  await rt(async () => {
    // A result that cannot be cloned back: ERR_RINGIO_NOT_CLONEABLE, made in the worker.
    const notCloneable = await rejectionOf(t, spawnBlocking(() => () => 1));
    t.true(notCloneable instanceof RingioError);
    t.is((notCloneable as RingioError).code, 'ERR_RINGIO_NOT_CLONEABLE');
    // A missing export: ERR_RINGIO_THREAD_ENTRY from the worker.
    const entry = await rejectionOf(t, spawnBlocking({ module: fixture('threads-blocking-jobs.mjs'), export: 'noSuchExport' }));
    t.true(entry instanceof RingioError);
    t.is((entry as RingioError).code, 'ERR_RINGIO_THREAD_ENTRY');
    // A system error thrown in the worker keeps code, errno and syscall.
    const sys = await rejectionOf(
      t,
      spawnBlocking(async () => {
        const fs = await import('node:fs/promises');
        await fs.readFile('/nonexistent/ringio');
      }),
    );
    t.true(sys instanceof ErrnoError);
    t.true(isErrnoError(sys, 'ENOENT'));
    // A user's own error stays what it was.
    const plain = await rejectionOf(
      t,
      spawnBlocking(() => {
        throw new TypeError('mine');
      }),
    );
    t.true(plain instanceof TypeError);
    t.false(plain instanceof RingioError);
  });
});
