/**
 * The runtime as a whole on the driver under test (RINGIO_DRIVER): which driver runs, what stats()
 * reports, start() options, the io_uring -> epoll fallback, CPU use when idle, living next to Node's own
 * loop, and process lifetime (exit when idle, stay alive while a sleep is pending).
 */
import test from 'ava';
import { createServer, connect, type AddressInfo } from 'node:net';
import { release } from 'node:os';
import {
  IORING_OP,
  closeSync,
  hasFeature,
  nop,
  pipe,
  read,
  sleep,
  spawn,
  start,
  stats,
  write,
  type RuntimeStats,
  type StartOptions,
} from '@ringio/runtime';
import { DRIVER, fdCount, fixture, randomBytes, rt, runNode, unavailable } from './helpers.js';

if (unavailable !== null) console.log(`runtime-driver: skipping runtime tests: ${unavailable}`);
/** Tests that need a runtime on the driver under test (skipped, with the reason logged, when it cannot run). */
const serial = unavailable === null ? test.serial : test.serial.skip;
const concurrent = unavailable === null ? test : test.skip;

/** The driver 'auto' picks on this machine without fault injection. */
async function autoDriver(): Promise<RuntimeStats> {
  return start(() => stats(), { driver: 'auto' });
}

serial('the runtime runs on the driver under test, also when start() is given no driver option', async (t) => {
  const s = await rt(() => stats());
  const byEnv = await start(() => stats()); // the default comes from RINGIO_DRIVER
  if (DRIVER === 'auto') {
    t.true(s.driver === 'uring' || s.driver === 'epoll', s.driver);
    t.is(s.fallbackReason === null, s.driver === 'uring', 'auto reports a reason exactly when it fell back');
  } else {
    t.is(s.driver, DRIVER);
    t.is(s.fallbackReason, null, 'an explicitly requested driver is never a fallback');
  }
  t.is(byEnv.driver, s.driver);
});

serial('stats() fields have the right types, and counters follow the work done', async (t) => {
  await rt(async () => {
    const s0 = stats();
    t.true(s0.driver === 'uring' || s0.driver === 'epoll');
    t.true(s0.fallbackReason === null || typeof s0.fallbackReason === 'string');
    t.true(Number.isInteger(s0.entries) && s0.entries >= 0);
    t.true(Array.isArray(s0.features) && s0.features.length > 0);
    for (const f of s0.features) t.is(typeof f, 'string');
    if (s0.driver === 'uring') {
      t.true(s0.entries > 0);
      t.true(s0.features.some((f) => f.startsWith('op:')), 'uring lists the opcodes the kernel has');
    } else {
      t.is(s0.entries, 0);
      // epoll lists what it can run the same way: every op but SEND_ZC (a plain SEND there).
      const byCode = Object.entries(IORING_OP).sort((a, b) => a[1] - b[1]);
      const ops = byCode.filter(([n]) => n !== 'SEND_ZC').map(([n]) => `op:${n}`);
      t.deepEqual(s0.features, ['EPOLLET', 'TIMERFD', 'BUFFER_SELECT', ...ops]);
    }
    // Upper layers decide by feature, never by driver name: the ops every driver must run are listed.
    for (const op of ['NOP', 'READ', 'WRITE', 'POLL_ADD', 'TIMEOUT', 'ASYNC_CANCEL', 'CLOSE'] as const) t.true(hasFeature(`op:${op}`), op);
    t.is(s0.kernel, release());
    for (const k of ['opsInFlight', 'tasksQueued', 'timers', 'enters', 'completions', 'submitted', 'wakeups'] as const) {
      t.true(Number.isInteger(s0[k]) && s0[k] >= 0, `${k} = ${s0[k]}`);
    }
    t.is(s0.opsInFlight, 0);
    t.is(s0.tasksQueued, 0);
    t.is(s0.timers, 0);

    const N = 10;
    for (let i = 0; i < N; i++) t.is(await nop(), 0);
    t.deepEqual(await Promise.all(Array.from({ length: N }, () => nop())), new Array(N).fill(0));
    t.is(stats().opsInFlight, 0);

    const [r, w] = pipe();
    const pending = read(r, Buffer.alloc(16));
    t.is(stats().opsInFlight, 1, 'a pending read is in flight');
    // 400 ms, not less: the abort below comes from a 5 ms Node timer, and on a loaded machine (load
    // average 20 on 2 cores) libuv's poll phase reaped a 40 ms kernel timeout before that timer ran.
    const slept = sleep(400);
    // Aborted (by a Node timer) while the 400 ms sleep still owns the kernel timeout.
    const slept2 = sleep(5000, { signal: AbortSignal.timeout(5) }).catch((e: Error) => e.name);
    t.is(stats().timers, 2);
    t.is(stats().opsInFlight, 2, 'two sleeps share one kernel timeout');
    const h = spawn(() => 42);
    t.is(stats().tasksQueued, 1);
    t.is(await h, 42);
    t.is(stats().tasksQueued, 0);
    t.is(await slept2, 'AbortError');
    t.is(stats().timers, 1);
    await slept;
    t.is(stats().timers, 0);
    t.is(stats().opsInFlight, 1, 'only the read is left');
    const [nw] = await write(w, Buffer.from('abc'));
    t.is(nw, 3);
    const [n, buf] = await pending;
    t.is(buf.toString('utf8', 0, n), 'abc');
    closeSync(r);
    closeSync(w);

    const s1 = stats();
    t.is(s1.opsInFlight, 0);
    t.is(s1.timers, 0);
    // 2N nops, the read, the write, and at least one kernel timeout for the sleeps.
    t.true(s1.completions - s0.completions >= 2 * N + 3, `completions +${s1.completions - s0.completions}`);
    t.true(s1.submitted - s0.submitted >= 2 * N + 3, `submitted +${s1.submitted - s0.submitted}`);
    t.true(s1.enters > s0.enters, 'the kernel was entered');
    t.true(s1.wakeups > s0.wakeups, "the sleep was delivered by a wakeup from Node's loop");
  });
});

serial('the entries option sets the io_uring queue size', async (t) => {
  const auto = await rt(() => stats());
  if (auto.driver === 'epoll') {
    const s = await rt(() => stats(), { entries: 256 });
    t.is(s.driver, 'epoll');
    t.is(s.entries, 0, 'epoll has no queue');
    return;
  }
  t.is(auto.entries, 1024, 'default');
  for (const [entries, want] of [
    [256, 256],
    [1, 1],
    [100, 128], // the kernel rounds up to a power of two
    [32768, 32768],
  ] as const) {
    const s = await rt(
      async () => {
        // The ring must actually work at that size: more ops than entries in one batch.
        const got = await Promise.all(Array.from({ length: 300 }, () => nop()));
        t.is(got.length, 300);
        return stats();
      },
      { entries },
    );
    t.is(s.driver, 'uring');
    t.is(s.entries, want, `entries ${entries}`);
  }
});

serial('invalid start() options are rejected and leave nothing behind', async (t) => {
  const fds0 = fdCount();
  // Out of range, including numbers that are not integers.
  for (const entries of [0, -1, 32769, 40000, 1.5, Number.NaN, Infinity]) {
    await t.throwsAsync(start(() => 1, { entries }), { instanceOf: RangeError }, `entries ${entries}`);
  }
  await t.throwsAsync(start(() => 1, { entries: '256' as unknown as number }), { instanceOf: TypeError });
  await t.throwsAsync(start(() => 1, { driver: 'foo' as unknown as StartOptions['driver'] }), {
    instanceOf: TypeError,
    message: /foo/,
  });
  let ran = false;
  await t.throwsAsync(
    start(
      () => {
        ran = true;
      },
      { driver: 'foo' as unknown as StartOptions['driver'] },
    ),
  );
  t.false(ran, 'main never runs with bad options');
  t.is(fdCount(), fds0);
  t.is(await rt(() => 7), 7, 'a runtime still starts afterwards');
});

serial('RINGIO_FAULT_URING_SETUP=EPERM: auto falls back to epoll with the reason, uring rejects', async (t) => {
  const before = await autoDriver();
  const saved = process.env.RINGIO_FAULT_URING_SETUP;
  const fds0 = fdCount();
  process.env.RINGIO_FAULT_URING_SETUP = 'EPERM';
  try {
    const s = await start(() => stats(), { driver: 'auto' });
    t.is(s.driver, 'epoll');
    t.is(typeof s.fallbackReason, 'string');
    t.regex(s.fallbackReason ?? '', /EPERM/);
    t.is(s.entries, 0);

    const err = await t.throwsAsync(start(() => 1, { driver: 'uring' }), { code: 'ERR_RINGIO_DRIVER_UNAVAILABLE' });
    t.regex(err?.message ?? '', /EPERM/);

    // The fallback runtime does real I/O.
    const echoed = await start(
      async () => {
        const [r, w] = pipe();
        await write(w, Buffer.from('fallback'));
        const [n, buf] = await read(r, Buffer.alloc(32));
        closeSync(r);
        closeSync(w);
        return buf.toString('utf8', 0, n);
      },
      { driver: 'auto' },
    );
    t.is(echoed, 'fallback');

    const epoll = await start(() => stats(), { driver: 'epoll' });
    t.is(epoll.driver, 'epoll');
    t.is(epoll.fallbackReason, null, 'epoll asked for by name is not a fallback');
  } finally {
    if (saved === undefined) delete process.env.RINGIO_FAULT_URING_SETUP;
    else process.env.RINGIO_FAULT_URING_SETUP = saved;
  }
  t.is(fdCount(), fds0, 'failed setups leak no fd');
  const after = await autoDriver();
  t.is(after.driver, before.driver, 'with the fault removed, auto chooses as before');
  t.is(after.fallbackReason, before.fallbackReason);
});

serial('an idle runtime uses no CPU', async (t) => {
  const r = await rt(async () => {
    const [rfd, wfd] = pipe();
    const pending = read(rfd, Buffer.alloc(8)); // idle with a read in flight as well as a timer
    await sleep(20);
    const s0 = stats();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(500);
    const cpu = process.cpuUsage(c0);
    const wall = performance.now() - t0;
    const s1 = stats();
    await write(wfd, Buffer.from('x'));
    await pending;
    closeSync(rfd);
    closeSync(wfd);
    return { cpuMs: (cpu.user + cpu.system) / 1000, wall, enters: s1.enters - s0.enters, wakeups: s1.wakeups - s0.wakeups };
  });
  t.log(r);
  t.true(r.wall >= 499, `slept ${r.wall} ms`);
  t.true(r.cpuMs < 50, `${r.cpuMs} ms of CPU while idle for 500 ms`);
  t.true(r.wakeups <= 3, `${r.wakeups} wakeups while idle`);
  t.true(r.enters <= 6, `${r.enters} enters while idle`);
});

serial("Node's timers and sockets keep working while a runtime read is pending", async (t) => {
  await rt(async () => {
    const [r, w] = pipe();
    const pending = read(r, Buffer.alloc(64));
    let settled = false;
    void pending.then(() => (settled = true));

    const t0 = performance.now();
    const waited = await new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - t0), 30));
    t.true(waited >= 25, `setTimeout(30) fired after ${waited} ms`);

    const server = createServer((sock) => sock.pipe(sock));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const payload = randomBytes(256 * 1024);
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const c = connect(port, '127.0.0.1', () => c.end(payload));
      c.on('data', (chunk: Buffer) => chunks.push(chunk));
      c.on('end', () => resolve(Buffer.concat(chunks)));
      c.on('error', reject);
    });
    await new Promise((resolve) => server.close(resolve));
    t.is(echoed.length, payload.length);
    t.true(echoed.equals(payload), 'the echo came back intact');

    t.false(settled, 'the runtime read is still pending');
    t.is(stats().opsInFlight, 1);
    await write(w, Buffer.from('after net'));
    const [n, buf] = await pending;
    t.is(buf.toString('utf8', 0, n), 'after net');
    closeSync(r);
    closeSync(w);
  });
});

concurrent('the process exits by itself once start() has resolved', async (t) => {
  t.timeout(30_000);
  const r = await runNode([fixture('driver-exit-natural.mjs')], 15_000);
  t.is(r.stderr, '');
  t.is(r.signal, null);
  t.is(r.code, 0);
  t.true(r.ms < 5000, `exited after ${r.ms} ms`);
  const out = JSON.parse(r.stdout) as { driver: string; text: string };
  t.is(out.text, 'bye');
  if (DRIVER !== 'auto') t.is(out.driver, DRIVER);
});

concurrent('a pending runtime sleep keeps the process alive until it fires', async (t) => {
  t.timeout(30_000);
  const r = await runNode([fixture('driver-sleep-pending.mjs'), '1500'], 15_000);
  t.is(r.stderr, '');
  t.is(r.signal, null);
  t.is(r.code, 0);
  const m = /^fired (\w+) (\d+)$/m.exec(r.stdout);
  t.truthy(m, `stdout: ${JSON.stringify(r.stdout)}`);
  if (DRIVER !== 'auto') t.is(m?.[1], DRIVER);
  t.true(Number(m?.[2]) >= 1490, `fired after ${m?.[2]} ms`);
  t.regex(r.stdout, /^done$/m);
  t.true(r.ms >= 1500, `the process lived ${r.ms} ms`);
  t.true(r.ms < 8000, `the process lived ${r.ms} ms`);
});
