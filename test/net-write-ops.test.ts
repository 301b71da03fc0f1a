/**
 * writeAll's ops come from a per-thread free list (SendAllOp.take), not one per stream: a completed op
 * goes back without the caller's buffer and is reused by whichever stream writes next. These tests
 * check that reuse across streams sends to the right socket, that every write resolves with its own
 * buffer (errors too), and that an op made with `new` stays the caller's.
 */
import { SendAllOp, type TcpStream } from '@ringio/net';
import { submit } from '@ringio/runtime';
import { randomBytes, rejectionOf, rtTest, run, sha256, tcpPairs } from './helpers.js';

const pairs = tcpPairs;

async function readN(s: TcpStream, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  await s.readExact(buf);
  return buf;
}

rtTest('writeAll ops reused across streams: each write reaches its own socket and resolves its own buffer', async (t) => {
  await run(async () => {
    const ps = await pairs(3);
    const sent: Buffer[][] = ps.map(() => []);
    // Interleaved sequential writes: each completed op is the next stream's op.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < ps.length; i++) {
        const buf = randomBytes(1 + ((round * 37 + i * 11) % 3000));
        const [n, back] = await ps[i]![0].writeAll(buf);
        t.is(n, buf.length);
        t.is(back, buf, 'resolved with the caller\'s buffer');
        sent[i]!.push(buf);
      }
    }
    // Concurrent writes on every stream at once (several ops out of the list, then back).
    const burst = ps.map(() => randomBytes(200_000));
    const reads = ps.map(([, s], i) => readN(s, sent[i]!.reduce((a, b) => a + b.length, 0) + burst[i]!.length));
    const results = await Promise.all(ps.map(([c], i) => c.writeAll(burst[i]!)));
    results.forEach(([n, back], i) => {
      t.is(n, burst[i]!.length);
      t.is(back, burst[i]);
    });
    const got = await Promise.all(reads);
    got.forEach((g, i) => t.is(sha256(g), sha256(...sent[i]!, burst[i]!), `stream ${i} got exactly its bytes`));
    await Promise.all(ps.flatMap(([c, s]) => [c.close(), s.close()]));
  });
});

rtTest('a failed writeAll carries its own buffer; the next write on another stream is unaffected', async (t) => {
  await run(async () => {
    const [[c1, s1], [c2, s2]] = await pairs(2);
    await s1.close();
    const big = Buffer.alloc(1 << 20, 1);
    let err: Awaited<ReturnType<typeof rejectionOf>> | undefined;
    // The peer is gone: a write fails (EPIPE or ECONNRESET) once the kernel knows.
    for (let i = 0; i < 50 && err === undefined; i++) {
      err = await c1.writeAll(big).then(
        () => undefined,
        (e) => e,
      );
    }
    t.truthy(err, 'a write to a closed peer failed');
    t.true(['EPIPE', 'ECONNRESET'].includes(err!.code as string), String(err!.code));
    t.is(err!.buf, big);
    const msg = Buffer.from('still fine');
    t.is((await c2.writeAll(msg))[1], msg);
    t.deepEqual(await readN(s2, msg.length), msg);
    await Promise.all([c1.close(), c2.close(), s2.close()]);
  });
});

rtTest('a SendAllOp made with new is never pooled: it keeps its buffer after completing', async (t) => {
  await run(async () => {
    const [[c, s]] = await pairs(1);
    const buf = Buffer.from('own op');
    const op = new SendAllOp(c.fd, buf, 0, buf.length);
    const [n, back] = await submit(op);
    t.is(n, buf.length);
    t.is(back, buf);
    t.is(op.buf, buf, 'the op still holds the caller\'s buffer');
    // Writes through the stream afterwards take other ops: this one stays as it was.
    await c.writeAll(Buffer.from('!'));
    t.is(op.buf, buf);
    t.deepEqual(await readN(s, buf.length + 1), Buffer.from('own op!'));
    await Promise.all([c.close(), s.close()]);
  });
});
