/**
 * GC tier: buffers of reads in flight are referenced only by the runtime. Full and minor GCs (which
 * compact and move objects) and heap churn run while the reads wait; the kernel (io_uring) or the
 * legacy engine (epoll) then writes into them. Every byte must land in the buffer the caller gets back,
 * including small Uint8Arrays that V8 allocates on its moving heap.
 */
import test from 'ava';
import { read, ReadOp, pipe, submit, write, closeSync, stats } from '@ringio/runtime';
import { canary, churn, fdCount, gc, randomBytes, rt, unavailable } from './helpers.js';

if (unavailable !== null) console.log(`gc-pipe-reads: skipping: ${unavailable}`);
const serial = unavailable === null ? test.serial : test.serial.skip;

const PIPES = 64;

interface Submitted {
  reads: Promise<[number, Uint8Array]>[];
  refs: WeakRef<Uint8Array>[];
}

/**
 * Submits one read per pipe into a fresh buffer made by `make` and returns only the promises and weak
 * references: no strong reference to a buffer survives this call outside the runtime.
 */
function submitReads(fds: number[], make: () => Uint8Array, via: 'submit' | 'read', window?: { offset: number; length: number }): Submitted {
  const reads: Promise<[number, Uint8Array]>[] = [];
  const refs: WeakRef<Uint8Array>[] = [];
  for (const fd of fds) {
    const buf = make();
    refs.push(new WeakRef(buf));
    if (via === 'submit') reads.push(submit(new ReadOp(fd, buf, window?.offset ?? 0, window?.length)));
    else reads.push(read(fd, buf, window ?? {}));
  }
  return { reads, refs };
}

interface Case {
  title: string;
  size: number;
  make: () => Uint8Array;
  via: 'submit' | 'read';
  window?: { offset: number; length: number };
}

const cases: Case[] = [
  { title: '4096-byte Buffers via submit(new ReadOp())', size: 4096, make: () => Buffer.alloc(4096), via: 'submit' },
  { title: '32-byte Uint8Arrays (on V8 heap) via submit(new ReadOp())', size: 32, make: () => new Uint8Array(32), via: 'submit' },
  { title: '32-byte Uint8Arrays (on V8 heap) via read()', size: 32, make: () => new Uint8Array(32), via: 'read' },
  {
    title: 'a 32-byte window in the middle of 48-byte Uint8Arrays (on V8 heap)',
    size: 32,
    make: () => new Uint8Array(48).fill(0xee),
    via: 'read',
    window: { offset: 8, length: 32 },
  },
];

for (const c of cases) {
  serial(`reads survive GC while only the runtime holds their buffers: ${c.title}`, async (t) => {
    t.timeout(60_000);
    t.is(typeof gc, 'function', 'run with --expose-gc');
    const fds0 = fdCount();
    await rt(async () => {
      const pipes = Array.from({ length: PIPES }, () => pipe());
      const { reads, refs } = submitReads(
        pipes.map(([r]) => r),
        c.make,
        c.via,
        c.window,
      );
      const dead = canary();
      let settledEarly = 0;
      for (const p of reads) void p.then(() => settledEarly++, () => settledEarly++);
      t.is(stats().opsInFlight, PIPES);

      await churn(50);

      t.is(dead.deref(), undefined, 'the GC loop collects unreferenced buffers');
      t.is(settledEarly, 0, 'no read finished before any data was written');
      t.is(stats().opsInFlight, PIPES);
      t.true(
        refs.every((r) => r.deref() !== undefined),
        'the runtime keeps every in-flight buffer alive',
      );

      const payloads = pipes.map(() => randomBytes(c.size));
      const written = await Promise.all(pipes.map(([, w], i) => write(w, payloads[i]!)));
      t.deepEqual(
        written.map(([n]) => n),
        new Array(PIPES).fill(c.size),
      );
      // More churn between the data arriving and the caller looking at it.
      await churn(3);

      const results = await Promise.all(reads);
      for (let i = 0; i < PIPES; i++) {
        const [n, buf] = results[i]!;
        t.is(n, c.size, `pipe ${i}: bytes read`);
        t.true(buf === refs[i]!.deref(), `pipe ${i}: the same buffer comes back`);
        const off = c.window?.offset ?? 0;
        const got = Buffer.from(buf.buffer, buf.byteOffset + off, n);
        if (!got.equals(payloads[i]!)) {
          t.fail(`pipe ${i}: payload mismatch: got ${got.toString('hex')} want ${payloads[i]!.toString('hex')}`);
        }
        if (c.window !== undefined) {
          const before = Buffer.from(buf.buffer, buf.byteOffset, off);
          const after = Buffer.from(buf.buffer, buf.byteOffset + off + n, buf.byteLength - off - n);
          t.true(before.every((b) => b === 0xee) && after.every((b) => b === 0xee), `pipe ${i}: bytes outside the window untouched`);
        }
      }
      t.is(stats().opsInFlight, 0);
      for (const [r, w] of pipes) {
        closeSync(r);
        closeSync(w);
      }
    });
    t.is(fdCount(), fds0, 'every pipe and the runtime itself are closed');
  });
}
