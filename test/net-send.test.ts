/**
 * Queued sends (SocketStream.send / flush): bytes handed over without a promise, sent in order, one SEND
 * in flight per stream; send() answers false at the high-water mark; a lease is released once its bytes
 * are sent; a failed send sticks and surfaces on the next send, flush, read or close; close() drops what
 * has not gone out; every buffer stays referenced until its op's final completion. Every test runs on
 * the driver under test (RINGIO_DRIVER), and `npm test` runs both.
 */
import { TcpStream } from '@ringio/net';
import { sleep, stats } from '@ringio/runtime';
import { churn, gc, guard, randomBytes, rejectionOf, resettingServer, rtTest, run, sha256, tcpPairs, type AnyErr, readUpTo } from './helpers.js';

/**
 * Connects to a resetting server and lets it reset, then queues one send, which fails (the socket holds
 * the reset); waits for the queue to empty without calling anything that would report the error.
 */
async function failedSend(t: import('ava').ExecutionContext, port: number, resets: () => number): Promise<TcpStream> {
  const before = resets();
  const c = await TcpStream.connect({ host: '127.0.0.1', port });
  await c.writeAll(Buffer.from('hello'));
  for (let i = 0; i < 400 && resets() === before; i++) await sleep(5);
  t.is(resets(), before + 1, 'the peer reset the connection');
  await sleep(20);
  c.send(Buffer.alloc(65536, 7));
  for (let k = 0; k < 1000 && c.sendQueued > 0; k++) await sleep(2);
  t.is(c.sendQueued, 0, 'the send completed (it failed)');
  return c;
}

rtTest('send: windows go out in order, mixed sizes, without awaiting; flush resolves once all are sent', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const parts: Buffer[] = [];
    for (let i = 0; i < 200; i++) parts.push(randomBytes(i % 7 === 0 ? 200_000 : 1 + ((i * 37) % 3000)));
    const total = parts.reduce((a, p) => a + p.length, 0);
    const reading = readUpTo(s, total);
    let full = 0;
    for (const p of parts) {
      // A window of a larger buffer too: offset and length are honoured.
      const framed = Buffer.concat([Buffer.from('xx'), p, Buffer.from('yyy')]);
      if (!c.send(framed, { offset: 2, length: p.length })) full++;
    }
    t.true(full > 0, 'send() answered false past the high-water mark');
    t.true(c.sendQueued > 0);
    await guard(c.flush(), 10_000, 'flush');
    t.is(c.sendQueued, 0);
    const got = await reading;
    t.is(got.length, total);
    t.is(sha256(got), sha256(...parts));
    await c.flush(); // nothing queued: resolves at once
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('send: queues that went idle serve other streams (spare list): 16 streams taking turns, each peer gets only its own bytes; an error stays with its stream', async (t) => {
  await run(async () => {
    const ps = await tcpPairs(16);
    const ROUNDS = 30;
    const sent = ps.map((_, i) =>
      Array.from({ length: ROUNDS }, (_, round) => randomBytes(1 + ((round * 131 + i * 17) % (round % 5 === 0 ? 90_000 : 700)))),
    );
    const reading = Promise.all(ps.map(([, s], i) => readUpTo(s, sent[i]!.reduce((a, b) => a + b.length, 0))));
    // Rounds of sends where every stream's queue empties (and leaves its stream) before the next round,
    // so each round's queues come from the spare list in a different order.
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? ps.map((_, i) => i) : ps.map((_, i) => ps.length - 1 - i);
      for (const i of order) ps[i]![0].send(sent[i]![round]!);
      await Promise.all(ps.map(([c]) => c.flush()));
      for (const [c] of ps) t.is(c.sendQueued, 0);
    }
    const got = await guard(reading, 10_000, 'every peer read its bytes');
    for (let i = 0; i < ps.length; i++) t.is(sha256(got[i]!), sha256(...sent[i]!), `stream ${i} got its own bytes in order`);
    await Promise.all(ps.flatMap(([c, s]) => [c.close(), s.close()]));
  });
  // A failed stream keeps its queue and its error; a healthy stream's sends after that still go out.
  const bad = await resettingServer();
  try {
    await run(async () => {
      const c = await failedSend(t, bad.port, bad.resets);
      const [[a, b]] = await tcpPairs(1);
      a.send(Buffer.from('still fine'));
      await a.flush();
      t.is((await readUpTo(b, 10)).toString(), 'still fine');
      t.is((await rejectionOf(t, c.flush())).code, 'ECONNRESET');
      await Promise.all([a.close(), b.close(), c.close().catch(() => undefined)]);
    });
  } finally {
    bad.close();
  }
});

rtTest('send: the boolean follows sendHighWaterMark; flush waits for a peer that reads late', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    t.is(c.sendHighWaterMark, 65536);
    c.sendHighWaterMark = 1000;
    t.true(c.send(Buffer.alloc(600, 1)), '600 < 1000');
    t.false(c.send(Buffer.alloc(600, 2)), '1200 >= 1000');
    t.is(c.sendQueued, 1200);
    t.false(c.send(Buffer.alloc(0)), 'an empty send queues nothing and still answers');
    await c.flush();
    t.is(c.sendQueued, 0);
    t.true(c.send(Buffer.alloc(10, 3)));
    // A peer that does not read: the socket buffer fills, the queue holds the rest, flush waits.
    c.sendHighWaterMark = 65536;
    const chunk = randomBytes(1 << 20);
    let sent = 1210;
    for (let i = 0; i < 16; i++) {
      c.send(chunk);
      sent += chunk.length;
    }
    let flushed = false;
    const flushing = c.flush().then(() => (flushed = true));
    await sleep(50);
    t.false(flushed, 'flush waits while the peer does not read');
    t.true(c.sendQueued > 0);
    const got = await readUpTo(s, sent);
    await guard(flushing, 10_000, 'flush after the peer read');
    t.is(got.length, sent);
    t.is(sha256(got.subarray(1210)), sha256(...Array<Buffer>(16).fill(chunk)));
    t.throws(() => (c.sendHighWaterMark = 0), { instanceOf: RangeError });
    t.throws(() => (c.sendHighWaterMark = 1.5), { instanceOf: RangeError });
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('send(lease): an echo without awaits; each lease is released once its bytes are sent', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const data = randomBytes(300_000);
    const back = readUpTo(c, data.length);
    const writing = c.writeAll(data).then(() => c.shutdown());
    let leases = 0;
    let heldAfterSend = 0;
    for (;;) {
      const lease = await s.readLease();
      if (lease === null) break;
      leases++;
      s.send(lease);
      // The stream owns it now: it stays leased until its SEND completes.
      if (!lease.released) heldAfterSend++;
      if (s.sendQueued > 100_000) await s.flush();
    }
    await s.flush();
    t.is(stats().recvPool.leased, 0, 'every lease went back once sent');
    t.true(leases > 0);
    t.true(heldAfterSend > 0, 'a lease is held while its send is in flight');
    await writing;
    const got = await back;
    t.is(sha256(got), sha256(data));
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('send(lease, { offset, length }): a window of the received bytes; a bad one releases the lease', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    await c.writeAll(Buffer.from('0123456789'));
    const lease = (await s.readLease())!;
    t.throws(() => s.send(lease, { offset: 4, length: 20 }), { instanceOf: RangeError });
    t.true(lease.released, 'a lease given to a send that throws is released');
    await c.writeAll(Buffer.from('abcdefghij'));
    const l2 = (await s.readLease())!;
    s.send(l2, { offset: 2, length: 3 });
    await s.flush();
    t.true(l2.released);
    t.is((await readUpTo(c, 3)).toString(), 'cde');
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('send: bad arguments throw typed errors; a released lease and a closed stream too', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    t.throws(() => c.send('text' as unknown as Uint8Array), { instanceOf: TypeError });
    t.throws(() => c.send(Buffer.alloc(8), { offset: 9 }), { instanceOf: RangeError });
    t.throws(() => c.send(Buffer.alloc(8), { offset: 2, length: 7 }), { instanceOf: RangeError });
    t.throws(() => c.send(Buffer.alloc(8), { offset: -1 }), { instanceOf: RangeError });
    await c.writeAll(Buffer.from('x'));
    const lease = (await s.readLease())!;
    lease.release();
    t.throws(() => s.send(lease), { code: 'ERR_RINGIO_LEASE_RELEASED' });
    t.is(c.sendQueued, 0, 'nothing was queued by the failed calls');
    await c.writeAll(Buffer.from('y'));
    const held = (await s.readLease())!;
    await s.close();
    t.throws(() => s.send(held), { code: 'ERR_RINGIO_CLOSED' });
    t.true(held.released, 'send() on a closed stream releases the lease it was given');
    t.is((await rejectionOf(t, s.flush())).code, 'ERR_RINGIO_CLOSED');
    t.is(stats().recvPool.leased, 0);
    await c.close();
  });
});

rtTest('send after a peer reset: the error sticks, send throws it, flush rejects it', async (t) => {
  const srv = await resettingServer();
  try {
    await run(async () => {
      const c = await failedSend(t, srv.port, srv.resets);
      const err = t.throws(() => c.send(Buffer.from('more'))) as AnyErr;
      t.true(err.code === 'ECONNRESET' || err.code === 'EPIPE', `code ${err.code}`);
      t.is(err.syscall, 'send');
      t.is(t.throws(() => c.send(Buffer.from('again'))), err, 'it sticks');
      t.is(await rejectionOf(t, c.flush()), err);
      await c.close(); // reported already: close() resolves
      t.is(c.fd, -1);
    });
  } finally {
    srv.close();
  }
});

rtTest('send after a peer reset: an unreported error surfaces on the next read, or on close()', async (t) => {
  const srv = await resettingServer();
  try {
    await run(async () => {
      const a = await failedSend(t, srv.port, srv.resets);
      const e1 = await rejectionOf(t, a.readLease());
      t.true(e1.code === 'ECONNRESET' || e1.code === 'EPIPE', `code ${e1.code}`);
      t.is(e1.syscall, 'send', 'the read reported the failed send');
      await a.close();

      const b = await failedSend(t, srv.port, srv.resets);
      const e2 = await rejectionOf(t, b.close());
      t.true(e2.code === 'ECONNRESET' || e2.code === 'EPIPE', `code ${e2.code}`);
      t.is(e2.syscall, 'send');
      t.is(b.fd, -1, 'the stream is closed even so');
      await b.close(); // idempotent, nothing left to report
    });
  } finally {
    srv.close();
  }
});

rtTest('close with queued sends: queued leases are released, flush rejects ERR_RINGIO_CLOSED, nothing leaks', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    // The server echoes leases back to a client that never reads, so sends back up behind a full socket.
    const filler = randomBytes(64 * 1024);
    let queuedLeases = 0;
    c.send(filler);
    for (let i = 0; i < 400; i++) {
      c.send(filler);
      const lease = await s.readLease();
      if (lease === null) break;
      s.send(lease);
      if (!lease.released) queuedLeases++;
      if (s.sendQueued > 4 * 65536 && i > 50) break;
    }
    t.true(queuedLeases > 0);
    t.true(s.sendQueued > 0, 'the server has sends queued behind a full socket');
    const flushing = rejectionOf(t, s.flush());
    await s.close();
    t.is((await flushing).code, 'ERR_RINGIO_CLOSED');
    t.is(stats().recvPool.leased, 0, 'every queued and in-flight lease went back to the pool');
    // The server closed with unread bytes (a reset): the client's own queued sends may have failed, and
    // nothing reported it yet, so its close() may report it.
    await c.close().catch((e: AnyErr) => t.true(e.code === 'ECONNRESET' || e.code === 'EPIPE', `code ${e.code}`));
    t.is(c.fd, -1);
  });
});

rtTest('send: buffers are held until their sends complete, through scavenges and full GCs', async (t) => {
  t.truthy(gc, 'ava runs the tests with --expose-gc');
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    // Fill the socket so the next windows queue, then hand over small on-heap arrays nobody else holds.
    const filler = Buffer.alloc(1 << 20, 0xaa);
    for (let i = 0; i < 8; i++) c.send(filler);
    const refs: WeakRef<Uint8Array>[] = [];
    const parts: Buffer[] = [];
    (() => {
      for (let i = 0; i < 64; i++) {
        const p = randomBytes(48);
        parts.push(Buffer.from(p));
        const u = new Uint8Array(48);
        u.set(p);
        refs.push(new WeakRef(u));
        c.send(u);
      }
    })();
    await churn(3);
    t.true(
      refs.every((r) => r.deref() !== undefined),
      'queued and in-flight buffers are alive',
    );
    const got = await readUpTo(s, 8 * filler.length + 64 * 48);
    await guard(c.flush(), 10_000, 'flush');
    t.is(sha256(got.subarray(8 * filler.length)), sha256(...parts), 'the bytes sent are the bytes queued');
    await churn(3);
    t.true(
      refs.every((r) => r.deref() === undefined),
      'sent buffers are let go',
    );
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('intoSplit: the write half has send and flush', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const [, w] = c.intoSplit();
    t.true(w.send!(Buffer.from('split')));
    await w.flush!();
    t.is((await readUpTo(s, 5)).toString(), 'split');
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('send: ops of 300 sends in flight at once are all reused by the next 300 (the per-thread op list keeps up to 1024), and each peer gets only its own bytes', async (t) => {
  // The op class the streams use (the same module instance: @ringio/net resolves to packages/net/dist).
  const { SendQueuedOp } = (await import(new URL('../../packages/net/dist/ops/send-queued.js', import.meta.url).href)) as {
    SendQueuedOp: { take: (...a: unknown[]) => object };
  };
  await run(async () => {
    const N = 300;
    const ps = await tcpPairs(N);
    const orig = SendQueuedOp.take;
    let seen = new Set<object>();
    SendQueuedOp.take = function (this: unknown, ...a: unknown[]) {
      const op = orig.apply(this, a);
      seen.add(op);
      return op;
    };
    try {
      const rounds: Set<object>[] = [];
      const msgs = ps.map((_, i) => [randomBytes(64 + (i % 5)), randomBytes(64 + (i % 7))]);
      const reading = Promise.all(ps.map(([, s], i) => readUpTo(s, msgs[i]![0]!.length + msgs[i]![1]!.length)));
      for (let round = 0; round < 2; round++) {
        seen = new Set();
        // Every stream's send is in flight at once: one op each.
        for (let i = 0; i < N; i++) ps[i]![0].send(msgs[i]![round]!);
        await guard(Promise.all(ps.map(([c]) => c.flush())), 10_000, 'flush');
        rounds.push(seen);
      }
      t.is(rounds[0]!.size, N, 'one op per stream in flight');
      t.is(rounds[1]!.size, N);
      let reused = 0;
      for (const op of rounds[1]!) if (rounds[0]!.has(op)) reused++;
      t.is(reused, N, 'the second round made no new op');
      const got = await reading;
      for (let i = 0; i < N; i++) t.is(sha256(got[i]!), sha256(msgs[i]![0]!, msgs[i]![1]!), `peer ${i} got its own bytes in order`);
    } finally {
      SendQueuedOp.take = orig;
      await Promise.all(ps.flatMap(([c, s]) => [c.close(), s.close()]));
    }
  });
});
