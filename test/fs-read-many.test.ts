/**
 * File.readMany on the driver under test: data checked against node:fs for random batches (number,
 * bigint and typed-array positions, buffers of any length and offset), short reads at end of file, a
 * failing entry reported per entry, bad input (nothing submitted), the closed-file contract, a FIFO
 * refused, abort and close in the middle of a batch (the batch settles only after every entry's final
 * completion; cancelled entries leave their buffers untouched), and a runtime that ends with a batch in
 * flight.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, openSync, writeFileSync } from 'node:fs';
import { File, type ReadManyFailure } from '@ringio/fs';
import { start, stats } from '@ringio/runtime';
import { DRIVER, fdCount, fdsBackTo, guard, randomBytes, rejectionOf, rtTest, run, tempDir, type AnyErr } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const { tmp } = tempDir('ringio-fs-readmany-');

const rand = (n: number): number => Math.floor(Math.random() * n);

/** A file of `size` random bytes; returns its path and contents. */
function dataFile(name: string, size: number): { path: string; data: Buffer } {
  const path = tmp(name);
  const data = randomBytes(size);
  writeFileSync(path, data);
  return { path, data };
}

/** What entry i should hold: the file's bytes at pos, as many as fit (fewer at end of file). */
function expected(data: Buffer, pos: number, len: number): Buffer {
  return data.subarray(Math.min(pos, data.length), Math.min(pos + len, data.length));
}

type Failure = AnyErr & ReadManyFailure;

rtTest('readMany: random batches match node:fs (number, bigint and Float64Array positions, any buffer length and offset)', async (t) => {
  const { path, data } = dataFile('random', 8 * MiB + 123);
  await run(async () => {
    const f = await File.open(path);
    for (let round = 0; round < 6; round++) {
      const n = [1, 7, 64, 300, 1024, 2500][round]!;
      // Buffers of lengths 0..64 KiB: every third a Uint8Array of its own, the others views at odd
      // offsets into one shared backing array (not overlapping: entries run concurrently).
      const lens = Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : 1 + rand(i % 5 === 0 ? 64 * KiB : 4 * KiB)));
      const backing = Buffer.alloc(lens.reduce((a, b) => a + b, 0) + 8 * n);
      const bufs: Uint8Array[] = [];
      const pos: number[] = [];
      let at = 0;
      for (let i = 0; i < n; i++) {
        at += 1 + rand(7);
        bufs.push(i % 3 === 0 ? new Uint8Array(lens[i]!) : backing.subarray(at, at + lens[i]!));
        at += lens[i]!;
        pos.push(rand(data.length + 8 * KiB));
      }
      const positions = round % 3 === 0 ? pos : round % 3 === 1 ? pos.map((p) => BigInt(p)) : Float64Array.from(pos);
      const got = await f.readMany(bufs, positions);
      t.true(Array.isArray(got));
      t.is(got.length, n);
      let bad = 0;
      for (let i = 0; i < n; i++) {
        const want = expected(data, pos[i]!, bufs[i]!.length);
        if (got[i] !== want.length || !Buffer.from(bufs[i]!.buffer, bufs[i]!.byteOffset, want.length).equals(want)) bad++;
      }
      t.is(bad, 0, `round ${round}: ${n} entries, every count and every byte as node:fs reads them`);
    }
    t.deepEqual(await f.readMany([], []), [], 'an empty batch resolves []');
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
});

rtTest('readMany: short reads at end of file, 0 past it; the same buffer array in many batches (registered) stays right', async (t) => {
  const { path, data } = dataFile('eof', 10_000);
  await run(async () => {
    const f = await File.open(path);
    const bufs = [Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096)];
    for (let k = 0; k < 3; k++) {
      for (const b of bufs) b.fill(0xee);
      const got = await f.readMany(bufs, [0, 8192, 9999, 10_000, 1_000_000]);
      t.deepEqual(got, [4096, 1808, 1, 0, 0]);
      t.true(bufs[0]!.equals(data.subarray(0, 4096)));
      t.true(bufs[1]!.subarray(0, 1808).equals(data.subarray(8192)));
      t.true(bufs[1]!.subarray(1808).every((v) => v === 0xee), 'nothing written past the short read');
      t.is(bufs[2]![0], data[9999]);
      t.true(bufs[3]!.every((v) => v === 0xee) && bufs[4]!.every((v) => v === 0xee), 'reads at and past the end write nothing');
    }
    await f.close();
  });
});

rtTest('readMany: a failing entry rejects with its own error (index, results per entry) once every entry answered', async (t) => {
  const { path, data } = dataFile('fail', 64 * KiB);
  await run(async () => {
    const f = await File.open(path);
    const bufs = [Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(100)];
    // 2^63 - 10 + 4096 overflows a file offset: the kernel answers EINVAL for that entry only.
    const err = (await rejectionOf(t, f.readMany(bufs, [0, 4096, 2n ** 63n - 10n, 60 * KiB]))) as Failure;
    t.is(err.code, 'EINVAL');
    t.is(err.syscall, 'read');
    t.is(err.path, path);
    t.is(err.buf, bufs[2]);
    t.is(err.index, 2);
    t.is(err.results.length, 4);
    t.is(err.results[2], err, 'results[index] is the error itself');
    t.deepEqual([err.results[0], err.results[1], err.results[3]], [4096, 4096, 100], 'the other entries completed');
    t.true(bufs[0]!.equals(data.subarray(0, 4096)) && bufs[1]!.equals(data.subarray(4096, 8192)) && bufs[3]!.equals(data.subarray(60 * KiB, 60 * KiB + 100)));
    t.is(stats().opsInFlight, 0, 'the batch settled after every entry');
    t.deepEqual(await f.readMany([bufs[0]!], [0]), [4096], 'the File still works');
    await f.close();
  });
});

rtTest('readMany: bad input is a TypeError or RangeError before anything is submitted', async (t) => {
  const { path } = dataFile('bad', 8 * KiB);
  const fifoPath = tmp('fifo');
  execFileSync('mkfifo', [fifoPath]);
  const wfd = openSync(fifoPath, fsc.O_RDWR);
  try {
    await run(async () => {
      const f = await File.open(path);
      const b = Buffer.alloc(16);
      const cases: [string, () => Promise<unknown>, string, RegExp][] = [
        ['bufs not an array', () => f.readMany(b as never, [0]), 'TypeError', /bufs must be an array/],
        ['an entry not a Uint8Array', () => f.readMany([b, 'x' as never], [0, 0]), 'TypeError', /bufs\[1\] must be a Uint8Array/],
        ['a DataView entry', () => f.readMany([new DataView(new ArrayBuffer(4)) as never], [0]), 'TypeError', /bufs\[0\]/],
        ['positions missing', () => f.readMany([b], undefined as never), 'TypeError', /positions must be an array/],
        ['positions a number', () => f.readMany([b], 0 as never), 'TypeError', /positions must be an array/],
        ['lengths differ', () => f.readMany([b, b], [0]), 'RangeError', /2 buffers but 1 positions/],
        ['position -1', () => f.readMany([b], [-1]), 'RangeError', /positions\[0\] must be an integer in 0\.\.2\^63-1/],
        ['position 1.5', () => f.readMany([b, b], [0, 1.5]), 'RangeError', /positions\[1\]/],
        ['position NaN', () => f.readMany([b], [NaN]), 'RangeError', /positions\[0\]/],
        ['position past 2^53', () => f.readMany([b], [2 ** 53]), 'RangeError', /positions\[0\]/],
        ['bigint position past 2^63-1', () => f.readMany([b], [2n ** 63n]), 'RangeError', /positions\[0\]/],
        ['bigint position -1n', () => f.readMany([b], [-1n]), 'RangeError', /positions\[0\]/],
        ['a string position', () => f.readMany([b], ['0' as never]), 'TypeError', /positions\[0\] must be a number or bigint/],
        ['a hole in positions', () => f.readMany([b, b], [0, , ] as never), 'TypeError', /positions\[1\]/],
        ['opts not an object', () => f.readMany([b], [0], 5 as never), 'TypeError', /opts must be an object/],
        ['signal not an AbortSignal', () => f.readMany([b], [0], { signal: {} as never }), 'TypeError', /signal must be an AbortSignal/],
      ];
      for (const [what, call, name, message] of cases) {
        const before = stats().submitted;
        const e = await rejectionOf(t, call());
        t.is(e.name, name, what);
        t.regex(e.message, message, what);
        t.is(stats().submitted, before, `${what}: nothing submitted`);
      }
      // Already aborted: AbortError at once, nothing submitted.
      const before = stats().submitted;
      const e = await rejectionOf(t, f.readMany([b], [0], { signal: AbortSignal.abort() }));
      t.is(e.name, 'AbortError');
      t.is(stats().submitted, before);
      // A FIFO has no positions.
      const fifo = await File.open(fifoPath);
      const ef = await rejectionOf(t, fifo.readMany([b], [0]));
      t.is(ef.name, 'TypeError');
      t.regex(ef.message, /regular file/);
      await fifo.close();
      // Closed: ERR_RINGIO_CLOSED at once, with the buffers.
      await f.close();
      const ec = await rejectionOf(t, f.readMany([b], [0]));
      t.is(ec.code, 'ERR_RINGIO_CLOSED');
      t.deepEqual(ec.buf, [b]);
      t.is(stats().opsInFlight, 0);
    });
  } finally {
    closeSync(wfd);
  }
});

/**
 * What every settled batch must show, cancelled or not: counts only for entries whose bytes match the
 * file, errors only of the cancellation's kind with their buffers untouched, and no entry in flight.
 */
function checkOutcome(
  t: Parameters<Parameters<typeof rtTest>[1]>[0],
  data: Buffer,
  bufs: Buffer[],
  pos: number[],
  results: (number | Error)[],
  cancelName: string,
): { done: number; cancelled: number } {
  let done = 0;
  let cancelled = 0;
  let bad = 0;
  for (let i = 0; i < bufs.length; i++) {
    const r = results[i];
    if (typeof r === 'number') {
      done++;
      const want = expected(data, pos[i]!, bufs[i]!.length);
      if (r !== want.length || !bufs[i]!.subarray(0, r).equals(want)) bad++;
    } else {
      cancelled++;
      const kind = (r as AnyErr).code === 'ERR_RINGIO_CLOSED' ? 'ERR_RINGIO_CLOSED' : r!.name;
      if (kind !== cancelName || !untouched(bufs[i]!)) bad++;
    }
  }
  t.is(bad, 0, `every entry either read the right bytes or was cancelled (${cancelName}) with its buffer untouched`);
  return { done, cancelled };
}

/** The fill bigBatch puts in every buffer, as one buffer to compare against (memcmp, not a callback a byte). */
let fill = Buffer.alloc(0);

/** Whether buf still holds only bigBatch's fill byte, 0xa5: nothing was written into it. */
function untouched(buf: Buffer): boolean {
  if (fill.length < buf.length) fill = Buffer.alloc(buf.length, 0xa5);
  return buf.equals(fill.subarray(0, buf.length));
}

/** A batch big enough that the epoll driver's file pool is still at it a few milliseconds later. */
function bigBatch(data: Buffer, n: number, size: number): { bufs: Buffer[]; pos: number[] } {
  const bufs = Array.from({ length: n }, () => Buffer.alloc(size, 0xa5));
  const pos = Array.from({ length: n }, () => rand(data.length - size));
  return { bufs, pos };
}

rtTest('readMany: abort in the middle of a batch settles only after every entry answered; cancelled entries wrote nothing', async (t) => {
  const { path, data } = dataFile('abort', 16 * MiB);
  await run(async () => {
    const f = await File.open(path);
    let sawCancel = false;
    // On epoll, more rounds (1 ms each) until one batch was caught mid-way: a loaded machine can fire the
    // timer late. Up to 8 more, so the check below cannot fail by bad luck alone.
    const delays = [-1, 0, 1, 3];
    for (let k = 0; k < delays.length; k++) {
      const delay = delays[k]!;
      if (k === delays.length - 1 && DRIVER === 'epoll' && !sawCancel && delays.length < 12) delays.push(1);
      const { bufs, pos } = bigBatch(data, 1500, 64 * KiB);
      const ac = new AbortController();
      const reason = new Error('enough');
      let inFlightAtSettle = -1;
      const p = f.readMany(bufs, pos, { signal: ac.signal });
      const seen = p.then(
        (v) => ((inFlightAtSettle = stats().opsInFlight), v),
        (e: unknown) => {
          inFlightAtSettle = stats().opsInFlight;
          throw e;
        },
      );
      if (delay < 0) ac.abort(reason);
      else setTimeout(() => ac.abort(reason), delay);
      let results: (number | Error)[];
      try {
        results = await guard(seen, 20_000, 'the aborted batch');
      } catch (e) {
        const err = e as Failure;
        t.is(err.name, 'AbortError', String(err));
        t.is((err as { cause?: unknown }).cause, reason);
        t.is(err.results[err.index], err);
        results = err.results;
        sawCancel = true;
      }
      t.is(inFlightAtSettle, 0, 'no entry was in flight when the batch settled');
      const { done, cancelled } = checkOutcome(t, data, bufs, pos, results, 'AbortError');
      t.log(`abort after ${delay} ms: ${done} entries done, ${cancelled} cancelled`);
    }
    // io_uring reads from the page cache finish while they are submitted, before any abort can reach
    // them; the epoll driver's pool takes long enough for a 1500-entry batch to be caught mid-way.
    if (DRIVER === 'epoll') t.true(sawCancel, 'on epoll some batch was caught in the middle');
    t.deepEqual(await f.readMany([Buffer.alloc(8)], [0]), [8], 'the File still works');
    await f.close();
  });
});

rtTest('readMany: close() in the middle of a batch rejects ERR_RINGIO_CLOSED after every entry answered, then closes the fd', async (t) => {
  const { path, data } = dataFile('close', 16 * MiB);
  await run(async () => {
    // The baseline once the epoll driver's file pool (and its eventfd) is running.
    const warm = await File.open(path);
    await warm.readMany([Buffer.alloc(8)], [0]);
    await warm.close();
    const base = fdCount();
    for (const delay of [-1, 0, 2]) {
      const f = await File.open(path);
      const { bufs, pos } = bigBatch(data, 1500, 64 * KiB);
      let inFlightAtSettle = -1;
      const p = f.readMany(bufs, pos).then(
        (v) => ((inFlightAtSettle = stats().opsInFlight), v),
        (e: unknown) => {
          inFlightAtSettle = stats().opsInFlight;
          throw e;
        },
      );
      let closing: Promise<void>;
      if (delay < 0) closing = f.close();
      else closing = new Promise<void>((r) => setTimeout(r, delay)).then(() => f.close());
      let results: (number | Error)[];
      try {
        results = await guard(p, 20_000, 'the batch closed under it');
      } catch (e) {
        const err = e as Failure;
        t.is(err.code, 'ERR_RINGIO_CLOSED', String(err));
        results = err.results;
      }
      t.true(inFlightAtSettle <= 1, 'no entry was in flight when the batch settled (the close itself may be)');
      checkOutcome(t, data, bufs, pos, results, 'ERR_RINGIO_CLOSED');
      await guard(closing, 20_000, 'close()');
      t.is((await rejectionOf(t, f.readMany([bufs[0]!], [0]))).code, 'ERR_RINGIO_CLOSED');
    }
    t.is(await fdsBackTo(base), base, 'every fd closed');
  });
});

rtTest('readMany: a runtime that ends with a batch in flight waits for it; the batch settles and nothing leaks', async (t) => {
  const { path, data } = dataFile('shutdown', 16 * MiB);
  const base = fdCount();
  const { bufs, pos } = bigBatch(data, 1500, 64 * KiB);
  let outcome: Promise<(number | Error)[]> | undefined;
  let f: File | undefined;
  await start(
    async () => {
      f = await File.open(path);
      outcome = f.readMany(bufs, pos).catch((e: Failure) => {
        t.is(e.code, 'ERR_RINGIO_CLOSED', String(e));
        return e.results;
      });
      // Return with the batch in flight: shutdown cancels it and waits for the kernel's answers.
    },
    { driver: DRIVER },
  );
  const results = await guard(outcome!, 20_000, 'the batch cut short by shutdown');
  checkOutcome(t, data, bufs, pos, results, 'ERR_RINGIO_CLOSED');
  await f!.close(); // no runtime any more: close() closes the fd directly
  t.is(await fdsBackTo(base), base, 'no fd left open');
});

// The epoll engine marks a slot `pooled` while its job is on the file pool and clears it when the job's
// completion is collected (or at teardown). A mark left behind would send a later op in the same slot
// down the pool's cancel path (EALREADY: not cancelled), and an aborted read waiting for readiness would
// never settle. Here every slot a batch used goes on to a FIFO read that parks, then is aborted.
rtTest('readMany: slots a batch used cancel like any other afterwards (aborting reads parked on a FIFO settles them all)', async (t) => {
  const { path, data } = dataFile('reuse', 4 * MiB);
  const fifoPath = tmp('reuse-fifo');
  execFileSync('mkfifo', [fifoPath]);
  const wfd = openSync(fifoPath, fsc.O_RDWR); // a writer end, so the reads below wait instead of seeing EOF
  try {
    await run(async () => {
      const f = await File.open(path);
      const { bufs, pos } = bigBatch(data, 256, 4 * KiB);
      const counts = await f.readMany(bufs, pos);
      t.is(counts.length, 256);
      for (let i = 0; i < 256; i++) t.is(Buffer.compare(bufs[i]!.subarray(0, counts[i]), expected(data, pos[i]!, 4 * KiB)), 0);
      t.is(stats().opsInFlight, 0);
      const pipe = await File.open(fifoPath);
      // As many parked reads as the batch had entries: the slots the batch freed are taken again.
      const acs = Array.from({ length: 256 }, () => new AbortController());
      const reads = acs.map((ac) => {
        const b = Buffer.alloc(16, 0x55);
        return pipe.read(b, { signal: ac.signal }).then(
          () => ({ err: undefined, b }),
          (e: unknown) => ({ err: e as AnyErr, b }),
        );
      });
      await new Promise((r) => setTimeout(r, 20));
      t.is(stats().opsInFlight, 256, 'every read waits for data');
      for (const ac of acs) ac.abort();
      const outcomes = await guard(Promise.all(reads), 10_000, 'the aborted FIFO reads');
      for (const o of outcomes) {
        t.is(o.err?.name, 'AbortError');
        t.true(o.b.every((v) => v === 0x55), 'a cancelled read wrote nothing');
      }
      t.is(stats().opsInFlight, 0);
      // The batch path still works after its slots served other ops.
      t.deepEqual(await f.readMany([Buffer.alloc(8)], [0]), [8]);
      await pipe.close();
      await f.close();
    });
  } finally {
    closeSync(wfd);
  }
});

rtTest('readMany: a batch is one op (one record, one slot) however many entries it has', async (t) => {
  const { path, data } = dataFile('one-op', 1 * MiB);
  await run(async () => {
    const f = await File.open(path);
    for (const n of [1, 64, 3000]) {
      const { bufs, pos } = bigBatch(data, n, 4 * KiB);
      const before = stats().submitted;
      const p = f.readMany(bufs, pos);
      t.is(stats().opsInFlight, 1, `${n} entries: one op in flight`);
      const counts = await p;
      t.is(stats().submitted - before, 1, `${n} entries: one op submitted`);
      checkOutcome(t, data, bufs, pos, counts, 'none');
    }
    await f.close();
  });
});

rtTest('readMany: batches far beyond the submission and completion queues (a ring of 16 entries)', async (t) => {
  const { path, data } = dataFile('tiny-ring', 4 * MiB);
  // 16 SQ entries and 64 CQ entries: a 5000-entry batch goes in SQ-sized pieces and its completions
  // overflow the CQ (the kernel keeps them: NODROP); on epoll the entries are one pool job either way.
  await start(
    async () => {
      const f = await File.open(path);
      for (let k = 0; k < 3; k++) {
        const { bufs, pos } = bigBatch(data, 5000, 1 + rand(8 * KiB));
        const counts = await f.readMany(bufs, pos);
        t.is(counts.length, 5000);
        checkOutcome(t, data, bufs, pos, counts, 'none');
      }
      // Two batches at once in the same File, with single reads beside them.
      const a = bigBatch(data, 2000, 4 * KiB);
      const b = bigBatch(data, 2000, 4 * KiB);
      const single = Buffer.alloc(4 * KiB, 0xa5);
      const [ca, cb, [n]] = await Promise.all([f.readMany(a.bufs, a.pos), f.readMany(b.bufs, b.pos), f.readAt(single, 4096)]);
      checkOutcome(t, data, a.bufs, a.pos, ca, 'none');
      checkOutcome(t, data, b.bufs, b.pos, cb, 'none');
      t.true(n === 4096 && single.equals(data.subarray(4096, 8192)));
      t.is(stats().opsInFlight, 0);
      await f.close();
    },
    { driver: DRIVER, entries: 16 },
  );
});

rtTest('readMany: aborting one batch leaves another batch on the same File alone', async (t) => {
  const { path, data } = dataFile('abort-one', 16 * MiB);
  await run(async () => {
    const f = await File.open(path);
    for (let round = 0; round < 3; round++) {
      const keep = bigBatch(data, 800, 64 * KiB);
      const drop = bigBatch(data, 800, 64 * KiB);
      const ac = new AbortController();
      const pk = f.readMany(keep.bufs, keep.pos);
      const pd = f.readMany(drop.bufs, drop.pos, { signal: ac.signal }).then(
        (v) => v as (number | Error)[],
        (e: Failure) => {
          t.is(e.name, 'AbortError');
          return e.results;
        },
      );
      ac.abort();
      const kept = await guard(pk, 20_000, 'the batch nobody aborted');
      t.is(kept.length, 800);
      checkOutcome(t, data, keep.bufs, keep.pos, kept, 'none');
      checkOutcome(t, data, drop.bufs, drop.pos, await guard(pd, 20_000, 'the aborted batch'), 'AbortError');
    }
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
});

rtTest('readMany: a buffer detached before the batch reached the driver fails its entry with EFAULT; the others read', async (t) => {
  const { path, data } = dataFile('detach', 64 * KiB);
  await run(async () => {
    const f = await File.open(path);
    // Fresh arrays (the plain path) and arrays used twice before (registered: the driver's detach check).
    for (const registered of [false, true]) {
      const bufs = [new Uint8Array(4096), new Uint8Array(4096), new Uint8Array(4096)];
      if (registered) for (let k = 0; k < 2; k++) await f.readMany(bufs, [0, 0, 0]);
      const p = f.readMany(bufs, [0, 4096, 8192]);
      // Transferred right after the call, before the flush at the end of this microtask run.
      structuredClone(bufs[1]!.buffer, { transfer: [bufs[1]!.buffer] });
      t.is(bufs[1]!.length, 0, 'detached');
      const err = (await rejectionOf(t, p)) as Failure;
      t.is(err.code, 'EFAULT', `registered: ${registered}`);
      t.is(err.index, 1);
      t.deepEqual([err.results[0], err.results[2]], [4096, 4096]);
      t.true(Buffer.from(bufs[0]!).equals(data.subarray(0, 4096)) && Buffer.from(bufs[2]!).equals(data.subarray(8192, 12288)));
    }
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
});
