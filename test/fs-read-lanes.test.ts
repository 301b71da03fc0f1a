/**
 * File.readAt's lanes on the driver under test. On io_uring the reads a File is asked for in one run of
 * JS go to the kernel as one READ_MANY op that reports each read as it arrives; on epoll every read is
 * its own op. Either way each read keeps its own promise and its own outcome: data checked against
 * node:fs (windows, number and bigint positions, end of file, more reads than one lane holds), one
 * failing read among others (a detached buffer), errno errors with path and buffer, close() right after
 * the reads were issued and after their lane was submitted, a read with a signal beside lane reads, and a
 * runtime that ends with a lane in flight.
 */
import { writeFileSync } from 'node:fs';
import { File, allocAligned } from '@ringio/fs';
import { start, stats } from '@ringio/runtime';
import { DRIVER, fdCount, fdsBackTo, guard, randomBytes, rejectionOf, rtTest, run, tempDir, type AnyErr } from './helpers.js';

const KiB = 1024;
const { tmp } = tempDir('ringio-fs-lanes-');
const rand = (n: number): number => Math.floor(Math.random() * n);

function dataFile(name: string, size: number): { path: string; data: Buffer } {
  const path = tmp(name);
  const data = randomBytes(size);
  writeFileSync(path, data);
  return { path, data };
}

/** Whether this run's reads use lanes (io_uring). */
function lanes(): boolean {
  return stats().driver === 'uring';
}

rtTest('readAt: reads issued together each get their own data (windows, number and bigint positions, EOF); one op per lane on io_uring', async (t) => {
  const { path, data } = dataFile('mixed', 1024 * KiB + 77);
  await run(async () => {
    const f = await File.open(path);
    const uring = lanes();
    for (const n of [1, 64, 256, 700]) {
      const reads: { buf: Buffer; offset: number; length: number; pos: number }[] = [];
      for (let i = 0; i < n; i++) {
        const size = 1 + rand(8 * KiB);
        const offset = i % 3 === 0 ? rand(size) : 0;
        const length = i % 5 === 0 ? rand(size - offset + 1) : size - offset;
        // Some reads cross or start past the end of the file.
        const pos = i % 11 === 0 ? data.length - rand(2 * KiB) : rand(data.length);
        reads.push({ buf: Buffer.alloc(size, 0xee), offset, length, pos });
      }
      const before = stats().submitted;
      const ps = reads.map((r, i) => {
        const opts = r.offset === 0 && r.length === r.buf.length && i % 2 === 0 ? undefined : { offset: r.offset, length: r.length };
        return f.readAt(r.buf, i % 4 === 1 ? BigInt(r.pos) : r.pos, opts);
      });
      const got = await Promise.all(ps);
      const submitted = stats().submitted - before;
      const zeroLength = reads.filter((r) => r.length === 0).length;
      // A zero-length read is an op of its own; the others go 256 to a lane.
      if (uring) t.is(submitted, Math.ceil((n - zeroLength) / 256) + zeroLength, `${n} reads: lanes of up to 256 on io_uring`);
      else t.is(submitted, n, `${n} reads: one op each on epoll`);
      let bad = 0;
      for (let i = 0; i < n; i++) {
        const r = reads[i]!;
        const [k, b] = got[i]!;
        const want = data.subarray(Math.min(r.pos, data.length), Math.min(r.pos + r.length, data.length));
        const inside = b.subarray(r.offset, r.offset + k);
        const outside = Buffer.concat([b.subarray(0, r.offset), b.subarray(r.offset + k)]);
        if (b !== r.buf || k !== want.length || !inside.equals(want) || !outside.every((x) => x === 0xee)) bad++;
      }
      t.is(bad, 0, `${n} reads: every count and byte as node:fs sees them, nothing written outside the window`);
    }
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
});

rtTest('readAt: a buffer detached before its lane reached the driver fails that read with EFAULT; the others read', async (t) => {
  const { path, data } = dataFile('detach', 64 * KiB);
  await run(async () => {
    const f = await File.open(path);
    // Fresh arrays (the plain path) and arrays used twice before (registered: the driver's detach check).
    for (const registered of [false, true]) {
      const bufs = [new Uint8Array(4096), new Uint8Array(4096), new Uint8Array(4096)];
      if (registered) for (let k = 0; k < 2; k++) await Promise.all(bufs.map((b) => f.readAt(b, 0)));
      const ps = bufs.map((b, i) => f.readAt(b, i * 4096));
      // Transferred right after the call, before the lane goes to the driver at the end of this run of JS.
      structuredClone(bufs[1]!.buffer, { transfer: [bufs[1]!.buffer] });
      const [r0, r1, r2] = await Promise.allSettled(ps);
      t.is(r0.status, 'fulfilled');
      t.is(r2.status, 'fulfilled');
      t.true(Buffer.from(bufs[0]!).equals(data.subarray(0, 4096)) && Buffer.from(bufs[2]!).equals(data.subarray(8192, 12288)));
      t.is(r1.status, 'rejected', `registered: ${registered}`);
      const e = (r1 as PromiseRejectedResult).reason as AnyErr;
      t.is(e.code, 'EFAULT');
      t.is(e.syscall, 'read');
      t.is(e.buf, bufs[1]);
    }
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
});

rtTest('readAt: errno errors of reads issued together carry code, path and each read\'s own buffer', async (t) => {
  const { path } = dataFile('wronly', 16 * KiB);
  await run(async () => {
    const f = await File.open(path, { read: false, write: true });
    const bufs = Array.from({ length: 10 }, () => Buffer.alloc(1024));
    const outcomes = await Promise.allSettled(bufs.map((b, i) => f.readAt(b, i * 1024)));
    for (const [i, r] of outcomes.entries()) {
      t.is(r.status, 'rejected');
      const e = (r as PromiseRejectedResult).reason as AnyErr;
      t.is(e.code, 'EBADF');
      t.is(e.path, path);
      t.is(e.buf, bufs[i], `read ${i} carries its own buffer`);
    }
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
});

rtTest('readAt: close() in the same run of JS as the reads, or once their lane was submitted: each read resolves its data or rejects ERR_RINGIO_CLOSED', async (t) => {
  const { path, data } = dataFile('close', 256 * KiB);
  await run(async () => {
    const tally = { ok: 0, closed: 0 };
    let rounds = 0;
    for (let round = 0; round < 8; round++) {
      // Rounds 4-7 use O_DIRECT (where the file system has it): reads that go to the device, which a
      // cancel can still catch.
      let f: File;
      if (round >= 4) {
        try {
          f = await File.open(path, { direct: true });
        } catch {
          continue;
        }
      } else f = await File.open(path);
      rounds++;
      const bufs = Array.from({ length: 64 }, () => (round >= 4 ? allocAligned(4 * KiB) : Buffer.alloc(4 * KiB)).fill(0xee));
      const ps = bufs.map((b, i) => f.readAt(b, i * 4 * KiB));
      // Odd rounds let the lane go to the driver first (its microtask was queued by the first read).
      if (round % 2 === 1) await Promise.resolve();
      const closing = f.close();
      const outcomes = await Promise.allSettled(ps);
      await closing;
      for (const [i, r] of outcomes.entries()) {
        if (r.status === 'fulfilled') {
          const [n, b] = r.value;
          t.true(n === 4 * KiB && b === bufs[i] && b.equals(data.subarray(i * 4 * KiB, (i + 1) * 4 * KiB)), `round ${round} read ${i}`);
          tally.ok++;
        } else {
          const e = r.reason as AnyErr;
          t.is(e.code, 'ERR_RINGIO_CLOSED', `round ${round} read ${i}: ${e.message}`);
          t.is(e.buf, bufs[i]);
          tally.closed++;
        }
      }
      t.is(stats().opsInFlight, 0, `round ${round}: nothing in flight`);
      const late = await rejectionOf(t, f.readAt(bufs[0]!, 0));
      t.is(late.code, 'ERR_RINGIO_CLOSED', 'a read after close()');
    }
    t.is(tally.ok + tally.closed, rounds * 64);
    t.log(`${tally.ok} reads won, ${tally.closed} were cancelled by close()`);
  });
});

rtTest('readAt: a read with a signal goes on its own (abort cancels it alone); the reads beside it are untouched', async (t) => {
  const { path, data } = dataFile('signal', 64 * KiB);
  await run(async () => {
    const f = await File.open(path);
    const ac = new AbortController();
    ac.abort();
    const bufs = Array.from({ length: 8 }, () => Buffer.alloc(4096));
    const ps = bufs.map((b, i) => (i === 3 ? f.readAt(b, i * 4096, { signal: ac.signal }) : f.readAt(b, i * 4096)));
    const outcomes = await Promise.allSettled(ps);
    for (const [i, r] of outcomes.entries()) {
      if (i === 3) {
        t.is(r.status, 'rejected');
        t.is(((r as PromiseRejectedResult).reason as AnyErr).name, 'AbortError');
        t.is(((r as PromiseRejectedResult).reason as AnyErr).buf, bufs[3]);
      } else {
        t.is(r.status, 'fulfilled');
        t.true(bufs[i]!.equals(data.subarray(i * 4096, (i + 1) * 4096)));
      }
    }
    await f.close();
  });
});

rtTest('readAt: a runtime that ends with a lane in flight waits for it; every read settles and nothing leaks', async (t) => {
  const { path, data } = dataFile('shutdown', 256 * KiB);
  const base = fdCount();
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(4 * KiB));
  let ps: Promise<[number, Buffer]>[] = [];
  let f: File | undefined;
  await start(
    async () => {
      f = await File.open(path);
      ps = bufs.map((b, i) => f!.readAt(b, i * 4 * KiB));
      // Return with the reads in flight: shutdown cancels them and waits for the kernel's answers.
    },
    { driver: DRIVER },
  );
  const outcomes = await guard(Promise.allSettled(ps), 10_000, 'the reads');
  for (const [i, r] of outcomes.entries()) {
    if (r.status === 'fulfilled') t.true(r.value[1].equals(data.subarray(i * 4 * KiB, (i + 1) * 4 * KiB)), `read ${i}`);
    else t.is((r.reason as AnyErr).code, 'ERR_RINGIO_CLOSED', `read ${i}`);
  }
  await f!.close(); // no runtime any more: close() closes the fd directly
  t.is(await fdsBackTo(base), base, 'no fd left open');
});
