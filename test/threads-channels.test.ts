/**
 * channel / oneshot / watch across threads: 100k messages with several senders and receivers (none
 * lost, none duplicated, FIFO per sender), small capacities, 1 MiB+ messages, transfer, close, abort,
 * the sleep/wake race hammered for 10 s, the cross-thread await of Monoio #241 (including a producer
 * that is a plain Worker), shutdown with waits pending, the wake counters, and bad input.
 *
 * Groups run mains exported by test/fixtures/threads-channels.mjs (a worker cannot import an ava test
 * file). Every test that starts a runtime on this thread is serial.
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import {
  channel,
  Channel,
  fromShareable,
  oneshot,
  shareable,
  sleep,
  start,
  stats,
  watch,
  type StartOptions,
} from '@ringio/runtime';
import { DRIVER, fixture, guard, rejectionOf, rtTest, run, runNode, type AnyErr } from './helpers.js';

const FIX = new URL('../../test/fixtures/threads-channels.mjs', import.meta.url).href;

/** start() on the driver under test with the fixture's `name` as main; a hang fails after `ms`. */
function group(name: string, opts: StartOptions, ms = 60_000): Promise<unknown> {
  return guard(start({ module: FIX, export: name }, { driver: DRIVER, ...opts }), ms, `start(${name})`);
}

function i32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

const SHIFT = 2 ** 24;

// ---------------------------------------------------------------------------------------------------
// 100k messages

interface MpmcOut {
  senders: { sawFull: number; maxLen: number }[];
  receivers: { got: Float64Array; fifoErrors: number; maxLen: number; again: string }[];
}

for (const { capacity, senders, receivers, perSender } of [
  // 4 sender tasks on 4 threads, 5 receiver tasks on 4 threads (two on thread 1).
  { capacity: 1024, senders: [1, 1, 1, 1], receivers: [1, 2, 1, 1], perSender: 25_000 },
  // Capacity 4: senders wait for room all the time. Two senders on thread 0 and on thread 2.
  { capacity: 4, senders: [2, 1, 2, 0], receivers: [1, 1, 0, 2], perSender: 20_000 },
]) {
  const nSenders = senders.reduce((a, b) => a + b, 0);
  const total = nSenders * perSender;
  rtTest(`channel(${capacity}) across 4 threads: ${total} messages from ${nSenders} senders to ${receivers.reduce((a, b) => a + b, 0)} receivers, none lost, none duplicated, FIFO per sender`, async (t) => {
    const ch = channel<number>(capacity);
    const live = i32(1);
    live[0] = nSenders;
    const t0 = performance.now();
    const res = (await group('mpmcMain', { threads: 4, shared: { ch, live, perSender, senders, receivers } })) as MpmcOut[];
    t.log(`${total} messages in ${(performance.now() - t0).toFixed(0)} ms`);
    const seen = new Map<number, number>();
    let received = 0;
    for (const [tid, r] of res.entries()) {
      for (const rcv of r.receivers) {
        t.is(rcv.fifoErrors, 0, `a receiver on thread ${tid} saw a sender's values out of order`);
        t.is(rcv.again, 'undefined', 'a closed, drained channel keeps resolving undefined');
        t.true(rcv.maxLen <= capacity, `length ${rcv.maxLen} > capacity ${capacity}`);
        for (const v of rcv.got) {
          seen.set(v, (seen.get(v) ?? 0) + 1);
          received++;
        }
      }
      for (const s of r.senders) t.true(s.maxLen <= capacity, `length ${s.maxLen} > capacity ${capacity}`);
    }
    t.is(received, total, 'as many received as sent');
    let missing = 0;
    let dup = 0;
    for (let tid = 0; tid < 4; tid++) {
      for (let j = 0; j < senders[tid]!; j++) {
        const id = tid * 8 + j;
        for (let i = 0; i < perSender; i++) {
          const c = seen.get(id * SHIFT + i) ?? 0;
          if (c === 0) missing++;
          if (c > 1) dup++;
        }
      }
    }
    t.is(missing, 0, 'none lost');
    t.is(dup, 0, 'none duplicated');
    t.is(seen.size, total, 'nothing received that was not sent');
    if (capacity === 4) {
      const full = res.flatMap((r) => r.senders).reduce((a, s) => a + s.sawFull, 0);
      t.true(full > 0, 'senders found the channel full (and waited)');
    }
    t.true(ch.closed);
    t.is(ch.length, 0);
  }, 120_000);
}

// ---------------------------------------------------------------------------------------------------
// large messages, transfer

for (const mode of ['queued', 'streaming'] as const) {
  rtTest(`1 MiB+ messages across threads arrive byte-exact (${mode === 'queued' ? 'a whole round queued: the ring grows to hold it' : 'received while sent'})`, async (t) => {
    const res = (await group('bigMain', { threads: 2, shared: { ch: channel(8), sent: oneshot(), mode } })) as {
      k: number;
      hash: string;
      len: number;
      transfer?: boolean;
      afterSend?: number;
      isU8?: boolean;
    }[][];
    const [sent, got] = res as [typeof res[0], typeof res[0]];
    t.is(got.length, sent.length);
    for (let i = 0; i < sent.length; i++) {
      t.is(got[i]!.k, sent[i]!.k, `message ${i} in order`);
      t.is(got[i]!.len, sent[i]!.len, `message ${i} length`);
      t.is(got[i]!.hash, sent[i]!.hash, `message ${i} (${sent[i]!.len} bytes) byte-exact`);
      t.true(got[i]!.isU8);
      if (sent[i]!.transfer) t.is(sent[i]!.afterSend, 0, `message ${i}: the transferred buffer is detached on the sender`);
      else t.is(sent[i]!.afterSend, sent[i]!.len, `message ${i}: a buffer not transferred stays`);
    }
  }, 60_000);
}

rtTest('send/oneshot with { transfer } detach the sender\'s ArrayBuffers; the receiver gets the bytes', async (t) => {
  const [sender, receiver] = (await group('transferMain', { threads: 2, shared: { ch: channel(), os: oneshot() } })) as [
    Record<string, unknown>,
    Record<string, unknown>,
  ];
  t.deepEqual(sender, { a: 0, ab: 0, kept: 2, b: 0, badTransfer: 'TypeError' });
  t.deepEqual(receiver, {
    a: [1, 2, 3, 4],
    ab: new Array(16).fill(7),
    abIsAB: true,
    kept: [9, 9],
    b: [1.5, 2.5],
    bIsF64: true,
  });
});

// ---------------------------------------------------------------------------------------------------
// close

rtTest('close across threads: a waiting sender resumes when room frees; after close, recv drains then resolves undefined, send rejects ERR_RINGIO_CLOSED', async (t) => {
  const [log0, log1] = (await group('closeMain', {
    threads: 2,
    shared: { ch: channel(2), ch2: channel(), to0: channel(), to1: channel() },
  })) as [string[], string[]];
  t.deepEqual(log0, [
    'full:2',
    'c sent',
    'pending send after close: ERR_RINGIO_CLOSED',
    'pending recv after close: value:undefined',
  ]);
  t.deepEqual(log1, [
    'a',
    'b',
    'c',
    'closed:true',
    'recv:d',
    'recv:e',
    'recv:undefined',
    'recv:undefined',
    'send:ERR_RINGIO_CLOSED',
    'trySend:ERR_RINGIO_CLOSED',
    'tryRecv:undefined',
    'length:0',
  ]);
});

rtTest('close on one thread: recv drains then undefined, send and trySend ERR_RINGIO_CLOSED, async iteration ends', async (t) => {
  await run(async () => {
    const ch = channel<number>(8);
    for (let i = 0; i < 5; i++) await ch.send(i);
    ch.close();
    ch.close(); // twice is fine
    t.is((await rejectionOf(t, ch.send(9))).code, 'ERR_RINGIO_CLOSED');
    t.is(t.throws<AnyErr>(() => ch.trySend(9))?.code, 'ERR_RINGIO_CLOSED');
    const got: number[] = [];
    for await (const v of ch) got.push(v);
    t.deepEqual(got, [0, 1, 2, 3, 4]);
    t.is(await ch.recv(), undefined);
    // A receiver that waits when the channel closes gets undefined.
    const ch2 = channel<number>();
    const p = ch2.recv();
    ch2.close();
    t.is(await guard(p, 5000, 'recv pending at close'), undefined);
    // A sender that waits when the channel closes gets ERR_RINGIO_CLOSED; the queued values stay.
    const ch3 = channel<number>(1);
    await ch3.send(1);
    const ps = ch3.send(2);
    ch3.close();
    t.is((await rejectionOf(t, guard(ps, 5000, 'send pending at close'))).code, 'ERR_RINGIO_CLOSED');
    t.is(await ch3.recv(), 1);
    t.is(await ch3.recv(), undefined);
  });
});

// ---------------------------------------------------------------------------------------------------
// oneshot

rtTest('oneshot across 4 threads: 1000 shots, each received once; second send and second recv are ERR_RINGIO_ONESHOT_USED; racing receivers: one wins; close', async (t) => {
  const shots = Array.from({ length: 1000 }, () => oneshot());
  const res = (await group('oneshotMain', {
    threads: 4,
    shared: { shots, twice: oneshot(), race: oneshot(), closed: oneshot() },
  })) as Record<string, unknown>[];
  t.deepEqual(res[0], { count: 1000, bad: 0, after: 'ERR_RINGIO_ONESHOT_USED' });
  t.deepEqual(res[1], { secondSend: 'ERR_RINGIO_ONESHOT_USED', sendAfterClose: 'ERR_RINGIO_CLOSED' });
  const race = [res[2]!.race, res[3]!.race].sort();
  t.deepEqual(race, ['ERR_RINGIO_ONESHOT_USED', 'value:prize'], 'exactly one of two waiting receivers gets the value');
  t.is(res[2]!.closed, 'ERR_RINGIO_CLOSED');
  t.is(res[3]!.closed, 'ERR_RINGIO_CLOSED');
  t.is(res[2]!.twice, 'value:first');
});

rtTest('oneshot on one thread: send before or after recv, used twice, closed with and without a value', async (t) => {
  await run(async () => {
    const a = oneshot<string>();
    a.send('early');
    t.is(await a.recv(), 'early');
    t.is((await rejectionOf(t, a.recv())).code, 'ERR_RINGIO_ONESHOT_USED');
    t.is(t.throws<AnyErr>(() => a.send('again'))?.code, 'ERR_RINGIO_ONESHOT_USED');
    const b = oneshot<number>();
    const p = b.recv();
    await sleep(5);
    b.send(7);
    t.is(await guard(p, 5000, 'oneshot recv'), 7);
    const c = oneshot<number>();
    const pc = c.recv();
    c.close();
    t.is((await rejectionOf(t, guard(pc, 5000, 'recv pending at close'))).code, 'ERR_RINGIO_CLOSED');
    t.is(t.throws<AnyErr>(() => c.send(1))?.code, 'ERR_RINGIO_CLOSED');
    // A value sent before close is still delivered.
    const d = oneshot<number>();
    d.send(3);
    d.close();
    t.is(await d.recv(), 3);
  });
});

// ---------------------------------------------------------------------------------------------------
// watch

rtTest('watch across 4 threads: 100k set()s; every thread sees strictly newer values and ends on the newest', async (t) => {
  const total = 100_000;
  const res = (await group('watchMain', { threads: 4, shared: { w: watch<unknown>(0), total } })) as Record<string, number | string>[];
  t.deepEqual(res[0], { version: total, last: total });
  for (let i = 1; i < 4; i++) {
    const r = res[i]!;
    t.is(r.last, total, `thread ${i} saw the newest value`);
    t.is(r.violations, 0, `thread ${i}: changed() never resolved with a value it had seen`);
    t.is(r.getBehind, 0, `thread ${i}: get() after changed() is at least as new`);
    t.is(r.next, 'pending', `thread ${i}: with everything seen, changed() waits`);
    t.is(r.version, total);
    t.true((r.count as number) >= 1);
    t.log(`thread ${i} saw ${r.count} changes`);
  }
}, 120_000);

rtTest('watch on one thread: changed() semantics (seen versions, coalescing, several waiters, close)', async (t) => {
  await run(async () => {
    const w = watch({ v: 0 });
    t.is(w.version, 0);
    t.deepEqual(w.get(), { v: 0 });
    t.is(w.get(), w.get(), 'decoded once per version');
    // Nothing new: changed() waits for the next set.
    const p1 = w.changed();
    const p2 = w.changed();
    let settled = false;
    void p1.then(() => (settled = true));
    await sleep(10);
    t.false(settled, 'changed() waits while there is no unseen version');
    w.set({ v: 1 });
    t.deepEqual(await guard(p1, 5000, 'changed 1'), { v: 1 });
    t.deepEqual(await guard(p2, 5000, 'changed 2'), { v: 1 }, 'every waiter gets the new value');
    // Two sets before changed(): it resolves at once, with the newest; the next one waits.
    w.set({ v: 2 });
    w.set({ v: 3 });
    t.is(w.version, 3);
    t.deepEqual(await w.changed(), { v: 3 });
    const p3 = w.changed();
    let s3 = false;
    void p3.then(() => (s3 = true));
    await sleep(10);
    t.false(s3, 'coalesced: no second resolve for v: 2');
    w.set({ v: 4 });
    t.deepEqual(await guard(p3, 5000, 'changed 3'), { v: 4 });
    // get() does not mark the version seen: changed() still hands it over.
    w.set({ v: 5 });
    t.deepEqual(w.get(), { v: 5 });
    t.deepEqual(await guard(w.changed(), 5000, 'changed after get'), { v: 5 }, 'get() did not swallow v: 5');
    const p4 = w.changed();
    let s4 = false;
    void p4.then(
      () => (s4 = true),
      () => {},
    );
    await sleep(10);
    t.false(s4, 'changed() marked v: 5 seen');
    // close: waiters and later changed() reject, set throws, get still works.
    w.close();
    t.is((await rejectionOf(t, guard(p4, 5000, 'changed pending at close'))).code, 'ERR_RINGIO_CLOSED');
    t.is((await rejectionOf(t, w.changed())).code, 'ERR_RINGIO_CLOSED');
    t.is(t.throws<AnyErr>(() => w.set({ v: 6 }))?.code, 'ERR_RINGIO_CLOSED');
    t.deepEqual(w.get(), { v: 5 });
  });
});

// A worker's handle starts out having seen the version current at the handover, not at its revival:
// a set() made while a worker was still starting is news to it. Before, a worker that started after
// the last set() waited in changed() forever (the CI hang of the 100k watch test above, whose workers
// start a second or more late when the machine is loaded).
rtTest('watch: a set() between the handover (start, shareable) and a worker receiving its handle is unseen there', async (t) => {
  const res = (await group('watchLateMain', { threads: 4, shared: { w: watch<string>('initial') } })) as {
    version?: number;
    versionAtStart?: number;
    got?: string;
  }[];
  t.deepEqual(res[0], { version: 1 });
  let late = 0;
  for (let i = 1; i < 4; i++) {
    t.is(res[i]!.got, 'early', `thread ${i}: changed() handed over the set made while it started`);
    if (res[i]!.versionAtStart === 1) late++;
  }
  t.log(`${late} of 3 workers got their handle after the set`);

  // The same through shareable() / fromShareable() with a plain Worker, where the order is certain:
  // the set comes after the descriptor was made and before the worker exists.
  const w = watch('before');
  const wire = shareable({ w });
  w.set('after');
  const worker = new Worker(new URL('../../test/fixtures/threads-watch-late.mjs', import.meta.url), {
    workerData: { shared: wire },
  });
  try {
    const msg = await guard(
      new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
      20_000,
      'the plain worker',
    );
    t.deepEqual(msg, { version: 1, got: 'after' });
  } finally {
    await worker.terminate();
  }
});

// ---------------------------------------------------------------------------------------------------
// abort

rtTest('abort signals on recv / changed / oneshot recv / send across threads: AbortError, and nothing is lost or sent', async (t) => {
  const [p0, p1] = (await group('abortMain', {
    threads: 2,
    shared: { ch: channel(1), to0: channel(), to1: channel(), w: watch(0), os: oneshot() },
  })) as [Record<string, unknown>, Record<string, unknown>];
  t.deepEqual(p1, {
    recvAborted: 'AbortError/ABORT_ERR',
    recvAbortedLater: 'AbortError/ABORT_ERR',
    changedAborted: 'AbortError/ABORT_ERR',
    oneshotAborted: 'AbortError/ABORT_ERR',
    preAborted: 'AbortError/ABORT_ERR',
    recv: 'x',
    changed: 1,
    oneshot: 'o',
    sendAborted: 'AbortError/ABORT_ERR',
  });
  t.deepEqual(p0, { first: 'a', second: 'none' }, 'the aborted send sent nothing');
});

// ---------------------------------------------------------------------------------------------------
// the sleep/wake race

interface HammerOut {
  rounds: number;
  bad: number;
  stalled?: number | null;
  maxRoundMs?: number;
  stats: { threadWakes: number; threadWakeSyscalls: number };
}

rtTest('the sleep/wake race, hammered for 10 s: ping-pong with random pauses on both sides never hangs, loses or reorders', async (t) => {
  const durationMs = 10_000;
  const progress = i32(1);
  const [r0, r1] = (await group('hammerMain', {
    threads: 2,
    shared: { a: channel(), b: channel(), durationMs, progress, stallMs: 5000 },
  })) as [HammerOut, HammerOut];
  t.log(
    `${r0.rounds} round trips, slowest ${r0.maxRoundMs!.toFixed(1)} ms; wakes/syscalls thread 0: ` +
      `${r0.stats.threadWakes}/${r0.stats.threadWakeSyscalls}, thread 1: ${r1.stats.threadWakes}/${r1.stats.threadWakeSyscalls}`,
  );
  t.is(r0.stalled, null, `a round trip stalled for 5 s at round ${r0.stalled}: a lost wake`);
  t.true(r0.rounds > 0);
  t.is(r0.bad, 0, 'every echo matched');
  t.is(r1.bad, 0, 'the echo side saw 0, 1, 2, ... in order');
  t.is(r1.rounds, r0.rounds, 'none lost');
  t.true(r0.stats.threadWakeSyscalls > 0 && r1.stats.threadWakeSyscalls > 0, 'the peers did go to sleep (syscall wakes happened)');
}, 90_000);

rtTest('a primitive revived on the thread that made it is its original handle, and a wait on either wakes', async (t) => {
  const ch = channel<number>();
  const os = oneshot<string>();
  const w = watch(0);
  const back = fromShareable(shareable({ ch, os, w, again: [ch] }));
  t.is(back.ch, ch, 'the channel comes back as the handle channel() returned');
  t.is(back.os, os);
  t.is(back.w, w);
  t.is(back.again[0], ch);
  // Thread 0 of a group gets what it put in `shared` as the same handles: a wait made through the
  // revived one and a send through the original meet on one doorbell entry (two handles of one
  // primitive on one thread could miss the wake: this is why there is one).
  const res = await guard(
    start(
      async (ctx) => {
        const s = ctx.shared as { ch: typeof ch; w: typeof w };
        const got = s.ch.recv();
        await sleep(5);
        await ch.send(7);
        return { same: s.ch === ch && s.w === w, got: await got };
      },
      { driver: DRIVER, shared: { ch, w } },
    ),
    20_000,
    'the group',
  );
  t.deepEqual(res, { same: true, got: 7 });
});

test('the sleep/wake race with spinning off (RINGIO_SPIN_US=0), 4 s in a child process', async (t) => {
  t.timeout(90_000);
  const r = await runNode([fixture('threads-hammer-run.mjs'), '4000'], 60_000);
  t.is(r.signal, null, `killed: ${r.stderr}`);
  t.is(r.code, 0, r.stderr);
  const [r0, r1] = JSON.parse(r.stdout.trim().split('\n').pop()!) as [HammerOut, HammerOut];
  t.log(`${r0.rounds} round trips, slowest ${r0.maxRoundMs!.toFixed(1)} ms, syscall wakes ${r0.stats.threadWakeSyscalls}+${r1.stats.threadWakeSyscalls}`);
  t.is(r0.stalled, null);
  t.true(r0.rounds > 0);
  t.is(r0.bad + r1.bad, 0);
  t.is(r1.rounds, r0.rounds);
});

// Regression (addon/threads.cc): ThreadEnv::Unregister() used to leave `idle_on` set. A runtime that
// ended between libuv's prepare and check phases (from a poll-phase callback) while a token sat in its
// doorbell's inbox left it set; the next runtime on that thread then never started its idle handle, so
// libuv blocked with the token undelivered and the state RUNNING: a lost wake.
test('a runtime that ended between the prepare and check phases does not make the next runtime on the thread lose a wake', async (t) => {
  t.timeout(120_000);
  const r = await runNode([fixture('threads-stale-idle.mjs'), '30'], 100_000);
  t.is(r.signal, null, `hung (${r.stderr.trim()})`);
  t.regex(r.stdout, /no hang/);
});

// Every primitive is a growable SharedArrayBuffer, a memory mapping of its own; the kernel caps a
// process's mappings and V8 dies (fatal "heap out of memory") when a reservation fails. cell.ts checks
// the mapping count before it gets there and refuses with ERR_RINGIO_TOO_MANY_PRIMITIVES.
test('holding 100k oneshots at once gives an error (or works), never a fatal crash', async (t) => {
  t.timeout(60_000);
  const r = await runNode([fixture('threads-many-primitives.mjs'), '100000', 'oneshot'], 45_000);
  t.is(r.signal, null, `the process died: ${r.stderr.split('\n').find((l) => /FATAL|Segmentation/.test(l)) ?? r.stderr.slice(0, 300)}`);
  t.is(r.code, 0);
  t.regex(r.stdout, /^(ok 100000|error )/);
});

// ---------------------------------------------------------------------------------------------------
// Monoio #241

rtTest('#241: a thread awaiting a value another thread produces, with nothing else in flight, always completes (both directions, produced before and after the wait)', async (t) => {
  const rounds = 200;
  const shots = Array.from({ length: rounds }, () => oneshot());
  const res = (await guard(
    group('m241Main', { threads: 2, shared: { shots, ch: channel(), flag: i32(rounds + 1), rounds } }),
    60_000,
    'the #241 rounds',
  )) as number[][];
  const want = (waiter: number): number[] =>
    Array.from({ length: rounds }, (_, r) => r)
      .filter((r) => r % 2 === waiter)
      .flatMap((r) => [r, -r]);
  t.deepEqual(res[0], want(0));
  t.deepEqual(res[1], want(1));
}, 90_000);

rtTest('#241 with a producer that is not a runtime thread: a plain Worker trySend()s, sends a oneshot and sets a watch', async (t) => {
  const n = 5000;
  await run(async () => {
    const ch = channel<number>(16);
    const os = oneshot<string>();
    const w = watch('initial');
    const worker = new Worker(new URL('../../test/fixtures/threads-plain-producer.mjs', import.meta.url), {
      workerData: { shared: shareable({ ch, os, w }), n, delayMs: 30 },
    });
    // Listen at once: a Worker's message emitted before anyone listens is gone.
    const done = new Promise<{ full: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    try {
      // This thread has nothing in flight but these waits: it sleeps in its loop until woken.
      let bad = 0;
      for (let i = 0; i < n; i++) if ((await ch.recv()) !== i) bad++;
      t.is(bad, 0, 'every value, in order');
      t.is(await os.recv(), 'from a plain worker');
      t.is(await w.changed(), 'set by a plain worker');
      t.log(`the worker found the channel full ${(await done).full} times`);
    } finally {
      await worker.terminate();
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------------
// shutdown with waits pending

rtTest('runtime shutdown with cross-thread waits pending: recv / changed / oneshot recv / send reject ERR_RINGIO_CLOSED and start settles', async (t) => {
  const ch = channel();
  const shared = { ch, w: watch(0), os: oneshot(), full: channel(1), registered: i32(1) };
  const res = (await guard(group('shutdownPendingMain', { threads: 3, shared }), 30_000, 'start with waits pending')) as Record<
    string,
    string
  >[];
  for (const [i, log] of res.entries()) {
    t.deepEqual(log, { recv: 'ERR_RINGIO_CLOSED', changed: 'ERR_RINGIO_CLOSED', oneshot: 'ERR_RINGIO_CLOSED', send: 'ERR_RINGIO_CLOSED' }, `thread ${i}`);
  }
  // The primitives themselves were not closed: only the runtimes' waits ended.
  t.false(ch.closed);
  t.true(ch.trySend('after'));
  t.deepEqual(ch.tryRecv(), { value: 'after' });
});

rtTest('shutdown on one thread with a channel wait pending: main returns, the wait rejects ERR_RINGIO_CLOSED, start resolves', async (t) => {
  let outcome = 'pending';
  const r = await guard(
    start(
      () => {
        channel().recv().then(
          () => (outcome = 'resolved'),
          (e: { code?: string }) => (outcome = e.code ?? 'other'),
        );
        return 'main done';
      },
      { driver: DRIVER },
    ),
    10_000,
    'start',
  );
  t.is(r, 'main done');
  await Promise.resolve();
  t.is(outcome, 'ERR_RINGIO_CLOSED');
});

// ---------------------------------------------------------------------------------------------------
// stats

rtTest('stats(): waking a sleeping thread costs a syscall per wake; waking a busy thread costs none', async (t) => {
  const n = 20;
  const chans = Array.from({ length: 50 }, () => channel());
  const res = (await group('statsMain', {
    threads: 2,
    shared: { data: channel(), ack: channel(), chans, go: i32(2), n },
  })) as [null, { asleep: { wakes: number; syscalls: number }; busy: { wakes: number; syscalls: number }; busyDuringSpin: { wakes: number; syscalls: number }; received: number }];
  const r = res[1];
  t.log(JSON.stringify(r));
  t.is(r.received, 50);
  t.true(r.asleep.wakes >= n, `each of the ${n} sends woke thread 1 (${r.asleep.wakes})`);
  t.true(r.asleep.syscalls >= n / 2, `thread 1 was asleep: most of ${n} wakes cost a syscall (${r.asleep.syscalls})`);
  t.true(r.asleep.syscalls <= r.asleep.wakes, 'never more syscalls than wakes');
  t.true(r.busy.wakes >= 50, `50 channels woke the busy thread (${r.busy.wakes} wakes)`);
  t.true(r.busy.syscalls <= 1, `a busy thread is woken without syscalls (${r.busy.syscalls} for 50 wakes)`);
  t.true(r.busyDuringSpin.wakes >= 50, 'the wakes were counted while the thread was busy');
});

rtTest('stats() has the wake counters, 0 on a thread that never waited on another', async (t) => {
  const s = await start(() => stats(), { driver: DRIVER });
  t.is(s.threadWakes, 0);
  t.is(s.threadWakeSyscalls, 0);
  t.is(s.blockingJobs, 0);
});

// ---------------------------------------------------------------------------------------------------
// values and bad input

rtTest('values cross as structured clones: numbers, strings, null, undefined, Maps, Dates, typed arrays, cycles, BigInt', async (t) => {
  await run(async () => {
    const ch = channel<unknown>();
    const cyc: Record<string, unknown> = { name: 'cyc' };
    cyc.self = cyc;
    const err = Object.assign(new TypeError('boom'), { code: 'E_SENT' });
    const values: unknown[] = [0, -0, NaN, Infinity, 1.5, '', 'héllo ✓', true, false, null, undefined, 10n ** 30n, new Map([[1, { a: 1 }]]), new Set([1]), new Date(5), /re/g, new Uint16Array([1, 65535]), [1, [2, [3]]], { nested: { deep: [null] } }, err];
    for (const v of values) await ch.send(v);
    for (const v of values) {
      const got = await ch.recv();
      if (typeof v === 'number') t.true(Object.is(got, v), `number ${String(v)}`);
      else if (v instanceof Error) {
        t.true(got instanceof TypeError, 'an Error keeps its class');
        t.is((got as AnyErr).message, 'boom');
        t.is((got as AnyErr).code, 'E_SENT', 'and its code');
        t.is((got as AnyErr).stack, err.stack);
      }
      else t.deepEqual(got, v);
    }
    await ch.send(cyc);
    const c2 = (await ch.recv()) as Record<string, unknown>;
    t.is(c2.self, c2);
    // undefined is a value: a send of undefined is received as undefined while the channel is open.
    await ch.send(undefined);
    t.is(ch.length, 1);
    t.is(await ch.recv(), undefined);
    t.is(ch.length, 0);
  });
});

rtTest('channel(0), channel(-1), channel(1.5) are RangeErrors; channel("4") is a TypeError; default capacity is 1024', async (t) => {
  for (const c of [0, -1, 1.5, NaN, 2 ** 31]) t.throws(() => channel(c), { instanceOf: RangeError }, `channel(${c})`);
  t.throws(() => channel('4' as unknown as number), { instanceOf: TypeError });
  t.is(channel().capacity, 1024);
  t.true(channel(1) instanceof Channel);
});

rtTest('sending a function (or a value holding one) is ERR_RINGIO_NOT_CLONEABLE, and nothing is sent', async (t) => {
  await run(async () => {
    const ch = channel<unknown>();
    t.is((await rejectionOf(t, ch.send(() => 1))).code, 'ERR_RINGIO_NOT_CLONEABLE');
    t.is((await rejectionOf(t, ch.send({ f: Math.max }))).code, 'ERR_RINGIO_NOT_CLONEABLE');
    t.is(t.throws<AnyErr>(() => ch.trySend(() => 1))?.code, 'ERR_RINGIO_NOT_CLONEABLE');
    t.is(ch.length, 0);
    t.is(t.throws<AnyErr>(() => oneshot().send(() => 1))?.code, 'ERR_RINGIO_NOT_CLONEABLE');
    const w = watch(1);
    t.is(t.throws<AnyErr>(() => w.set((() => 2) as never))?.code, 'ERR_RINGIO_NOT_CLONEABLE');
    t.is(w.get(), 1);
    t.is(t.throws<AnyErr>(() => watch(() => 1))?.code, 'ERR_RINGIO_NOT_CLONEABLE');
    // A channel inside a message: not cloneable (primitives travel in start()'s shared).
    t.is((await rejectionOf(t, ch.send({ ch }))).code, 'ERR_RINGIO_NOT_CLONEABLE');
    t.is(ch.length, 0);
    // Bad options.
    t.true((await rejectionOf(t, ch.send(1, { transfer: 'x' as never }))) instanceof TypeError);
    t.true((await rejectionOf(t, ch.recv({ signal: 'x' as never }))) instanceof TypeError);
    t.is(ch.length, 0);
  });
});

rtTest('waiting outside a runtime rejects ERR_RINGIO_NO_RUNTIME; the non-waiting calls work anywhere', async (t) => {
  const ch = channel<number>(1);
  t.true(ch.trySend(1));
  t.false(ch.trySend(2));
  t.is((await rejectionOf(t, ch.send(3))).code, 'ERR_RINGIO_NO_RUNTIME');
  t.deepEqual(ch.tryRecv(), { value: 1 });
  t.is(ch.tryRecv(), undefined);
  t.is((await rejectionOf(t, ch.recv())).code, 'ERR_RINGIO_NO_RUNTIME');
  t.is((await rejectionOf(t, watch(1).changed())).code, 'ERR_RINGIO_NO_RUNTIME');
  t.is((await rejectionOf(t, oneshot().recv())).code, 'ERR_RINGIO_NO_RUNTIME');
});
