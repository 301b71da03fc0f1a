/**
 * Pooled reads (readLease): a stream waiting for data holds no buffer; a buffer comes from the runtime's
 * pool when bytes arrive (io_uring: a provided-buffer ring and multishot RECV; epoll: the engine picks
 * one on readiness) and is leased to exactly one reader until released. Every test runs on the driver
 * under test (RINGIO_DRIVER), and `npm test` runs both.
 */
import { once } from 'node:events';
import type { ExecutionContext } from 'ava';
import { Worker } from 'node:worker_threads';
import { toDuplex } from '@ringio/compat';
import type { TcpStream } from '@ringio/net';
import { configureRecvPool, hasFeature, sleep, spawn, stats, yieldNow, type RecvLease } from '@ringio/runtime';
import { DRIVER, fdCount, tcpPairs, fixture, guard, randomBytes, rejectionOf, rt, rtTest, run, sha256, type AnyErr } from './helpers.js';

/** `n` connected (client, server) TcpStream pairs over one loopback listener. */
const pairs = tcpPairs;

async function closeAll(ps: [TcpStream, TcpStream][]): Promise<void> {
  await Promise.all(ps.flatMap(([c, s]) => [c.close(), s.close()]));
}

/** Reads `total` bytes with readLease, copying them out; `hold` runs while a lease is held. */
async function readAllLeased(s: TcpStream, total: number, hold?: (lease: RecvLease) => Promise<void>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  while (n < total) {
    const lease = await s.readLease();
    if (lease === null) break;
    if (hold !== undefined) await hold(lease);
    parts.push(lease.copy());
    n += parts[parts.length - 1]!.length;
  }
  return Buffer.concat(parts);
}

/**
 * 64 KiB from every client at once; once every stream has bytes waiting, reads them all back with leases
 * held at random (more streams ready than buffers). Checks every stream's bytes; returns the ids leased.
 */
async function floodAndReadAll(t: ExecutionContext, ps: [TcpStream, TcpStream][]): Promise<Set<number>> {
  const srcs = ps.map(() => randomBytes(64 * 1024));
  const writes = ps.map(([c], i) => c.writeAll(srcs[i]!));
  await sleep(20); // every stream has bytes waiting before anyone reads
  const ids = new Set<number>();
  const got = await Promise.all(
    ps.map(([, s], i) =>
      readAllLeased(s, srcs[i]!.length, async (lease) => {
        ids.add(lease.id);
        if (Math.random() < 0.2) await sleep(1);
      }),
    ),
  );
  await Promise.all(writes);
  got.forEach((g, i) => t.is(sha256(g), sha256(srcs[i]!), `stream ${i} intact`));
  return ids;
}

rtTest('readLease: bytes on lease, null at end of stream; the pool mode and features are reported', async (t) => {
  await run(async () => {
    const [[c, s]] = await pairs(1);
    await c.writeAll(Buffer.from('hello lease'));
    const lease = (await s.readLease())!;
    t.is(lease.bytes.toString(), 'hello lease');
    t.is(lease.length, 11);
    t.true(lease.buf.length >= 11, 'buf is the whole pool buffer');
    t.is(lease.buf.subarray(0, 11).toString(), 'hello lease');
    const st = stats();
    t.is(st.recvPool.leased, 1);
    if (st.driver === 'uring') {
      t.is(st.recvPool.mode, hasFeature('PBUF_RING') ? 'ring' : 'plain');
      t.is(st.recvPool.multishot, hasFeature('RECV_MULTISHOT'));
    } else {
      t.is(st.recvPool.mode, 'select');
      t.true(st.features.includes('BUFFER_SELECT'));
    }
    lease.release();
    t.true(lease.released);
    t.is(stats().recvPool.leased, 0);
    await c.shutdown();
    t.is(await s.readLease(), null);
    t.is(await s.readLease(), null, 'end of stream stays');
    await closeAll([[c, s]]);
  });
});

rtTest('a lease released twice, or used after release, throws ERR_RINGIO_LEASE_RELEASED', async (t) => {
  await run(async () => {
    const [[c, s]] = await pairs(1);
    await c.writeAll(Buffer.from('x'));
    const lease = (await s.readLease())!;
    const copy = lease.copy();
    t.is(copy.toString(), 'x');
    for (const use of [() => lease.release(), () => lease.bytes, () => lease.buf, () => lease.copy()]) {
      const e = t.throws(use) as AnyErr;
      t.is(e.code, 'ERR_RINGIO_LEASE_RELEASED');
      t.is(e.name, 'IoError');
    }
    t.is(stats().recvPool.leased, 0, 'the failed second release gave nothing back twice');
    await closeAll([[c, s]]);
  });
});

rtTest('64 streams waiting in readLease hold no buffer; each arrival takes exactly one', async (t) => {
  await run(async () => {
    const ps = await pairs(64);
    const reads = ps.map(([, s]) => s.readLease());
    await sleep(30);
    t.is(stats().recvPool.leased, 0, 'nothing leased while every stream waits');
    for (const [i, [c]] of ps.entries()) await c.writeAll(Buffer.from([i]));
    const leases = (await Promise.all(reads)) as RecvLease[];
    t.is(stats().recvPool.leased, 64);
    t.is(new Set(leases.map((l) => l.id)).size, 64, 'distinct buffers');
    leases.forEach((l, i) => t.deepEqual([...l.bytes], [i]));
    for (const l of leases) l.release();
    t.is(stats().recvPool.leased, 0);
    await closeAll(ps);
  });
});

rtTest('leases are never handed to two readers: 32 busy streams, leases held at random, ids never shared', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 64, bufferSize: 2048 });
    const ps = await pairs(32);
    const out = new Set<number>();
    let dup = 0;
    const srcs = ps.map(() => randomBytes(48 * 1024 + ((Math.random() * 4096) | 0)));
    const got = await Promise.all(
      ps.map(async ([c, s], i) => {
        const w = c.writeAll(srcs[i]!);
        const data = await readAllLeased(s, srcs[i]!.length, async (lease) => {
          if (out.has(lease.id)) dup++;
          out.add(lease.id);
          if (Math.random() < 0.3) await sleep(1);
          else if (Math.random() < 0.5) await yieldNow();
          out.delete(lease.id);
        });
        await w;
        return data;
      }),
    );
    t.is(dup, 0, 'no buffer was ever leased twice at once');
    got.forEach((g, i) => t.is(sha256(g), sha256(srcs[i]!), `stream ${i} intact`));
    t.is(stats().recvPool.leased, 0);
    await closeAll(ps);
  });
});

rtTest('pool exhaustion (48 ready streams, a fixed pool of 4 buffers) slows reads down but loses nothing', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 4, maxBuffers: 4, bufferSize: 512 });
    const ps = await pairs(48);
    await floodAndReadAll(t, ps);
    const st = stats().recvPool;
    t.true(st.exhausted > 0, `reads waited for buffers (${st.exhausted} times)`);
    t.is(st.leased, 0);
    await closeAll(ps);
  }, 60_000);
}, 90_000);

rtTest('the pool grows when reads find it empty (48 ready streams, 4 buffers up to 32): nothing lost, the bound holds', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 4, maxBuffers: 32, bufferSize: 512 });
    const ps = await pairs(48);
    const ids = await floodAndReadAll(t, ps);
    const st = stats().recvPool;
    t.is(st.buffers, 32, `grew to its bound (${st.grows} times)`);
    t.is(st.grows, 3, '4 -> 8 -> 16 -> 32');
    t.true(Math.max(...ids) < 32 && Math.min(...ids) >= 0, 'every id within the bound');
    t.true(ids.size > 4, `${ids.size} distinct buffers used`);
    t.true(st.exhausted > 0, `48 streams on at most 32 buffers still waited (${st.exhausted} times)`);
    t.is(st.leased, 0);
    await closeAll(ps);
  }, 60_000);
}, 90_000);

rtTest('the pool grows before it runs dry: more than three quarters of it leased adds as many again, with no ENOBUFS wait', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 8, maxBuffers: 16, bufferSize: 1024 });
    const ps = await pairs(14);
    const leases: RecvLease[] = [];
    for (const [i, [c, s]] of ps.entries()) {
      await c.writeAll(Buffer.from([i]));
      const lease = (await s.readLease())!;
      t.deepEqual([...lease.bytes], [i]);
      leases.push(lease); // held: the pool runs low
      if (i === 5) t.is(stats().recvPool.buffers, 8, '6 of 8 leased: not yet');
      if (i === 6) t.is(stats().recvPool.buffers, 16, '7 of 8 leased: grown');
    }
    const st = stats().recvPool;
    t.like(st, { buffers: 16, grows: 1, leased: 14, exhausted: 0 });
    t.is(new Set(leases.map((l) => l.id)).size, 14, 'distinct buffers across the two chunks');
    // At the bound: one more held lease than the pool has is an ENOBUFS wait, not growth.
    const more = await pairs(3);
    const reads = more.map(([, s]) => s.readLease());
    for (const [i, [c]] of more.entries()) await c.writeAll(Buffer.from([100 + i]));
    await sleep(50);
    t.is(stats().recvPool.buffers, 16, 'never past maxBuffers');
    for (const l of leases) l.release();
    const late = (await Promise.all(reads)) as RecvLease[];
    late.forEach((l, i) => t.deepEqual([...l.bytes], [100 + i]));
    t.true(stats().recvPool.exhausted > 0, 'the read past the bound waited for a buffer');
    for (const l of late) l.release();
    t.is(stats().recvPool.leased, 0);
    t.is(stats().recvPool.buffers, 16);
    await closeAll([...ps, ...more]);
  });
});

rtTest('fuzz: random sizes, aborted readLease calls and reads held across arrivals keep every byte in order', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 16, bufferSize: 1024 });
    const ps = await pairs(8);
    let aborts = 0;
    const results = await Promise.all(
      ps.map(async ([c, s]) => {
        const chunks: Buffer[] = [];
        let total = 0;
        for (let k = 0; k < 60; k++) {
          const size = Math.random() < 0.2 ? 1 : 1 + ((Math.random() * 9000) | 0);
          chunks.push(randomBytes(size));
          total += size;
        }
        const writer = spawn(async () => {
          for (const ch of chunks) {
            await c.writeAll(ch);
            if (Math.random() < 0.3) await sleep((Math.random() * 3) | 0);
          }
          await c.shutdown();
        });
        const parts: Buffer[] = [];
        for (;;) {
          const ac = new AbortController();
          const r = Math.random();
          if (r < 0.1) ac.abort();
          else if (r < 0.4) setTimeout(() => ac.abort(), (Math.random() * 3) | 0);
          let lease: RecvLease | null;
          try {
            lease = await s.readLease({ signal: ac.signal });
          } catch (e) {
            t.is((e as AnyErr).name, 'AbortError');
            aborts++;
            continue;
          }
          if (lease === null) break;
          if (Math.random() < 0.2) await sleep(1); // more arrives while a lease is held
          parts.push(lease.copy());
        }
        await writer;
        return [Buffer.concat(chunks), Buffer.concat(parts), total] as const;
      }),
    );
    for (const [sent, got, total] of results) {
      t.is(got.length, total);
      t.is(sha256(got), sha256(sent));
    }
    t.true(aborts > 0, `${aborts} reads were aborted`);
    t.is(stats().recvPool.leased, 0);
    await closeAll(ps);
  }, 60_000);
}, 90_000);

rtTest('a stream that nobody reads holds a bounded number of buffers; reading later gets every byte', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 64, bufferSize: 1024 });
    const [[c, s]] = await pairs(1);
    const src = randomBytes(256 * 1024);
    const first = s.readLease(); // arms the read; then nobody reads for a while
    const w = c.writeAll(src);
    const lease0 = (await first)!;
    await sleep(100);
    const held = stats().recvPool.leased;
    t.true(held <= 1 + 4 + 2, `${held} buffers held by a stream nobody reads`);
    const rest = await readAllLeased(s, src.length - lease0.length);
    await w;
    t.is(sha256(lease0.copy(), rest), sha256(src));
    await closeAll([[c, s]]);
  });
});

rtTest('close() gives queued leases back and rejects a waiting readLease with ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const [[c, s], [c2, s2]] = await pairs(2);
    // Queued: bytes arrive for a stream whose reader went away (an aborted read leaves the op armed).
    const ac = new AbortController();
    const p = s.readLease({ signal: ac.signal });
    ac.abort();
    await t.throwsAsync(p, { name: 'AbortError' });
    await c.writeAll(Buffer.alloc(100, 1));
    await sleep(20);
    const waiting = s2.readLease();
    await Promise.all([s.close(), s2.close()]);
    t.is(stats().recvPool.leased, 0, 'queued leases went back');
    t.is((await rejectionOf(t, waiting)).code, 'ERR_RINGIO_CLOSED');
    t.is((await rejectionOf(t, s.readLease())).code, 'ERR_RINGIO_CLOSED');
    await Promise.all([c.close(), c2.close()]);
    t.is(stats().opsInFlight, 0);
    t.is(fdCount(), fds0);
  });
});

rtTest('runtime shutdown with leases outstanding: the bytes stay readable and release() is harmless', async (t) => {
  const kept = await rt(async () => {
    const [[c, s]] = await pairs(1);
    await c.writeAll(Buffer.alloc(2000, 5));
    const lease = (await s.readLease())!;
    s.readLease().catch(() => {}); // an armed read at shutdown
    return lease;
  });
  t.true(kept.bytes.every((b) => b === 5));
  kept.release();
  t.is((t.throws(() => kept.release()) as AnyErr).code, 'ERR_RINGIO_LEASE_RELEASED');
});

rtTest('worker exit with leases outstanding is clean: terminate() and a worker whose runtime ended', async (t) => {
  for (const how of ['terminate', 'return'] as const) {
    const w = new Worker(fixture('net-lease-worker.mjs'), { env: { ...process.env, RINGIO_DRIVER: DRIVER }, workerData: { how, conns: 8 } });
    // Every message from the start: the worker's first two can arrive in one batch, and a listener
    // attached after awaiting the first would miss the second.
    const inbox: Record<string, unknown>[] = [];
    let wake: (() => void) | undefined;
    let exitCode: number | undefined;
    w.on('message', (m: Record<string, unknown>) => {
      if ('diag' in m) t.log(`the worker's runtime after 10 s: ${JSON.stringify(m.diag)}`);
      else inbox.push(m);
      wake?.();
    });
    w.once('exit', (code: number) => {
      exitCode = code;
      wake?.();
    });
    const next = async (what: string): Promise<Record<string, unknown>> => {
      await guard(
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (inbox.length > 0) resolve();
            else if (exitCode !== undefined) reject(new Error(`the worker exited (code ${exitCode}) before: ${what}`));
          };
          wake = check;
          check();
        }),
        20_000,
        what,
      );
      return inbox.shift()!;
    };
    const first = (await next('the worker took its leases')) as { leased: number; mode: string };
    t.true(first.leased >= 8, `${how}: ${first.leased} leases out (${first.mode})`);
    if (how === 'terminate') {
      t.is(await w.terminate(), 1);
    } else {
      const after = (await next('the worker after its runtime')) as { after: number; second: string };
      t.is(after.after, 8, 'lease bytes readable after the runtime ended');
      t.is(after.second, 'ERR_RINGIO_LEASE_RELEASED');
      await guard(
        new Promise<void>((resolve) => {
          wake = () => {
            if (exitCode !== undefined) resolve();
          };
          wake();
        }),
        20_000,
        'the worker exits once its runtime has ended',
      );
      t.is(exitCode, 0);
    }
  }
}, 90_000);

rtTest('toDuplex reads pooled: an idle Duplex holds no buffer, and it still reads and writes after idling', async (t) => {
  await run(async () => {
    const [[c, s]] = await pairs(1);
    const d = toDuplex(s);
    const chunks: Buffer[] = [];
    d.on('data', (b: Buffer) => chunks.push(b));
    await c.writeAll(Buffer.from('ping'));
    while (Buffer.concat(chunks).length < 4) await sleep(5);
    await sleep(30);
    t.is(stats().recvPool.leased, 0, 'idle: no buffer held');
    t.is(d.bytesRead, 4);
    d.write('pong');
    const [n, buf] = await c.read(Buffer.alloc(16));
    t.is(buf.subarray(0, n).toString(), 'pong');
    const big = randomBytes(300 * 1024);
    await c.writeAll(big);
    while (Buffer.concat(chunks).length < 4 + big.length) await sleep(5);
    t.is(sha256(Buffer.concat(chunks).subarray(4)), sha256(big));
    t.is(stats().recvPool.leased, 0);
    d.destroy();
    await once(d, 'close');
    await c.close();
  });
});

rtTest('configureRecvPool: bad values are RangeErrors naming the option; after the first pooled read ERR_RINGIO_POOL_IN_USE', async (t) => {
  await run(async () => {
    t.throws(() => configureRecvPool({ buffers: 3 }), { instanceOf: RangeError, message: /buffers/ });
    t.throws(() => configureRecvPool({ buffers: 16, maxBuffers: 8 }), { instanceOf: RangeError, message: /maxBuffers/ });
    t.throws(() => configureRecvPool({ maxBuffers: 5000 }), { instanceOf: RangeError, message: /maxBuffers/ });
    t.throws(() => configureRecvPool({ maxBuffers: 65536 }), { instanceOf: RangeError, message: /maxBuffers/ });
    const before = stats().recvPool;
    t.like(before, { mode: 'none', buffers: 64, maxBuffers: 4096, bufferSize: 16384, grows: 0 }, 'the defaults');
    t.throws(() => configureRecvPool({ bufferSize: 10 }), { instanceOf: RangeError, message: /bufferSize/ });
    t.throws(() => configureRecvPool(null as never), { instanceOf: TypeError });
    configureRecvPool({ buffers: 8, bufferSize: 4096 });
    t.is(stats().recvPool.buffers, 8);
    t.is(stats().recvPool.maxBuffers, 4096, 'maxBuffers defaults to 4096');
    const [[c, s]] = await pairs(1);
    await c.writeAll(Buffer.from('a'));
    (await s.readLease())!.release();
    t.is(stats().recvPool.bufferSize, 4096);
    t.is((t.throws(() => configureRecvPool({ buffers: 16 })) as AnyErr).code, 'ERR_RINGIO_POOL_IN_USE');
    await t.throwsAsync(s.readLease({ signal: 'x' as never }), { instanceOf: TypeError });
    await closeAll([[c, s]]);
  });
});

rtTest("without a buffer ring ('plain' mode, injected): the reason is reported; growth to the bound, exhaustion, aborts and close still lose nothing", async (t) => {
  process.env.RINGIO_FAULT_PBUF_RING = '1';
  try {
    await run(async () => {
      configureRecvPool({ buffers: 4, maxBuffers: 8, bufferSize: 512 });
      const ps = await pairs(12);
      const srcs = ps.map(() => randomBytes(20 * 1024 + ((Math.random() * 999) | 0)));
      const writes = ps.map(([c], i) => c.writeAll(srcs[i]!));
      const got = await Promise.all(
        ps.map(async ([, s], i) => {
          const ac = new AbortController();
          ac.abort();
          await t.throwsAsync(s.readLease({ signal: ac.signal }), { name: 'AbortError' });
          return readAllLeased(s, srcs[i]!.length, async () => {
            if (Math.random() < 0.3) await sleep(1);
          });
        }),
      );
      await Promise.all(writes);
      got.forEach((g, i) => t.is(sha256(g), sha256(srcs[i]!), `stream ${i} intact`));
      const st = stats().recvPool;
      t.is(st.mode, 'plain');
      t.regex(st.reason ?? '', /RINGIO_FAULT_PBUF_RING/);
      // 12 readers armed at once, each holding its buffer in this mode: 4 grow to 8, then they wait.
      t.like(st, { buffers: 8, grows: 1 });
      t.true(st.exhausted > 0);
      t.is(st.leased, 0);
      const waiting = ps[0]![1].readLease();
      await closeAll(ps);
      t.is((await rejectionOf(t, waiting)).code, 'ERR_RINGIO_CLOSED');
      t.is(stats().recvPool.leased, 0);
      t.is(stats().opsInFlight, 0);
    }, 60_000);
  } finally {
    delete process.env.RINGIO_FAULT_PBUF_RING;
  }
}, 90_000);

rtTest('a reader that keeps up reads multishot; when it falls behind the stream pauses with a few buffers held and loses nothing', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 64, bufferSize: 1024 });
    const [[c, s]] = await pairs(1);
    // Keeping up: every arrival finds the reader waiting (on io_uring the stream then reads multishot).
    for (let i = 0; i < 12; i++) {
      const p = s.readLease();
      await c.writeAll(Buffer.from([i]));
      const lease = (await p)!;
      t.deepEqual([...lease.bytes], [i]);
      lease.release();
    }
    // Falling behind: one read armed, then 40 separate arrivals that nobody reads for a while.
    const first = s.readLease();
    const sent: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const b = randomBytes(700);
      sent.push(b);
      await c.writeAll(b);
      await sleep(2);
    }
    const lease0 = (await first)!;
    await sleep(30);
    const held = stats().recvPool.leased;
    t.true(held <= 1 + 4 + 2, `${held} buffers held by a stream whose reader stopped`);
    const total = sent.reduce((n, b) => n + b.length, 0);
    const rest = await readAllLeased(s, total - lease0.length);
    t.is(sha256(lease0.copy(), rest), sha256(...sent));
    t.is(stats().recvPool.leased, 0);
    await closeAll([[c, s]]);
  });
});

rtTest('2,000 sequential round trips on a 16-buffer pool with 7 leases held elsewhere: every byte in order, no buffer lost, released ones come back with later batches', async (t) => {
  await run(async () => {
    configureRecvPool({ buffers: 16, maxBuffers: 16, bufferSize: 1024 });
    const [[c, s], [c2, s2]] = await pairs(2);
    // 7 leases held on the other stream: 9 buffers left, so most releases below ride on the next batch
    // rather than a flush of their own (recv-pool.ts), and the reads must still never run dry.
    const held: RecvLease[] = [];
    for (let i = 0; i < 7; i++) {
      await c2.writeAll(Buffer.from([i]));
      held.push((await s2.readLease())!);
    }
    t.is(stats().recvPool.leased, 7);
    const exhausted = stats().recvPool.exhausted;
    const msg = Buffer.alloc(64);
    for (let k = 0; k < 2000; k++) {
      msg.fill(k & 0xff);
      msg.writeUInt32LE(k, 0);
      await c.writeAll(msg);
      const got: Buffer[] = [];
      let n = 0;
      while (n < 64) {
        // A signal on every third read: the reader reuses only waiters without one.
        const lease = await s.readLease(k % 3 === 0 ? { signal: new AbortController().signal } : undefined);
        if (lease === null) throw new Error('unexpected end of stream');
        n += lease.length;
        got.push(lease.copy());
      }
      const all = Buffer.concat(got);
      if (!all.equals(msg)) {
        t.fail(`round trip ${k}: got ${all.toString('hex')}`);
        break;
      }
    }
    t.is(stats().recvPool.leased, 7, 'only the held leases are out');
    t.is(stats().recvPool.exhausted, exhausted, 'no read waited for a buffer');
    held.forEach((l, i) => t.deepEqual([...l.bytes], [i]));
    for (const l of held) l.release();
    t.is(stats().recvPool.leased, 0);
    // A released lease stays dead even once its buffer is leased again.
    await c2.writeAll(Buffer.from([9]));
    const again = (await s2.readLease())!;
    t.is((t.throws(() => held[0]!.release()) as AnyErr).code, 'ERR_RINGIO_LEASE_RELEASED');
    t.is((t.throws(() => held[0]!.bytes) as AnyErr).code, 'ERR_RINGIO_LEASE_RELEASED');
    t.deepEqual([...again.bytes], [9]);
    again.release();
    await closeAll([[c, s], [c2, s2]]);
  }, 60_000);
}, 90_000);
