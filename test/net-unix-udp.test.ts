/**
 * @ringio/net Unix streams, UDP and Unix datagrams on the driver under test: echo over a path and the
 * abstract namespace, socketpair round trips, refused and busy paths; UDP sendTo/recvFrom with sender
 * addresses, connect + send/recv, a 200-datagram burst, truncation, zero-length datagrams, cancellation
 * and close; Unix datagrams with sender paths and pairs; IPv6 UDP; bad input.
 */
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UdpSocket, UnixDatagram, UnixListener, UnixStream } from '@ringio/net';
import { sleep, spawn, stats, sys } from '@ringio/runtime';
import { guard, noIpv6, randomBytes, rejectionOf, rtTest, run, type AnyErr } from './helpers.js';

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;

let seq = 0;
/** A fresh socket path under the temp dir (removed by the caller's cleanup). */
function tmpPath(tag: string): string {
  return join(tmpdir(), `ringio-${tag}-${process.pid}-${++seq}-${randomBytes(4).toString('hex')}.sock`);
}

async function withPaths<T>(n: number, fn: (...paths: string[]) => Promise<T>): Promise<T> {
  const paths = Array.from({ length: n }, (_, i) => tmpPath(`t${i}`));
  try {
    return await fn(...paths);
  } finally {
    for (const p of paths) rmSync(p, { force: true });
  }
}

async function readToEnd(s: UnixStream, chunk = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  const buf = Buffer.allocUnsafe(chunk);
  for (;;) {
    const [n] = await s.read(buf);
    if (n === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(buf.subarray(0, n)));
  }
}

async function echo(s: UnixStream): Promise<number> {
  let total = 0;
  try {
    const buf = Buffer.allocUnsafe(32768);
    for (;;) {
      const [n] = await s.read(buf);
      if (n === 0) return total;
      await s.writeAll(buf, { length: n });
      total += n;
    }
  } finally {
    await s.close();
  }
}

/** Echoes src through a connected stream: write all + shutdown, read to EOF. */
async function roundTrip(c: UnixStream, src: Buffer): Promise<Buffer> {
  const writer = spawn(async () => {
    await c.writeAll(src);
    await c.shutdown();
  });
  const got = await readToEnd(c);
  await writer;
  return got;
}

// ---------------------------------------------------------------------------------------------------
// Unix streams

rtTest('UnixListener / UnixStream: byte-exact echo over a path, with addresses on both ends', async (t) => {
  await withPaths(1, (path) =>
    run(async () => {
      const l = await UnixListener.bind(path!);
      t.is(l.localAddr, path);
      t.true(existsSync(path!), 'bind creates the socket file');
      const server = spawn(async () => {
        const [s, peer] = await l.accept();
        t.is(peer, '', 'a connecting client is unnamed');
        t.is(s.peerAddr, '');
        t.is(s.localAddr, path);
        return echo(s);
      });
      const c = await UnixStream.connect(path!);
      t.is(c.peerAddr, path);
      t.is(c.localAddr, '');
      const src = randomBytes(256 * 1024 + 5);
      const got = await guard(roundTrip(c, src), 10_000, 'unix echo');
      t.is(await server, src.length);
      t.is(got.length, src.length);
      t.true(got.equals(src));
      await c.close();
      await l.close();
      t.is(stats().opsInFlight, 0);
    }),
  );
});

rtTest('UnixListener in the abstract namespace: echo, and the names come back with their leading NUL', async (t) => {
  await run(async () => {
    const name = `\0ringio-test-${process.pid}-${randomBytes(4).toString('hex')}`;
    const l = await UnixListener.bind(name);
    t.is(l.localAddr, name);
    const server = spawn(async () => {
      const [s] = await l.accept();
      t.is(s.localAddr, name);
      return echo(s);
    });
    const c = await UnixStream.connect(name);
    t.is(c.peerAddr, name);
    const src = randomBytes(10_000);
    const got = await guard(roundTrip(c, src), 5000, 'abstract echo');
    await server;
    t.true(got.equals(src));
    await c.close();
    await l.close();
  });
});

rtTest('many clients on one UnixListener, served concurrently by for await', async (t) => {
  await withPaths(1, (path) =>
    run(async () => {
      const l = await UnixListener.bind(path!);
      const echoes: PromiseLike<number>[] = [];
      const loop = spawn(async () => {
        for await (const [s] of l) echoes.push(spawn(() => echo(s)));
      });
      let sent = 0;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          spawn(async () => {
            const c = await UnixStream.connect(path!);
            const msg = Buffer.from(`client ${i} ${randomBytes(6).toString('hex')}`);
            sent += msg.length;
            const got = await roundTrip(c, msg);
            await c.close();
            return got.equals(msg);
          }),
        ),
      );
      t.deepEqual(results, new Array(50).fill(true));
      await l.close();
      await guard(loop, 2000, 'for await ends after close');
      const echoed = await Promise.all(echoes);
      t.is(echoed.length, 50);
      t.is(
        echoed.reduce((a, n) => a + n, 0),
        sent,
      );
    }),
  );
});

rtTest('UnixListener.bind on an existing path rejects EADDRINUSE; connect errors ENOENT / ECONNREFUSED', async (t) => {
  await withPaths(2, (path, missing) =>
    run(async () => {
      const l = await UnixListener.bind(path!);
      const e1 = await rejectionOf(t, UnixListener.bind(path!));
      t.is(e1.code, 'EADDRINUSE');
      t.is(e1.syscall, 'bind');
      const e2 = await rejectionOf(t, UnixStream.connect(missing!));
      t.is(e2.code, 'ENOENT');
      t.is(e2.syscall, 'connect');
      // Closing a listener leaves its file behind (remove stale sockets first): connecting is refused.
      await l.close();
      t.true(existsSync(path!));
      const e3 = await rejectionOf(t, UnixStream.connect(path!));
      t.is(e3.code, 'ECONNREFUSED');
      t.is((await rejectionOf(t, UnixListener.bind(path!))).code, 'EADDRINUSE');
      rmSync(path!);
      const again = await UnixListener.bind(path!);
      await again.close();
    }),
  );
});

rtTest('UnixStream.pair: byte-exact both directions at once, half-close, unnamed addresses', async (t) => {
  await run(async () => {
    const [a, b] = UnixStream.pair();
    t.not(a.fd, b.fd);
    t.is(a.peerAddr, '');
    t.is(b.localAddr, '');
    const ab = randomBytes(300_000);
    const ba = randomBytes(200_001);
    const [gotAtB, gotAtA] = await guard(
      Promise.all([
        spawn(async () => {
          const w = spawn(async () => {
            await a.writeAll(ab);
            await a.shutdown();
          });
          const got = await readToEnd(b);
          await w;
          return got;
        }),
        spawn(async () => {
          const w = spawn(async () => {
            await b.writeAll(ba);
            await b.shutdown();
          });
          const got = await readToEnd(a);
          await w;
          return got;
        }),
      ]),
      10_000,
      'pair transfer',
    );
    t.true(gotAtB.equals(ab), 'a -> b');
    t.true(gotAtA.equals(ba), 'b -> a');
    await a.close();
    await b.close();
    // A small request/response on a fresh pair, with readExact.
    const [x, y] = UnixStream.pair();
    await x.writeAll(Buffer.from('ping'));
    const req = Buffer.alloc(4);
    await y.readExact(req);
    t.is(req.toString(), 'ping');
    await y.writeAll(Buffer.from('pong!'));
    const res = Buffer.alloc(5);
    await x.readExact(res);
    t.is(res.toString(), 'pong!');
    await y.close();
    t.is((await x.read(Buffer.alloc(4)))[0], 0, 'closing one end is EOF for the other');
    await x.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// UDP

rtTest('UDP sendTo / recvFrom: payloads byte-exact, the sender address is the sender localAddr', async (t) => {
  await run(async () => {
    const a = await UdpSocket.bind('127.0.0.1:0');
    const b = await UdpSocket.bind({ host: '127.0.0.1', port: 0 });
    t.is(a.localAddr.address, '127.0.0.1');
    t.is(a.localAddr.family, 'IPv4');
    t.true(a.localAddr.port > 0);
    t.not(a.localAddr.port, b.localAddr.port);

    const p1 = randomBytes(1200);
    const [n1, back1] = await a.sendTo(p1, `127.0.0.1:${b.localAddr.port}`);
    t.is(n1, p1.length);
    t.is(back1, p1);
    const rbuf = Buffer.alloc(2048);
    const [m1, rb1, from1] = await guard(b.recvFrom(rbuf), 2000, 'recvFrom');
    t.is(m1, p1.length);
    t.is(rb1, rbuf);
    t.true(rbuf.subarray(0, m1).equals(p1));
    t.deepEqual(from1, { address: '127.0.0.1', port: a.localAddr.port, family: 'IPv4' });

    // The other way, with { host, port } and 'localhost'.
    const p2 = Buffer.from('reply');
    await b.sendTo(p2, { host: 'localhost', port: a.localAddr.port });
    const [m2, , from2] = await guard(a.recvFrom(rbuf), 2000, 'recvFrom reply');
    t.is(m2, 5);
    t.is(rbuf.subarray(0, 5).toString(), 'reply');
    t.deepEqual(from2, b.localAddr);

    // A recvFrom posted before the datagram is sent waits for it.
    const pending = b.recvFrom(Buffer.alloc(64));
    await sleep(5);
    t.is(stats().opsInFlight, 1);
    await a.sendTo(Buffer.from('late'), `127.0.0.1:${b.localAddr.port}`);
    const [m3, rb3, from3] = await guard(pending, 2000, 'pending recvFrom');
    t.is(m3, 4);
    t.is(rb3.subarray(0, 4).toString(), 'late');
    t.is(from3.port, a.localAddr.port);
    await a.close();
    await b.close();
  });
});

rtTest('UDP connect + send / recv: windows honoured, and a connected socket only hears its peer', async (t) => {
  await run(async () => {
    const a = await UdpSocket.bind('127.0.0.1:0');
    const b = await UdpSocket.bind('127.0.0.1:0');
    const other = await UdpSocket.bind('127.0.0.1:0');
    await a.connect(`127.0.0.1:${b.localAddr.port}`);
    await b.connect({ host: '127.0.0.1', port: a.localAddr.port });
    // A stranger's datagram is dropped by b's connected filter...
    await other.sendTo(Buffer.from('stranger'), `127.0.0.1:${b.localAddr.port}`);
    // ...and the peer's arrives, sent from a window of a larger buffer.
    const src = Buffer.from('xxHELLOyy');
    const [n, sb] = await a.send(src, { offset: 2, length: 5 });
    t.is(n, 5);
    t.is(sb, src);
    const dst = Buffer.alloc(16, 0xee);
    const [m, db] = await guard(b.recv(dst, { offset: 3, length: 10 }), 2000, 'recv');
    t.is(m, 5);
    t.is(db, dst);
    t.is(dst.subarray(3, 8).toString(), 'HELLO');
    t.true(dst.subarray(0, 3).every((x) => x === 0xee) && dst.subarray(8).every((x) => x === 0xee));
    // And back.
    await b.send(Buffer.from('world'));
    const r = Buffer.alloc(8);
    const [k] = await guard(a.recv(r), 2000, 'recv back');
    t.is(r.subarray(0, k).toString(), 'world');
    // Nothing else is queued at b: the stranger's datagram was dropped.
    const ac = new AbortController();
    const extra = b.recv(Buffer.alloc(16), { signal: ac.signal });
    await sleep(20);
    ac.abort();
    t.is((await rejectionOf(t, extra)).name, 'AbortError');
    for (const s of [a, b, other]) await s.close();
  });
});

rtTest('UDP burst: 200 datagrams sent at once all arrive once, byte-exact, from the sender', async (t) => {
  await run(async () => {
    const COUNT = 200;
    const a = await UdpSocket.bind('127.0.0.1:0');
    const b = await UdpSocket.bind('127.0.0.1:0');
    // Room for the whole burst, so the kernel drops nothing however the two sides interleave.
    sys.setsockopt(b.fd, SOL_SOCKET, SO_RCVBUF, 2 * 1024 * 1024);
    const rcvbuf = sys.getsockopt(b.fd, SOL_SOCKET, SO_RCVBUF);
    t.log(`SO_RCVBUF ${rcvbuf}`);
    const payloads = Array.from({ length: COUNT }, (_, i) => {
      const p = randomBytes(4 + ((i * 37) % 1400));
      p.writeUInt32BE(i, 0);
      return p;
    });
    const to = `127.0.0.1:${b.localAddr.port}`;
    const sent = await Promise.all(payloads.map((p) => a.sendTo(p, to)));
    t.deepEqual(
      sent.map(([n]) => n),
      payloads.map((p) => p.length),
    );
    const seen = new Map<number, number>();
    let bad = 0;
    for (let i = 0; i < COUNT; i++) {
      const buf = Buffer.alloc(2048);
      const [n, , from] = await guard(b.recvFrom(buf), 2000, `datagram ${i} of ${COUNT}`);
      const idx = buf.readUInt32BE(0);
      seen.set(idx, (seen.get(idx) ?? 0) + 1);
      const want = payloads[idx];
      if (want === undefined || n !== want.length || !buf.subarray(0, n).equals(want) || from.port !== a.localAddr.port) bad++;
    }
    t.is(bad, 0, 'every datagram matches its payload and sender');
    t.is(seen.size, COUNT);
    t.true([...seen.values()].every((c) => c === 1), 'no datagram twice');
    await a.close();
    await b.close();
  });
});

rtTest('UDP: a datagram larger than the buffer is truncated to it; zero-length datagrams work', async (t) => {
  await run(async () => {
    const a = await UdpSocket.bind('127.0.0.1:0');
    const b = await UdpSocket.bind('127.0.0.1:0');
    const to = `127.0.0.1:${b.localAddr.port}`;
    const big = randomBytes(100);
    await a.sendTo(big, to);
    const small = Buffer.alloc(10);
    const [n, , from] = await guard(b.recvFrom(small), 2000, 'truncated');
    t.is(n, 10);
    t.true(small.equals(big.subarray(0, 10)));
    t.is(from.port, a.localAddr.port);
    // The rest of the datagram is gone: the next one starts fresh.
    await a.sendTo(Buffer.from('next'), to);
    const nb = Buffer.alloc(16);
    const [m] = await guard(b.recvFrom(nb), 2000, 'next');
    t.is(nb.subarray(0, m).toString(), 'next');
    // Zero-length datagram.
    const [z] = await a.sendTo(new Uint8Array(0), to);
    t.is(z, 0);
    const [zr, , zf] = await guard(b.recvFrom(Buffer.alloc(8)), 2000, 'zero-length');
    t.is(zr, 0);
    t.is(zf.port, a.localAddr.port);
    await a.close();
    await b.close();
  });
});

rtTest('UDP: an aborted recvFrom takes nothing; a recvFrom pending at close rejects ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const a = await UdpSocket.bind('127.0.0.1:0');
    const b = await UdpSocket.bind('127.0.0.1:0');
    const buf = Buffer.alloc(32, 0x11);
    const ac = new AbortController();
    const p = b.recvFrom(buf, { signal: ac.signal });
    await sleep(5);
    ac.abort();
    const err = await rejectionOf(t, p);
    t.is(err.name, 'AbortError');
    t.is(err.buf, buf);
    t.true(buf.every((x) => x === 0x11));
    await a.sendTo(Buffer.from('after abort'), `127.0.0.1:${b.localAddr.port}`);
    const [n] = await guard(b.recvFrom(buf), 2000, 'after abort');
    t.is(buf.subarray(0, n).toString(), 'after abort');

    const rbuf = Buffer.alloc(8);
    const pending = b.recvFrom(rbuf);
    pending.catch(() => {});
    await sleep(5);
    await guard(b.close(), 2000, 'close');
    const e2 = await rejectionOf(t, pending);
    t.is(e2.code, 'ERR_RINGIO_CLOSED');
    t.is(e2.buf, rbuf);
    // Everything on a closed socket rejects ERR_RINGIO_CLOSED with its buffer.
    const sbuf = Buffer.from('x');
    for (const [name, call, want] of [
      ['recvFrom', () => b.recvFrom(rbuf), rbuf],
      ['sendTo', () => b.sendTo(sbuf, `127.0.0.1:${a.localAddr.port}`), sbuf],
      ['send', () => b.send(sbuf), sbuf],
      ['recv', () => b.recv(rbuf), rbuf],
    ] as const) {
      const e = await rejectionOf(t, call());
      t.is(e.code, 'ERR_RINGIO_CLOSED', name);
      t.is(e.buf, want, name);
    }
    t.is((await rejectionOf(t, b.connect(`127.0.0.1:${a.localAddr.port}`))).code, 'ERR_RINGIO_CLOSED');
    t.throws(() => b.localAddr, { code: 'ERR_RINGIO_CLOSED' });
    t.is(b.fd, -1);
    await a.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('UDP over IPv6 [::1]: sendTo / recvFrom with IPv6 sender addresses', async (t) => {
  await run(async () => {
    const a = await UdpSocket.bind('[::1]:0');
    const b = await UdpSocket.bind({ host: '::1', port: 0 });
    t.deepEqual(a.localAddr, { address: '::1', port: a.localAddr.port, family: 'IPv6' });
    const p = randomBytes(999);
    const [n] = await a.sendTo(p, `[::1]:${b.localAddr.port}`);
    t.is(n, 999);
    const buf = Buffer.alloc(1500);
    const [m, , from] = await guard(b.recvFrom(buf), 2000, 'IPv6 recvFrom');
    t.is(m, 999);
    t.true(buf.subarray(0, m).equals(p));
    t.deepEqual(from, { address: '::1', port: a.localAddr.port, family: 'IPv6' });
    await b.connect(`[::1]:${a.localAddr.port}`);
    await b.send(Buffer.from('v6 reply'));
    const [k, , from2] = await guard(a.recvFrom(buf), 2000, 'IPv6 reply');
    t.is(buf.subarray(0, k).toString(), 'v6 reply');
    t.deepEqual(from2, b.localAddr);
    await a.close();
    await b.close();
  });
}, 30_000, noIpv6);

// ---------------------------------------------------------------------------------------------------
// Unix datagrams

rtTest('UnixDatagram: bind / sendTo / recvFrom return the sender path; connect + send / recv', async (t) => {
  await withPaths(2, (pa, pb) =>
    run(async () => {
      const a = await UnixDatagram.bind(pa!);
      const b = await UnixDatagram.bind(pb!);
      t.is(a.localAddr, pa);
      t.is(b.localAddr, pb);
      const p1 = randomBytes(5000);
      const [n1, sb1] = await a.sendTo(p1, pb!);
      t.is(n1, 5000);
      t.is(sb1, p1);
      const buf = Buffer.alloc(8192);
      const [m1, rb1, from1] = await guard(b.recvFrom(buf), 2000, 'unix recvFrom');
      t.is(m1, 5000);
      t.is(rb1, buf);
      t.true(buf.subarray(0, m1).equals(p1));
      t.is(from1, pa, "the sender's path");
      await b.sendTo(Buffer.from('back'), pa!);
      const [m2, , from2] = await guard(a.recvFrom(buf), 2000, 'unix reply');
      t.is(buf.subarray(0, m2).toString(), 'back');
      t.is(from2, pb);
      // Datagram boundaries are kept: three sends, three receives.
      for (const s of ['one', 'two!', 'three']) await a.sendTo(Buffer.from(s), pb!);
      const got: string[] = [];
      for (let i = 0; i < 3; i++) {
        const [k] = await guard(b.recvFrom(buf), 2000, `datagram ${i}`);
        got.push(buf.subarray(0, k).toString());
      }
      t.deepEqual(got, ['one', 'two!', 'three']);
      // connect + send / recv.
      await a.connect(pb!);
      await a.send(Buffer.from('connected'));
      const [k] = await guard(b.recv(buf), 2000, 'recv');
      t.is(buf.subarray(0, k).toString(), 'connected');
      // An unbound socket can send to a bound one.
      const u = UnixDatagram.unbound();
      const [un] = await u.sendTo(Buffer.from('from nowhere'), pb!);
      t.is(un, 12);
      const [uk] = await guard(b.recvFrom(buf), 2000, 'from unbound');
      t.is(buf.subarray(0, uk).toString(), 'from nowhere');
      // Sending to a path nobody bound fails.
      rmSync(pa!, { force: true });
      const e = await rejectionOf(t, b.sendTo(Buffer.from('x'), pa!));
      t.true(e.code === 'ENOENT' || e.code === 'ECONNREFUSED', `code ${e.code}`);
      t.is(e.syscall, 'sendmsg');
      for (const s of [a, b, u]) await s.close();
    }),
  );
});

rtTest('UnixDatagram.pair: datagrams both ways, boundaries kept, truncation to the buffer', async (t) => {
  await run(async () => {
    const [a, b] = UnixDatagram.pair();
    const msgs = Array.from({ length: 20 }, (_, i) => randomBytes(1 + i * 50));
    for (const m of msgs) {
      const [n] = await a.send(m);
      t.is(n, m.length);
    }
    for (let i = 0; i < msgs.length; i++) {
      const buf = Buffer.alloc(2048);
      const [n, rb] = await guard(b.recv(buf), 2000, `pair datagram ${i}`);
      t.is(rb, buf);
      t.is(n, msgs[i]!.length);
      t.true(buf.subarray(0, n).equals(msgs[i]!));
    }
    await b.send(Buffer.from('0123456789'));
    const small = Buffer.alloc(4);
    const [n] = await guard(a.recvFrom(small), 2000, 'truncated');
    t.is(n, 4);
    t.is(small.toString(), '0123');
    await a.close();
    await b.close();
  });
});

rtTest(
  'UnixDatagram.recvFrom reports an unnamed sender as \'\' and an abstract one by its exact name',
  async (t) => {
    await withPaths(1, (pb) =>
      run(async () => {
        const buf = Buffer.alloc(64);
        // A pair: the peer is unnamed.
        const [x, y] = UnixDatagram.pair();
        await x.send(Buffer.from('hi'));
        const [, , fromPair] = await guard(y.recvFrom(buf), 2000, 'pair recvFrom');
        t.is(fromPair, '', `pair sender: got ${JSON.stringify(fromPair).slice(0, 40)} (${fromPair.length} chars)`);
        // An unbound sender.
        const b = await UnixDatagram.bind(pb!);
        const u = UnixDatagram.unbound();
        await u.sendTo(Buffer.from('x'), pb!);
        const [, , fromUnbound] = await guard(b.recvFrom(buf), 2000, 'unbound recvFrom');
        t.is(fromUnbound, '', `unbound sender: ${fromUnbound.length} chars`);
        // An abstract sender: the name exactly, with its leading NUL and nothing after.
        const name = `\0ringio-dgram-${process.pid}-${randomBytes(3).toString('hex')}`;
        const abs = await UnixDatagram.bind(name);
        t.is(abs.localAddr, name);
        await abs.sendTo(Buffer.from('y'), pb!);
        const [, , fromAbs] = await guard(b.recvFrom(buf), 2000, 'abstract recvFrom');
        t.is(fromAbs, name, `abstract sender: ${fromAbs.length} chars, want ${name.length}`);
        for (const s of [x, y, b, u, abs]) await s.close();
      }),
    );
  },
);

// ---------------------------------------------------------------------------------------------------
// bad input

rtTest('bad input: TypeError / RangeError for buffers, windows, addresses and paths', async (t) => {
  await run(async () => {
    const u = await UdpSocket.bind('127.0.0.1:0');
    const to = `127.0.0.1:${u.localAddr.port}`;
    const buf = Buffer.alloc(8);
    await t.throwsAsync(u.sendTo('abc' as unknown as Buffer, to), { instanceOf: TypeError });
    await t.throwsAsync(u.recvFrom([1, 2] as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(u.send(null as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(u.recv(new ArrayBuffer(4) as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(u.send(buf, { offset: 9 }), { instanceOf: RangeError });
    await t.throwsAsync(u.recv(buf, { offset: 2, length: 7 }), { instanceOf: RangeError });
    await t.throwsAsync(u.recv(buf, { length: -1 }), { instanceOf: RangeError });
    for (const bad of ['nohost', '[::1]', '127.0.0.1:', '127.0.0.1:x', '::1:53']) {
      await t.throwsAsync(u.sendTo(buf, bad), { instanceOf: TypeError }, `sendTo '${bad}'`);
      await t.throwsAsync(UdpSocket.bind(bad), { instanceOf: TypeError }, `bind '${bad}'`);
      await t.throwsAsync(u.connect(bad), { instanceOf: TypeError }, `connect '${bad}'`);
    }
    await t.throwsAsync(u.sendTo(buf, '1.2.3.4:99999'), { instanceOf: RangeError });
    await t.throwsAsync(UdpSocket.bind('127.0.0.1:65536'), { instanceOf: RangeError });
    await t.throwsAsync(u.sendTo(buf, { host: '127.0.0.1', port: -5 }), { instanceOf: RangeError });
    await t.throwsAsync(u.sendTo(buf, { host: '127.0.0.1', port: 2.5 }), { instanceOf: TypeError });
    // The socket still works.
    await u.sendTo(Buffer.from('ok'), to);
    const [n] = await guard(u.recvFrom(buf), 2000, 'self send');
    t.is(buf.subarray(0, n).toString(), 'ok');
    await u.close();

    const longPath = '/tmp/' + 'x'.repeat(200);
    await t.throwsAsync(UnixListener.bind(''), { instanceOf: RangeError });
    await t.throwsAsync(UnixListener.bind(longPath), { instanceOf: RangeError });
    await t.throwsAsync(UnixListener.bind(42 as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(UnixListener.bind(tmpPath('bl'), { backlog: 0 }), { instanceOf: RangeError });
    await t.throwsAsync(UnixStream.connect(''), { instanceOf: RangeError });
    await t.throwsAsync(UnixStream.connect(longPath), { instanceOf: RangeError });
    await t.throwsAsync(UnixStream.connect(undefined as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(UnixDatagram.bind(''), { instanceOf: RangeError });
    await t.throwsAsync(UnixDatagram.bind(longPath), { instanceOf: RangeError });
    await t.throwsAsync(UnixDatagram.bind({} as unknown as string), { instanceOf: TypeError });
    const [a, b] = UnixDatagram.pair();
    await t.throwsAsync(a.sendTo(buf, ''), { instanceOf: RangeError });
    await t.throwsAsync(a.sendTo(buf, longPath), { instanceOf: RangeError });
    await t.throwsAsync(a.sendTo('x' as unknown as Buffer, '/tmp/x'), { instanceOf: TypeError });
    await t.throwsAsync(a.connect(''), { instanceOf: RangeError });
    const [x, y] = UnixStream.pair();
    await t.throwsAsync(x.read('x' as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(x.write(buf, { offset: -1 }), { instanceOf: RangeError });
    for (const s of [a, b, x, y]) await s.close();
    t.is(stats().opsInFlight, 0);
  });
});
