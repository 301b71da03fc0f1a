/**
 * @ringio/fs File on the driver under test: random-offset writes and reads checked against node:fs,
 * EOF and short reads, a 5 GiB sparse file (number and bigint positions), O_DIRECT and its alignment
 * errors, readv/writev, the file position and append mode, truncate/allocate/sync/datasync, close()
 * with 64 reads in flight, cancellation of a pending read on a FIFO (plus a randomized race), stat and
 * lstat against fs.statSync, the closed-file contract and bad input.
 */
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants as fsc,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  type Stats as NodeStats,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { File, Stats, allocAligned, lstat, stat } from '@ringio/fs';
import { stats, sys } from '@ringio/runtime';
import { fdCount, guard, later, randomBytes, randomStep, rejectionOf, rtTest, run, tempDir, type AnyErr } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** This file's temp dir, and tmp(name): a fresh path in it. */
const { dir, tmp } = tempDir('ringio-fs-file-');

/** fdCount() inside a runtime, once the epoll driver's file pool (and its eventfd) is running. */
async function fdBaseline(): Promise<number> {
  await stat(dir);
  return fdCount();
}

const rand = (n: number): number => Math.floor(Math.random() * n);

/** Where two buffers first differ, for readable failures ('' when equal). */
function firstDiff(got: Uint8Array, want: Uint8Array): string {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) return `first difference at byte ${i}: got ${got[i]}, want ${want[i]}`;
  }
  return got.length === want.length ? '' : `length ${got.length}, want ${want.length}`;
}

function sameBytes(t: ExecutionContext, got: Uint8Array, want: Uint8Array, what: string): void {
  const d = firstDiff(got, want);
  t.is(d, '', what);
}

/** A FIFO at a fresh path, with a writer end opened by node:fs (O_RDWR: opening does not block). */
function fifo(name: string): { path: string; wfd: number } {
  const path = tmp(name);
  execFileSync('mkfifo', [path]);
  return { path, wfd: openSync(path, fsc.O_RDWR) };
}

const STAT_FIELDS = [
  'size',
  'mode',
  'uid',
  'gid',
  'nlink',
  'ino',
  'dev',
  'rdev',
  'blksize',
  'blocks',
  'atimeMs',
  'mtimeMs',
  'ctimeMs',
  'birthtimeMs',
] as const;
const STAT_KINDS = ['isFile', 'isDirectory', 'isSymbolicLink', 'isFIFO', 'isSocket', 'isCharacterDevice', 'isBlockDevice'] as const;

function sameStats(t: ExecutionContext, got: Stats, want: NodeStats, what: string): void {
  t.true(got instanceof Stats, `${what}: a Stats`);
  for (const k of STAT_FIELDS) t.is(got[k], want[k], `${what}: ${k}`);
  for (const k of STAT_KINDS) t.is(got[k](), want[k](), `${what}: ${k}()`);
  // node:fs rounds the Date getters to the millisecond, ringio truncates: allow that 1 ms.
  t.true(Math.abs(got.mtime.getTime() - want.mtime.getTime()) <= 1, `${what}: mtime`);
  t.true(Math.abs(got.birthtime.getTime() - want.birthtime.getTime()) <= 1, `${what}: birthtime`);
}

// ---------------------------------------------------------------------------------------------------
// random offsets

const RSIZE = 4 * MiB;

/** 500 random (offset, length) pairs inside a RSIZE file; lengths 0..64 KiB, some near the end. */
function randomRanges(count: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const off = i % 10 === 0 ? RSIZE - 1 - rand(100) : rand(RSIZE);
    const max = Math.min(RSIZE - off, 64 * KiB);
    out.push([off, i % 50 === 7 ? 0 : 1 + rand(max)]);
  }
  return out;
}

rtTest('500 random-offset writes (windows of larger buffers, number and bigint positions) land exactly where node:fs sees them', async (t) => {
  const p = tmp('random-writes');
  const model = randomBytes(RSIZE);
  writeFileSync(p, model);
  let bad = 0;
  await run(async () => {
    const f = await File.open(p, { write: true });
    for (const [i, [off, len]] of randomRanges(500).entries()) {
      const pad = rand(32);
      const src = randomBytes(pad + len + rand(32));
      const pos = i % 2 === 0 ? off : BigInt(off);
      const [n, b] = i % 3 === 0 ? await f.writeAt(src, pos, { offset: pad, length: len }) : await f.writeAllAt(src, pos, { offset: pad, length: len });
      if (n !== len || b !== src) {
        bad++;
        t.fail(`write ${i} at ${off}: resolved [${n}, ${b === src ? 'src' : 'another buffer'}] for ${len} bytes`);
      }
      src.copy(model, off, pad, pad + len);
    }
    await f.close();
  });
  t.is(bad, 0);
  const disk = readFileSync(p);
  t.is(disk.length, RSIZE, 'no write extended the file');
  sameBytes(t, disk, model, 'the file matches the model byte for byte');
});

rtTest('500 concurrent writes to disjoint random ranges, in random order, all land', async (t) => {
  const p = tmp('concurrent-writes');
  const cuts = new Set<number>([0, RSIZE]);
  while (cuts.size < 501) cuts.add(rand(RSIZE));
  const sorted = [...cuts].sort((a, b) => a - b);
  const ranges = sorted.slice(0, -1).map((off, i) => [off, sorted[i + 1]! - off] as [number, number]);
  for (let i = ranges.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [ranges[i], ranges[j]] = [ranges[j]!, ranges[i]!];
  }
  const model = randomBytes(RSIZE);
  await run(async () => {
    const f = await File.open(p, { write: true, create: true, truncate: true });
    const results = await Promise.all(ranges.map(([off, len], i) => f.writeAllAt(model.subarray(off, off + len), i % 2 ? BigInt(off) : off)));
    t.deepEqual(
      results.map(([n]) => n),
      ranges.map(([, len]) => len),
    );
    t.is(stats().opsInFlight, 0);
    await f.close();
  });
  const disk = readFileSync(p);
  t.is(disk.length, RSIZE);
  sameBytes(t, disk, model, 'concurrent disjoint writes');
});

rtTest('500 concurrent random-offset reads through ringio return exactly what node:fs wrote', async (t) => {
  const p = tmp('random-reads');
  const data = randomBytes(RSIZE);
  writeFileSync(p, data);
  await run(async () => {
    const f = await File.open(p);
    const ranges = randomRanges(500);
    const pads = ranges.map(() => rand(32));
    const bufs = ranges.map(([, len], i) => Buffer.alloc(pads[i]! + len + 16, 0xee));
    const reads = ranges.map(([off, len], i) => {
      const pos = i % 2 === 0 ? off : BigInt(off);
      const o = { offset: pads[i]!, length: len };
      return i % 3 === 0 ? f.readExactAt(bufs[i]!, pos, o) : f.readAt(bufs[i]!, pos, o);
    });
    const results = await Promise.all(reads);
    let bad = 0;
    for (const [i, [n, b]] of results.entries()) {
      const [off, len] = ranges[i]!;
      const pad = pads[i]!;
      const ok =
        n === len &&
        b === bufs[i] &&
        b.subarray(pad, pad + len).equals(data.subarray(off, off + len)) &&
        b.subarray(0, pad).every((x) => x === 0xee) &&
        b.subarray(pad + len).every((x) => x === 0xee);
      if (!ok && bad++ < 5) t.fail(`read ${i} of [${off}, +${len}) resolved ${n}: ${firstDiff(b.subarray(pad, pad + n), data.subarray(off, off + len))}`);
    }
    t.is(bad, 0, 'every read returned its range exactly, and nothing outside its window changed');
    await f.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// EOF

rtTest('EOF: readAt past EOF resolves 0, across EOF the remainder; readExactAt rejects ERR_RINGIO_UNEXPECTED_EOF with .n', async (t) => {
  const p = tmp('eof');
  const data = randomBytes(1000);
  writeFileSync(p, data);
  await run(async () => {
    const f = await File.open(p);
    const buf = Buffer.alloc(100, 0xee);
    t.deepEqual(await f.readAt(buf, 1000), [0, buf], 'at EOF');
    t.deepEqual(await f.readAt(buf, 5000), [0, buf], 'past EOF');
    t.deepEqual(await f.readAt(buf, 2n ** 40n), [0, buf], 'far past EOF (bigint)');
    t.true(buf.every((x) => x === 0xee), 'reads at or past EOF write nothing');

    for (const pos of [950, 950n]) {
      buf.fill(0xee);
      const [n, b] = await f.readAt(buf, pos);
      t.is(n, 50, `across EOF at ${typeof pos}: the remainder`);
      t.is(b, buf);
      sameBytes(t, buf.subarray(0, 50), data.subarray(950), 'the last 50 bytes');
      t.true(buf.subarray(50).every((x) => x === 0xee), 'nothing written past what was read');
    }

    buf.fill(0xee);
    const err = await rejectionOf(t, f.readExactAt(buf, 950));
    t.is(err.code, 'ERR_RINGIO_UNEXPECTED_EOF');
    t.is(err.n, 50, '.n: what was read before EOF');
    t.is(err.buf, buf);
    t.is(err.path, p);
    sameBytes(t, buf.subarray(0, 50), data.subarray(950), 'the partial data is in the buffer');

    const err0 = await rejectionOf(t, f.readExactAt(buf, 1000n));
    t.is(err0.code, 'ERR_RINGIO_UNEXPECTED_EOF');
    t.is(err0.n, 0);

    // A window: 40 bytes into the middle of the buffer, 20 of them before EOF.
    buf.fill(0xee);
    const errw = await rejectionOf(t, f.readExactAt(buf, 980, { offset: 30, length: 40 }));
    t.is(errw.n, 20);
    sameBytes(t, buf.subarray(30, 50), data.subarray(980), 'window data');
    t.true(buf.subarray(0, 30).every((x) => x === 0xee) && buf.subarray(50).every((x) => x === 0xee), 'outside the window untouched');

    // Exactly up to EOF succeeds; a zero-length readExactAt is [0, buf] even at EOF.
    t.deepEqual(await f.readExactAt(buf, 900), [100, buf]);
    sameBytes(t, buf, data.subarray(900), 'readExactAt up to EOF');
    t.deepEqual(await f.readExactAt(buf, 5000, { length: 0 }), [0, buf]);
    t.deepEqual(await f.readAt(buf, 500, { length: 0 }), [0, buf]);

    // readv across EOF fills the buffers in order and stops short.
    const a = Buffer.alloc(30, 0xee);
    const b = Buffer.alloc(30, 0xee);
    const c = Buffer.alloc(30, 0xee);
    const bufs = [a, b, c];
    const [nv, back] = await f.readvAt(bufs, 960);
    t.is(nv, 40);
    t.is(back, bufs);
    sameBytes(t, Buffer.concat([a, b.subarray(0, 10)]), data.subarray(960), 'readv across EOF');
    t.true(b.subarray(10).every((x) => x === 0xee) && c.every((x) => x === 0xee));
    t.deepEqual(await f.readvAt(bufs, 1000), [0, bufs], 'readv at EOF');

    // An empty file.
    const e = tmp('empty');
    writeFileSync(e, '');
    const fe = await File.open(e);
    t.deepEqual(await fe.readAt(buf, 0), [0, buf]);
    t.is((await rejectionOf(t, fe.readExactAt(buf, 0))).n, 0);
    await fe.close();
    await f.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// large positions

rtTest('a 5 GiB sparse file: writes at 5 GiB - 10 and 4 GiB + 7 (number and bigint) read back; size exact; still sparse', async (t) => {
  const p = tmp('sparse');
  const END = 5 * GiB;
  const a = randomBytes(10);
  const b = randomBytes(33);
  const c = randomBytes(6);
  const d = randomBytes(9);
  await run(async () => {
    const f = await File.open(p, { write: true, create: true, truncate: true });
    t.deepEqual(await f.writeAllAt(a, END - 10), [10, a], 'number position at 5 GiB - 10');
    t.deepEqual(await f.writeAllAt(b, 4n * BigInt(GiB) + 7n), [33, b], 'bigint position at 4 GiB + 7');
    // Around the 32-bit boundaries of the position's low word.
    t.deepEqual(await f.writeAllAt(c, 2 ** 32 - 3), [6, c], 'straddling 4 GiB');
    t.deepEqual(await f.writeAllAt(d, 2n ** 31n - 4n), [9, d], 'straddling 2 GiB (bigint)');

    const st = await f.stat();
    t.is(st.size, END, 'size is exactly 5 GiB');
    t.is(statSync(p).size, END);
    t.true(st.blocks * 512 < 4 * MiB, `the file stays sparse (${st.blocks} blocks)`);

    for (const [what, data, pos] of [
      ['a (number)', a, END - 10],
      ['a (bigint)', a, BigInt(END - 10)],
      ['b (number)', b, 4 * GiB + 7],
      ['b (bigint)', b, 4n * BigInt(GiB) + 7n],
      ['c (number)', c, 2 ** 32 - 3],
      ['d (bigint)', d, 2n ** 31n - 4n],
    ] as const) {
      const got = Buffer.alloc(data.length);
      t.deepEqual(await f.readExactAt(got, pos), [data.length, got], what);
      sameBytes(t, got, data, what);
    }
    // The hole before b reads as zeros; a read across the end returns what is left.
    const around = Buffer.alloc(20, 0xee);
    t.deepEqual(await f.readAt(around, 4 * GiB), [20, around]);
    sameBytes(t, around, Buffer.concat([c.subarray(3), Buffer.alloc(4), b.subarray(0, 13)]), 'end of c, a hole, then b');
    const tail = Buffer.alloc(64, 0xee);
    t.deepEqual(await f.readAt(tail, BigInt(END - 4)), [4, tail]);
    sameBytes(t, tail.subarray(0, 4), a.subarray(6), 'read across the 5 GiB end');
    t.deepEqual(await f.readAt(tail, END), [0, tail], 'at EOF');
    // readv/writev past 4 GiB too.
    const v1 = randomBytes(5);
    const v2 = randomBytes(11);
    t.deepEqual(await f.writevAt([v1, v2], 4 * GiB + 100), [16, [v1, v2]]);
    const r1 = Buffer.alloc(8);
    const r2 = Buffer.alloc(8);
    t.is((await f.readvAt([r1, r2], 4n * BigInt(GiB) + 100n))[0], 16);
    sameBytes(t, Buffer.concat([r1, r2]), Buffer.concat([v1, v2]), 'readv past 4 GiB');
    t.is((await f.stat()).size, END, 'still 5 GiB');
    await f.close();
  });
  // Cross-check through node:fs (bigint positions).
  const fd = openSync(p, 'r');
  try {
    const got = Buffer.alloc(10);
    t.is(readSync(fd, got, 0, 10, END - 10), 10);
    sameBytes(t, got, a, 'node:fs sees a');
    const got2 = Buffer.alloc(33);
    t.is(readSync(fd, got2, 0, 33, 4n * BigInt(GiB) + 7n), 33);
    sameBytes(t, got2, b, 'node:fs sees b');
    t.true(fstatSync(fd).blocks * 512 < 4 * MiB, 'still sparse on disk');
  } finally {
    closeSync(fd);
    rmSync(p);
  }
});

// ---------------------------------------------------------------------------------------------------
// O_DIRECT

/** Why O_DIRECT cannot be tested here (the file system under tmpdir() refuses it), or null. */
const noDirect: string | null = (() => {
  const probe = join(dir, 'probe-direct');
  try {
    closeSync(openSync(probe, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_DIRECT));
    return null;
  } catch (e) {
    if ((e as AnyErr).code === 'EINVAL') return `O_DIRECT unsupported on ${tmpdir()}`;
    throw e;
  } finally {
    rmSync(probe, { force: true });
  }
})();

/** Opens with O_DIRECT (the tests that call it skip where noDirect says it cannot work). */
function openDirect(_t: ExecutionContext, p: string): Promise<File> {
  return File.open(p, { write: true, create: true, direct: true });
}

rtTest('allocAligned: aligned, zeroed, exact size; bad sizes and alignments are RangeErrors', (t) => {
  for (const [size, align] of [
    [0, 4096],
    [1, 4096],
    [4096, 4096],
    [MiB, 4096],
    [100, 512],
    [64, 64 * KiB],
    [8, 1],
  ] as const) {
    const b = allocAligned(size, align);
    t.true(Buffer.isBuffer(b));
    t.is(b.length, size);
    if (size > 0) t.is(sys.alignOffset(b, align), 0, `${size} bytes aligned to ${align}`);
    t.true(b.every((x) => x === 0), 'zero-filled');
  }
  t.is(sys.alignOffset(allocAligned(4096), 4096), 0, 'default alignment 4096');
  t.throws(() => allocAligned(-1), { instanceOf: RangeError });
  t.throws(() => allocAligned(1.5), { instanceOf: RangeError });
  t.throws(() => allocAligned(2 ** 33), { instanceOf: RangeError });
  t.throws(() => allocAligned(16, 3), { instanceOf: RangeError });
  t.throws(() => allocAligned(16, 0), { instanceOf: RangeError });
  t.throws(() => allocAligned(16, 2 ** 21), { instanceOf: RangeError });
});

rtTest('O_DIRECT: 1 MiB round trips at 0 and 4096-aligned offsets (read, readv, writev), checked through node:fs too', async (t) => {
  const p = tmp('direct');
  let expected: Buffer | undefined;
  await run(async () => {
    const f = await openDirect(t, p);
    const model = Buffer.alloc(4 * MiB);
    for (const off of [0, 4096, 3 * 4096, MiB + 4096 * 7, 2 * MiB]) {
      const w = allocAligned(MiB);
      randomBytes(MiB).copy(w);
      t.deepEqual(await f.writeAllAt(w, off % 8192 === 0 ? off : BigInt(off)), [MiB, w], `write 1 MiB at ${off}`);
      w.copy(model, off);
      const r = allocAligned(MiB);
      t.deepEqual(await f.readExactAt(r, off), [MiB, r], `read 1 MiB at ${off}`);
      sameBytes(t, r, w, `O_DIRECT round trip at ${off}`);
    }
    // A window of an aligned buffer, aligned in memory and length.
    const big = allocAligned(5 * 4096);
    const win = randomBytes(2 * 4096);
    win.copy(big, 4096);
    t.deepEqual(await f.writeAt(big, 8192, { offset: 4096, length: 8192 }), [8192, big]);
    win.copy(model, 8192);
    // writev/readv with aligned buffers whose lengths are block multiples.
    const v = [allocAligned(4096), allocAligned(8192)];
    for (const b of v) randomBytes(b.length).copy(b);
    t.deepEqual(await f.writevAt(v, 3 * MiB), [12288, v]);
    Buffer.concat(v).copy(model, 3 * MiB);
    const rv = [allocAligned(8192), allocAligned(4096)];
    t.deepEqual(await f.readvAt(rv, 3 * MiB), [12288, rv]);
    sameBytes(t, Buffer.concat(rv), Buffer.concat(v), 'O_DIRECT readv');
    // Read the whole thing back through O_DIRECT.
    const all = allocAligned(4 * MiB);
    const [n] = await f.readAt(all, 0);
    const size = (await f.stat()).size;
    t.is(n, size);
    sameBytes(t, all.subarray(0, n), model.subarray(0, size), 'the whole file through O_DIRECT');
    expected = model.subarray(0, size);
    await f.close();
  });
  if (expected !== undefined) sameBytes(t, readFileSync(p), expected, 'node:fs sees what O_DIRECT wrote');
}, 30_000, noDirect);

rtTest('O_DIRECT: misaligned memory, position or length rejects ERR_RINGIO_ALIGNMENT before reaching the kernel', async (t) => {
  const p = tmp('direct-align');
  await run(async () => {
    const f = await openDirect(t, p);
    const good = allocAligned(8192);
    randomBytes(8192).copy(good);
    await f.writeAllAt(good, 0);
    const before = readFileSync(p);

    const unaligned = allocAligned(8192).subarray(1, 4097);
    t.not(sys.alignOffset(unaligned, 2), 0, 'the subarray really is misaligned');
    const cases: [string, () => Promise<unknown>, unknown][] = [
      ['readAt: misaligned memory', () => f.readAt(unaligned, 0), undefined],
      ['writeAt: misaligned memory', () => f.writeAt(unaligned, 0), undefined],
      ['readExactAt: misaligned memory', () => f.readExactAt(unaligned, 0), undefined],
      ['writeAllAt: misaligned memory', () => f.writeAllAt(unaligned, 0), undefined],
      ['readvAt: misaligned memory', () => f.readvAt([good.subarray(0, 4096), unaligned], 0), unaligned],
      ['writevAt: misaligned memory', () => f.writevAt([unaligned], 0), unaligned],
      ['readAt: position 100', () => f.readAt(good, 100), undefined],
      ['writeAt: position 100', () => f.writeAt(good, 100), undefined],
      ['writeAt: position 100n', () => f.writeAt(good, 100n), undefined],
      ['readAt: length 100', () => f.readAt(good, 0, { length: 100 }), undefined],
      ['writeAt: length 100', () => f.writeAt(good, 0, { length: 100 }), undefined],
      ['writeAllAt: length 100', () => f.writeAllAt(good, 4096, { length: 100 }), undefined],
      ['writeAt: window starting at 1', () => f.writeAt(good, 0, { offset: 1, length: 4096 }), undefined],
      ['writevAt: a 100-byte buffer among others', () => f.writevAt([good.subarray(0, 4096), allocAligned(100)], 0), undefined],
    ];
    for (const [what, call, buf] of cases) {
      const err = await rejectionOf(t, call());
      t.is(err.code, 'ERR_RINGIO_ALIGNMENT', what);
      t.is(err.path, p, `${what}: .path`);
      if (buf !== undefined) t.is(err.buf, buf, `${what}: .buf is the misaligned buffer`);
    }
    t.is(stats().opsInFlight, 0);
    sameBytes(t, readFileSync(p), before, 'no rejected write changed the file');
    await f.close();
  });
}, 30_000, noDirect);

// FAILING: readAt/writeAt (packages/fs/src/file.ts) pass buf.subarray(offset) to #checkDirect, so the
// ERR_RINGIO_ALIGNMENT error for misaligned memory carries a new view as .buf, not the caller's buffer
// (readvAt/writevAt do carry the caller's buffer). The rented buffer must come back as itself.
rtTest('O_DIRECT: the misaligned-memory error of readAt/writeAt/readExactAt/writeAllAt carries the caller\'s buffer', async (t) => {
  const p = tmp('direct-align-buf');
  await run(async () => {
    const f = await openDirect(t, p);
    const unaligned = allocAligned(8192).subarray(1, 4097);
    for (const [what, call] of [
      ['readAt', () => f.readAt(unaligned, 0)],
      ['writeAt', () => f.writeAt(unaligned, 0)],
      ['readExactAt', () => f.readExactAt(unaligned, 0)],
      ['writeAllAt', () => f.writeAllAt(unaligned, 0)],
    ] as const) {
      const err = await rejectionOf(t, call());
      t.is(err.code, 'ERR_RINGIO_ALIGNMENT', what);
      t.is(err.buf, unaligned, `${what}: .buf is the caller's buffer`);
    }
    await f.close();
  });
}, 30_000, noDirect);

// FAILING: File.#checkDirect (packages/fs/src/file.ts) treats the file-position sentinel -1 as a literal
// position, so read()/write() (and readvAt/writevAt at -1) on an O_DIRECT File always reject
// ERR_RINGIO_ALIGNMENT "position -1 is not a multiple of 512", although the kernel's file position is
// aligned (0) and O_DIRECT at the file position is valid.
rtTest('O_DIRECT: read()/write() at the (aligned) file position work', async (t) => {
  const p = tmp('direct-pos');
  await run(async () => {
    const f = await openDirect(t, p);
    const w = allocAligned(8192);
    randomBytes(8192).copy(w);
    t.deepEqual(await f.write(w), [8192, w]);
    const r = allocAligned(4096);
    t.deepEqual(await f.readAt(r, 4096), [4096, r]);
    sameBytes(t, r, w.subarray(4096), 'written at the file position');
    await f.close();
  });
}, 30_000, noDirect);

// ---------------------------------------------------------------------------------------------------
// readv / writev, the file position, append

rtTest('writevAt/readvAt at positions (number and bigint) gather and scatter in order', async (t) => {
  const p = tmp('vec');
  await run(async () => {
    const f = await File.open(p, { write: true, create: true });
    const a = randomBytes(100);
    const b = randomBytes(5000);
    const empty = Buffer.alloc(0);
    const c = new Uint8Array(randomBytes(1));
    const bufs = [a, empty, b, c];
    const [n, back] = await f.writevAt(bufs, 12345);
    t.is(n, 5101);
    t.is(back, bufs);
    const all = Buffer.concat([a, b, c]);
    const disk = readFileSync(p);
    t.is(disk.length, 12345 + 5101);
    t.true(disk.subarray(0, 12345).every((x) => x === 0), 'zeros before the position');
    sameBytes(t, disk.subarray(12345), all, 'writev gathered in order');

    // Overwrite the middle with a bigint position.
    const m1 = randomBytes(7);
    const m2 = randomBytes(9);
    t.deepEqual(await f.writevAt([m1, m2], 12345n + 50n), [16, [m1, m2]]);
    Buffer.concat([m1, m2]).copy(all, 50);

    const x = Buffer.alloc(50, 0xee);
    const y = new Uint8Array(5000).fill(0xee);
    const z = Buffer.alloc(100, 0xee);
    const rbufs = [x, y, z];
    const [rn, rback] = await f.readvAt(rbufs, 12345 + 10);
    t.is(rn, 5091, 'short at EOF');
    t.is(rback, rbufs);
    sameBytes(t, Buffer.concat([x, y, z.subarray(0, 41)]), all.subarray(10), 'readv scattered in order');
    t.true(z.subarray(41).every((v) => v === 0xee));
    const [rn2] = await f.readvAt([x, y], 12345n);
    t.is(rn2, 5050);
    sameBytes(t, Buffer.concat([x, y]), all.subarray(0, 5050), 'readv at a bigint position');
    await f.close();
  });
});


rtTest('read()/write() use and advance the file position; positional calls leave it alone', async (t) => {
  const p = tmp('pos');
  const a = randomBytes(10);
  const b = randomBytes(20);
  const c = randomBytes(3);
  const d = randomBytes(4);
  const x = randomBytes(5);
  await run(async () => {
    const f = await File.open(p, { write: true, create: true, truncate: true });
    t.deepEqual(await f.write(a), [10, a]);
    t.deepEqual(await f.writeAt(x, 100), [5, x], 'a positional write far ahead...');
    t.deepEqual(await f.write(b, { offset: 0, length: 20 }), [20, b], '...does not move the file position');
    t.deepEqual(await f.writevAt([c, d], -1), [7, [c, d]], 'writevAt(-1) writes at the file position');
    const end = Buffer.alloc(8, 0xee);
    t.deepEqual(await f.readAt(end, -1), [8, end], 'readAt(-1) reads on from the file position (the gap before 100)');
    t.true(end.every((v) => v === 0), 'zeros in the gap');
    await f.close();

    const want = Buffer.alloc(105);
    Buffer.concat([a, b, c, d]).copy(want);
    x.copy(want, 100);
    sameBytes(t, readFileSync(p), want, 'what node:fs sees');

    const g = await File.open(p);
    const r1 = Buffer.alloc(10);
    t.deepEqual(await g.read(r1), [10, r1]);
    sameBytes(t, r1, a, 'first read()');
    const skip = Buffer.alloc(4);
    t.deepEqual(await g.readAt(skip, 50), [4, skip], 'a positional read...');
    const r2 = Buffer.alloc(30, 0xee);
    t.deepEqual(await g.read(r2, { offset: 5, length: 20 }), [20, r2], '...does not move the file position');
    sameBytes(t, r2.subarray(5, 25), b, 'second read() into a window');
    t.true(r2.subarray(0, 5).every((v) => v === 0xee) && r2.subarray(25).every((v) => v === 0xee));
    const v1 = Buffer.alloc(2);
    const v2 = Buffer.alloc(5);
    t.deepEqual(await g.readvAt([v1, v2], -1), [7, [v1, v2]], 'readvAt(-1) at the file position');
    sameBytes(t, Buffer.concat([v1, v2]), Buffer.concat([c, d]), 'readv at the file position');
    const rest = Buffer.alloc(200);
    t.deepEqual(await g.read(rest), [105 - 37, rest]);
    sameBytes(t, rest.subarray(0, 68), want.subarray(37), 'the rest');
    t.deepEqual(await g.read(rest), [0, rest], 'then EOF');
    t.deepEqual(await g.read(rest), [0, rest], 'and EOF again');
    await g.close();
  });
});

rtTest('append mode: write() and writeAt() go to the end, also after another writer appended', async (t) => {
  const p = tmp('append');
  writeFileSync(p, 'hello');
  await run(async () => {
    const f = await File.open(p, { append: true });
    t.deepEqual(await f.write(Buffer.from(' world')), [6, Buffer.from(' world')]);
    t.is(readFileSync(p, 'utf8'), 'hello world');
    writeFileSync(p, readFileSync(p, 'utf8') + '|node|');
    const bang = Buffer.from('!');
    t.deepEqual(await f.write(bang), [1, bang]);
    t.is(readFileSync(p, 'utf8'), 'hello world|node|!', 'appended after what node:fs added');
    // The file was opened read-write (read defaults to true).
    const back = Buffer.alloc(5);
    t.deepEqual(await f.readAt(back, 0), [5, back]);
    t.is(back.toString(), 'hello');
    await f.close();

    const w = await File.open(p, { read: false, append: true });
    const more = Buffer.from('more');
    t.deepEqual(await w.write(more), [4, more]);
    t.is((await rejectionOf(t, w.readAt(Buffer.alloc(1), 0))).code, 'EBADF', 'write-only');
    await w.close();
    t.is(readFileSync(p, 'utf8'), 'hello world|node|!more');
  });
});

rtTest('truncate, allocate, sync and datasync: sizes, zeros, blocks', async (t) => {
  const p = tmp('trunc');
  const data = randomBytes(10_000);
  writeFileSync(p, data);
  await run(async () => {
    const f = await File.open(p, { write: true });
    await f.truncate(100);
    t.is((await f.stat()).size, 100, 'cut to 100');
    t.is(statSync(p).size, 100);
    await f.truncate(5000n);
    t.is((await f.stat()).size, 5000, 'extended to 5000 (bigint)');
    const disk = readFileSync(p);
    sameBytes(t, disk.subarray(0, 100), data.subarray(0, 100), 'the first 100 bytes stay');
    t.true(disk.subarray(100).every((v) => v === 0), 'extension reads as zeros');
    await f.truncate();
    t.is((await f.stat()).size, 0, 'truncate() cuts to 0');

    await f.allocate(0, MiB);
    const s1 = await f.stat();
    t.is(s1.size, MiB, 'allocate grows the size');
    t.true(s1.blocks * 512 >= MiB, `blocks cover the allocation (${s1.blocks})`);
    t.true(readFileSync(p).every((v) => v === 0), 'allocated space reads as zeros');
    await f.allocate(2n * BigInt(MiB), 4096);
    t.is((await f.stat()).size, 2 * MiB + 4096, 'allocate beyond the end grows to offset + length');
    await f.allocate(0, 10);
    t.is((await f.stat()).size, 2 * MiB + 4096, 'allocate inside never shrinks');

    const w = randomBytes(3000);
    await f.writeAllAt(w, 1234);
    await f.sync();
    await f.datasync();
    sameBytes(t, readFileSync(p).subarray(1234, 4234), w, 'data written before sync is visible');
    t.is(statSync(p).size, 2 * MiB + 4096);
    await f.close();

    // fsync is allowed on a read-only fd.
    const r = await File.open(p);
    await r.sync();
    await r.datasync();
    await r.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// close with reads in flight, the closed contract

rtTest('close() while 64 reads are in flight: each read resolves its exact data or rejects ERR_RINGIO_CLOSED; no fd leaks', async (t) => {
  const p = tmp('close-inflight');
  const SZ = 64 * KiB;
  const data = randomBytes(64 * SZ);
  writeFileSync(p, data);
  const fdsOutside = fdCount();
  let direct = 0;
  await run(async () => {
    const fds0 = await fdBaseline();
    const tally = { ok: 0, closed: 0 };
    for (let round = 0; round < 6; round++) {
      // Rounds 0-3 read from the page cache, with 64 KiB or 1 MiB; 4-5 use O_DIRECT, which is slower.
      let f: File;
      if (round >= 4) {
        try {
          f = await File.open(p, { direct: true });
          direct++;
        } catch {
          continue;
        }
      } else f = await File.open(p);
      const len = round % 2 === 1 ? 16 * SZ : SZ;
      const bufs = Array.from({ length: 64 }, () => {
        const b = round >= 4 ? allocAligned(len) : Buffer.alloc(len);
        return b.fill(0xee);
      });
      let settled = 0;
      const reads = bufs.map((b, i) => {
        const pos = (i * SZ) % data.length;
        const pr = i % 2 ? f.readAt(b, pos) : f.readAt(b, BigInt(pos));
        void pr.then(
          () => settled++,
          () => settled++,
        );
        return pr;
      });
      const outcomes = Promise.allSettled(reads);
      await f.close();
      t.is(settled, 64, `round ${round}: every read settled before close() resolved`);
      t.is(f.fd, -1);
      let bad = 0;
      for (const [i, r] of (await outcomes).entries()) {
        const pos = (i * SZ) % data.length;
        const want = data.subarray(pos, Math.min(pos + len, data.length));
        if (r.status === 'fulfilled') {
          const [n, b] = r.value;
          if (n !== want.length || b !== bufs[i] || !b.subarray(0, n).equals(want)) {
            bad++;
            t.fail(`round ${round} read ${i}: resolved ${n} bytes: ${firstDiff(b.subarray(0, n), want)}`);
          } else tally.ok++;
        } else {
          const e = r.reason as AnyErr;
          if (e.code !== 'ERR_RINGIO_CLOSED' || e.buf !== bufs[i]) {
            bad++;
            t.fail(`round ${round} read ${i}: rejected ${String(e.code)} ${e.message} (buf ${e.buf === bufs[i] ? 'same' : 'other'})`);
          } else tally.closed++;
        }
      }
      t.is(bad, 0);
      t.is(stats().opsInFlight, 0, `round ${round}: nothing left in flight`);
      t.is(fdCount(), fds0, `round ${round}: the file's fd is closed`);
    }
    t.log(`${tally.ok} reads won, ${tally.closed} were cancelled by close() (${direct} O_DIRECT rounds)`);
  });
  t.is(fdCount(), fdsOutside, 'back to the baseline once the runtime is gone');
});

rtTest('after close every op rejects ERR_RINGIO_CLOSED (with its buffer); close is idempotent; asyncDispose closes', async (t) => {
  const p = tmp('closed');
  writeFileSync(p, randomBytes(100));
  await run(async () => {
    const fds0 = await fdBaseline();
    const f = await File.open(p, { write: true });
    t.true(f.fd >= 0);
    t.is(f.path, p);
    const c1 = f.close();
    const c2 = f.close();
    t.is(c1, c2, 'close() returns the same promise while closing');
    await c1;
    await f.close();
    t.is(f.fd, -1);
    t.is(fdCount(), fds0);
    const buf = Buffer.alloc(8);
    const bufs = [buf, Buffer.alloc(4)];
    const withBuf: [string, () => Promise<unknown>, unknown][] = [
      ['readAt', () => f.readAt(buf, 0), buf],
      ['writeAt', () => f.writeAt(buf, 0), buf],
      ['readExactAt', () => f.readExactAt(buf, 0), buf],
      ['writeAllAt', () => f.writeAllAt(buf, 0), buf],
      ['read', () => f.read(buf), buf],
      ['write', () => f.write(buf), buf],
      ['readvAt', () => f.readvAt(bufs, 0), bufs],
      ['writevAt', () => f.writevAt(bufs, 0), bufs],
    ];
    for (const [name, call, b] of withBuf) {
      const err = await rejectionOf(t, call());
      t.is(err.code, 'ERR_RINGIO_CLOSED', name);
      t.is(err.buf, b, `${name}: .buf`);
    }
    for (const [name, call] of [
      ['sync', () => f.sync()],
      ['datasync', () => f.datasync()],
      ['truncate', () => f.truncate(0)],
      ['allocate', () => f.allocate(0, 10)],
      ['stat', () => f.stat()],
    ] as const) {
      t.is((await rejectionOf(t, call())).code, 'ERR_RINGIO_CLOSED', name);
    }
    t.is(readFileSync(p).length, 100, 'nothing reached the file');

    const g = await File.open(p);
    t.is(fdCount(), fds0 + 1);
    await g[Symbol.asyncDispose]();
    t.is(g.fd, -1);
    t.is(fdCount(), fds0, 'asyncDispose closed the fd');
    t.is((await rejectionOf(t, g.readAt(buf, 0))).code, 'ERR_RINGIO_CLOSED');
  });
});

// ---------------------------------------------------------------------------------------------------
// cancellation (FIFO: reads wait for readiness)

rtTest('a pending read on a FIFO aborted by its signal rejects AbortError with its buffer; data written afterwards is read completely', async (t) => {
  const { path, wfd } = fifo('fifo-cancel');
  try {
    await run(async () => {
      const f = await File.open(path);
      t.true((await f.stat()).isFIFO());
      const buf = Buffer.alloc(64, 0x55);
      const ac = new AbortController();
      const reason = new Error('cancel the read');
      let settled = false;
      const pending = f.read(buf, { signal: ac.signal });
      void pending.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 50));
      t.false(settled, 'the read waits for data');
      t.is(stats().opsInFlight, 1);
      ac.abort(reason);
      const err = await guard(rejectionOf(t, pending), 5000, 'the aborted read');
      t.is(err.name, 'AbortError');
      t.is(err.buf, buf, '.buf is the rented buffer');
      t.is((err as { cause?: unknown }).cause, reason);
      t.true(buf.every((v) => v === 0x55), 'the cancelled read wrote nothing');
      t.is(stats().opsInFlight, 0);

      // Already aborted: rejects at once, nothing submitted.
      const e2 = await rejectionOf(t, f.readAt(buf, -1, { signal: AbortSignal.abort() }));
      t.is(e2.name, 'AbortError');
      t.is(e2.buf, buf);

      // The File still works, and no byte written after the abort is lost.
      const payload = randomBytes(32 * KiB);
      t.is(writeSync(wfd, payload), payload.length);
      const got = Buffer.alloc(payload.length);
      let n = 0;
      while (n < got.length) {
        const [k] = await guard(f.read(got, { offset: n }), 5000, 'reading the payload');
        t.true(k > 0);
        n += k;
      }
      sameBytes(t, got, payload, 'everything written after the abort');
      await f.close();
    });
  } finally {
    closeSync(wfd);
  }
});

rtTest('a FIFO opens without waiting for a writer; with none, a read is EOF; a writer\'s bytes then EOF', async (t) => {
  const path = tmp('fifo-nowriter');
  execFileSync('mkfifo', [path]);
  await run(async () => {
    const f = await guard(File.open(path), 5000, 'opening a FIFO nobody writes to');
    const buf = Buffer.alloc(16, 0xee);
    t.deepEqual(await guard(f.read(buf), 5000, 'read with no writer'), [0, buf], 'no writer: end of file');
    const w = openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
    try {
      t.is(writeSync(w, 'fifo bytes'), 10);
    } finally {
      closeSync(w);
    }
    const [n] = await guard(f.read(buf), 5000, 'read after the writer wrote');
    t.is(buf.subarray(0, n).toString(), 'fifo bytes');
    t.deepEqual(await guard(f.read(buf), 5000, 'read after the writer left'), [0, buf], 'the writer closed: end of file');
    await f.close();
  });
});

rtTest('cancellation race on a FIFO: 300 reads aborted at random points racing 1-byte writes lose and reorder no byte', async (t) => {
  const { path, wfd } = fifo('fifo-race');
  const N = 300;
  try {
    await run(async () => {
      const f = await File.open(path);
      const got: number[] = [];
      let won = 0;
      let aborted = 0;
      for (let i = 0; i < N; i++) {
        const buf = Buffer.alloc(4, 0xff);
        const ac = new AbortController();
        const pr = f.read(buf, { signal: ac.signal });
        const w = later(randomStep(), () => writeSync(wfd, Buffer.from([i % 251])));
        const a = later(randomStep(), () => ac.abort());
        try {
          const [n, b] = await guard(pr, 5000, `read ${i}`);
          if (b !== buf) t.fail('resolved with another buffer');
          for (let k = 0; k < n; k++) got.push(buf[k]!);
          won++;
        } catch (e) {
          const err = e as AnyErr;
          if (err.name !== 'AbortError') throw err;
          if (err.buf !== buf) t.fail('AbortError without its buffer');
          if (!buf.every((x) => x === 0xff)) t.fail('a cancelled read wrote into the buffer');
          aborted++;
        }
        await Promise.all([w, a]);
      }
      // Whatever the cancelled reads did not take is still in the FIFO.
      const rest = Buffer.alloc(N);
      while (got.length < N) {
        const [n] = await guard(f.read(rest), 5000, `draining (have ${got.length} of ${N})`);
        for (let k = 0; k < n; k++) got.push(rest[k]!);
      }
      t.log(`${won} reads won, ${aborted} were cancelled`);
      t.deepEqual(
        got,
        Array.from({ length: N }, (_, i) => i % 251),
        'every byte, in order',
      );
      t.is(stats().opsInFlight, 0);
      await f.close();
    });
  } finally {
    closeSync(wfd);
  }
});

// ---------------------------------------------------------------------------------------------------
// stat

rtTest('File.stat(), stat() and lstat() equal fs.statSync / fs.lstatSync field by field', async (t) => {
  const sub = tmp('stat-dir');
  mkdirSync(sub);
  const p = join(sub, 'file');
  writeFileSync(p, randomBytes(12_345), { mode: 0o640 });
  const link = join(sub, 'link');
  symlinkSync('file', link);
  const dangling = join(sub, 'dangling');
  symlinkSync('missing-target', dangling);
  const { path: fifoPath, wfd } = fifo('stat-fifo');
  try {
    await run(async () => {
      const f = await File.open(p);
      sameStats(t, await f.stat(), statSync(p), 'File.stat()');
      sameStats(t, await stat(p), statSync(p), 'stat(file)');
      sameStats(t, await lstat(p), lstatSync(p), 'lstat(file)');
      t.is((await f.stat()).mode & 0o777, 0o640 & ~process.umask());
      await f.close();

      sameStats(t, await stat(sub), statSync(sub), 'stat(dir)');
      sameStats(t, await stat(link), statSync(link), 'stat(symlink) follows it');
      const ls = await lstat(link);
      sameStats(t, ls, lstatSync(link), 'lstat(symlink)');
      t.true(ls.isSymbolicLink());
      t.is(ls.size, 'file'.length, 'a symlink is as big as its target string');
      sameStats(t, await lstat(dangling), lstatSync(dangling), 'lstat(dangling symlink)');
      const de = await rejectionOf(t, stat(dangling));
      t.is(de.code, 'ENOENT', 'stat follows a dangling symlink');
      t.is(de.path, dangling);

      sameStats(t, await stat(fifoPath), statSync(fifoPath), 'stat(fifo)');
      t.true((await stat(fifoPath)).isFIFO());
      sameStats(t, await stat('/dev/null'), statSync('/dev/null'), 'stat(/dev/null): rdev');
      const ff = await File.open(fifoPath);
      sameStats(t, await ff.stat(), statSync(fifoPath), 'File.stat() of a FIFO');
      await ff.close();
      // Buffer and URL paths.
      sameStats(t, await stat(Buffer.from(p)), statSync(p), 'stat(Buffer path)');
      sameStats(t, await stat(new URL(`file://${p}`)), statSync(p), 'stat(file: URL)');

      // A write changes size and mtime the same way for both.
      const g = await File.open(p, { write: true });
      await g.writeAllAt(randomBytes(10), 20_000);
      sameStats(t, await g.stat(), statSync(p), 'File.stat() after a write');
      await g.close();
    });
  } finally {
    closeSync(wfd);
  }
});

// ---------------------------------------------------------------------------------------------------
// bad input

rtTest('bad input: TypeError / RangeError, never a kernel error, nothing leaked', async (t) => {
  const p = tmp('bad-input');
  writeFileSync(p, randomBytes(64));
  await run(async () => {
    const fds0 = await fdBaseline();
    const f = await File.open(p, { write: true });
    const buf = Buffer.alloc(8);
    const any = (v: unknown): never => v as never;
    // buffers
    for (const b of ['abc', null, undefined, 5, [1, 2], new ArrayBuffer(8), new Uint16Array(4), new DataView(new ArrayBuffer(8))]) {
      await t.throwsAsync(f.readAt(any(b), 0), { instanceOf: TypeError });
      await t.throwsAsync(f.writeAt(any(b), 0), { instanceOf: TypeError });
      await t.throwsAsync(f.readExactAt(any(b), 0), { instanceOf: TypeError });
      await t.throwsAsync(f.writeAllAt(any(b), 0), { instanceOf: TypeError });
      await t.throwsAsync(f.read(any(b)), { instanceOf: TypeError });
      await t.throwsAsync(f.write(any(b)), { instanceOf: TypeError });
    }
    await t.throwsAsync(f.readvAt(any('x'), 0), { instanceOf: TypeError });
    await t.throwsAsync(f.writevAt(any(buf), 0), { instanceOf: TypeError });
    await t.throwsAsync(f.writevAt([buf, any('x')], 0), { instanceOf: TypeError });
    await t.throwsAsync(f.readvAt([], 0), { instanceOf: RangeError });
    await t.throwsAsync(f.writevAt(new Array(1025).fill(buf), 0), { instanceOf: RangeError });
    // positions
    for (const pos of [-2, -1.5e9, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, -2n, 2n ** 63n, 2n ** 64n]) {
      await t.throwsAsync(f.readAt(buf, any(pos)), { instanceOf: RangeError }, `readAt at ${pos}`);
      await t.throwsAsync(f.writeAt(buf, any(pos)), { instanceOf: RangeError }, `writeAt at ${pos}`);
      await t.throwsAsync(f.readvAt([buf], any(pos)), { instanceOf: RangeError }, `readvAt at ${pos}`);
      await t.throwsAsync(f.writevAt([buf], any(pos)), { instanceOf: RangeError }, `writevAt at ${pos}`);
      await t.throwsAsync(f.readExactAt(buf, any(pos)), { instanceOf: RangeError }, `readExactAt at ${pos}`);
      await t.throwsAsync(f.writeAllAt(buf, any(pos)), { instanceOf: RangeError }, `writeAllAt at ${pos}`);
      await t.throwsAsync(f.truncate(any(pos)), { instanceOf: RangeError }, `truncate to ${pos}`);
      await t.throwsAsync(f.allocate(any(pos), 10), { instanceOf: RangeError }, `allocate at ${pos}`);
    }
    for (const pos of ['5', null, {}, undefined]) {
      await t.throwsAsync(f.readAt(buf, any(pos)), { instanceOf: TypeError }, `readAt at ${String(pos)}`);
      await t.throwsAsync(f.writeAt(buf, any(pos)), { instanceOf: TypeError }, `writeAt at ${String(pos)}`);
    }
    // -1 means the file position: positional-only calls refuse it.
    await t.throwsAsync(f.readExactAt(buf, -1), { instanceOf: RangeError });
    await t.throwsAsync(f.readExactAt(buf, -1n), { instanceOf: RangeError });
    await t.throwsAsync(f.writeAllAt(buf, -1), { instanceOf: RangeError });
    await t.throwsAsync(f.truncate(-1), { instanceOf: RangeError });
    await t.throwsAsync(f.allocate(-1, 10), { instanceOf: RangeError });
    for (const len of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      await t.throwsAsync(f.allocate(0, len), { instanceOf: RangeError }, `allocate length ${len}`);
    }
    // windows
    for (const w of [{ offset: -1 }, { offset: 9 }, { offset: 1.5 }, { offset: 4, length: 5 }, { length: -1 }, { length: 9 }, { length: 2.5 }, { offset: 8, length: 1 }]) {
      await t.throwsAsync(f.readAt(buf, 0, w), { instanceOf: RangeError }, `readAt ${JSON.stringify(w)}`);
      await t.throwsAsync(f.writeAt(buf, 0, w), { instanceOf: RangeError }, `writeAt ${JSON.stringify(w)}`);
      await t.throwsAsync(f.readExactAt(buf, 0, w), { instanceOf: RangeError }, `readExactAt ${JSON.stringify(w)}`);
      await t.throwsAsync(f.writeAllAt(buf, 0, w), { instanceOf: RangeError }, `writeAllAt ${JSON.stringify(w)}`);
    }
    await t.throwsAsync(f.readAt(buf, 0, { signal: any({}) }), { instanceOf: TypeError }, 'signal must be an AbortSignal');
    // paths
    for (const path of [123, undefined, null, {}, '', 'a\0b', Buffer.alloc(0), new URL('http://example.com/x')]) {
      await t.throwsAsync(File.open(any(path)), { instanceOf: TypeError }, `open(${String(path)})`);
      await t.throwsAsync(File.create(any(path)), { instanceOf: TypeError }, `create(${String(path)})`);
      await t.throwsAsync(stat(any(path)), { instanceOf: TypeError }, `stat(${String(path)})`);
      await t.throwsAsync(lstat(any(path)), { instanceOf: TypeError }, `lstat(${String(path)})`);
    }
    // open options
    for (const opts of [null, 'rw', 'R', 5]) {
      await t.throwsAsync(File.open(p, any(opts)), { instanceOf: TypeError }, `opts ${String(opts)}`);
    }
    for (const opts of [
      { read: 'yes' },
      { write: 1 },
      { append: 'true' },
      { create: null },
      { direct: 1 },
      { exclusive: 'x' },
      { read: false },
      { read: false, write: false, append: false },
      { create: true },
      { truncate: true },
      { read: true, create: true },
      { write: true, exclusive: true },
    ]) {
      await t.throwsAsync(File.open(p, any(opts)), { instanceOf: TypeError }, `opts ${JSON.stringify(opts)}`);
    }
    for (const mode of [-1, 0o10000, 1.5, Number.NaN]) {
      await t.throwsAsync(File.open(p, { write: true, create: true, mode }), { instanceOf: RangeError }, `mode ${mode}`);
      await t.throwsAsync(File.create(p, { mode }), { instanceOf: RangeError }, `create mode ${mode}`);
    }
    t.is(stats().opsInFlight, 0);
    await f.close();
    t.is(fdCount(), fds0, 'no failed call left an fd open');
    t.is(readFileSync(p).length, 64, 'the file is unchanged (truncate was never run)');
  });
});

// FAILING: checkPosition (packages/runtime/src/op.ts) throws TypeError('position must be an integer or
// bigint') for a non-integer number such as 1.5, NaN or Infinity. A number that is not a valid position
// is a RangeError, as for the offset/length window (checkRange) and as node:fs does
// (fs.readSync(fd, buf, 0, 1, 1.5) throws RangeError ERR_OUT_OF_RANGE).
rtTest('bad input: non-integer number positions (1.5, NaN, Infinity) are RangeErrors', async (t) => {
  const p = tmp('bad-position');
  writeFileSync(p, randomBytes(64));
  await run(async () => {
    const f = await File.open(p, { write: true });
    const buf = Buffer.alloc(8);
    for (const pos of [1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      await t.throwsAsync(f.readAt(buf, pos), { instanceOf: RangeError }, `readAt at ${pos}`);
      await t.throwsAsync(f.writeAt(buf, pos), { instanceOf: RangeError }, `writeAt at ${pos}`);
      await t.throwsAsync(f.readvAt([buf], pos), { instanceOf: RangeError }, `readvAt at ${pos}`);
      await t.throwsAsync(f.truncate(pos), { instanceOf: RangeError }, `truncate to ${pos}`);
      await t.throwsAsync(f.allocate(pos, 1), { instanceOf: RangeError }, `allocate at ${pos}`);
    }
    await f.close();
  });
});

// FAILING: FtruncateOp, FallocateOp and FsyncOp (packages/fs/src/ops/ftruncate.ts, fallocate.ts,
// fsync.ts) call check(res) without the File's path, so their errno errors have no .path, unlike every
// other File error (read/write/stat/open carry path).
rtTest('errno errors of truncate, allocate and sync carry the file path', async (t) => {
  const p = tmp('errpath');
  writeFileSync(p, randomBytes(64));
  const { path: fifoPath, wfd } = fifo('errpath-fifo');
  try {
    await run(async () => {
      const ro = await File.open(p);
      const te = await rejectionOf(t, ro.truncate(0)); // ftruncate on a read-only fd: EINVAL
      t.is(te.code, 'EINVAL');
      t.is(te.syscall, 'ftruncate');
      t.is(te.path, p, 'truncate error .path');
      const ae = await rejectionOf(t, ro.allocate(0, 10)); // fallocate on a read-only fd: EBADF
      t.is(ae.code, 'EBADF');
      t.is(ae.path, p, 'allocate error .path');
      await ro.close();
      const ff = await File.open(fifoPath);
      const se = await rejectionOf(t, ff.sync()); // fsync on a FIFO: EINVAL
      t.is(se.code, 'EINVAL');
      t.is(se.path, fifoPath, 'sync error .path');
      await ff.close();
    });
  } finally {
    closeSync(wfd);
  }
});

// Regression: io_uring does not advance the kernel's file position for O_DIRECT reads at offset -1,
// so File tracks the position itself for O_DIRECT read()/write(); every call must see the next block.
rtTest('O_DIRECT: successive read() calls walk the file block by block (both drivers)', async (t) => {
  await run(async () => {
    const p = join(tmpdir(), `ringio-dio-seq-${process.pid}.bin`);
    const data = Buffer.alloc(4 * 4096);
    for (let i = 0; i < 4; i++) data.fill(65 + i, i * 4096, (i + 1) * 4096);
    writeFileSync(p, data);
    const f = await File.open(p, { direct: true });
    try {
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        const [n, b] = await f.read(allocAligned(4096));
        seen.push(n === 0 ? 'EOF' : `${String.fromCharCode(b[0]!)}${n}`);
      }
      t.deepEqual(seen, ['A4096', 'B4096', 'C4096', 'D4096', 'EOF']);
      const w = await File.open(p, { write: true, direct: true });
      const block = allocAligned(4096).fill(90);
      await w.write(block);
      await w.write(block);
      await w.close();
      const back = readFileSync(p);
      t.is(back[0], 90);
      t.is(back[4096], 90);
      t.is(back[8192], 67, 'the third block is untouched');
    } finally {
      await f.close();
      unlinkSync(p);
    }
  });
}, 30_000, noDirect);
