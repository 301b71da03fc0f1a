/**
 * @ringio/net shutdown() on the driver under test: shutdown(2) at once while no write is in flight
 * (reads may be), a SHUTDOWN op while one is; the FIN after every byte written or queued before it;
 * the typed errors of a closed stream and of a reset connection.
 */
import { TcpStream } from '@ringio/net';
import { stats } from '@ringio/runtime';
import { guard, hashToEnd, randomBytes, rejectionOf, resettingServer, rtTest, run, sha256, tcpPairs } from './helpers.js';

const MiB = 1024 * 1024;

async function pair(): Promise<[TcpStream, TcpStream]> {
  return (await tcpPairs(1))[0]!;
}

rtTest('shutdown() with only a read in flight runs at once (no op); the peer reads every byte written before it, then EOF', async (t) => {
  await run(async () => {
    const [c, s] = await pair();
    const data = randomBytes(4 * MiB);
    const reading = hashToEnd(s);
    await c.writeAll(data);
    const own = c.read(Buffer.alloc(64)); // a read of our own in flight: shutdown does not wait for it
    const before = stats().opsInFlight;
    const shut = c.shutdown();
    t.is(stats().opsInFlight, before, 'no op went to the driver');
    await shut;
    const [n, hash] = await guard(reading, 10_000, 'the peer reads to EOF');
    t.is(n, data.length);
    t.is(hash, sha256(data));
    // The read side stays open: the peer's reply reaches the read that was in flight.
    await s.writeAll(Buffer.from('reply'));
    const [got, buf] = await guard(own, 5000, 'our read');
    t.is(buf.subarray(0, got).toString(), 'reply');
    await s.close();
    await c.close();
  });
});

rtTest('shutdown() after send(): the queued bytes go first, then the FIN', async (t) => {
  await run(async () => {
    const [c, s] = await pair();
    const chunks = Array.from({ length: 64 }, () => randomBytes(64 * 1024 + 17));
    const reading = hashToEnd(s);
    for (const chunk of chunks) c.send(chunk);
    t.true(c.sendQueued > 0, 'bytes are still queued when shutdown() is called');
    await guard(c.shutdown(), 10_000, 'shutdown after the queue');
    t.is(c.sendQueued, 0);
    const [n, hash] = await guard(reading, 10_000, 'the peer reads to EOF');
    t.is(n, 64 * (64 * 1024 + 17));
    t.is(hash, sha256(...chunks));
    await s.close();
    await c.close();
  });
});

rtTest('shutdown() with a write in flight goes as a SHUTDOWN op; the peer reads exactly what the kernel took, then EOF', async (t) => {
  await run(async () => {
    const [c, s] = await pair();
    const data = randomBytes(32 * MiB); // more than both socket buffers: the write waits for the peer
    const writing = c.writeAll(data).then(
      ([n]) => n,
      (e: { code?: string; n?: number }) => {
        t.is(e.code, 'EPIPE', 'the rest of the write fails EPIPE after the shutdown');
        return e.n ?? 0;
      },
    );
    await new Promise((r) => setTimeout(r, 50));
    const before = stats().opsInFlight;
    const shut = c.shutdown();
    t.is(stats().opsInFlight, before + 1, 'a SHUTDOWN op');
    await guard(shut, 5000, 'shutdown');
    const [got, hash] = await guard(hashToEnd(s), 20_000, 'the peer reads to EOF');
    const sent = await guard(writing, 5000, 'the write settles');
    t.true(sent > 0 && sent <= data.length);
    t.is(got, sent, 'every byte the kernel took, nothing after the FIN');
    t.is(hash, sha256(data.subarray(0, sent)));
    await s.close();
    await c.close();
  });
});

rtTest('shutdown() of a closed stream rejects ERR_RINGIO_CLOSED; of a reset connection ENOTCONN (syscall shutdown)', async (t) => {
  await run(async () => {
    const [c, s] = await pair();
    await c.close();
    const closed = await rejectionOf(t, c.shutdown());
    t.is(closed.code, 'ERR_RINGIO_CLOSED');
    await s.close();

    const srv = await resettingServer();
    try {
      const r = await TcpStream.connect({ host: '127.0.0.1', port: srv.port });
      await r.writeAll(Buffer.from('x'));
      const readErr = await rejectionOf(t, guard(r.read(Buffer.alloc(16)), 5000, 'the reset'));
      t.is(readErr.code, 'ECONNRESET');
      const e = await rejectionOf(t, r.shutdown());
      t.is(e.code, 'ENOTCONN');
      t.is(e.syscall, 'shutdown');
      t.is(e.errno, -107);
      t.true(e instanceof Error);
      await r.close();
    } finally {
      srv.close();
    }
  });
});

rtTest('_shutdownNow (compat): 0 with only a read in flight, undefined with send() bytes queued or a write in flight, ERR_RINGIO_CLOSED once closed', async (t) => {
  await run(async () => {
    const now = (s: TcpStream): number | undefined => (s as unknown as { _shutdownNow(): number | undefined })._shutdownNow();
    const [c, s] = await pair();
    // A write that cannot finish at once (the peer does not read): in flight while we ask.
    const big = randomBytes(32 * MiB);
    const writing = c.writeAll(big);
    await new Promise((r) => setTimeout(r, 20));
    t.is(now(c), undefined, 'a write op is in flight');
    const reading = hashToEnd(s);
    await guard(writing, 20_000, 'the big write');
    const queued = randomBytes(8 * MiB);
    c.send(queued);
    t.is(now(c), undefined, 'send() bytes are queued');
    await c.flush();
    const pending = c.readLease(); // a read in flight
    t.is(now(c), 0, 'only a read in flight: shutdown(2) at once');
    const all = Buffer.concat([big, queued]);
    t.deepEqual(await guard(reading, 20_000, 'the peer reads to EOF'), [all.length, sha256(all)]);
    await s.close();
    t.is(await guard(pending, 5000, 'the read sees the peer close'), null);
    await c.close();
    t.throws(() => now(c), { code: 'ERR_RINGIO_CLOSED' } as never);
  });
});
