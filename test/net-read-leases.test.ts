/**
 * readLeases(handler): every received lease goes to a callback as it arrives (no promise, no await per
 * read); a returned promise pauses reading until it settles; the end of stream resolves, errors, a
 * throwing handler, an abort and close() reject, and nothing that arrives is lost. Every test runs on
 * the driver under test (RINGIO_DRIVER), and `npm test` runs both.
 */
import net from 'node:net';
import { TcpStream } from '@ringio/net';
import { sleep, stats, type RecvLease } from '@ringio/runtime';
import { guard, randomBytes, rejectionOf, rtTest, run, sha256, tcpPairs, readUpTo } from './helpers.js';

rtTest('readLeases + send: an echo with no await per message; resolves at end of stream, every lease back', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const data = randomBytes(2_000_000);
    const back = readUpTo(c, data.length);
    const writing = c.writeAll(data).then(() => c.shutdown());
    let calls = 0;
    await guard(
      s.readLeases((lease) => {
        calls++;
        if (!s.send(lease)) return s.flush();
      }),
      15_000,
      'readLeases to end of stream',
    );
    await s.flush();
    await writing;
    t.is(sha256(await back), sha256(data));
    t.true(calls > 0);
    t.is(stats().recvPool.leased, 0, 'every lease went back once sent');
    t.is(await s.readLease(), null, 'the end of stream stays');
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('readLeases: a returned promise pauses the handler; arrivals wait in order and none is lost', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const parts: Buffer[] = [];
    let paused = false;
    let calledWhilePaused = 0;
    let first = true;
    const consuming = s.readLeases((lease) => {
      if (paused) calledWhilePaused++;
      parts.push(lease.copy());
      if (first) {
        first = false;
        paused = true;
        return sleep(100).then(() => {
          paused = false;
        });
      }
    });
    const sent: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const b = randomBytes(1000 + i);
      sent.push(b);
      await c.writeAll(b);
      if (i === 0) await sleep(10);
    }
    await c.shutdown();
    await guard(consuming, 10_000, 'readLeases');
    t.is(calledWhilePaused, 0, 'the handler is not called while its promise is pending');
    t.is(sha256(Buffer.concat(parts)), sha256(...sent));
    t.is(stats().recvPool.leased, 0);
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('readLeases: a throwing handler or a rejected pause rejects it; later bytes go to the next reader', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    await c.writeAll(Buffer.from('abc'));
    const boom = new Error('boom');
    const e1 = await rejectionOf(
      t,
      s.readLeases((lease) => {
        lease.release();
        throw boom;
      }),
    );
    t.is(e1, boom);
    await c.writeAll(Buffer.from('def'));
    const l1 = (await guard(s.readLease(), 5000, 'readLease after the consumer ended'))!;
    t.is(l1.copy().toString(), 'def');
    await c.writeAll(Buffer.from('ghi'));
    const nope = new Error('nope');
    const e2 = await rejectionOf(
      t,
      s.readLeases((lease) => {
        lease.release();
        return Promise.reject(nope);
      }),
    );
    t.is(e2, nope);
    await c.writeAll(Buffer.from('jkl'));
    const l2 = (await guard(s.readLease(), 5000, 'readLease after the rejected pause'))!;
    t.is(l2.copy().toString(), 'jkl');
    t.is(stats().recvPool.leased, 0);
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('readLeases: misuse is a TypeError; abort rejects AbortError and loses nothing', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    await t.throwsAsync(s.readLeases('x' as unknown as (l: RecvLease) => void), { instanceOf: TypeError });
    await t.throwsAsync(s.readLeases(() => {}, { signal: {} as AbortSignal }), { instanceOf: TypeError });
    const ac = new AbortController();
    const got: string[] = [];
    const consuming = s.readLeases((lease) => void got.push(lease.copy().toString()), { signal: ac.signal });
    await t.throwsAsync(s.readLease(), { instanceOf: TypeError }, 'readLease while a consumer runs');
    await t.throwsAsync(s.readLeases(() => {}), { instanceOf: TypeError }, 'a second consumer');
    await t.throwsAsync(s.read(Buffer.alloc(8)), { instanceOf: TypeError }, 'read while a consumer runs');
    await c.writeAll(Buffer.from('one'));
    for (let i = 0; i < 200 && got.length === 0; i++) await sleep(5);
    t.deepEqual(got, ['one']);
    ac.abort();
    t.is((await rejectionOf(t, consuming)).name, 'AbortError');
    await c.writeAll(Buffer.from('two'));
    const l = (await guard(s.readLease(), 5000, 'readLease after abort'))!;
    t.is(l.copy().toString(), 'two');
    await t.throwsAsync(s.readLeases(() => {}, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('readLeases: close() rejects ERR_RINGIO_CLOSED; a peer reset rejects ECONNRESET (recv)', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const consuming = s.readLeases((lease) => lease.release());
    await sleep(10);
    await s.close();
    t.is((await rejectionOf(t, consuming)).code, 'ERR_RINGIO_CLOSED');
    await c.close();
  });
  let sock: net.Socket | undefined;
  const srv = net.createServer((x) => (sock = x));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    await run(async () => {
      const c = await TcpStream.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port });
      for (let i = 0; i < 200 && sock === undefined; i++) await sleep(5);
      const consuming = c.readLeases((lease) => lease.release());
      await sleep(10);
      sock!.resetAndDestroy();
      const err = await guard(rejectionOf(t, consuming), 5000, 'readLeases on a reset connection');
      t.is(err.code, 'ECONNRESET');
      t.is(err.syscall, 'recv');
      t.is(stats().recvPool.leased, 0);
      await c.close();
    });
  } finally {
    srv.close();
  }
});

rtTest('intoSplit: the read half has readLeases', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const [r] = s.intoSplit();
    const got: Buffer[] = [];
    const consuming = r.readLeases!((lease) => void got.push(lease.copy()));
    await c.writeAll(Buffer.from('split'));
    await c.shutdown();
    await guard(consuming, 5000, 'readLeases on the read half');
    t.is(Buffer.concat(got).toString(), 'split');
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('readLeases { recycle }: a lease object comes back only after its release, never while send() holds it', async (t) => {
  await run(async () => {
    const pairs = await tcpPairs(3);
    // Three echoes at once on the thread's one pool: their recycled leases come from one spare list.
    // The peers start reading back only after a while, so sends stay queued and in flight (their
    // leases unreleased) while more bytes arrive: a lease handed out again before send() released it
    // (early recycling) is caught by `live`, and would also give the wrong buffer back (the hashes).
    // Each lease object's release() is wrapped to see when it is released.
    const live = new Set<RecvLease>();
    const objects = new Set<RecvLease>();
    let deliveries = 0;
    let heldAcrossArrivals = 0;
    const runs = pairs.map(async ([c, s]) => {
      const data = randomBytes(1_500_000);
      const writing = c.writeAll(data).then(() => c.shutdown());
      const back = sleep(50).then(() => readUpTo(c, data.length));
      await guard(
        s.readLeases(
          (lease) => {
            deliveries++;
            t.false(live.has(lease), 'an unreleased lease is not handed out again');
            if (live.size > 0) heldAcrossArrivals++;
            t.false(lease.released);
            live.add(lease);
            if (!objects.has(lease)) {
              objects.add(lease);
              // Seen at the moment it happens (send() and the queue call it): the object leaves `live`.
              const release = lease.release;
              lease.release = function (this: RecvLease): void {
                live.delete(this);
                release.call(this);
              };
            }
            const sent = s.send(lease);
            if (!sent) return s.flush();
          },
          { recycle: true },
        ),
        20_000,
        'recycling readLeases to end of stream',
      );
      await s.flush();
      await writing;
      t.is(sha256(await back), sha256(data), 'every byte echoed, in order');
    });
    await Promise.all(runs);
    t.true(heldAcrossArrivals > 0, 'some arrivals came while earlier leases were still held by sends');
    t.true(objects.size < deliveries, `lease objects were recycled (${objects.size} for ${deliveries} reads)`);
    t.is(stats().recvPool.leased, 0, 'every lease went back once sent');
    await Promise.all(pairs.flatMap(([c, s]) => [c.close(), s.close()]));
  });
});

rtTest('readLeases: without recycle every read is a new lease object; recycle must be a boolean', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    await t.throwsAsync(s.readLeases(() => {}, { recycle: 1 as unknown as boolean }), { instanceOf: TypeError });
    const seen = new Set<RecvLease>();
    let reused = 0;
    const data = randomBytes(300_000);
    const writing = c.writeAll(data).then(() => c.shutdown());
    const parts: Buffer[] = [];
    await guard(
      s.readLeases((lease) => {
        if (seen.has(lease)) reused++;
        seen.add(lease);
        parts.push(lease.copy());
      }),
      10_000,
      'readLeases',
    );
    await writing;
    t.is(reused, 0);
    t.true(seen.size > 1);
    t.is(sha256(Buffer.concat(parts)), sha256(data));
    // A released lease of a plain reader stays released: using it throws.
    const last = [...seen].pop()!;
    t.true(last.released);
    t.throws(() => last.bytes, { code: 'ERR_RINGIO_LEASE_RELEASED' });
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('readLeases { recycle }: leases still queued when it stops go to the next reader as plain leases', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const ac = new AbortController();
    let first: RecvLease | undefined;
    let calls = 0;
    // Eight arrivals one at a time (on io_uring the reader moves to multishot, which stays armed), then
    // the ninth lease pauses the consumer for good: what arrives next waits in its queue (on epoll it
    // stays in the socket: reads are armed only while the consumer runs).
    const consuming = s.readLeases(
      (lease) => {
        if (++calls < 9) {
          lease.release();
          return undefined;
        }
        first = lease;
        return new Promise(() => {});
      },
      { recycle: true, signal: ac.signal },
    );
    for (let i = 0; i < 8; i++) {
      await c.writeAll(Buffer.from(`w${i}`));
      for (let k = 0; k < 200 && calls <= i; k++) await sleep(2);
    }
    await c.writeAll(Buffer.from('one'));
    for (let i = 0; i < 200 && first === undefined; i++) await sleep(5);
    await c.writeAll(Buffer.from('two'));
    await sleep(50);
    ac.abort();
    t.is((await rejectionOf(t, consuming)).name, 'AbortError');
    t.is(first!.copy().toString(), 'one'); // released: a spare now
    const queued = (await guard(s.readLease(), 5000, 'readLease after the consumer stopped'))!;
    t.not(queued, first, 'the queued lease is not the released one');
    t.is(queued.bytes.toString(), 'two');
    queued.release();
    // A plain lease stays released: it did not become a spare for the next recycling reader.
    t.true(queued.released);
    t.throws(() => queued.bytes, { code: 'ERR_RINGIO_LEASE_RELEASED' });
    const got: RecvLease[] = [];
    const again = s.readLeases(
      (lease) => {
        got.push(lease);
        lease.release();
      },
      { recycle: true },
    );
    for (let i = 0; i < 20; i++) {
      await c.writeAll(Buffer.from(`x${i}`));
      await sleep(2);
    }
    await c.shutdown();
    await guard(again, 5000, 'the second recycling consumer');
    t.true(got.length > 0);
    t.false(got.includes(queued), 'the plain lease was never handed out again');
    t.true(got.includes(first!), 'the recycling consumer\'s own released lease was');
    t.true(queued.released, 'and the plain one is still released');
    t.is(stats().recvPool.leased, 0);
    await Promise.all([c.close(), s.close()]);
  });
});
