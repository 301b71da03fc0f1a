/**
 * GC tier for @ringio/fs: 64 concurrent File reads whose buffers are referenced only by the runtime (the
 * test keeps just the promises and weak references). Forced minor and full GCs (which move young
 * objects, including small Uint8Arrays that V8 allocates on its heap) and heap churn run, first before
 * the submission batch is even flushed, then for 50 rounds before anything is awaited. Every byte must
 * land in the buffer the caller gets back. Regular-file reads usually finish early (page cache);
 * the FIFO variants keep all 64 reads waiting in the driver throughout the churn, until node:fs writes.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { File } from '@ringio/fs';
import { stats } from '@ringio/runtime';
import { bufferCases, canary, churn, fdCount, gc, gcNow, guard, randomBytes, rt, tempDir, unavailable, type BufferCase } from './helpers.js';

if (unavailable !== null) console.log(`gc-fs-reads: skipping: ${unavailable}`);
const serial = unavailable === null ? test.serial : test.serial.skip;

const READS = 64;

const { dir } = tempDir('ringio-gc-fs-');

/** The bytes of read i: the window, or the whole buffer. */
function windowOf(buf: Uint8Array, c: BufferCase, n: number): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + (c.window?.offset ?? 0), n);
}

function outsideUntouched(buf: Uint8Array, c: BufferCase): boolean {
  if (c.window === undefined) return true;
  const { offset, length } = c.window;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.subarray(0, offset).every((x) => x === 0xee) && b.subarray(offset + length).every((x) => x === 0xee);
}

// ---------------------------------------------------------------------------------------------------
// regular file

for (const c of bufferCases) {
  serial(`64 concurrent readAt on a regular file survive GC while only the runtime holds their buffers: ${c.title}`, async (t) => {
    t.timeout(60_000);
    t.is(typeof gc, 'function', 'run with --expose-gc');
    const p = join(dir, `file-${c.size}-${c.window ? 'w' : 'f'}`);
    const data = randomBytes(READS * 4096 + READS);
    writeFileSync(p, data);
    // Read i starts at i * 4096 + i: unaligned, distinct, non-overlapping.
    const pos = (i: number): number => i * 4096 + i;
    const fds0 = fdCount();
    await rt(async () => {
      const f = await File.open(p);
      const refs: WeakRef<Uint8Array>[] = [];
      const reads: Promise<[number, Uint8Array]>[] = [];
      (() => {
        for (let i = 0; i < READS; i++) {
          const buf = c.make();
          refs.push(new WeakRef(buf));
          reads.push(f.readAt(buf, i % 2 ? pos(i) : BigInt(pos(i)), c.window ?? {}));
        }
      })();
      // Before the batch is even flushed to the driver: the runtime alone holds the buffers.
      gcNow();
      const dead = canary();
      let settledEarly = 0;
      for (const r of reads) void r.then(() => settledEarly++, () => settledEarly++);

      await churn(50);

      t.is(dead.deref(), undefined, 'the GC loop collects unreferenced buffers');
      t.true(
        refs.every((r) => r.deref() !== undefined),
        'every buffer is still alive (held by the runtime or by its settled promise)',
      );
      t.log(`${settledEarly} of ${READS} reads had settled before the churn ended`);

      const results = await guard(Promise.all(reads), 10_000, 'reads');
      await churn(2);
      let bad = 0;
      for (let i = 0; i < READS; i++) {
        const [n, buf] = results[i]!;
        const want = data.subarray(pos(i), pos(i) + c.size);
        if (n !== c.size || buf !== refs[i]!.deref() || !windowOf(buf, c, n).equals(want) || !outsideUntouched(buf, c)) {
          bad++;
          t.fail(`read ${i}: [${n}] got ${windowOf(buf, c, Math.min(n, c.size)).toString('hex').slice(0, 80)} want ${want.toString('hex').slice(0, 80)}`);
        }
      }
      t.is(bad, 0, 'every byte landed in the buffer the caller got back');
      t.is(stats().opsInFlight, 0);
      await f.close();
    });
    t.is(fdCount(), fds0);
  });
}

serial('64 concurrent readvAt on a regular file into pairs of 16-byte Uint8Arrays survive GC', async (t) => {
  t.timeout(60_000);
  t.is(typeof gc, 'function', 'run with --expose-gc');
  const p = join(dir, 'file-readv');
  const data = randomBytes(READS * 4096 + READS);
  writeFileSync(p, data);
  const pos = (i: number): number => i * 4096 + 3 * i;
  await rt(async () => {
    const f = await File.open(p);
    const refs: WeakRef<Uint8Array>[][] = [];
    const reads: Promise<[number, Uint8Array[]]>[] = [];
    (() => {
      for (let i = 0; i < READS; i++) {
        const pair = [new Uint8Array(16), new Uint8Array(16)];
        refs.push(pair.map((b) => new WeakRef(b)));
        reads.push(f.readvAt(pair, pos(i)));
      }
    })();
    gcNow();
    await churn(50);
    const results = await guard(Promise.all(reads), 10_000, 'readv');
    let bad = 0;
    for (let i = 0; i < READS; i++) {
      const [n, bufs] = results[i]!;
      const got = Buffer.concat(bufs);
      const want = data.subarray(pos(i), pos(i) + 32);
      if (n !== 32 || bufs[0] !== refs[i]![0]!.deref() || bufs[1] !== refs[i]![1]!.deref() || !got.equals(want)) {
        bad++;
        t.fail(`readv ${i}: [${n}] got ${got.toString('hex')} want ${want.toString('hex')}`);
      }
    }
    t.is(bad, 0);
    await f.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// FIFOs: the reads wait in the driver for the whole churn

for (const c of bufferCases) {
  serial(`64 reads pending on FIFOs survive GC while only the runtime holds their buffers: ${c.title}`, async (t) => {
    t.timeout(60_000);
    t.is(typeof gc, 'function', 'run with --expose-gc');
    const paths = Array.from({ length: READS }, (_, i) => join(dir, `fifo-${c.size}-${c.window ? 'w' : 'f'}-${i}`));
    for (const p of paths) execFileSync('mkfifo', [p]);
    const writers = paths.map((p) => openSync(p, fsc.O_RDWR)); // O_RDWR: opening does not block
    const fds0 = fdCount();
    try {
      await rt(async () => {
        const files = await Promise.all(paths.map((p) => File.open(p)));
        const refs: WeakRef<Uint8Array>[] = [];
        const reads: Promise<[number, Uint8Array]>[] = [];
        (() => {
          for (const f of files) {
            const buf = c.make();
            refs.push(new WeakRef(buf));
            reads.push(f.read(buf, c.window ?? {}));
          }
        })();
        gcNow();
        const dead = canary();
        let settledEarly = 0;
        for (const r of reads) void r.then(() => settledEarly++, () => settledEarly++);
        t.is(stats().opsInFlight, READS);

        await churn(50);

        t.is(dead.deref(), undefined, 'the GC loop collects unreferenced buffers');
        t.is(settledEarly, 0, 'no read finished before any data was written');
        t.is(stats().opsInFlight, READS);
        t.true(
          refs.every((r) => r.deref() !== undefined),
          'the runtime keeps every in-flight buffer alive',
        );

        const payloads = writers.map(() => randomBytes(c.size));
        writers.forEach((w, i) => t.is(writeSync(w, payloads[i]!), c.size));
        await churn(3);

        const results = await guard(Promise.all(reads), 10_000, 'FIFO reads');
        let bad = 0;
        for (let i = 0; i < READS; i++) {
          const [n, buf] = results[i]!;
          if (n !== c.size || buf !== refs[i]!.deref() || !windowOf(buf, c, n).equals(payloads[i]!) || !outsideUntouched(buf, c)) {
            bad++;
            t.fail(`FIFO ${i}: [${n}] got ${windowOf(buf, c, Math.min(n, c.size)).toString('hex')} want ${payloads[i]!.toString('hex')}`);
          }
        }
        t.is(bad, 0, 'every byte landed in the buffer the caller got back');
        await Promise.all(files.map((f) => f.close()));
        t.is(stats().opsInFlight, 0);
      });
      t.is(fdCount(), fds0, 'every File is closed');
    } finally {
      for (const w of writers) closeSync(w);
    }
  });
}
