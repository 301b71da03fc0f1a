/**
 * fd ops through the driver: nop, read/write on pipes and eventfds, poll, close, the rented-buffer
 * contract, cancellation (abort before/after the kernel answered, a randomized race), shutdown,
 * argument checks and stats.
 */
import test, { type ExecutionContext } from 'ava';
import { readSync, writeSync } from 'node:fs';
import {
  CancelOp,
  cancelOp,
  CloseOp,
  NopOp,
  OpState,
  POLLIN,
  POLLOUT,
  PollOp,
  ReadOp,
  TimeoutOp,
  WriteOp,
  close,
  closeSync,
  eventfd,
  nop,
  pipe,
  poll,
  read,
  sleep,
  spawn,
  stats,
  submit,
  write,
  yieldNow,
} from '@ringio/runtime';
import { fdCount, guard, later, randomBytes, randomStep, rejectionOf, rt, rtTestUntimed as rtTest, type AnyErr } from './helpers.js';

/** Runs fn with a fresh pipe and closes both ends afterwards, whatever happens. */
async function withPipe<T>(fn: (r: number, w: number) => Promise<T>): Promise<T> {
  const [r, w] = pipe();
  try {
    return await fn(r, w);
  } finally {
    closeSync(r);
    closeSync(w);
  }
}

/** Writes all of src (looping over short writes). */
async function writeAll(fd: number, src: Uint8Array): Promise<void> {
  let off = 0;
  while (off < src.length) {
    const [n] = await write(fd, src, { offset: off, length: Math.min(src.length - off, 1 << 20) });
    if (n <= 0) throw new Error(`write returned ${n}`);
    off += n;
  }
}

/** Reads exactly `len` bytes (looping over short reads), in chunks of at most `chunk`. */
async function readExactly(fd: number, len: number, chunk = 65536): Promise<Buffer> {
  const out = Buffer.alloc(len);
  let off = 0;
  while (off < len) {
    const [n, b] = await read(fd, out, { offset: off, length: Math.min(chunk, len - off) });
    if (b !== out) throw new Error('read resolved with a different buffer');
    if (n === 0) throw new Error(`EOF after ${off} of ${len} bytes`);
    off += n;
  }
  return out;
}

function u64le(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

// ---------------------------------------------------------------------------------------------------
// basics

rtTest('nop resolves 0, also through submit(new NopOp())', async (t) => {
  await rt(async () => {
    t.is(await nop(), 0);
    const op = new NopOp();
    t.is(op.state, 0); // Idle
    const p = submit(op);
    t.is(op.state, 1); // Submitted
    t.is(await p, 0);
    t.is(op.state, 3); // Completed
  });
});

rtTest('10,000 concurrent nops all resolve 0 and leave nothing in flight', async (t) => {
  for (const entries of [1024, 8]) {
    await rt(
      async () => {
        const before = stats();
        const ps: Promise<number>[] = [];
        for (let i = 0; i < 10_000; i++) ps.push(nop());
        t.is(stats().opsInFlight, 10_000);
        const res = await Promise.all(ps);
        t.is(res.length, 10_000);
        t.true(res.every((v) => v === 0));
        const after = stats();
        t.is(after.opsInFlight, 0);
        t.is(after.completions - before.completions, 10_000, `entries ${entries}`);
        t.is(after.submitted - before.submitted, 10_000, `entries ${entries}`);
      },
      { entries },
    );
  }
});

rtTest('pipe() gives two distinct fds, and closing them gives the fds back', async (t) => {
  await rt(async () => {
    const n0 = fdCount(); // with the runtime's own fds (ring + eventfd, or the epoll fd)
    const [r, w] = pipe();
    t.true(Number.isInteger(r) && Number.isInteger(w) && r >= 0 && w >= 0);
    t.not(r, w);
    t.is(fdCount(), n0 + 2);
    await close(r);
    await close(w);
    t.is(fdCount(), n0);
  });
});

for (const size of [1, 100, 4096, 65536, 256 * 1024 + 7]) {
  rtTest(`pipe write/read roundtrip is byte-exact: ${size} bytes`, async (t) => {
    await rt(() =>
      withPipe(async (r, w) => {
        const src = randomBytes(size);
        const writer = spawn(() => writeAll(w, src));
        const got = await readExactly(r, size, 8192 + 3);
        await writer;
        t.true(got.equals(src));
      }),
    );
  });
}

rtTest('write and read resolve [n, buf] with the same buffer object, of any Uint8Array type', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const src = new Uint8Array([1, 2, 3, 4, 5]);
      const [n, b] = await write(w, src);
      t.is(n, 5);
      t.is(b, src);
      const dst = new Uint8Array(16);
      const [m, d] = await read(r, dst);
      t.is(m, 5);
      t.is(d, dst);
      t.deepEqual([...dst.subarray(0, 5)], [1, 2, 3, 4, 5]);
      // A subarray view with a byteOffset is honoured.
      const backing = Buffer.alloc(32, 0);
      const view = backing.subarray(10, 20);
      await write(w, Buffer.from('abc'));
      const [k, v] = await read(r, view);
      t.is(k, 3);
      t.is(v, view);
      t.is(backing.subarray(10, 13).toString(), 'abc');
      t.is(backing[9], 0);
      t.is(backing[13], 0);
    }),
  );
});

rtTest('offset/length select a window of the buffer for write and read', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const src = Buffer.from('0123456789ABCDEF');
      const [n] = await write(w, src, { offset: 3, length: 5 });
      t.is(n, 5);
      const dst = Buffer.alloc(20, '.');
      const [m] = await read(r, dst, { offset: 10, length: 8 });
      t.is(m, 5);
      t.is(dst.toString(), '..........34567.....');
      // offset alone: to the end of the buffer.
      await write(w, src, { offset: 12 });
      const [k] = await read(r, dst, { offset: 0, length: 4 });
      t.is(k, 4);
      t.is(dst.subarray(0, 4).toString(), 'CDEF');
      // length 0 at the end of the buffer is a valid, empty window.
      const [z] = await write(w, src, { offset: 16, length: 0 });
      t.is(z, 0);
    }),
  );
});

rtTest('short reads: a read smaller than the data leaves the rest in the pipe, in order', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      await write(w, Buffer.from('hello world'));
      const a = Buffer.alloc(5);
      t.is((await read(r, a))[0], 5);
      const b = Buffer.alloc(64);
      const [n] = await read(r, b);
      t.is(a.toString() + b.subarray(0, n).toString(), 'hello world');
    }),
  );
});

rtTest('read returns 0 at end of stream once the write end is closed', async (t) => {
  await rt(async () => {
    const [r, w] = pipe();
    try {
      await write(w, Buffer.from('last'));
      await close(w);
      const buf = Buffer.alloc(8);
      t.is((await read(r, buf))[0], 4);
      t.is((await read(r, buf))[0], 0);
    } finally {
      closeSync(r);
    }
  });
});

rtTest('zero-length reads and writes resolve 0 at once, even on an empty pipe', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const buf = Buffer.alloc(4);
      t.deepEqual(await guard(read(r, buf, { length: 0 }), 2000, 'empty read'), [0, buf]);
      t.deepEqual(await guard(write(w, buf, { length: 0 }), 2000, 'empty write'), [0, buf]);
      t.deepEqual(await guard(read(r, Buffer.alloc(0)), 2000, 'read into an empty buffer'), [0, Buffer.alloc(0)]);
    }),
  );
});

rtTest('a write to a pipe whose read end is closed fails EPIPE (no SIGPIPE crash)', async (t) => {
  await rt(async () => {
    const [r, w] = pipe();
    try {
      await close(r);
      const buf = Buffer.from('x');
      const err = await rejectionOf(t, write(w, buf));
      t.is(err.code, 'EPIPE');
      t.is(err.syscall, 'write');
      t.is(err.buf, buf);
    } finally {
      closeSync(w);
    }
  });
});

rtTest('a read waiting on an empty pipe resolves when data is written later', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const buf = Buffer.alloc(16);
      let done = false;
      const p = read(r, buf).then((v) => {
        done = true;
        return v;
      });
      await sleep(10);
      t.false(done);
      t.is(stats().opsInFlight, 1);
      writeSync(w, Buffer.from('late'));
      const [n, b] = await p;
      t.is(n, 4);
      t.is(b, buf);
      t.is(buf.subarray(0, 4).toString(), 'late');
    }),
  );
});

rtTest('eventfd: write 8-byte counters, read back their sum; initval is read too', async (t) => {
  await rt(async () => {
    const efd = eventfd(0);
    try {
      t.is((await write(efd, u64le(5n)))[0], 8);
      t.is((await write(efd, u64le(0x1_0000_0002n)))[0], 8);
      const buf = Buffer.alloc(8);
      const [n, b] = await read(efd, buf);
      t.is(n, 8);
      t.is(b, buf);
      t.is(buf.readBigUInt64LE(), 0x1_0000_0007n);
      // A read smaller than 8 bytes is EINVAL on an eventfd.
      await write(efd, u64le(1n));
      const small = Buffer.alloc(4);
      const err = await rejectionOf(t, read(efd, small));
      t.is(err.code, 'EINVAL');
      t.is(err.syscall, 'read');
      t.is(err.buf, small);
    } finally {
      closeSync(efd);
    }
    const efd2 = eventfd(9);
    try {
      const buf = Buffer.alloc(8);
      await read(efd2, buf);
      t.is(buf.readBigUInt64LE(), 9n);
    } finally {
      closeSync(efd2);
    }
  });
});

rtTest('eventfd rejects a bad initval', async (t) => {
  t.throws(() => eventfd(-1), { instanceOf: RangeError });
  t.throws(() => eventfd(1.5), { instanceOf: RangeError });
  t.throws(() => eventfd(2 ** 32), { instanceOf: RangeError });
});

rtTest('poll POLLIN waits until data is written; POLLOUT on an empty pipe is ready at once', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      t.true(((await poll(w, POLLOUT)) & POLLOUT) !== 0);
      let revents = -1;
      const p = poll(r, POLLIN).then((v) => (revents = v));
      await sleep(10);
      t.is(revents, -1, 'poll resolved before any data');
      writeSync(w, Buffer.from('x'));
      await p;
      t.true((revents & POLLIN) !== 0, `revents ${revents}`);
      // Polling does not consume: the byte is still there.
      const buf = Buffer.alloc(4);
      t.is((await read(r, buf))[0], 1);
      t.is(buf[0], 'x'.charCodeAt(0));
      // Through the op class as well.
      writeSync(w, Buffer.from('y'));
      t.true(((await submit(new PollOp(r, POLLIN))) & POLLIN) !== 0);
      await read(r, buf);
    }),
  );
});

rtTest('poll can be cancelled by its signal', async (t) => {
  await rt(() =>
    withPipe(async (r) => {
      const ac = new AbortController();
      const p = poll(r, POLLIN, { signal: ac.signal });
      await sleep(2);
      ac.abort();
      const err = await rejectionOf(t, p);
      t.is(err.name, 'AbortError');
      t.is(stats().opsInFlight, 0);
    }),
  );
});

rtTest('close through the driver: then read and write on the fd fail EBADF with the buffer', async (t) => {
  await rt(async () => {
    const [r, w] = pipe();
    await close(r);
    await close(w);
    const buf = Buffer.alloc(4);
    const err = await rejectionOf(t, read(r, buf));
    t.is(err.code, 'EBADF');
    t.is(err.syscall, 'read');
    t.is(err.errno, -9);
    t.is(err.buf, buf);
    t.regex(err.message, /EBADF/);
    const werr = await rejectionOf(t, write(w, buf));
    t.is(werr.code, 'EBADF');
    t.is(werr.syscall, 'write');
    t.is(werr.buf, buf);
    // Closing again is EBADF too.
    const cerr = await rejectionOf(t, close(r));
    t.is(cerr.code, 'EBADF');
    t.is(cerr.syscall, 'close');
  });
});

/** A read on a fresh pipe that was parked first (registered with the driver), then fed. */
async function parkedRead(t: ExecutionContext, r: number, w: number, byte: number): Promise<string> {
  const buf = Buffer.alloc(4);
  const p = read(r, buf);
  await sleep(5); // the read now waits for readiness (epoll: the fd is registered and parked)
  writeSync(w, Buffer.from([byte]));
  return guard(
    p.then(([n]) => `read ${n} byte(s): ${buf[0]}`),
    1000,
    'the read never saw the data',
  ).catch((e: Error) => e.message);
}

rtTest('an fd number reused after close() through the driver works', async (t) => {
  await rt(async () => {
    const [r, w] = pipe();
    t.is(await parkedRead(t, r, w, 1), 'read 1 byte(s): 1');
    await close(r);
    await close(w);
    const [r2, w2] = pipe();
    try {
      t.log(`fds ${r},${w} -> ${r2},${w2}`);
      t.is(await parkedRead(t, r2, w2, 2), 'read 1 byte(s): 2');
    } finally {
      closeSync(r2);
      closeSync(w2);
    }
  });
});

rtTest(
  // Regression (epoll): the legacy engine keeps per-fd state keyed by fd number. closeSync() used to
  // close the fd without telling it, so the kernel dropped the epoll registration while the engine
  // still had registered = true; when pipe() reused the number, EPOLL_CTL_ADD was skipped and a read
  // parked on the new fd never woke up.
  'an fd number reused after closeSync() still gets readiness (epoll registration is not stale)',
  async (t) => {
    await rt(async () => {
      const [r, w] = pipe();
      t.is(await parkedRead(t, r, w, 1), 'read 1 byte(s): 1');
      closeSync(r);
      closeSync(w);
      const [r2, w2] = pipe();
      try {
        t.log(`fds ${r},${w} -> ${r2},${w2}`);
        t.is(r2, r, 'the kernel reused the lowest free fd number');
        t.is(await parkedRead(t, r2, w2, 2), 'read 1 byte(s): 2');
      } finally {
        closeSync(r2);
        closeSync(w2);
      }
    });
  },
);

// ---------------------------------------------------------------------------------------------------
// cancellation

rtTest('a read aborted by its signal rejects AbortError with .buf; no byte is lost afterwards', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const buf = Buffer.alloc(32, 0x55);
      const ac = new AbortController();
      const reason = new Error('cancel the read');
      const p = read(r, buf, { signal: ac.signal });
      await sleep(5);
      t.is(stats().opsInFlight, 1);
      ac.abort(reason);
      const err = await rejectionOf(t, p);
      t.true(err instanceof Error);
      t.is(err.name, 'AbortError');
      t.is(err.code, 'ABORT_ERR');
      t.is(err.buf, buf, '.buf is the very buffer that was lent');
      t.is(err.cause, reason);
      t.is(stats().opsInFlight, 0, 'rejected only after the kernel answered');
      t.true(buf.every((b) => b === 0x55));

      const data = randomBytes(1000);
      writeSync(w, data);
      const got = await readExactly(r, 1000, 37);
      t.true(got.equals(data));
    }),
  );
});

rtTest('abort after the read completed in the kernel: the result wins', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      writeSync(w, Buffer.from('ready'));
      const buf = Buffer.alloc(16);
      const ac = new AbortController();
      const p = read(r, buf, { signal: ac.signal });
      // The data is already there, so the kernel answers the read before it sees the cancel.
      ac.abort();
      const [n, b] = await p;
      t.is(n, 5);
      t.is(b, buf);
      t.is(buf.subarray(0, 5).toString(), 'ready');

      // Abort after the promise settled: nothing happens.
      writeSync(w, Buffer.from('more'));
      const ac2 = new AbortController();
      const [m] = await read(r, buf, { signal: ac2.signal });
      ac2.abort();
      t.is(m, 4);
      await yieldNow();
      t.is(stats().opsInFlight, 0);
    }),
  );
});

rtTest('a signal aborted before submit rejects at once with .buf and submits nothing', async (t) => {
  await rt(() =>
    withPipe(async (r) => {
      const before = stats().submitted;
      const buf = Buffer.alloc(4);
      const reason = new Error('pre');
      const err = await rejectionOf(t, read(r, buf, { signal: AbortSignal.abort(reason) }));
      t.is(err.name, 'AbortError');
      t.is(err.buf, buf);
      t.is(err.cause, reason);
      await nop();
      t.is(stats().submitted - before, 1, 'only the nop was submitted');
    }),
  );
});

rtTest('a write blocked on a full pipe can be aborted; the pipe stays consistent', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      // Fill the pipe completely (nonblocking fd: write until EAGAIN).
      const fill = Buffer.alloc(65536, 1);
      let filled = 0;
      for (;;) {
        try {
          filled += writeSync(w, fill);
        } catch (e) {
          if ((e as AnyErr).code === 'EAGAIN') break;
          throw e;
        }
      }
      const big = Buffer.alloc(4096, 2);
      const ac = new AbortController();
      const p = write(w, big, { signal: ac.signal });
      await sleep(5);
      ac.abort();
      const err = await rejectionOf(t, p);
      t.is(err.name, 'AbortError');
      t.is(err.buf, big);
      // Everything in the pipe is the fill pattern, and it is all still there.
      const got = await readExactly(r, filled, 65536);
      t.true(got.every((b) => b === 1));
      writeSync(w, Buffer.from('z'));
      const one = Buffer.alloc(8);
      t.is((await read(r, one))[0], 1);
      t.is(one[0], 'z'.charCodeAt(0));
    }),
  );
});

rtTest('cancellation race: 1,000 reads aborted at random points lose and reorder no byte', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const ITER = 1000;
      const received: number[] = [];
      let written = 0;
      let aborted = 0;
      let won = 0;
      let abortedThenWon = 0;
      for (let i = 0; i < ITER; i++) {
        const buf = Buffer.alloc(4, 0xff);
        const ac = new AbortController();
        const p = read(r, buf, { signal: ac.signal });
        let writeDone: Promise<void> | undefined;
        // Half the bytes go through the driver, half are written by plain Node (the kernel then
        // finishes the read while JS has not reaped it yet, so an abort right after races the CQE).
        const viaDriver = Math.random() < 0.5;
        const ws = randomStep();
        const writer = later(ws, () => {
          if (viaDriver) writeDone = write(w, Buffer.from([i & 0xff])).then(([n]) => void (written += n));
          else written += writeSync(w, Buffer.from([i & 0xff]));
        });
        // Often abort in the very same step as the write, right after it.
        const aborter = later(Math.random() < 0.3 ? ws : randomStep(), () => ac.abort());
        try {
          const [n, b] = await p;
          if (b !== buf) t.fail('read resolved with another buffer');
          for (let k = 0; k < n; k++) received.push(buf[k]!);
          won++;
          if (ac.signal.aborted) abortedThenWon++;
        } catch (e) {
          const err = e as AnyErr;
          if (err.name !== 'AbortError') throw err;
          if (err.buf !== buf) t.fail('AbortError without its buffer');
          if (!buf.every((x) => x === 0xff)) t.fail('a cancelled read wrote into the buffer');
          aborted++;
        }
        await Promise.all([writer, aborter]);
        await writeDone;
        // Whatever a cancelled read did not take is still in the pipe: take it now, so that the next
        // read starts on an empty pipe again (a read on a non-empty pipe always wins its race).
        const pending = written - received.length;
        if (pending > 0) received.push(...(await guard(readExactly(r, pending), 2000, `${pending} bytes lost`)));
      }
      t.is(written, ITER);
      t.log(`${won} reads won (${abortedThenWon} of them after their abort), ${aborted} were cancelled`);
      t.is(received.length, ITER);
      t.deepEqual(
        received,
        Array.from({ length: ITER }, (_, i) => i & 0xff),
      );
      t.true(won > 0);
      t.true(aborted > 0);
      t.is(stats().opsInFlight, 0);
    }),
  );
});

rtTest('CancelOp on a slot nobody uses rejects ENOENT', async (t) => {
  await rt(async () => {
    const err = await rejectionOf(t, submit(new CancelOp(4242)));
    t.is(err.code, 'ENOENT');
    t.is(err.syscall, 'cancel');
  });
});

rtTest('CancelOp on a waiting read cancels it: CancelOp resolves 0, the read rejects ECANCELED', async (t) => {
  await rt(() =>
    withPipe(async (r) => {
      const op = new ReadOp(r, Buffer.alloc(8));
      const p = submit(op);
      await sleep(2);
      t.true(op._slot >= 0);
      t.is(await submit(new CancelOp(op._slot)), 0);
      const err = await rejectionOf(t, p);
      // Cancelled by someone else, not by this op's own signal: a plain errno error.
      t.is(err.code, 'ECANCELED');
      t.is(err.buf, op.buf);
    }),
  );
});

// ---------------------------------------------------------------------------------------------------
// op objects, runtime boundaries

rtTest('a completed op whose slot another op took since: _slot -2, state completed, cancelOp on it leaves the other op alone', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const done = new NopOp();
      t.is(await submit(done), 0);
      // The freed slot goes to the next op (the driver's free list is last in, first out).
      const read = new ReadOp(r, Buffer.alloc(8));
      const p = submit(read);
      t.true(read._slot >= 0);
      t.is((done as unknown as { _lastSlot: number })._lastSlot, read._slot, 'the read took the completed op\'s slot');
      t.is(done._slot, -2, 'completed, whatever slot it had');
      t.is(done.state, OpState.Completed);
      t.is(read.state, OpState.Submitted);
      cancelOp(done); // must not reach the read now in that slot
      await sleep(20);
      t.is(read.state, OpState.Submitted, 'the read is still waiting');
      writeSync(w, Buffer.from('x'));
      const [n] = await p;
      t.is(n, 1);
      t.is(read._slot, -2);
    }),
  );
});

rtTest('submitting the same op object twice rejects TypeError (in flight and after completion)', async (t) => {
  await rt(async () => {
    const op = new NopOp();
    const p = submit(op);
    await t.throwsAsync(submit(op), { instanceOf: TypeError });
    t.is(await p, 0);
    await t.throwsAsync(submit(op), { instanceOf: TypeError });
    const rop = new TimeoutOp(1);
    t.true(await submit(rop));
    await t.throwsAsync(submit(rop), { instanceOf: TypeError });
  });
});

rtTest('TimeoutOp resolves true when it expires', async (t) => {
  await rt(async () => {
    const t0 = performance.now();
    t.true(await submit(new TimeoutOp(10)));
    t.true(performance.now() - t0 >= 9);
    t.throws(() => new TimeoutOp(-1), { instanceOf: RangeError });
    t.throws(() => new TimeoutOp('1' as unknown as number), { instanceOf: TypeError });
  });
});

test.serial('ops outside a runtime reject ERR_RINGIO_NO_RUNTIME', async (t) => {
  const [r, w] = pipe();
  try {
    const buf = Buffer.alloc(4);
    await t.throwsAsync(nop(), { code: 'ERR_RINGIO_NO_RUNTIME' });
    await t.throwsAsync(read(r, buf), { code: 'ERR_RINGIO_NO_RUNTIME' });
    await t.throwsAsync(write(w, buf), { code: 'ERR_RINGIO_NO_RUNTIME' });
    await t.throwsAsync(poll(r, POLLIN), { code: 'ERR_RINGIO_NO_RUNTIME' });
    await t.throwsAsync(close(r), { code: 'ERR_RINGIO_NO_RUNTIME' });
    await t.throwsAsync(submit(new NopOp()), { code: 'ERR_RINGIO_NO_RUNTIME' });
    t.throws(() => stats(), { code: 'ERR_RINGIO_NO_RUNTIME' });
    t.throws(() => spawn(() => 1), { code: 'ERR_RINGIO_NO_RUNTIME' });
    // yieldNow may throw or reject; either way with the same code.
    let yerr: AnyErr | undefined;
    try {
      await yieldNow();
    } catch (e) {
      yerr = e as AnyErr;
    }
    t.is(yerr?.code, 'ERR_RINGIO_NO_RUNTIME');
    // Writing to the fd through Node still works: nothing was closed behind our back.
    t.is(writeSync(w, Buffer.from('k')), 1);
    t.is(readSync(r, buf), 1);
  } finally {
    closeSync(r);
    closeSync(w);
  }
});

rtTest('ops after the runtime ended reject ERR_RINGIO_NO_RUNTIME', async (t) => {
  await rt(() => nop());
  await t.throwsAsync(nop(), { code: 'ERR_RINGIO_NO_RUNTIME' });
});

rtTest('ops in flight at shutdown reject ERR_RINGIO_CLOSED with their buffer; no byte is lost', async (t) => {
  const [r, w] = pipe();
  const [r2, w2] = pipe();
  try {
    const rbuf = Buffer.alloc(8);
    const wbuf = Buffer.alloc(4096, 7);
    let readP: Promise<unknown> | undefined;
    let pollP: Promise<unknown> | undefined;
    let writeP: Promise<unknown> | undefined;
    let filled = 0;
    const t0 = performance.now();
    await rt(async () => {
      readP = read(r, rbuf);
      pollP = poll(r, POLLIN);
      // A write that cannot finish: the second pipe is full.
      const fill = Buffer.alloc(65536);
      for (;;) {
        try {
          filled += writeSync(w2, fill);
        } catch {
          break;
        }
      }
      writeP = write(w2, wbuf);
      for (const p of [readP, pollP, writeP]) p.catch(() => {});
      await sleep(5);
      t.is(stats().opsInFlight, 3);
    });
    t.true(performance.now() - t0 < 2000);
    const e1 = await rejectionOf(t, readP!);
    t.is(e1.code, 'ERR_RINGIO_CLOSED');
    t.is(e1.buf, rbuf);
    t.is((await rejectionOf(t, pollP!)).code, 'ERR_RINGIO_CLOSED');
    const e3 = await rejectionOf(t, writeP!);
    t.is(e3.code, 'ERR_RINGIO_CLOSED');
    t.is(e3.buf, wbuf);
    // The cancelled read took nothing: a byte written now is read by plain Node.
    t.is(writeSync(w, Buffer.from('q')), 1);
    const b = Buffer.alloc(8);
    t.is(readSync(r, b), 1);
    t.is(b[0], 'q'.charCodeAt(0));
    // The cancelled write put nothing in the full pipe.
    let drained = 0;
    for (;;) {
      try {
        const n = readSync(r2, Buffer.alloc(65536));
        if (n === 0) break;
        drained += n;
      } catch {
        break;
      }
    }
    t.is(drained, filled);
  } finally {
    for (const fd of [r, w, r2, w2]) closeSync(fd);
  }
});

rtTest('a runtime with ops in flight at shutdown leaves no fd behind', async (t) => {
  const n0 = fdCount();
  let r = -1;
  await rt(async () => {
    let w: number;
    [r, w] = pipe();
    read(r, Buffer.alloc(4)).catch(() => {});
    poll(r, POLLIN).catch(() => {});
    sleep(10_000).catch(() => {});
    sleep(20_000).catch(() => {});
    await nop();
    await close(w);
    t.true(fdCount() > n0);
  });
  closeSync(r);
  t.is(fdCount(), n0);
});

rtTest('bad input: TypeError / RangeError, never a kernel error', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const buf = Buffer.alloc(8);
      // buffers
      await t.throwsAsync(read(r, 'abc' as unknown as Buffer), { instanceOf: TypeError });
      await t.throwsAsync(write(w, [1, 2] as unknown as Buffer), { instanceOf: TypeError });
      await t.throwsAsync(read(r, new Uint16Array(4) as unknown as Buffer), { instanceOf: TypeError });
      await t.throwsAsync(read(r, new ArrayBuffer(8) as unknown as Buffer), { instanceOf: TypeError });
      // fds
      await t.throwsAsync(read(1.5, buf), { instanceOf: TypeError });
      await t.throwsAsync(read('3' as unknown as number, buf), { instanceOf: TypeError });
      await t.throwsAsync(read(-1, buf), { instanceOf: RangeError });
      await t.throwsAsync(write(-3, buf), { instanceOf: RangeError });
      await t.throwsAsync(poll(-1, POLLIN), { instanceOf: RangeError });
      await t.throwsAsync(close(-1), { instanceOf: RangeError });
      await t.throwsAsync(close(NaN), { instanceOf: TypeError });
      t.throws(() => closeSync(-1), { instanceOf: RangeError });
      t.throws(() => new CloseOp(2 ** 31), { instanceOf: RangeError });
      // offset / length windows
      await t.throwsAsync(read(r, buf, { offset: -1 }), { instanceOf: RangeError });
      await t.throwsAsync(read(r, buf, { offset: 9 }), { instanceOf: RangeError });
      await t.throwsAsync(read(r, buf, { offset: 1.5 }), { instanceOf: RangeError });
      await t.throwsAsync(read(r, buf, { length: 9 }), { instanceOf: RangeError });
      await t.throwsAsync(read(r, buf, { offset: 4, length: 5 }), { instanceOf: RangeError });
      await t.throwsAsync(write(w, buf, { length: -1 }), { instanceOf: RangeError });
      await t.throwsAsync(write(w, buf, { length: 2.5 }), { instanceOf: RangeError });
      // positions
      await t.throwsAsync(read(r, buf, { position: -2 }), { instanceOf: RangeError });
      await t.throwsAsync(read(r, buf, { position: 1.5 }), { instanceOf: RangeError });
      await t.throwsAsync(read(r, buf, { position: -2n }), { instanceOf: RangeError });
      // poll masks
      await t.throwsAsync(poll(r, 0), { instanceOf: RangeError });
      await t.throwsAsync(poll(r, 0x10000), { instanceOf: RangeError });
      // signals
      await t.throwsAsync(read(r, buf, { signal: 'x' as unknown as AbortSignal }), { instanceOf: TypeError });
      await t.throwsAsync(nop({ signal: {} as AbortSignal }), { instanceOf: TypeError });
      // submit() wants an op object
      await t.throwsAsync(submit({} as unknown as NopOp), { instanceOf: TypeError });
      await t.throwsAsync(submit(null as unknown as NopOp), { instanceOf: TypeError });
      // op constructors throw synchronously
      t.throws(() => new ReadOp(r, buf, 0, 100), { instanceOf: RangeError });
      t.throws(() => new WriteOp(r, 'x' as unknown as Buffer), { instanceOf: TypeError });
      t.throws(() => new PollOp(r, -1), { instanceOf: RangeError });
      // None of it reached the driver.
      t.is(stats().submitted, 0);
      t.is(stats().opsInFlight, 0);
    }),
  );
});

rtTest('stats counters move: submitted/completions grow, opsInFlight and timers return to 0', async (t) => {
  await rt(() =>
    withPipe(async (r, w) => {
      const s0 = stats();
      t.is(s0.opsInFlight, 0);
      t.is(s0.timers, 0);
      for (let i = 0; i < 10; i++) await nop();
      const s1 = stats();
      t.is(s1.submitted - s0.submitted, 10);
      t.is(s1.completions - s0.completions, 10);
      t.true(s1.enters >= s0.enters);
      t.is(s1.opsInFlight, 0);

      const p = read(r, Buffer.alloc(4));
      const sl = sleep(5);
      t.is(stats().opsInFlight, 2); // the read and the armed kernel timer
      t.is(stats().timers, 1);
      await sl;
      t.is(stats().timers, 0);
      writeSync(w, Buffer.from('s'));
      await p;
      const s2 = stats();
      t.is(s2.opsInFlight, 0);
      t.true(s2.completions >= s1.completions + 2);
      t.true(s2.submitted >= s1.submitted + 2);
      // Completions that arrive while JS is idle come through a loop wakeup.
      t.true(s2.wakeups > s0.wakeups, `wakeups ${s0.wakeups} -> ${s2.wakeups}`);
      if (s2.driver === 'uring') t.true(s2.enters > s0.enters);
    }),
  );
});

// Regression: a buffer window that starts 2 GiB or more into its buffer (the record's offset word is
// read as unsigned), e.g. readFile's last chunk of a file over 2 GiB.
rtTest('a read into a window that starts past 2 GiB inside its buffer lands there', async (t) => {
  const big = Buffer.allocUnsafe(2 ** 31 + 64);
  await rt(async () => {
    const [r, w] = pipe();
    try {
      writeSync(w, Buffer.from('far!'));
      const [n, back] = await read(r, big, { offset: 2 ** 31 + 8, length: 4 });
      t.is(n, 4);
      t.is(back, big);
      t.is(big.toString('utf8', 2 ** 31 + 8, 2 ** 31 + 12), 'far!');
    } finally {
      closeSync(r);
      closeSync(w);
    }
  });
});

// The epoll engine cannot poll a regular file; its read/write syscalls may block on the disk, so they
// go to the engine's file pool instead of running on the loop thread. A pooled op completes through the
// pool's eventfd, which wakes the loop: visible as a wakeup. On io_uring the kernel does the read.
rtTest('read/write on a regular file: right bytes on both drivers, and off the loop thread on epoll', async (t) => {
  const { openSync, closeSync: fsClose, writeFileSync, unlinkSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const p = `${tmpdir()}/ringio-regfile-${process.pid}.bin`;
  const data = randomBytes(8192);
  writeFileSync(p, data);
  const fd = openSync(p, 'r+');
  try {
    await rt(async () => {
      const w0 = stats().wakeups;
      const [n, buf] = await read(fd, Buffer.alloc(8192), { position: 0 });
      t.is(n, 8192);
      t.true(buf.equals(data));
      const [m] = await write(fd, Buffer.from('ringio'), { position: 100 });
      t.is(m, 6);
      if (stats().driver === 'epoll') t.true(stats().wakeups > w0, 'the pool, not the loop thread, ran the syscalls');
    });
  } finally {
    fsClose(fd);
    unlinkSync(p);
  }
});
