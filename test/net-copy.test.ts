/**
 * @ringio/net proxying on the driver under test: copy (through a rented buffer) and spliceCopy (through a
 * pipe in the kernel) of 64 MiB between TCP connections, checked by byte count and sha256; small and odd
 * buffer/chunk sizes, split halves and Unix sources; cancellation; and copyBidirectional through a proxy
 * with traffic both ways at once and half-close passing through.
 */
import { randomFillSync } from 'node:crypto';
import { TcpListener, TcpStream, UnixStream, copy, copyBidirectional, spliceCopy } from '@ringio/net';
import { sleep, spawn, stats } from '@ringio/runtime';
import { fdCount, guard, hashToEnd, rejectionOf, rtTest, run, sha256 } from './helpers.js';

const MiB = 1024 * 1024;
/** Deadline of each test body (run()): 64 MiB through a proxy takes a while. */
const RUN_MS = 25_000;
/** Read size of hashToEnd() here. */
const HASH_CHUNK = 256 * 1024;

function random(n: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(n));
}

function hostPort(l: TcpListener): string {
  return `127.0.0.1:${l.localAddr.port}`;
}

/**
 * A source server that writes `data` to its one connection and closes, a sink server that hashes what
 * its one connection sends, and the proxy's two client connections to them.
 */
async function sourceAndSink(data: Uint8Array): Promise<{
  from: TcpStream;
  to: TcpStream;
  source: PromiseLike<void>;
  sink: PromiseLike<[number, string]>;
  close: () => Promise<void>;
}> {
  const srcL = await TcpListener.bind('127.0.0.1:0');
  const sinkL = await TcpListener.bind('127.0.0.1:0');
  const source = spawn(async () => {
    const [s] = await srcL.accept();
    const [n] = await s.writeAll(data);
    if (n !== data.length) throw new Error(`source wrote ${n}`);
    await s.close();
  });
  const sink = spawn(async () => {
    const [s] = await sinkL.accept();
    const r = await hashToEnd(s, HASH_CHUNK);
    await s.close();
    return r;
  });
  const from = await TcpStream.connect(hostPort(srcL));
  const to = await TcpStream.connect(hostPort(sinkL));
  return {
    from,
    to,
    source,
    sink,
    close: async () => {
      for (const x of [from, to, srcL, sinkL]) await x.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// one way

const BIG = 64 * MiB;

for (const via of ['copy', 'spliceCopy'] as const) {
  rtTest(`${via}: 64 MiB from a source connection into a sink connection, byte-exact, count returned`, async (t) => {
    const data = random(BIG);
    const want = sha256(data);
    const fds0 = fdCount();
    await run(async () => {
      const p = await sourceAndSink(data);
      const t0 = performance.now();
      const n = via === 'copy' ? await copy(p.from, p.to) : await spliceCopy(p.from, p.to);
      const ms = performance.now() - t0;
      t.is(n, BIG, 'the byte count');
      await p.to.shutdown();
      await guard(p.source, 5000, 'source');
      const [got, hash] = await guard(p.sink, 10_000, 'sink');
      t.log(`${via}: ${BIG / MiB} MiB in ${ms.toFixed(0)} ms on ${stats().driver}`);
      t.is(got, BIG);
      t.is(hash, want, 'sha256 of what the sink got');
      await p.close();
      t.is(stats().opsInFlight, 0);
    }, RUN_MS);
    t.is(fdCount(), fds0, 'sockets and the splice pipe are closed');
  });
}

rtTest('copy with odd buffer sizes and through split halves is byte-exact', async (t) => {
  await run(async () => {
    for (const bufferSize of [1, 1000, 65537]) {
      const data = random(bufferSize === 1 ? 20_000 : 3 * MiB + 11);
      const p = await sourceAndSink(data);
      const [r] = p.from.intoSplit();
      const [, w] = p.to.intoSplit();
      const n = await guard(copy(r, w, { bufferSize }), 20_000, `copy bufferSize ${bufferSize}`);
      t.is(n, data.length, `bufferSize ${bufferSize}`);
      await w.shutdown();
      await p.source;
      const [got, hash] = await p.sink;
      t.is(got, data.length);
      t.is(hash, sha256(data), `bufferSize ${bufferSize}`);
      await p.close();
    }
  }, RUN_MS);
});

rtTest('spliceCopy with an odd chunk, and from a Unix stream into TCP, is byte-exact', async (t) => {
  await run(async () => {
    const data = random(5 * MiB + 3);
    const p = await sourceAndSink(data);
    const n = await guard(spliceCopy(p.from, p.to, { chunk: 4097 }), 20_000, 'spliceCopy chunk 4097');
    t.is(n, data.length);
    await p.to.shutdown();
    await p.source;
    t.deepEqual(await p.sink, [data.length, sha256(data)]);
    await p.close();

    // Unix pair -> TCP sink.
    const [ua, ub] = UnixStream.pair();
    const udata = random(4 * MiB);
    const sinkL = await TcpListener.bind('127.0.0.1:0');
    const sink = spawn(async () => {
      const [s] = await sinkL.accept();
      const r = await hashToEnd(s, HASH_CHUNK);
      await s.close();
      return r;
    });
    const to = await TcpStream.connect(hostPort(sinkL));
    const writer = spawn(async () => {
      await ua.writeAll(udata);
      await ua.shutdown();
    });
    const m = await guard(spliceCopy(ub, to), 20_000, 'spliceCopy unix -> tcp');
    await writer;
    t.is(m, udata.length);
    await to.shutdown();
    t.deepEqual(await guard(sink, 5000, 'sink'), [udata.length, sha256(udata)]);
    for (const x of [ua, ub, to, sinkL]) await x.close();
  }, RUN_MS);
});

rtTest('copy and spliceCopy stop on their signal with an AbortError; nothing is lost from the source', async (t) => {
  await run(async () => {
    const [a, b] = UnixStream.pair();
    const [c, d] = UnixStream.pair();
    // copy: a -> c; a sends a little, then nothing.
    await a.writeAll(Buffer.from('first'));
    const ac = new AbortController();
    const p = copy(b, c, { signal: ac.signal });
    const got = Buffer.alloc(5);
    await guard(d.readExact(got), 2000, 'first bytes through copy');
    t.is(got.toString(), 'first');
    await sleep(5);
    ac.abort();
    const err = await rejectionOf(t, guard(p, 2000, 'aborted copy'));
    t.is(err.name, 'AbortError');
    // The source is intact: the next bytes are read directly.
    await a.writeAll(Buffer.from('second'));
    const next = Buffer.alloc(6);
    await guard(b.readExact(next), 2000, 'after abort');
    t.is(next.toString(), 'second');

    // spliceCopy: same.
    const ac2 = new AbortController();
    const fds0 = fdCount();
    const sp = spliceCopy(b, c, { signal: ac2.signal });
    await sleep(5);
    ac2.abort();
    const e2 = await rejectionOf(t, guard(sp, 2000, 'aborted spliceCopy'));
    t.is(e2.name, 'AbortError');
    t.is(fdCount(), fds0, 'the splice pipe is closed');
    await a.writeAll(Buffer.from('third'));
    const third = Buffer.alloc(5);
    await guard(b.readExact(third), 2000, 'after splice abort');
    t.is(third.toString(), 'third');
    for (const x of [a, b, c, d]) await x.close();
  }, RUN_MS);
});

rtTest('bad options: copy bufferSize and spliceCopy chunk must be positive integers', async (t) => {
  await run(async () => {
    const [a, b] = UnixStream.pair();
    for (const bufferSize of [0, -1, 1.5, Number.NaN]) {
      await t.throwsAsync(copy(a, b, { bufferSize }), { instanceOf: RangeError }, `bufferSize ${bufferSize}`);
    }
    for (const chunk of [0, -5, 2.5]) {
      await t.throwsAsync(spliceCopy(a, b, { chunk }), { instanceOf: RangeError }, `chunk ${chunk}`);
    }
    await a.close();
    await b.close();
  }, RUN_MS);
});

// ---------------------------------------------------------------------------------------------------
// both ways

rtTest('copyBidirectional through a proxy: 8 MiB each way at once, half-close passes through, counts', async (t) => {
  const UP = 8 * MiB;
  const HEAD = 4 * MiB;
  const TAIL = 4 * MiB;
  const up = random(UP); // client -> backend
  const downHead = random(HEAD); // backend -> client, sent at once
  const downTail = random(TAIL); // backend -> client, sent only after the backend saw the client's EOF
  const fds0 = fdCount();
  await run(async () => {
    const backendL = await TcpListener.bind('127.0.0.1:0');
    const proxyL = await TcpListener.bind('127.0.0.1:0');
    let backendSawEofAt = -1;
    let clientSawEofAt = -1;
    const backend = spawn(async () => {
      const [s] = await backendL.accept();
      const reader = spawn(async () => {
        const r = await hashToEnd(s, HASH_CHUNK);
        backendSawEofAt = performance.now();
        return r;
      });
      await s.writeAll(downHead);
      const r = await reader;
      // The client's half-close reached us through the proxy; our direction must still be open.
      await s.writeAll(downTail);
      await s.shutdown();
      // Wait for the proxy to close its side, then close ours.
      const [n] = await s.read(Buffer.alloc(1));
      await s.close();
      return [r, n] as const;
    });
    const proxy = spawn(async () => {
      const [down] = await proxyL.accept();
      const upstream = await TcpStream.connect(hostPort(backendL));
      const counts = await copyBidirectional(down, upstream);
      await down.close();
      await upstream.close();
      return counts;
    });
    const client = await TcpStream.connect(hostPort(proxyL));
    const clientReader = spawn(async () => {
      const r = await hashToEnd(client, HASH_CHUNK);
      clientSawEofAt = performance.now();
      return r;
    });
    await client.writeAll(up);
    await client.shutdown();
    const [clientGot, clientHash] = await guard(clientReader, 20_000, 'client reads to EOF');
    const [[backendGot, backendHash], backendLast] = await guard(backend, 5000, 'backend');
    const [aToB, bToA] = await guard(proxy, 5000, 'proxy');
    t.is(aToB, UP, 'copyBidirectional counts client -> backend');
    t.is(bToA, HEAD + TAIL, 'copyBidirectional counts backend -> client');
    t.is(backendGot, UP);
    t.is(backendHash, sha256(up), 'client -> backend is byte-exact');
    t.is(clientGot, HEAD + TAIL);
    t.is(clientHash, sha256(downHead, downTail), 'backend -> client is byte-exact, tail after the half-close included');
    t.true(backendSawEofAt > 0 && clientSawEofAt > backendSawEofAt, 'the client saw EOF only after the backend did');
    t.is(backendLast, 0, "the proxy closed the backend connection after both directions ended");
    await client.close();
    await backendL.close();
    await proxyL.close();
    t.is(stats().opsInFlight, 0);
  }, RUN_MS);
  t.is(fdCount(), fds0);
});

rtTest('copyBidirectional over Unix pairs: both directions end independently', async (t) => {
  await run(async () => {
    const [clientEnd, proxyA] = UnixStream.pair();
    const [proxyB, serverEnd] = UnixStream.pair();
    const proxy = copyBidirectional(proxyA, proxyB);
    // Only the client talks, then half-closes; the server answers after EOF, then half-closes.
    const req = random(100_000);
    await clientEnd.writeAll(req);
    await clientEnd.shutdown();
    const [n, h] = await guard(hashToEnd(serverEnd, HASH_CHUNK), 5000, 'server reads the request');
    t.is(n, req.length);
    t.is(h, sha256(req));
    const res = random(50_000);
    await serverEnd.writeAll(res);
    await serverEnd.shutdown();
    const [m, h2] = await guard(hashToEnd(clientEnd, HASH_CHUNK), 5000, 'client reads the response');
    t.is(m, res.length);
    t.is(h2, sha256(res));
    t.deepEqual(await guard(proxy, 2000, 'proxy'), [req.length, res.length]);
    for (const x of [clientEnd, proxyA, proxyB, serverEnd]) await x.close();
  }, RUN_MS);
});
