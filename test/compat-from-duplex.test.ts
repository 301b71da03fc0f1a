/**
 * fromDuplex: the rented-buffer API over node streams, with the runtime of the driver under test around
 * it. Over a net.Socket and a tls.TLSSocket (byte-exact, leftovers between reads), with ringio's own
 * copyBidirectional between a TcpStream and a net.Socket, backpressure (the Duplex is paused while
 * bytes are held), end of stream, errors with code and buf, close(), write after shutdown, abort
 * signals, and bad input.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import tls from 'node:tls';
import { fromDuplex, toDuplex, type RentedDuplex } from '@ringio/compat';
import { copyBidirectional, TcpListener, TcpStream } from '@ringio/net';
import { sleep, spawn, stats } from '@ringio/runtime';
import { guard, hashToEnd, randomBytes, rejectionOf, rtTest, run, sha256, testCertificate } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A node:net echo server on a free loopback port. */
async function netEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A connected net.Socket to 127.0.0.1:port. */
async function netConnect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  return s;
}

/**
 * Writes src through s with writeAll windows of random size, half-closes, and reads it all back with
 * reads of odd sizes (so chunks are split across reads) and every fourth piece with readExact.
 */
async function echoThrough(s: RentedDuplex, src: Buffer): Promise<Buffer> {
  const writer = (async () => {
    for (let off = 0; off < src.length; ) {
      const len = Math.min(src.length - off, 1 + ((Math.random() * 100 * KiB) | 0));
      const [n, b] = await s.writeAll(src, { offset: off, length: len });
      if (n !== len || b !== src) throw new Error(`writeAll resolved [${n}, ...] for ${len}`);
      off += len;
    }
    await s.shutdown();
  })();
  const out = Buffer.alloc(src.length);
  let got = 0;
  let buf = Buffer.alloc(7777);
  for (let k = 0; ; k++) {
    const want = Math.min(buf.length, src.length - got);
    if (k % 4 === 3 && want > 0) {
      const [n, b] = await s.readExact(buf, { length: want });
      b.copy(out, got, 0, n);
      got += n;
      continue;
    }
    const [n, b] = await s.read(buf, { offset: 1, length: buf.length - 1 });
    if (b !== buf) throw new Error('read resolved another buffer');
    if (n === 0) break;
    b.copy(out, got, 1, 1 + n);
    got += n;
    buf = b;
  }
  await writer;
  return out.subarray(0, got);
}

rtTest('fromDuplex over a net.Socket: 4 MiB echoed byte-exact with reads of odd sizes and readExact', async (t) => {
  await run(async () => {
    const server = await netEcho();
    const sock = await netConnect(server.port);
    const s = fromDuplex(sock);
    t.is(s.duplex, sock);
    const src = randomBytes(4 * MiB);
    const back = await guard(echoThrough(s, src), 20_000, 'echo');
    t.is(back.length, src.length);
    t.true(back.equals(src), 'byte-exact');
    const [n] = await s.read(Buffer.alloc(8));
    t.is(n, 0, 'end of stream stays 0');
    await s.close();
    t.true(sock.destroyed);
    await server.close();
  });
});

const pem = testCertificate();

rtTest('fromDuplex over a tls.TLSSocket: 4 MiB echoed byte-exact through a node:tls server', async (t) => {
  await run(async () => {
    const server = tls.createServer(pem as { cert: Buffer; key: Buffer }, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const sock = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ca: (pem as { cert: Buffer }).cert, servername: 'localhost' });
    await guard(once(sock, 'secureConnect'), 10_000, 'TLS handshake');
    const s = fromDuplex(sock);
    const src = randomBytes(4 * MiB);
    const back = await guard(echoThrough(s, src), 30_000, 'echo over TLS');
    t.true(back.equals(src), 'byte-exact');
    await s.close();
    server.close();
    await once(server, 'close');
  });
}, 30_000, 'missing' in pem ? pem.missing : null);

rtTest("ringio's copyBidirectional proxies between a TcpStream and a net.Socket through fromDuplex", async (t) => {
  await run(async () => {
    const server = await netEcho();
    const l = await TcpListener.bind('127.0.0.1:0');
    const proxy = spawn(async () => {
      const [inbound] = await l.accept();
      const upstream = fromDuplex(await netConnect(server.port));
      try {
        return await copyBidirectional(inbound, upstream);
      } finally {
        await Promise.all([inbound.close(), upstream.close()]);
      }
    });
    const c = await TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port });
    const src = randomBytes(2 * MiB);
    const writing = spawn(async () => {
      await c.writeAll(src);
      await c.shutdown();
    });
    const [n, hash] = await guard(hashToEnd(c), 20_000, 'the echo through the proxy');
    await writing;
    t.is(n, src.length);
    t.is(hash, sha256(src));
    t.deepEqual(await proxy, [src.length, src.length]);
    await Promise.all([c.close(), l.close(), server.close()]);
  });
});

rtTest('fromDuplex over toDuplex behaves as the TcpStream underneath (1 MiB echo)', async (t) => {
  await run(async () => {
    const server = await netEcho();
    const s = fromDuplex(toDuplex(await TcpStream.connect({ host: '127.0.0.1', port: server.port })));
    const src = randomBytes(MiB);
    t.true((await guard(echoThrough(s, src), 20_000, 'echo')).equals(src));
    await s.close();
    await server.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('backpressure: with no read waiting the Duplex is paused, so the sender is held back by TCP', async (t) => {
  await run(async () => {
    const src = randomBytes(32 * MiB);
    let serverSock!: net.Socket;
    let sent = false;
    const server = net.createServer((sock) => {
      serverSock = sock;
      sock.end(src, () => (sent = true));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const sock = await netConnect((server.address() as net.AddressInfo).port);
    const s = fromDuplex(sock);
    const first = Buffer.alloc(1000);
    const [n0] = await s.readExact(first);
    t.is(n0, 1000);
    await sleep(300);
    t.true(sock.isPaused(), 'paused while bytes are held and no read waits');
    t.true(sock.readableLength <= sock.readableHighWaterMark + 64 * KiB, `the socket buffered ${sock.readableLength} bytes`);
    t.false(sent, 'the sender has not been able to hand everything to the kernel');
    t.true(serverSock.writableLength > 0);
    const rest = Buffer.alloc(src.length - 1000);
    await guard(s.readExact(rest), 20_000, 'the rest');
    t.is(sha256(first, rest), sha256(src));
    const [n] = await s.read(Buffer.alloc(1));
    t.is(n, 0);
    t.true(sent);
    await s.close();
    server.close();
    await once(server, 'close');
  });
});

rtTest('end of stream: read resolves 0; readExact rejects ERR_RINGIO_UNEXPECTED_EOF with n and buf', async (t) => {
  await run(async () => {
    const d = new PassThrough();
    const s = fromDuplex(d);
    d.end(Buffer.from('0123456789'));
    const buf = Buffer.alloc(16);
    const err = await rejectionOf(t, s.readExact(buf));
    t.is(err.code, 'ERR_RINGIO_UNEXPECTED_EOF');
    t.is(err.n, 10);
    t.is(err.buf, buf);
    t.is(buf.toString('utf8', 0, 10), '0123456789');
    const [n, b] = await s.read(buf);
    t.is(n, 0);
    t.is(b, buf);
    t.deepEqual(await s.readExact(buf, { length: 0 }), [0, buf], 'a zero-length window resolves at once');
  });
});

rtTest('a peer reset rejects the waiting read with ECONNRESET and its buf; a later write gets a copy with its own buf', async (t) => {
  await run(async () => {
    let peer!: net.Socket;
    const server = net.createServer((sock) => (peer = sock));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const sock = await netConnect((server.address() as net.AddressInfo).port);
    const s = fromDuplex(sock);
    while (peer === undefined) await sleep(1);
    const rbuf = Buffer.alloc(64);
    const reading = rejectionOf(t, s.read(rbuf));
    await sleep(20);
    peer.resetAndDestroy();
    const err = await guard(reading, 5000, 'the read fails');
    t.is(err.code, 'ECONNRESET');
    t.is(err.buf, rbuf);
    const wbuf = Buffer.from('late');
    const err2 = await rejectionOf(t, s.writeAll(wbuf));
    t.is(err2.code, 'ECONNRESET');
    t.is(err2.buf, wbuf, 'the second error carries its own buffer');
    t.is(err2.cause, err, 'and the original as cause');
    t.is(err.buf, rbuf, 'the first error still carries the first buffer');
    await s.close();
    server.close();
    await once(server, 'close');
  });
});

rtTest('close(): the waiting read rejects ERR_RINGIO_CLOSED with its buf, later calls too; the Duplex is destroyed', async (t) => {
  await run(async () => {
    const d = new PassThrough();
    const s = fromDuplex(d);
    const buf = Buffer.alloc(8);
    const pending = rejectionOf(t, s.read(buf));
    const closing = s.close();
    t.is(s.close(), closing, 'idempotent');
    t.true(s.closed);
    const err = await pending;
    t.is(err.code, 'ERR_RINGIO_CLOSED');
    t.is(err.buf, buf);
    await guard(closing, 5000, 'close');
    t.true(d.destroyed);
    const w = Buffer.from('x');
    for (const p of [s.read(w), s.readExact(w), s.write(w), s.writeAll(w)]) {
      const e = await rejectionOf(t, p);
      t.is(e.code, 'ERR_RINGIO_CLOSED');
      t.is(e.buf, w);
    }
    t.is((await rejectionOf(t, s.shutdown())).code, 'ERR_RINGIO_CLOSED');
  });
});

rtTest('a Duplex destroyed underneath: reads reject ERR_RINGIO_CLOSED after the bytes already held', async (t) => {
  await run(async () => {
    const d = new PassThrough();
    const s = fromDuplex(d);
    const two = Buffer.alloc(2);
    const first = s.read(two);
    d.write(Buffer.from('abc'));
    t.is((await first)[0], 2);
    t.is(two.toString(), 'ab', "'c' is held for the next read");
    d.destroy();
    await once(d, 'close');
    const buf = Buffer.alloc(8);
    const [n] = await s.read(buf);
    t.is(buf.toString('utf8', 0, n), 'c', 'bytes held before are delivered first');
    const err = await rejectionOf(t, s.read(buf));
    t.is(err.code, 'ERR_RINGIO_CLOSED');
    t.is(err.buf, buf);
    await s.close();
  });
});

rtTest("a Duplex destroyed with a value that is not an Error: reads reject an Error with that message and buf", async (t) => {
  await run(async () => {
    const d = new PassThrough();
    const s = fromDuplex(d);
    const buf = Buffer.alloc(4);
    const pending = rejectionOf(t, s.read(buf));
    d.destroy('boom' as never);
    const err = await pending;
    t.true(err instanceof Error);
    t.is(err.message, 'boom');
    t.is(err.buf, buf);
    await s.close();
  });
});

rtTest('write after shutdown rejects EPIPE with its buf; the read side keeps working', async (t) => {
  await run(async () => {
    const server = await netEcho();
    const s = fromDuplex(await netConnect(server.port));
    await s.writeAll(Buffer.from('hello'));
    await s.shutdown();
    t.is(s.shutdown(), s.shutdown(), 'shutdown is idempotent');
    const late = Buffer.from('late');
    const err = await rejectionOf(t, s.write(late));
    t.is(err.code, 'EPIPE');
    t.is(err.buf, late);
    const buf = Buffer.alloc(5);
    const [n] = await s.readExact(buf);
    t.is(buf.toString('utf8', 0, n), 'hello', 'the echo still arrives');
    t.is((await s.read(buf))[0], 0);
    await s.close();
    await server.close();
  });
});

rtTest('an aborted read rejects AbortError with its buf and loses no byte', async (t) => {
  await run(async () => {
    const d = new PassThrough();
    const s = fromDuplex(d);
    const ac = new AbortController();
    const buf = Buffer.alloc(8);
    const pending = rejectionOf(t, s.read(buf, { signal: ac.signal }));
    ac.abort('enough');
    const err = await pending;
    t.is(err.name, 'AbortError');
    t.is(err.code, 'ABORT_ERR');
    t.is(err.cause, 'enough');
    t.is(err.buf, buf);
    d.write(Buffer.from('kept'));
    const [n] = await guard(s.read(buf), 5000, 'the next read');
    t.is(buf.toString('utf8', 0, n), 'kept');
    const pre = await rejectionOf(t, s.writeAll(buf, { signal: AbortSignal.abort() }));
    t.is(pre.name, 'AbortError');
    t.is(pre.buf, buf);
    await s.close();
  });
});

rtTest('bad input: TypeError and RangeError, before anything is read or written', async (t) => {
  await run(async () => {
    for (const bad of [null, undefined, 1, 'duplex', {}, { on() {}, pause() {} }]) {
      t.throws(() => fromDuplex(bad as never), { instanceOf: TypeError });
    }
    t.throws(() => fromDuplex(new PassThrough({ objectMode: true })), { instanceOf: TypeError });
    t.throws(() => fromDuplex(new Duplex({ readableObjectMode: true, read() {}, write(_c, _e, cb) { cb(); } })), { instanceOf: TypeError });
    const s = fromDuplex(new PassThrough());
    const buf = Buffer.alloc(8);
    for (const m of ['read', 'readExact', 'write', 'writeAll'] as const) {
      t.true((await rejectionOf(t, s[m]('abc' as never))) instanceof TypeError, `${m}('abc')`);
      t.true((await rejectionOf(t, s[m](new ArrayBuffer(8) as never))) instanceof TypeError, `${m}(ArrayBuffer)`);
      t.true((await rejectionOf(t, s[m](buf, { offset: -1 }))) instanceof RangeError, `${m} offset -1`);
      t.true((await rejectionOf(t, s[m](buf, { offset: 4, length: 5 }))) instanceof RangeError, `${m} past the end`);
      t.true((await rejectionOf(t, s[m](buf, { signal: 'x' as never }))) instanceof TypeError, `${m} signal`);
    }
    await s.close();
  });
});
