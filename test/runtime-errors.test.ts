/**
 * Error classes and guards that work at run time: ErrnoError (instanceof for every Node-style system
 * error), isErrnoError / isRingioError, and ringio's errors rebuilt as RingioErrors after crossing threads.
 */
import { readFile as nodeReadFile } from 'node:fs/promises';
import {
  AbortError,
  ErrnoError,
  RingioError,
  errnoError,
  isErrnoError,
  isRingioError,
  read,
  ringioError,
  spawnBlocking,
} from '@ringio/runtime';
import { fixture, rejectionOf, rt, rtTest } from './helpers.js';

rtTest('ErrnoError is a runtime class: instanceof holds for ringio, node:fs and rebuilt errors', async (t) => {
  await rt(async () => {
    const e = await rejectionOf(t, read(1 << 20, Buffer.alloc(4)));
    t.true(e instanceof ErrnoError);
    t.true(isErrnoError(e, 'EBADF'));
    t.false(isErrnoError(e, 'ENOENT'));
    t.true(isErrnoError(e) && e.buf instanceof Uint8Array);
    t.false(e instanceof RingioError);
    const made = errnoError(-2, 'open', { path: '/nope' });
    t.true(made instanceof ErrnoError);
    t.is(made.code, 'ENOENT');
    t.is(made.errno, -2);
    t.is(made.path, '/nope');
    t.is(made.name, 'Error');
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
