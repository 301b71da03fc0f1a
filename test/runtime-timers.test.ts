/**
 * Timers on the driver: sleep() accuracy and ordering, abort, timeout(), interval(), a 100k-timer heap,
 * and what shutdown does to pending timers.
 *
 * Bounds: a timer must never fire early (lower bound ms - 1: the heap fires deadlines within 0.05 ms,
 * on performance.now()'s clock), and late by at most a generous 25 ms of scheduling noise.
 */
import test, { type ExecutionContext } from 'ava';
import { interval, sleep, stats, timeout, yieldNow } from '@ringio/runtime';
import { fixture, rejectionOf, rt, rtTestUntimed as rtTest, runNode, type AnyErr } from './helpers.js';

const NOISE_MS = 25;
/** Lateness bound for tests about a mechanism rather than accuracy (ava runs files in parallel). */
const SLACK_MS = 150;

/** Asserts elapsed is in [ms - 1, ms + late]. */
function within(t: ExecutionContext, elapsed: number, ms: number, what: string, late = NOISE_MS): void {
  t.true(elapsed >= ms - 1, `${what} fired early: ${elapsed.toFixed(2)} ms < ${ms} ms`);
  t.true(elapsed <= ms + late, `${what} fired late: ${elapsed.toFixed(2)} ms > ${ms} + ${late} ms`);
}

// ---------------------------------------------------------------------------------------------------
// sleep

for (const ms of [20, 50]) {
  rtTest(`sleep(${ms}) takes ${ms} ms (never early, at most ${NOISE_MS} ms late)`, async (t) => {
    await rt(async () => {
      // Never early on any run; the lateness bound must hold on the best of three runs (load noise).
      const runs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await sleep(ms);
        const elapsed = performance.now() - t0;
        t.true(elapsed >= ms - 1, `sleep(${ms}) fired early: ${elapsed.toFixed(2)} ms`);
        runs.push(elapsed);
      }
      t.log(`sleep(${ms}): ${runs.map((r) => r.toFixed(2)).join(', ')} ms`);
      within(t, Math.min(...runs), ms, `sleep(${ms})`);
      t.is(stats().timers, 0);
    });
  });
}

rtTest('sleep resolves with undefined, and fractional ms work', async (t) => {
  await rt(async () => {
    t.is(await sleep(1), undefined);
    const t0 = performance.now();
    await sleep(2.5);
    t.true(performance.now() - t0 >= 1.5);
  });
});

rtTest('sleeps of 30, 10 and 20 ms resolve in deadline order, none early', async (t) => {
  await rt(async () => {
    const order: number[] = [];
    const deadline: Record<number, number> = {};
    const at: Record<number, number> = {};
    await Promise.all(
      [30, 10, 20].map((ms) => {
        const made = performance.now();
        deadline[ms] = made + ms;
        return sleep(ms).then(() => {
          order.push(ms);
          at[ms] = performance.now();
        });
      }),
    );
    // Deadline order; that is 10, 20, 30 unless this thread was descheduled for more than 10 ms
    // between two of the sleep() calls above.
    const byDeadline = [30, 10, 20].sort((a, b) => deadline[a]! - deadline[b]!);
    t.deepEqual(order, byDeadline);
    if (deadline[20]! - deadline[10]! > 5 && deadline[30]! - deadline[20]! > 5) t.deepEqual(order, [10, 20, 30]);
    for (const ms of [10, 20, 30]) t.true(at[ms]! >= deadline[ms]! - 1, `sleep(${ms}) fired early`);
  });
});

rtTest('an earlier sleep added after a later one re-arms the kernel timer', async (t) => {
  await rt(async () => {
    const t0 = performance.now();
    const long = sleep(400);
    await yieldNow();
    await sleep(5);
    const shortAt = performance.now() - t0;
    t.true(shortAt >= 4);
    t.true(shortAt < 200, `sleep(5) waited for the 400 ms timer: ${shortAt}`);
    await long;
    t.true(performance.now() - t0 >= 399);
  });
});

rtTest('50 sleeps of the same ms fire together, in the order they were made', async (t) => {
  await rt(async () => {
    const order: number[] = [];
    const before = stats().completions;
    // Deadlines are performance.now() + ms, so they increase with creation order (the clock has
    // sub-microsecond resolution): the heap must pop them in that order.
    await Promise.all(Array.from({ length: 50 }, (_, i) => sleep(5).then(() => order.push(i))));
    t.deepEqual(
      order,
      Array.from({ length: 50 }, (_, i) => i),
    );
    // One kernel timer fired for all of them (a few more only if this thread was preempted).
    t.true(stats().completions - before <= 5, `${stats().completions - before} completions`);
  });
});

rtTest('sleep(0) resolves promptly', async (t) => {
  await rt(async () => {
    const t0 = performance.now();
    await sleep(0);
    await sleep(0);
    t.true(performance.now() - t0 < SLACK_MS);
    t.is(stats().timers, 0);
  });
});

rtTest('sleep aborted by its signal rejects AbortError with the reason; other timers still fire', async (t) => {
  await rt(async () => {
    const t0 = performance.now();
    const ac = new AbortController();
    const reason = new Error('enough');
    const fired: number[] = [];
    const before = sleep(10).then(() => fired.push(10));
    const aborted = sleep(200, { signal: ac.signal });
    aborted.catch(() => {});
    const after = sleep(250).then(() => fired.push(250));
    t.is(stats().timers, 3);
    await before;
    ac.abort(reason);
    const err = await rejectionOf(t, aborted);
    const abortedAt = performance.now() - t0;
    t.is(err.name, 'AbortError');
    t.is(err.code, 'ABORT_ERR');
    t.is(err.cause, reason);
    t.true(abortedAt < 200, `the aborted sleep rejected at ${abortedAt}, not at abort time`);
    t.is(stats().timers, 1); // only the later sleep is left
    await after;
    t.deepEqual(fired, [10, 250]);
    t.true(performance.now() - t0 >= 249);
    t.is(stats().timers, 0);
  });
});

rtTest('aborting the earliest sleep still lets the next one fire on time', async (t) => {
  await rt(async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    const first = sleep(10, { signal: ac.signal });
    first.catch(() => {});
    const second = sleep(20);
    ac.abort();
    t.is((await rejectionOf(t, first)).name, 'AbortError');
    await second;
    within(t, performance.now() - t0, 20, 'sleep(20)', SLACK_MS);
  });
});

rtTest('sleep with an already-aborted signal rejects at once and arms nothing', async (t) => {
  await rt(async () => {
    const reason = new Error('pre-aborted');
    const err = await rejectionOf(t, sleep(1000, { signal: AbortSignal.abort(reason) }));
    t.is(err.name, 'AbortError');
    t.is(err.cause, reason);
    t.is(stats().timers, 0);
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('a signal that fires after the sleep resolved changes nothing', async (t) => {
  await rt(async () => {
    const ac = new AbortController();
    await sleep(2, { signal: ac.signal });
    ac.abort();
    await sleep(1);
    t.is(stats().timers, 0);
  });
});

rtTest('sleep rejects bad input', async (t) => {
  await rt(async () => {
    await t.throwsAsync(sleep(-1), { instanceOf: RangeError });
    await t.throwsAsync(sleep(-0.5), { instanceOf: RangeError });
    await t.throwsAsync(sleep(Infinity), { instanceOf: RangeError });
    await t.throwsAsync(sleep(-Infinity), { instanceOf: RangeError });
    await t.throwsAsync(sleep(2 ** 31 * 1000 + 1), { instanceOf: RangeError });
    await t.throwsAsync(sleep('10' as unknown as number), { instanceOf: TypeError });
    await t.throwsAsync(sleep(undefined as unknown as number), { instanceOf: TypeError });
    await t.throwsAsync(sleep(10n as unknown as number), { instanceOf: TypeError });
    // NaN is rejected (as a TypeError by this version); either error class is acceptable here.
    const nan = await rejectionOf(t, sleep(NaN));
    t.true(nan instanceof TypeError || nan instanceof RangeError);
    await t.throwsAsync(sleep(1, { signal: {} as AbortSignal }), { instanceOf: TypeError });
    t.is(stats().timers, 0);
  });
});

test.serial('sleep outside a runtime rejects ERR_RINGIO_NO_RUNTIME', async (t) => {
  await t.throwsAsync(sleep(1), { code: 'ERR_RINGIO_NO_RUNTIME' });
  await t.throwsAsync(timeout(Promise.resolve(1), 10), { code: 'ERR_RINGIO_NO_RUNTIME' });
  t.throws(() => interval(10), { code: 'ERR_RINGIO_NO_RUNTIME' });
});

rtTest('sleeps pending at shutdown reject ERR_RINGIO_CLOSED, and start does not wait for them', async (t) => {
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  await rt(() => {
    for (const ms of [5_000, 10_000, 60_000]) {
      const p = sleep(ms);
      p.catch(() => {});
      pending.push(p);
    }
  });
  t.true(performance.now() - t0 < 1000, 'start() waited for the timers');
  for (const p of pending) t.is((await rejectionOf(t, p)).code, 'ERR_RINGIO_CLOSED');
});

rtTest('a timeout() still pending at shutdown rejects ERR_RINGIO_CLOSED, and aborts its fn signal', async (t) => {
  let plain: Promise<unknown> | undefined;
  let withFn: Promise<unknown> | undefined;
  let fnSignal: AbortSignal | undefined;
  await rt(() => {
    plain = timeout(new Promise(() => {}), 60_000);
    withFn = timeout((signal) => {
      fnSignal = signal;
      return new Promise(() => {});
    }, 60_000);
    plain.catch(() => {});
    withFn.catch(() => {});
  });
  const race = (p: Promise<unknown>) =>
    Promise.race([
      p.then(
        () => 'resolved',
        (e: AnyErr) => e.code,
      ),
      new Promise((res) => setTimeout(() => res('still pending after 500 ms'), 500)),
    ]);
  t.is(await race(plain!), 'ERR_RINGIO_CLOSED');
  t.is(await race(withFn!), 'ERR_RINGIO_CLOSED');
  t.true(fnSignal!.aborted);
});

// ---------------------------------------------------------------------------------------------------
// 100k timers

rtTest('100k concurrent sleeps of 1..50 ms all resolve, none early, and the heap empties', async (t) => {
  await rt(async () => {
    const N = 100_000;
    let early = 0;
    let worst = 0;
    const t0 = performance.now();
    const ps: Promise<void>[] = new Array(N);
    for (let i = 0; i < N; i++) {
      const ms = 1 + Math.floor(Math.random() * 50);
      const made = performance.now();
      ps[i] = sleep(ms).then(() => {
        const late = performance.now() - made - ms;
        if (late < -1) early++;
        if (late > worst) worst = late;
      });
    }
    t.is(stats().timers, N);
    // One kernel timer for the whole heap (plus the few replaced by an earlier deadline, whose
    // cancellations the kernel has not answered yet), not one per sleep.
    t.true(stats().opsInFlight < 64, `opsInFlight ${stats().opsInFlight}`);
    await Promise.all(ps);
    const total = performance.now() - t0;
    t.log(`100k sleeps done in ${total.toFixed(0)} ms, worst lateness ${worst.toFixed(1)} ms`);
    t.is(early, 0);
    t.is(stats().timers, 0);
    t.true(total < 20_000);
  });
});

// ---------------------------------------------------------------------------------------------------
// timeout()

rtTest('timeout(promise, ms) resolves with the promise value when it wins', async (t) => {
  await rt(async () => {
    t.is(await timeout(sleep(5).then(() => 'v'), 200), 'v');
    t.is(await timeout(Promise.resolve(7), 50), 7);
    t.is(stats().timers, 0, 'the losing timer was removed');
  });
});

rtTest('timeout rejects ERR_RINGIO_TIMEOUT after ms when the work is slower', async (t) => {
  await rt(async () => {
    const slow = sleep(500);
    const t0 = performance.now();
    const err = await rejectionOf(t, timeout(slow, 20));
    within(t, performance.now() - t0, 20, 'timeout(…, 20)', SLACK_MS);
    t.is(err.code, 'ERR_RINGIO_TIMEOUT');
    t.true(err instanceof Error);
    await slow; // the work itself is not touched by the timeout in promise form
  });
});

rtTest('timeout passes the rejection of the work through', async (t) => {
  await rt(async () => {
    const e = new Error('work failed');
    t.is(await rejectionOf(t, timeout(Promise.reject(e), 100)), e);
    t.is(await rejectionOf(t, timeout(() => { throw e; }, 100)), e);
    t.is(await rejectionOf(t, timeout(async () => { await sleep(1); throw e; }, 100)), e);
    t.is(stats().timers, 0);
  });
});

rtTest('timeout(fn, ms) gives fn a signal that is aborted on timeout, which cancels its sleep', async (t) => {
  await rt(async () => {
    let seen: AbortSignal | undefined;
    let inner: AnyErr | undefined;
    const t0 = performance.now();
    const err = await rejectionOf(
      t,
      timeout(async (signal) => {
        seen = signal;
        t.false(signal.aborted);
        try {
          await sleep(5_000, { signal });
        } catch (e) {
          inner = e as AnyErr;
          throw e;
        }
      }, 15),
    );
    t.true(performance.now() - t0 < 1000);
    t.is(err.code, 'ERR_RINGIO_TIMEOUT');
    t.truthy(seen);
    t.true(seen!.aborted);
    t.is((seen!.reason as AnyErr).code, 'ERR_RINGIO_TIMEOUT');
    await yieldNow();
    t.is(inner?.name, 'AbortError');
    t.is(stats().timers, 0, 'the cancelled inner sleep left the heap');
  });
});

rtTest('timeout(fn, ms): when fn wins its signal is never aborted', async (t) => {
  await rt(async () => {
    let seen: AbortSignal | undefined;
    t.is(
      await timeout(async (signal) => {
        seen = signal;
        await sleep(2);
        return 'fast';
      }, 100),
      'fast',
    );
    await sleep(5);
    t.false(seen!.aborted);
    // A sync function result works too.
    t.is(await timeout(() => 3, 10), 3);
  });
});

rtTest('timeout rejects bad input', async (t) => {
  await rt(async () => {
    await t.throwsAsync(timeout(42 as unknown as Promise<number>, 10), { instanceOf: TypeError });
    await t.throwsAsync(timeout(null as unknown as Promise<number>, 10), { instanceOf: TypeError });
    await t.throwsAsync(timeout(Promise.resolve(1), -1), { instanceOf: RangeError });
    await t.throwsAsync(timeout(Promise.resolve(1), Infinity), { instanceOf: RangeError });
    await t.throwsAsync(timeout(Promise.resolve(1), 'x' as unknown as number), { instanceOf: TypeError });
  });
});

// ---------------------------------------------------------------------------------------------------
// interval()

rtTest('interval yields 1, 2, 3 one period apart and stops on break', async (t) => {
  await rt(async () => {
    const period = 20;
    const s = performance.now();
    const ticks: number[] = [];
    const times: number[] = [];
    for await (const n of interval(period)) {
      ticks.push(n);
      times.push(performance.now() - s);
      if (n === 3) break;
    }
    t.deepEqual(ticks, [1, 2, 3]);
    t.log(`ticks at ${times.map((x) => x.toFixed(1)).join(', ')} ms`);
    for (let k = 1; k <= 3; k++) {
      t.true(times[k - 1]! >= k * period - 1, `tick ${k} early at ${times[k - 1]}`);
      t.true(times[k - 1]! <= k * period + SLACK_MS, `tick ${k} late at ${times[k - 1]}`);
    }
    t.is(stats().timers, 0);
  });
});

rtTest('interval: return() ends the iterator', async (t) => {
  await rt(async () => {
    const it = interval(5);
    t.deepEqual(await it.next(), { value: 1, done: false });
    t.deepEqual(await it.return!(), { value: undefined, done: true });
    t.deepEqual(await it.next(), { value: undefined, done: true });
    t.is(it[Symbol.asyncIterator](), it);
    t.is(stats().timers, 0);
  });
});

rtTest('interval with a signal: abort ends the loop with AbortError, pending tick cancelled', async (t) => {
  await rt(async () => {
    const period = 100;
    const ac = new AbortController();
    const ticks: number[] = [];
    let err: AnyErr | undefined;
    let tick3At = 0;
    try {
      // 'delay' keeps each tick a full period after the previous one, even on a loaded machine.
      for await (const n of interval(period, { signal: ac.signal, missedTick: 'delay' })) {
        ticks.push(n);
        if (n === 3) {
          tick3At = performance.now();
          setImmediate(() => ac.abort(new Error('stop ticking')));
        }
      }
    } catch (e) {
      err = e as AnyErr;
    }
    const endedAfter = performance.now() - tick3At;
    t.deepEqual(ticks, [1, 2, 3]);
    t.is(err?.name, 'AbortError');
    t.is((err?.cause as Error | undefined)?.message, 'stop ticking');
    t.true(endedAfter < period - 1, `the loop ended ${endedAfter} ms after tick 3: the abort did not cut the wait short`);
    t.is(stats().timers, 0);
  });
});

rtTest('interval with an already-aborted signal throws AbortError on the first next()', async (t) => {
  await rt(async () => {
    const it = interval(10, { signal: AbortSignal.abort() });
    t.is((await rejectionOf(t, it.next())).name, 'AbortError');
    t.deepEqual(await it.next(), { value: undefined, done: true });
  });
});

rtTest('interval missedTick modes after a slow consumer: burst, delay, skip', async (t) => {
  await rt(async () => {
    const period = 20;
    // burst (default): the ticks missed during a 70 ms stall come at once, the schedule stays put.
    {
      const s = performance.now();
      const it = interval(period);
      await it.next();
      await sleep(70);
      const stallEnd = performance.now() - s;
      const missed = Math.floor(stallEnd / period) - 1; // ticks whose time passed during the stall
      t.true(missed >= 2);
      const times: number[] = [];
      for (let i = 0; i <= missed; i++) {
        await it.next();
        times.push(performance.now() - s);
      }
      await it.return!();
      for (let i = 0; i < missed; i++) t.true(times[i]! - stallEnd < 10, `burst tick ${i + 2} waited`);
      // Then back on the original grid.
      const next = times[missed]!;
      const due = (missed + 2) * period;
      t.true(next >= due - 1 && next <= due + SLACK_MS, `burst grid tick at ${next}, due at ${due}`);
    }
    // delay: one tick at once, then a full period from it.
    {
      const it = interval(period, { missedTick: 'delay' });
      await it.next();
      await sleep(70);
      const a = performance.now();
      await it.next();
      const b = performance.now();
      await it.next();
      const c = performance.now();
      await it.return!();
      t.true(b - a < 10, 'delay: the missed tick comes at once');
      // The period restarts from the late tick (next = tick time + period).
      t.true(c - b >= period - 1 && c - b <= period + SLACK_MS, `delay: next tick after ${c - b} ms`);
    }
    // skip: one tick at once, then the next multiple of the period on the original grid.
    {
      const s = performance.now();
      const it = interval(period, { missedTick: 'skip' });
      await it.next();
      await sleep(70);
      await it.next();
      const late = performance.now() - s;
      await it.next();
      const next = performance.now() - s;
      await it.return!();
      // The next multiple of the period after the late tick (the iterator read the clock a moment
      // before we did, so a late tick right on a multiple may round either way).
      const lo = (Math.floor((late - 0.5) / period) + 1) * period;
      const hi = (Math.floor(late / period) + 1) * period;
      t.true(next >= lo - 1 && next <= hi + SLACK_MS, `skip: tick at ${next}, expected ~${hi}`);
    }
    t.is(stats().timers, 0);
  });
});

rtTest('interval rejects bad input synchronously', async (t) => {
  await rt(() => {
    t.throws(() => interval(0), { instanceOf: RangeError });
    t.throws(() => interval(-5), { instanceOf: RangeError });
    t.throws(() => interval(Infinity), { instanceOf: RangeError });
    t.throws(() => interval('5' as unknown as number), { instanceOf: TypeError });
    t.throws(() => interval(5, { missedTick: 'later' as 'burst' }), { instanceOf: TypeError });
    t.throws(() => interval(5, { signal: 'x' as unknown as AbortSignal }), { instanceOf: TypeError });
  });
});

rtTest("timeout(ms, work) in tokio's order works like timeout(work, ms)", async (t) => {
  await rt(async () => {
    t.is(await timeout(100, Promise.resolve('v')), 'v');
    t.is(await timeout(100, async (signal: AbortSignal) => (signal.aborted ? 0 : 1)), 1);
    const err = await rejectionOf(t, timeout(5, sleep(1000)));
    t.is((err as AnyErr).code, 'ERR_RINGIO_TIMEOUT');
    // Two numbers: neither is work.
    await t.throwsAsync(timeout(5, 5 as never), { instanceOf: TypeError });
  });
});

test('a sleep nobody awaits, pending when main returns, does not end the process (child process)', async (t) => {
  t.timeout(30_000);
  const r = await runNode([fixture('timers-unawaited-sleep.mjs')], 15_000);
  t.is(r.stderr, '');
  t.is(r.code, 0);
  t.regex(r.stdout, /^kept: ERR_RINGIO_CLOSED$/m);
  t.regex(r.stdout, /^done$/m);
});

// Regression (found by the fuzz tier): the kernel timer stayed armed until the deadline of an aborted
// sleep (an hour here), counted in opsInFlight all the while.
rtTest('aborting the only sleep cancels the kernel timer: opsInFlight returns to 0', async (t) => {
  await rt(async () => {
    const ctl = new AbortController();
    const p = sleep(3_600_000, { signal: ctl.signal });
    t.is(stats().opsInFlight, 1);
    ctl.abort();
    t.is((await rejectionOf(t, p)).name, 'AbortError');
    t.is(stats().timers, 0);
    let turns = 0;
    while (stats().opsInFlight > 0 && turns < 1000) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    t.is(stats().opsInFlight, 0, `still ${stats().opsInFlight} after ${turns} loop turns`);
    // The next sleep arms a fresh timer and fires.
    await sleep(1);
    t.is(stats().timers, 0);
  });
});
