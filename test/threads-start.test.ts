/**
 * start(main, { threads }): N runtimes on N threads. Results in threadId order, ctx fields, 'auto',
 * `shared` with primitives, 4 reusePort listeners on one port, an error in one thread shutting the
 * others down (class, code and stack kept), threads that ignore the signal, pinning, and bad input.
 *
 * Worker threads cannot import an ava test file, so every group runs a main exported by
 * test/fixtures/threads-start.mjs through start({ module, export }). Groups start runtimes on this
 * thread too, so every test that calls start() is serial.
 */
import test from 'ava';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { channel, oneshot, start, watch, type StartOptions } from '@ringio/runtime';
import { DRIVER, fixture, rejectionOf, rtTest, runNode, type AnyErr } from './helpers.js';

const FIX = pathToFileURL(fixture('threads-start.mjs')).href;

/** start() on the driver under test with the fixture's `name` as main. */
function group(name: string, opts: StartOptions): Promise<unknown> {
  return start({ module: FIX, export: name }, { driver: DRIVER, ...opts });
}

function i32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

/** A TCP port that was free a moment ago (node:net, bound and closed again). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface CtxInfo {
  threadId: number;
  threads: number;
  keys: string[];
  isMainThread: boolean;
  nodeThreadId: number;
  signalIsSignal: boolean;
  abortedAtStart: boolean;
  driver: string;
  plain: unknown;
  chIsChannel: boolean;
  sameHandle: boolean;
  osIsOneshot: boolean;
  wIsWatch: boolean;
  watchValue: unknown;
  finishRank: number;
}

// ---------------------------------------------------------------------------------------------------
// results and ctx

rtTest('4 threads: results come back in threadId order although the threads finish last-first', async (t) => {
  const order = i32(1);
  const ch = channel();
  const plain = { n: 7, s: 'x', nested: { arr: [1, 2, { deep: true }] }, date: new Date(0), bytes: new Uint8Array([1, 2, 3]) };
  const shared = { order, plain, list: [ch, ch], map: new Map([['ch', ch]]), nested: { os: oneshot(), w: watch({ v: 'cfg' }) } };
  const res = (await group('ctxMain', { threads: 4, shared })) as CtxInfo[];
  t.is(res.length, 4);
  t.deepEqual(res.map((r) => r.threadId), [0, 1, 2, 3]);
  t.deepEqual(res.map((r) => r.finishRank), [3, 2, 1, 0], 'thread 3 finished first, thread 0 last');
  const nodeIds = new Set(res.map((r) => r.nodeThreadId));
  t.is(nodeIds.size, 4, 'four distinct threads');
  for (const r of res) {
    t.deepEqual(r.keys, ['shared', 'signal', 'threadId', 'threads']);
    t.is(r.threads, 4);
    t.is(r.isMainThread, r.threadId === 0, 'thread 0 is the calling thread, the rest are workers');
    t.true(r.signalIsSignal);
    t.false(r.abortedAtStart);
    if (DRIVER !== 'auto') t.is(r.driver, DRIVER, `thread ${r.threadId} runs the driver asked for`);
    t.deepEqual(r.plain, plain, `thread ${r.threadId} got the structured-cloneable part of shared`);
    t.true(r.chIsChannel, `thread ${r.threadId}: a channel in shared is a Channel`);
    t.true(r.sameHandle, `thread ${r.threadId}: one channel reached twice is one handle`);
    t.true(r.osIsOneshot);
    t.true(r.wIsWatch);
    t.deepEqual(r.watchValue, { v: 'cfg' });
  }
});

rtTest("threads: 'auto' runs os.availableParallelism() threads; threads: 1 and 2 run that many", async (t) => {
  const n = availableParallelism();
  const auto = (await group('simpleMain', { threads: 'auto', shared: { n: 21 } })) as { threadId: number; twice: number }[];
  t.deepEqual(auto, Array.from({ length: n }, (_, i) => ({ threadId: i, twice: 42 })));
  // threads given resolves with an array, threads: 1 included (its type never depends on the machine);
  // without threads, main's value itself.
  t.deepEqual(await group('simpleMain', { threads: 1, shared: { n: 1 } }), [{ threadId: 0, twice: 2 }]);
  t.deepEqual(await group('simpleMain', { shared: { n: 1 } }), { threadId: 0, twice: 2 });
  t.deepEqual(await group('simpleMain', { threads: 2 }), [
    { threadId: 0, twice: 0 },
    { threadId: 1, twice: 0 },
  ]);
});

rtTest('start can run groups back to back on the same thread', async (t) => {
  for (let i = 0; i < 3; i++) {
    const r = (await group('simpleMain', { threads: 3, shared: { n: i } })) as { twice: number }[];
    t.deepEqual(r.map((x) => x.twice), [2 * i, 2 * i, 2 * i]);
  }
});

// ---------------------------------------------------------------------------------------------------
// reusePort

rtTest('4 threads on one port with reusePort: 400 connections, all accepted, spread over >= 2 threads', async (t) => {
  const port = await freePort();
  const total = 400;
  const res = (await group('reusePortMain', {
    threads: 4,
    shared: { port, total, ready: channel(), done: watch(false) },
  })) as { accepted: number; servedBy?: number[] }[];
  const counts = res.map((r) => r.accepted);
  t.log(`accepted per thread: ${counts.join(', ')}`);
  t.is(counts.reduce((a, b) => a + b, 0), total, 'every connection accepted exactly once');
  t.true(counts.filter((c) => c > 0).length >= 2, `spread over at least 2 threads (${counts.join(', ')})`);
  // The byte each client read names the thread that served it: the same spread, seen from outside.
  t.deepEqual(res[0]!.servedBy, counts);
}, 60_000);

// ---------------------------------------------------------------------------------------------------
// errors

for (const [failAt, errorKind, when] of [
  [2, 'TypeError', 'sync'],
  [1, 'RangeError', 'async'],
  [0, 'Error', 'async'],
] as const) {
  rtTest(`an error in thread ${failAt} (${errorKind}, ${when}) rejects start after every other thread saw ctx.signal abort and stopped`, async (t) => {
    const flags = i32(48);
    const threads = 4;
    const err = await rejectionOf(t, group('failMain', { threads, shared: { failAt, flags, errorKind, when } }));
    t.is(err.constructor, { TypeError, RangeError, Error }[errorKind], 'class kept');
    t.is(err.name, errorKind);
    t.is(err.code, 'E_BOOM', 'code kept');
    t.is(err.message, `boom in thread ${failAt}`);
    t.deepEqual((err as AnyErr & { detail?: unknown }).detail, { threadId: failAt, list: [1, 2, 3] }, 'own data properties kept');
    t.regex(err.stack ?? '', /failingStep/, 'stack from the failing thread kept');
    t.regex(err.stack ?? '', /threads-start\.mjs/);
    for (let i = 0; i < threads; i++) {
      if (i === failAt) continue;
      // The reason is the failing error on thread 0, ERR_RINGIO_CLOSED on workers (either is fine here).
      t.true(Atomics.load(flags, 16 + i) >= 2, `thread ${i} saw ctx.signal aborted, with a reason`);
      t.is(Atomics.load(flags, 32 + i), 1, `thread ${i} had stopped before start rejected`);
    }
  });
}

rtTest('threads waiting on a channel with ctx.signal stop as soon as another thread fails (well before shutdownTimeout)', async (t) => {
  const t0 = performance.now();
  const err = await rejectionOf(t, group('signalWaitMain', { threads: 3, shutdownTimeout: 20_000, shared: { ch: channel() } }));
  const ms = performance.now() - t0;
  t.is(err.code, 'E_PRODUCER');
  t.true(ms < 10_000, `${ms.toFixed(0)} ms`);
});

rtTest("an unawaited task's error on a worker ends that worker and rejects start with it; the others stop", async (t) => {
  const err = await rejectionOf(t, group('unawaitedMain', { threads: 3 }));
  t.true(err instanceof RangeError, `${err.name}: ${err.message}`);
  t.is(err.code, 'E_TASK');
  t.is(err.message, 'unawaited task failed');
});

rtTest('a thread that throws a non-Error value rejects start with an Error that carries it', async (t) => {
  const err = await rejectionOf(t, group('throwStringMain', { threads: 2 }));
  t.true(err instanceof Error);
  t.regex(err.message, /a plain string/);
});

for (const how of ['spin', 'timer'] as const) {
  rtTest(`a thread that ignores ctx.signal (${how}) is terminated shutdownTimeout after the error; start rejects with the error`, async (t) => {
    const flags = i32(1);
    const t0 = performance.now();
    const err = await rejectionOf(t, group('stubbornMain', { threads: 3, shutdownTimeout: 300, shared: { stubborn: 2, how, flags } }));
    const ms = performance.now() - t0;
    t.is(err.code, 'E_ZERO', 'the first error wins, not the termination');
    t.true(ms >= 280, `start waited for shutdownTimeout (${ms.toFixed(0)} ms)`);
    t.true(ms < 10_000, `and no longer than needed (${ms.toFixed(0)} ms)`);
  });
}

rtTest('a worker that keeps its loop alive after main returned is terminated shutdownTimeout later; start resolves', async (t) => {
  const flags = i32(1);
  const t0 = performance.now();
  const res = await group('stubbornMain', { threads: 2, shutdownTimeout: 300, shared: { stubborn: 1, how: 'linger', flags } });
  const ms = performance.now() - t0;
  t.deepEqual(res, ['ok', 'stubborn returned']);
  t.true(ms < 10_000, `${ms.toFixed(0)} ms`);
});

rtTest('a worker thread that calls process.exit rejects start with ERR_RINGIO_THREAD_EXIT; the others stop', async (t) => {
  const err = await rejectionOf(t, group('exitMain', { threads: 3, shared: { exitAt: 1 } }));
  t.is(err.code, 'ERR_RINGIO_THREAD_EXIT');
  t.regex(err.message, /thread 1/);
});

rtTest("a worker's result that cannot be cloned rejects start with ERR_RINGIO_NOT_CLONEABLE", async (t) => {
  const err = await rejectionOf(t, group('uncloneableResultMain', { threads: 2 }));
  t.is(err.code, 'ERR_RINGIO_NOT_CLONEABLE');
});

rtTest('main missing from the module: ERR_RINGIO_THREAD_ENTRY (missing export, or not a function)', async (t) => {
  for (const name of ['nope', 'notAFunction']) {
    const err = await rejectionOf(t, group(name, { threads: 2 }));
    t.is(err.code, 'ERR_RINGIO_THREAD_ENTRY', name);
    t.regex(err.message, new RegExp(name));
  }
  // A module that does not exist: the import error itself.
  const err = await rejectionOf(t, start({ module: FIX.replace('threads-start', 'threads-nonexistent'), export: 'main' }, { threads: 2 }));
  t.is(err.code, 'ERR_MODULE_NOT_FOUND');
});

test('a start() main that a worker cannot find: ERR_RINGIO_THREAD_ENTRY that says what to do', async (t) => {
  t.timeout(60_000);
  const r = await runNode([fixture('threads-entry-missing.mjs')], 45_000);
  t.is(r.signal, null, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: string; message: string };
  t.is(out.code, 'ERR_RINGIO_THREAD_ENTRY');
  t.regex(out.message, /export main|\{ module, export \}/);
});

test('a module that calls start({ module: itself }) at its top level does not make threads without end', async (t) => {
  t.timeout(60_000);
  const r = await runNode([fixture('threads-self-start.mjs')], 30_000);
  t.is(r.signal, null, `killed after ${r.ms.toFixed(0)} ms: ${r.stderr.slice(-2000)}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  t.regex(last, /^self-start: /, r.stderr.slice(-2000));
});

// ---------------------------------------------------------------------------------------------------
// pinning (in a child process: pinning the calling thread must not leak into the ava process)

interface PinOut {
  before: string;
  results: { threadId: number; cpus: string }[];
  after: string;
  blocking: string;
}

async function pinRun(pin: unknown, threads: number): Promise<PinOut> {
  const r = await runNode([fixture('threads-pin.mjs'), JSON.stringify(pin), String(threads)], 30_000);
  if (r.code !== 0) throw new Error(`threads-pin.mjs exited ${r.code} ${r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as PinOut;
}

/** "0-2,5" -> [0, 1, 2, 5] */
function cpuList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

test('pin: true pins thread i to the i-th allowed CPU (mod the count), read in each thread', async (t) => {
  const threads = 3;
  const out = await pinRun(true, threads);
  const allowed = cpuList(out.before);
  t.deepEqual(
    out.results.map((r) => r.cpus),
    Array.from({ length: threads }, (_, i) => String(allowed[i % allowed.length])),
  );
  t.is(out.after, out.before, 'the calling thread is unpinned again once start() settled');
  t.is(out.blocking, out.before, "spawnBlocking's workers run on the CPUs the thread had before the pin");
});

test('pin: [0] pins every thread to CPU 0; pin: [last] to the last allowed CPU', async (t) => {
  const out = await pinRun([0], 3);
  t.deepEqual(out.results.map((r) => r.cpus), ['0', '0', '0']);
  t.is(out.after, out.before, 'the calling thread is unpinned again once start() settled');
  t.is(out.blocking, out.before);
  const last = cpuList(out.before).pop()!;
  const out2 = await pinRun([last], 2);
  t.deepEqual(out2.results.map((r) => r.cpus), [String(last), String(last)]);
});

test('without pin no thread is pinned', async (t) => {
  const out = await pinRun(false, 2);
  t.deepEqual(out.results.map((r) => r.cpus), [out.before, out.before]);
});

// ---------------------------------------------------------------------------------------------------
// bad input

rtTest('threads: 0, -1, 1.5, 1025, NaN are RangeErrors; "x", "2", null are TypeErrors; start rejects, never throws', async (t) => {
  for (const threads of [0, -1, 1.5, 1025, NaN, Infinity]) {
    let p: Promise<unknown> | undefined;
    t.notThrows(() => (p = group('simpleMain', { threads: threads as number })));
    const err = await rejectionOf(t, p!);
    t.true(err instanceof RangeError, `threads: ${threads} -> ${err.name}: ${err.message}`);
  }
  for (const threads of ['x', '2', null, {}]) {
    const err = await rejectionOf(t, group('simpleMain', { threads: threads as unknown as number }));
    t.true(err instanceof TypeError, `threads: ${JSON.stringify(threads)} -> ${err.name}: ${err.message}`);
  }
});

rtTest('pin: [], [-1], [1.5], ["0"], [1024] are RangeErrors; "yes", 1, {} are TypeErrors', async (t) => {
  for (const pin of [[], [-1], [1.5], ['0'], [1024], [0, NaN]]) {
    const err = await rejectionOf(t, group('simpleMain', { threads: 2, pin: pin as number[] }));
    t.true(err instanceof RangeError, `pin: ${JSON.stringify(pin)} -> ${err.name}: ${err.message}`);
  }
  for (const pin of ['yes', 1, {}]) {
    const err = await rejectionOf(t, group('simpleMain', { threads: 2, pin: pin as unknown as boolean }));
    t.true(err instanceof TypeError, `pin: ${JSON.stringify(pin)} -> ${err.name}: ${err.message}`);
  }
});

rtTest('pin: [a CPU this machine lacks] rejects start with the EINVAL of sched_setaffinity', async (t) => {
  const err = await rejectionOf(t, group('simpleMain', { threads: 2, pin: [1000] }));
  t.is(err.code, 'EINVAL');
  t.is(err.syscall, 'sched_setaffinity');
});

rtTest('bad shutdownTimeout / blockingThreads are RangeErrors; main of the wrong type is a TypeError', async (t) => {
  for (const shutdownTimeout of [-1, NaN, Infinity, '5' as unknown as number]) {
    const err = await rejectionOf(t, group('simpleMain', { threads: 2, shutdownTimeout }));
    t.true(err instanceof RangeError, `shutdownTimeout ${String(shutdownTimeout)}`);
  }
  for (const blockingThreads of [0, -1, 1.5, 2000]) {
    const err = await rejectionOf(t, group('simpleMain', { threads: 2, blockingThreads }));
    t.true(err instanceof RangeError, `blockingThreads ${blockingThreads}`);
  }
  for (const main of [42, null, 'main', { export: 'main' }]) {
    const err = await rejectionOf(t, start(main as never, { threads: 2 }));
    t.true(err instanceof TypeError, `main ${JSON.stringify(main)}: ${err.message}`);
  }
  // A relative module path cannot be resolved from a worker: refused up front.
  const err = await rejectionOf(t, start({ module: './fixtures/threads-start.mjs', export: 'simpleMain' }, { threads: 2 }));
  t.true(err instanceof TypeError, err.message);
});

rtTest('primitives in shared reach every thread inside Sets and as Map keys; inside a class instance they are refused', async (t) => {
  const ch = channel();
  const res = await group('containersMain', {
    threads: 2,
    shared: { set: new Set([ch]), map: new Map([[ch, ch]]), arr: [ch], nested: { s: new Set([oneshot()]) } },
  });
  t.deepEqual(res, [
    { inSet: true, key: true, same: true, oneshot: true },
    { inSet: true, key: true, same: true, oneshot: true },
  ]);
  class Box {
    constructor(readonly inner: unknown) {}
  }
  // structuredClone would make the channel a plain object without methods on the workers: an error instead.
  const err = await rejectionOf(t, group('containersMain', { threads: 2, shared: { box: new Box({ list: [ch] }) } }));
  t.is(err.code, 'ERR_RINGIO_NOT_CLONEABLE');
  t.regex(err.message, /Box/);
});

rtTest('shared that cannot be cloned rejects start', async (t) => {
  const err = await rejectionOf(t, group('simpleMain', { threads: 2, shared: { f: () => 1 } }));
  t.truthy(err);
  t.regex(`${err.name} ${err.message}`, /clone/i);
});

// ---- no silent hangs: a worker fails while thread 0's main ignores ctx.signal ---------------------------

rtTest('a worker fails and thread 0 ignores the signal: start() rejects with the worker error after shutdownTimeout', async (t) => {
  const r = await runNode([fixture('threads-ignore-signal.mjs'), 'await'], 30_000);
  t.is(r.signal, null, r.stderr);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout.trim()), { name: 'RangeError', message: 'thread 1 broke', code: 'E_FIXTURE', workerStack: true });
});

rtTest('nobody awaits start(): the worker error is printed with its stack', async (t) => {
  const r = await runNode([fixture('threads-ignore-signal.mjs'), 'unawaited'], 30_000);
  t.is(r.signal, null, 'the process ended on its own (unhandled rejection), not by the test timeout');
  t.not(r.code, 0);
  t.regex(r.stderr, /RangeError: thread 1 broke/);
  t.regex(r.stderr, /threads-ignore-signal\.mjs:\d+/, 'with the stack');
});

rtTest("thread 0's main fails after start() rejected: the error is printed with its stack", async (t) => {
  const r = await runNode([fixture('threads-ignore-signal.mjs'), 'late'], 30_000);
  t.is(r.signal, null, r.stderr);
  t.regex(r.stdout, /"message":"thread 1 broke"/);
  t.regex(r.stderr, /ringio: thread 0 failed after start\(\) had already rejected with the first error:\nError: thread 0 broke late\n\s+at /);
});

rtTest('a second thread that fails after the first is printed, not dropped', async (t) => {
  const r = await runNode([fixture('threads-ignore-signal.mjs'), 'second'], 30_000);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /"message":"thread 1 broke"/, 'start() rejects with the first error');
  t.regex(r.stderr, /ringio: thread 2 failed after another thread; start\(\) rejects with the first error only:\nTypeError: thread 2 broke too\n\s+at /);
});
