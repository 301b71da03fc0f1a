/**
 * Tasks and the runtime's life: start(), spawn()/JoinHandle, abort, yieldNow ordering, error reporting
 * (onTaskError / uncaught), fairness against Node's own loop, and shutdown.
 *
 * Every test that starts a runtime is serial: only one runtime may run per thread at a time.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  AbortError,
  JoinHandle,
  closeSync,
  pipe,
  read,
  sleep,
  spawn,
  start,
  stats,
  write,
  yieldNow,
} from '@ringio/runtime';
import { DRIVER, rejectionOf, rt, rtTestUntimed as rtTest, type AnyErr } from './helpers.js';

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ---------------------------------------------------------------------------------------------------
// start()

rtTest('start resolves with the value main returns (sync and async)', async (t) => {
  t.is(await rt(() => 42), 42);
  t.deepEqual(await rt(async () => ({ a: [1, 2] })), { a: [1, 2] });
  const obj = { marker: true };
  t.is(await rt(() => obj), obj);
});

rtTest('start rejects with the very error main throws, and the thread can start again after', async (t) => {
  const err = new Error('main failed');
  t.is(await rejectionOf(t, rt(() => { throw err; })), err);
  const err2 = new RangeError('main failed async');
  t.is(await rejectionOf(t, rt(async () => { await sleep(1); throw err2; })), err2);
  t.is(await rt(() => 'again'), 'again');
});

rtTest('main gets ctx { threadId: 0, threads: 1, shared, signal }, whose signal aborts at shutdown', async (t) => {
  let ctxSeen: { threadId: number; threads: number; signal: AbortSignal } | undefined;
  let abortedInside: boolean | undefined;
  await rt((ctx) => {
    ctxSeen = ctx;
    abortedInside = ctx.signal.aborted;
  });
  t.truthy(ctxSeen);
  t.deepEqual(Object.keys(ctxSeen!).sort(), ['shared', 'signal', 'threadId', 'threads']);
  t.is(ctxSeen!.threadId, 0);
  t.is(ctxSeen!.threads, 1);
  t.true(ctxSeen!.signal instanceof AbortSignal);
  t.false(abortedInside);
  t.true(ctxSeen!.signal.aborted);
  t.is((ctxSeen!.signal.reason as AnyErr).code, 'ERR_RINGIO_CLOSED');
});

rtTest('stats() inside start reports the driver under test', async (t) => {
  const s = await rt(() => stats());
  if (DRIVER !== 'auto') t.is(s.driver, DRIVER);
  t.is(s.opsInFlight, 0);
  t.is(s.timers, 0);
  t.is(typeof s.kernel, 'string');
  t.true(Array.isArray(s.features));
  if (s.driver === 'uring') t.is(s.entries, 1024);
  else t.is(s.entries, 0);
});

test.serial('start(42) rejects with a TypeError (and does not throw synchronously)', async (t) => {
  let p: Promise<unknown> | undefined;
  t.notThrows(() => {
    p = start(42 as unknown as () => void);
  });
  await t.throwsAsync(p!, { instanceOf: TypeError });
});

test.serial('start rejects bad options', async (t) => {
  await t.throwsAsync(start(() => 1, { driver: 'kqueue' as 'uring' }), { instanceOf: TypeError });
  await t.throwsAsync(start(() => 1, { entries: 0 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { entries: 32769 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { entries: 1.5 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { entries: '8' as unknown as number }), { instanceOf: TypeError });
  await t.throwsAsync(start(() => 1, { budget: 0 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { budget: 2.5 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { budget: '4' as unknown as number }), { instanceOf: TypeError });
  await t.throwsAsync(start(() => 1, { threads: 0 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { threads: 1.5 }), { instanceOf: RangeError });
  await t.throwsAsync(start(() => 1, { threads: 'x' as unknown as number }), { instanceOf: TypeError });
  await t.throwsAsync(start(() => 1, { onTaskError: 'x' as unknown as () => void }), { instanceOf: TypeError });
  await t.throwsAsync(start(() => 1, null as unknown as object), { instanceOf: TypeError });
});

rtTest('entries at both ends of 1..32768 are accepted', async (t) => {
  t.is(await rt(() => 'one', { entries: 1 }), 'one');
  t.is(await rt(() => 'max', { entries: 32768 }), 'max');
});

rtTest('a nested start() rejects ERR_RINGIO_NESTED_START and leaves the outer runtime working', async (t) => {
  const out = await rt(async () => {
    let innerRan = false;
    const err = await rejectionOf(
      t,
      start(() => {
        innerRan = true;
      }),
    );
    t.is(err.code, 'ERR_RINGIO_NESTED_START');
    t.false(innerRan);
    await sleep(1);
    return await spawn(() => 'outer still fine');
  });
  t.is(out, 'outer still fine');
});

rtTest('a second concurrent start() rejects ERR_RINGIO_NESTED_START; the first finishes', async (t) => {
  const first = rt(async () => {
    await sleep(10);
    return 'first';
  });
  const second = rt(() => 'second');
  const err = await rejectionOf(t, second);
  t.is(err.code, 'ERR_RINGIO_NESTED_START');
  t.is(await first, 'first');
});

// ---------------------------------------------------------------------------------------------------
// spawn / join

rtTest('spawn returns a JoinHandle; await gives the result of sync and async tasks', async (t) => {
  await rt(async () => {
    const a = spawn(() => 7);
    const b = spawn(async () => {
      await sleep(2);
      return 'b';
    });
    const c = spawn(() => Promise.resolve([1, 2, 3]));
    t.true(a instanceof JoinHandle);
    t.is(typeof a.then, 'function');
    t.is(await a, 7);
    t.is(await b, 'b');
    t.deepEqual(await c, [1, 2, 3]);
    // A handle can be awaited again, and by several waiters.
    t.is(await a, 7);
    t.deepEqual(await Promise.all([b, b]), ['b', 'b']);
  });
});

rtTest('await rethrows the task error (sync throw and async rejection), by identity', async (t) => {
  await rt(async () => {
    const e1 = new Error('sync throw');
    const e2 = new TypeError('async rejection');
    const h1 = spawn(() => {
      throw e1;
    });
    const h2 = spawn(async () => {
      await sleep(1);
      throw e2;
    });
    t.is(await rejectionOf(t, h1), e1);
    t.is(await rejectionOf(t, h2), e2);
    // Still the same error on a second await.
    t.is(await rejectionOf(t, h1), e1);
  });
});

rtTest('spawn(fn) rejects a non-function with a TypeError', async (t) => {
  await rt(() => {
    t.throws(() => spawn(42 as unknown as () => void), { instanceOf: TypeError });
  });
});

rtTest('a task is queued, not run synchronously by spawn', async (t) => {
  await rt(async () => {
    let ran = false;
    const h = spawn(() => {
      ran = true;
    });
    t.false(ran);
    t.false(h.isFinished);
    t.is(stats().tasksQueued, 1);
    await h;
    t.true(ran);
    t.is(stats().tasksQueued, 0);
  });
});

rtTest('every task gets its AbortSignal, also a function that declares no parameter (a wrapper)', async (t) => {
  await rt(async () => {
    const withParam = await spawn((signal) => signal);
    t.true(withParam instanceof AbortSignal);
    t.false(withParam.aborted);
    const noParam = await spawn(function (this: unknown) {
      // eslint-disable-next-line prefer-rest-params
      return arguments[0] as unknown;
    });
    t.true(noParam instanceof AbortSignal);
    const withDefault = await spawn((signal: AbortSignal | string = 'none') => signal);
    t.true(withDefault instanceof AbortSignal);
    const rest = await spawn((...a: unknown[]) => a[0]);
    t.true(rest instanceof AbortSignal);
    // A typed wrapper (...a) => f(...a) has length 0 and passes the signal on; aborting the handle
    // aborts it, which cancels the wrapped task's op.
    const wrap =
      <A extends unknown[], R>(f: (...a: A) => R) =>
      (...a: A): R =>
        f(...a);
    let seen: AbortSignal | undefined;
    const h = spawn(
      wrap(async (signal: AbortSignal) => {
        seen = signal;
        await sleep(10_000, { signal });
      }),
    );
    await yieldNow();
    t.true(seen instanceof AbortSignal);
    h.abort('stop');
    t.true(seen!.aborted);
    await t.throwsAsync(h, { name: 'AbortError' });
  });
});

rtTest('100 spawned tasks start in FIFO order', async (t) => {
  await rt(async () => {
    const started: number[] = [];
    const handles: JoinHandle<number>[] = [];
    for (let i = 0; i < 100; i++) {
      handles.push(
        spawn(async () => {
          started.push(i);
          await yieldNow();
          return i * 2;
        }),
      );
    }
    const results = await Promise.all(handles);
    t.deepEqual(
      started,
      Array.from({ length: 100 }, (_, i) => i),
    );
    t.deepEqual(
      results,
      Array.from({ length: 100 }, (_, i) => i * 2),
    );
  });
});

rtTest('tasks spawned by tasks run after those already queued (FIFO across spawners)', async (t) => {
  await rt(async () => {
    const order: string[] = [];
    const inner: JoinHandle<void>[] = [];
    const a = spawn(() => {
      order.push('a');
      inner.push(spawn(() => void order.push('a.child')));
    });
    const b = spawn(() => void order.push('b'));
    await Promise.all([a, b]);
    await Promise.all(inner);
    t.deepEqual(order, ['a', 'b', 'a.child']);
  });
});

rtTest('yieldNow interleaves three tasks round-robin', async (t) => {
  await rt(async () => {
    const order: string[] = [];
    const mk = (name: string) =>
      spawn(async () => {
        for (let i = 1; i <= 3; i++) {
          order.push(`${name}${i}`);
          if (i < 3) await yieldNow();
        }
      });
    await Promise.all([mk('a'), mk('b'), mk('c')]);
    t.deepEqual(order, ['a1', 'b1', 'c1', 'a2', 'b2', 'c2', 'a3', 'b3', 'c3']);
  });
});

rtTest('yieldNow lets every ready task run before the caller continues', async (t) => {
  await rt(async () => {
    const order: string[] = [];
    spawn(() => void order.push('t1'));
    spawn(() => void order.push('t2'));
    order.push('main before');
    await yieldNow();
    order.push('main after');
    t.deepEqual(order, ['main before', 't1', 't2', 'main after']);
  });
});

// ---------------------------------------------------------------------------------------------------
// abort

rtTest('abort before the task starts: it never runs, await rejects AbortError, isFinished', async (t) => {
  await rt(async () => {
    let ran = false;
    const h = spawn(() => {
      ran = true;
      return 1;
    });
    t.false(h.isFinished);
    h.abort();
    t.true(h.isFinished);
    const err = await rejectionOf(t, h);
    t.true(err instanceof AbortError);
    t.is(err.name, 'AbortError');
    t.is(err.code, 'ABORT_ERR');
    await yieldNow();
    await sleep(2);
    t.false(ran);
    // Aborting twice is harmless, and later tasks still run.
    h.abort();
    t.is(await spawn(() => 'next'), 'next');
  });
});

rtTest('abort(reason) puts the reason on the AbortError as cause', async (t) => {
  await rt(async () => {
    const reason = new Error('why');
    const h = spawn(() => 1);
    h.abort(reason);
    const err = await rejectionOf(t, h);
    t.is(err.name, 'AbortError');
    t.is(err.cause, reason);
  });
});

rtTest('abort while running: await rejects at once, the task keeps running, its op is cancelled', async (t) => {
  const [r, w] = pipe();
  try {
    await rt(async () => {
      const buf = Buffer.alloc(16, 0xee);
      let opErr: AnyErr | undefined;
      let inFlightWhenOpFailed = -1;
      let taskEnded = false;
      let taskSignal: AbortSignal | undefined;
      const taskDone = deferred();
      const h = spawn(async (signal) => {
        taskSignal = signal;
        try {
          await read(r, buf, { signal });
        } catch (e) {
          opErr = e as AnyErr;
          inFlightWhenOpFailed = stats().opsInFlight;
        }
        // The task ignores the abort and keeps going; nobody sees what it returns.
        await sleep(20);
        taskEnded = true;
        taskDone.resolve();
        return 'late value';
      });
      await sleep(5); // the read is now waiting in the kernel
      t.is(stats().opsInFlight, 1);
      t.false(h.isFinished);

      const reason = new Error('stop it');
      h.abort(reason);
      t.true(taskSignal!.aborted);
      t.is(taskSignal!.reason, reason);
      t.is(opErr, undefined, 'the op must not reject before the kernel answered');
      t.false(h.isFinished, 'the task is still running');

      const err = await rejectionOf(t, h);
      t.is(err.name, 'AbortError');
      t.is(err.code, 'ABORT_ERR');
      t.is(err.cause, reason);
      t.false(taskEnded, 'await must reject at once, not when the task ends');

      await taskDone.promise;
      await yieldNow();
      t.true(taskEnded);
      t.true(h.isFinished);
      // Still the abort error, not the task's late value.
      t.is((await rejectionOf(t, h)).name, 'AbortError');

      t.truthy(opErr);
      t.is(opErr!.name, 'AbortError');
      t.is(opErr!.code, 'ABORT_ERR');
      t.is(opErr!.buf, buf, 'the rented buffer comes back on the AbortError');
      t.is(opErr!.cause, reason);
      t.is(inFlightWhenOpFailed, 0, 'the op settled only after the kernel answered for it');
      t.true(buf.every((b) => b === 0xee), 'a cancelled read wrote nothing');

      // The pipe lost nothing: a new read gets exactly what is written now.
      await write(w, Buffer.from('xyz'));
      const [n, got] = await read(r, Buffer.alloc(16));
      t.is(n, 3);
      t.is(got.subarray(0, n).toString(), 'xyz');
    });
  } finally {
    closeSync(r);
    closeSync(w);
  }
});

rtTest('abort after the task finished is a no-op', async (t) => {
  await rt(async () => {
    const h = spawn(() => 'done');
    t.is(await h, 'done');
    t.true(h.isFinished);
    h.abort();
    t.is(await h, 'done');

    const e = new Error('failed first');
    const h2 = spawn(() => {
      throw e;
    });
    t.is(await rejectionOf(t, h2), e);
    h2.abort();
    t.is(await rejectionOf(t, h2), e);
  });
});

rtTest('isFinished follows the task: false while queued and running, true once it returned or threw', async (t) => {
  await rt(async () => {
    const gate = deferred();
    const h = spawn(async () => {
      await gate.promise;
      return 1;
    });
    t.false(h.isFinished);
    await yieldNow();
    t.false(h.isFinished); // running, waiting for the gate
    gate.resolve();
    await h;
    t.true(h.isFinished);

    const bad = spawn(() => {
      throw new Error('x');
    });
    await rejectionOf(t, bad);
    t.true(bad.isFinished);
  });
});

// ---------------------------------------------------------------------------------------------------
// error reporting

rtTest('onTaskError receives an unawaited task error with its handle, one loop turn later', async (t) => {
  const reported: [unknown, unknown][] = [];
  const err = new Error('nobody awaits me');
  let handle: JoinHandle<unknown> | undefined;
  await rt(
    async () => {
      handle = spawn(() => {
        throw err;
      });
      await yieldNow(); // the task has run and failed
      t.true(handle.isFinished);
      t.is(reported.length, 0, 'not reported synchronously');
      await new Promise((r) => setImmediate(r)); // one loop turn
      t.is(reported.length, 1);
      await sleep(5);
      t.is(reported.length, 1);
    },
    { onTaskError: (e, h) => void reported.push([e, h]) },
  );
  t.is(reported.length, 1);
  t.is(reported[0]![0], err);
  t.is(reported[0]![1], handle);
});

rtTest('onTaskError also gets async failures of unawaited tasks, each once', async (t) => {
  const reported: unknown[] = [];
  const errs = [new Error('one'), new Error('two')];
  await rt(
    async () => {
      // main waits for both tasks to reach their throw (not by timing: under load a sleep(20) in main
      // can fire in the same batch as the task's sleep(2) and end main before the report).
      let thrown = 0;
      let bothThrown!: () => void;
      const both = new Promise<void>((r) => (bothThrown = r));
      const fail = (e: Error): never => {
        if (++thrown === 2) queueMicrotask(bothThrown);
        throw e;
      };
      spawn(async () => {
        await sleep(2);
        fail(errs[0]);
      });
      spawn(async () => {
        await yieldNow();
        fail(errs[1]);
      });
      await both;
      await sleep(1);
      await new Promise((r) => setImmediate(r)); // the report of a failure in the last turn
    },
    { onTaskError: (e) => void reported.push(e) },
  );
  t.is(reported.length, 2);
  t.true(reported.includes(errs[0]));
  t.true(reported.includes(errs[1]));
});

rtTest('an awaited task error is not reported to onTaskError', async (t) => {
  const reported: unknown[] = [];
  await rt(
    async () => {
      // Awaited before it fails.
      const e1 = new Error('awaited early');
      const h1 = spawn(async () => {
        await sleep(1);
        throw e1;
      });
      t.is(await rejectionOf(t, h1), e1);
      // Awaited after it failed, but within the same turn.
      const e2 = new Error('awaited late');
      const h2 = spawn(() => {
        throw e2;
      });
      await yieldNow();
      t.true(h2.isFinished);
      t.is(await rejectionOf(t, h2), e2);
      // Observed with .catch only.
      const e3 = new Error('caught');
      spawn(() => {
        throw e3;
      }).catch(() => {});
      await sleep(10);
    },
    { onTaskError: (e) => void reported.push(e) },
  );
  t.deepEqual(reported, []);
});

rtTest('tasks ended by an abort or by shutdown are not reported', async (t) => {
  const reported: unknown[] = [];
  let late: JoinHandle<void> | undefined;
  let lateSignal: AbortSignal | undefined;
  await rt(
    async () => {
      const h = spawn(async () => {
        await sleep(5);
        throw new Error('after abort');
      });
      await yieldNow();
      h.abort();
      await sleep(15);
      late = spawn(async (signal) => {
        lateSignal = signal;
        await sleep(10_000, { signal });
      });
      await yieldNow();
    },
    { onTaskError: (e) => void reported.push(e) },
  );
  // The runtime aborted the still-running task at shutdown.
  t.true(lateSignal!.aborted);
  t.is((lateSignal!.reason as AnyErr).code, 'ERR_RINGIO_CLOSED');
  const err = await rejectionOf(t, late!);
  t.is(err.name, 'AbortError');
  t.is((err.cause as AnyErr).code, 'ERR_RINGIO_CLOSED');
  await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(reported, []);
});

rtTest('an unawaited task error without onTaskError crashes the process (child process)', async (t) => {
  const fixture = fileURLToPath(new URL('../../test/fixtures/unawaited-task-error.mjs', import.meta.url));
  const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [fixture],
      { env: { ...process.env, RINGIO_DRIVER: DRIVER }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
  t.log(res.stdout.trim());
  t.is(res.code, 1, res.stderr);
  t.regex(res.stderr, /boom: unawaited task error 7f3a/);
  if (DRIVER !== 'auto') t.regex(res.stdout, new RegExp(`driver=${DRIVER}`));
  t.notRegex(res.stdout, /main finished/, 'the error is raised one loop turn later, not when main ends');
  t.notRegex(res.stdout, /start resolved/);
});

rtTest(
  // Regression: JoinHandle.then() used to build `Promise.reject(this.#value ?? abortError())` once the
  // task had settled, so a task that threw undefined or null was awaited as an AbortError.
  'a task that throws undefined/null rethrows that value when awaited after it failed',
  async (t) => {
    await rt(
      async () => {
        const h1 = spawn(() => {
          throw undefined; // eslint-disable-line no-throw-literal
        });
        const h2 = spawn(() => {
          throw null; // eslint-disable-line no-throw-literal
        });
        await yieldNow(); // both have failed; nobody awaited them yet
        let e1: unknown = 'no rejection';
        let e2: unknown = 'no rejection';
        try {
          await h1;
        } catch (e) {
          e1 = e;
        }
        try {
          await h2;
        } catch (e) {
          e2 = e;
        }
        t.is(e1, undefined);
        t.is(e2, null);
      },
      { onTaskError: () => {} },
    );
  },
);

// ---------------------------------------------------------------------------------------------------
// fairness

rtTest('a task spinning on yieldNow does not starve sleep() nor Node timers', async (t) => {
  await rt(async () => {
    let stop = false;
    let spins = 0;
    const spinner = spawn(async () => {
      while (!stop) {
        spins++;
        await yieldNow();
      }
    });
    const t0 = performance.now();
    const sleeper = spawn(async () => {
      await sleep(10);
      return performance.now() - t0;
    });
    const noder = spawn(
      () => new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - t0), 10)),
    );
    const immediate = new Promise<number>((resolve) => setImmediate(() => resolve(spins)));
    const [sleepMs, nodeMs] = await Promise.all([sleeper, noder]);
    const spinsAtImmediate = await immediate;
    stop = true;
    await spinner;
    t.log(`sleep(10) after ${sleepMs.toFixed(1)} ms, setTimeout(10) after ${nodeMs.toFixed(1)} ms, ${spins} spins`);
    t.true(sleepMs >= 9, `sleep(10) resolved early: ${sleepMs}`);
    t.true(sleepMs < 1000, `sleep(10) starved: ${sleepMs} ms`);
    t.true(nodeMs >= 9, `setTimeout resolved early: ${nodeMs}`);
    t.true(nodeMs < 1000, `setTimeout(10) starved: ${nodeMs} ms`);
    t.true(spinsAtImmediate <= 1100, `setImmediate waited for ${spinsAtImmediate} spins (budget 1024)`);
    t.true(spins > 1024, 'the spinner kept running across loop turns');
  });
});

rtTest('the budget option bounds how many tasks run before Node gets a loop turn', async (t) => {
  await rt(
    async () => {
      const order: (number | string)[] = [];
      setImmediate(() => order.push('immediate'));
      const hs: JoinHandle<number>[] = [];
      for (let i = 0; i < 12; i++) hs.push(spawn(() => order.push(i)));
      await Promise.all(hs);
      await new Promise((r) => setImmediate(r));
      t.deepEqual(order, [0, 1, 2, 3, 'immediate', 4, 5, 6, 7, 8, 9, 10, 11]);
    },
    { budget: 4 },
  );
});

// ---------------------------------------------------------------------------------------------------
// shutdown

rtTest('start waits for nothing after main: in-flight ops and tasks are cancelled at once', async (t) => {
  const [r, w] = pipe();
  try {
    let readP: Promise<unknown> | undefined;
    const buf = Buffer.alloc(4);
    const t0 = performance.now();
    await rt(() => {
      readP = read(r, buf);
      readP.catch(() => {});
      spawn(() => sleep(10_000)).catch(() => {});
    });
    t.true(performance.now() - t0 < 2000);
    const err = await rejectionOf(t, readP!);
    t.is(err.code, 'ERR_RINGIO_CLOSED');
    t.is(err.buf, buf);
  } finally {
    closeSync(r);
    closeSync(w);
  }
});

rtTest('spawn after main ended (during shutdown) gives a handle that rejects', async (t) => {
  let h: JoinHandle<string> | undefined;
  let ran = false;
  await rt(async (ctx) => {
    ctx.signal.addEventListener('abort', () => {
      h = spawn(() => {
        ran = true;
        return 'x';
      });
    });
  });
  t.truthy(h);
  const err = await rejectionOf(t, h!);
  t.is(err.name, 'AbortError');
  t.is((err.cause as AnyErr).code, 'ERR_RINGIO_CLOSED');
  t.false(ran);
});

rtTest(
  // Regression: while shutdown() waits for the kernel to answer the cancelled ops, task code keeps
  // running (here the catch block of the cancelled read). An op or sleep started then used to be
  // accepted by the driver after cancelAll() had run: never cancelled, never dispatched (the driver
  // was closed under it), so its promise stayed pending forever, or start() hung waiting for it.
  'ops and sleeps started while the runtime shuts down reject ERR_RINGIO_CLOSED instead of hanging',
  async (t) => {
    const [r, w] = pipe();
    try {
      let lateRead: Promise<unknown> | undefined;
      let lateSleep: Promise<unknown> | undefined;
      const lateBuf = Buffer.alloc(4);
      await rt(async () => {
        spawn(async () => {
          try {
            await read(r, Buffer.alloc(4));
          } catch {
            // The runtime is closing: the first read was cancelled. Whatever is started now must fail fast.
            lateRead = read(r, lateBuf);
            lateSleep = sleep(5);
            lateRead.catch(() => {});
            lateSleep.catch(() => {});
          }
        });
        await yieldNow();
        await yieldNow();
      });
      await new Promise((res) => setTimeout(res, 20));
      t.truthy(lateRead);
      t.truthy(lateSleep);
      const settled = (p: Promise<unknown>) =>
        Promise.race([
          p.then(
            () => 'resolved',
            (e: AnyErr) => e.code,
          ),
          new Promise((res) => setTimeout(() => res('still pending after 500 ms'), 500)),
        ]);
      t.is(await settled(lateRead!), 'ERR_RINGIO_CLOSED');
      t.is(await settled(lateSleep!), 'ERR_RINGIO_CLOSED');
    } finally {
      closeSync(r);
      closeSync(w);
    }
  },
);
