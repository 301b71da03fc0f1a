/**
 * TlsStream's record paths on the driver under test, against node:tls: many writes fired without waiting
 * (the one-send common path and the send chain behind it) arrive whole and in order, large writes split
 * across records and sends included (sha256); a write made from an earlier write's resolution while the
 * send chain is still busy queues behind it; close_notify comes after every byte written before
 * shutdown() and close(); a peer that sends part of a record and waits gets a read that waits too (no
 * early end, no error) and then the whole plaintext; and a read of one byte at a time through a record
 * loses nothing.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { TcpListener, TlsContext, TlsStream, tlsCounts } from '@ringio/net';
import { spawn, stats } from '@ringio/runtime';
import { guard, randomBytes, rtTest, run, sha256 } from './helpers.js';
import { makeCert, opensslMissing } from './tls-helpers.js';

const A = opensslMissing === null ? makeCert(['a.test', 'localhost']) : undefined;
const tlsTest = (title: string, fn: Parameters<typeof rtTest>[1]): void => rtTest(title, fn, 60_000, opensslMissing);

/** A ringio TLS server on a fresh port: `serve` runs on the first accepted TlsStream (closed after). */
async function oneServer(serve: (t: TlsStream) => Promise<void>): Promise<{ port: number; done: Promise<void>; ctx: TlsContext; l: TcpListener }> {
  const ctx = TlsContext.server({ cert: A!.cert, key: A!.key });
  const l = await TcpListener.bind('127.0.0.1:0');
  const done = spawn(async () => {
    const [s] = await l.accept();
    const t = await TlsStream.accept(s, ctx);
    try {
      await serve(t);
    } finally {
      await t.close();
    }
  });
  return { port: l.localAddr.port, done, ctx, l };
}

/** Everything a node:tls client reads until the end, and whether the end came as a clean one. */
async function readAll(port: number): Promise<{ data: Buffer; socket: tls.TLSSocket }> {
  const c = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca: A!.cert });
  const parts: Buffer[] = [];
  c.on('data', (b: Buffer) => parts.push(b));
  await guard(once(c, 'end'), 30_000, 'the end of the stream');
  return { data: Buffer.concat(parts), socket: c };
}

tlsTest('TlsStream: 200 writes fired without waiting, 1 byte to 300 KiB (records and sends split), arrive whole and in order; close_notify after the last', async (t) => {
  await run(async () => {
    const sizes = Array.from({ length: 200 }, (_, i) => (i % 50 === 7 ? 300 * 1024 : i % 13 === 0 ? 70_000 : 1 + ((i * 7919) % 3000)));
    const src = randomBytes(sizes.reduce((a, b) => a + b, 0));
    const srv = await oneServer(async (s) => {
      const writes: Promise<unknown>[] = [];
      let at = 0;
      for (const [i, n] of sizes.entries()) {
        // Mixed: writeAll windows, whole buffers, and writev pairs, none awaited before the next.
        if (i % 3 === 0) writes.push(s.writeAll(src, { offset: at, length: n }));
        else if (i % 3 === 1) writes.push(s.write(src.subarray(at, at + n)));
        else writes.push(s.writev([src.subarray(at, at + (n >> 1)), src.subarray(at + (n >> 1), at + n)]));
        at += n;
      }
      const results = await Promise.all(writes);
      t.is(results.length, sizes.length);
      await s.shutdown(); // close_notify after every byte above
    });
    const { data, socket } = await readAll(srv.port);
    t.is(data.length, src.length);
    t.is(sha256(data), sha256(src));
    socket.destroy();
    await srv.done;
    await srv.l.close();
    srv.ctx.close();
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});

tlsTest('TlsStream: a write made while the send chain is busy queues behind it; close() sends close_notify after the last byte', async (t) => {
  await run(async () => {
    const src = randomBytes(3 * 1024 * 1024);
    const srv = await oneServer(async (s) => {
      const first = s.writeAll(src.subarray(0, 100)); // one send, nothing before it
      void s.writeAll(src, { offset: 100, length: 2_000_000 }); // on the send chain behind it, many sends
      // Written once the first resolved, while the large one is still being sent: it must queue behind it.
      const third = first.then(() => s.writeAll(src, { offset: 2_000_100, length: 100 }));
      await third.then(() => s.writeAll(src, { offset: 2_000_200 }));
      // close() (oneServer's) then sends close_notify behind the last write and frees the session.
    });
    const c = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'a.test', ca: A!.cert });
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    let err: unknown;
    c.on('error', (e) => (err = e));
    await guard(once(c, 'end'), 30_000, 'close_notify');
    t.is(err, undefined, 'a clean end (close_notify), not a reset');
    t.is(sha256(Buffer.concat(parts)), sha256(src));
    c.destroy();
    await srv.done;
    await srv.l.close();
    srv.ctx.close();
  });
});

tlsTest('TlsStream: a peer that sends part of a record and waits: the read waits (no end, no error), then has the whole plaintext', async (t) => {
  await run(async () => {
    // A TCP relay between node:tls and the ringio server that, once told, cuts the client's next chunk
    // (one TLS record) after 7 bytes and sends the rest 150 ms later.
    let split = false;
    const relay = net.createServer((down) => {
      const up = net.connect(srv.port, '127.0.0.1');
      down.on('error', () => {});
      up.on('error', () => {});
      up.pipe(down);
      down.on('data', (b: Buffer) => {
        if (!split) {
          up.write(b);
          return;
        }
        split = false;
        up.write(b.subarray(0, 7));
        down.pause();
        setTimeout(() => {
          up.write(b.subarray(7));
          down.resume();
        }, 150);
      });
      down.on('end', () => up.end());
    });
    let readAt = 0;
    let got = '';
    const srv = await oneServer(async (s) => {
      const buf = new Uint8Array(64);
      const [n] = await s.read(buf);
      readAt = Date.now();
      got = Buffer.from(buf.subarray(0, n)).toString();
      await s.writeAll(Buffer.from('ok'));
      const [end] = await s.read(buf);
      t.is(end, 0, 'the end after the client ends');
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const c = tls.connect({ host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port, servername: 'a.test', ca: A!.cert });
      await guard(once(c, 'secureConnect'), 10_000, 'handshake');
      // TLS 1.3: the server's session tickets may still be in flight; the next client write is one record.
      await new Promise((r) => setTimeout(r, 50));
      split = true;
      const sentAt = Date.now();
      c.write('hello, partial record');
      const [answer] = (await guard(once(c, 'data'), 10_000, 'the answer')) as [Buffer];
      t.is(answer.toString(), 'ok');
      t.is(got, 'hello, partial record');
      t.true(readAt - sentAt >= 120, `the read waited for the rest of the record (${readAt - sentAt} ms)`);
      c.end();
      await srv.done;
      c.destroy();
    } finally {
      relay.close();
      await srv.l.close();
      srv.ctx.close();
    }
  });
});

tlsTest('TlsStream: reads of 1 byte through 64 KiB records lose nothing; every pool lease goes back', async (t) => {
  await run(async () => {
    const src = randomBytes(150_000);
    let server: TlsStream | undefined;
    const srv = await oneServer(async (s) => {
      server = s;
      const got = Buffer.alloc(src.length);
      const one = new Uint8Array(1);
      // 1-byte reads for the first 5000 bytes, then large ones.
      for (let i = 0; i < 5000; i++) {
        const [n] = await s.read(one);
        t.is(n, 1);
        got[i] = one[0]!;
      }
      let at = 5000;
      while (at < src.length) {
        const [n] = await s.read(got, { offset: at });
        if (n === 0) break;
        at += n;
      }
      t.is(at, src.length);
      t.is(sha256(got), sha256(src));
      t.is(stats().recvPool.leased, 0, 'no lease held');
    });
    const c = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'a.test', ca: A!.cert });
    await guard(once(c, 'secureConnect'), 10_000, 'handshake');
    c.end(src);
    await srv.done;
    t.truthy(server);
    c.destroy();
    await srv.l.close();
    srv.ctx.close();
  });
});

tlsTest('TlsStream: records that arrive while nobody reads (more than the leases held before a pause), then the end: all of them are read, then 0', async (t) => {
  await run(async () => {
    const msgs = Array.from({ length: 12 }, (_, i) => randomBytes(100 + i * 997));
    const all = Buffer.concat(msgs);
    let c: tls.TLSSocket | undefined;
    const srv = await oneServer(async (s) => {
      const buf = Buffer.alloc(all.length + 16);
      const [first] = await s.read(buf, { length: 1 }); // the reads are under way
      t.is(first, 1);
      // The client writes its records one by one, then ends, while nothing reads here.
      for (const m of msgs.slice(1)) {
        c!.write(m);
        await new Promise((r) => setTimeout(r, 15));
      }
      c!.end();
      await new Promise((r) => setTimeout(r, 150));
      let at = 1;
      for (;;) {
        const [n] = await s.read(buf, { offset: at, length: buf.length - at });
        if (n === 0) break;
        at += n;
      }
      t.is(at, all.length);
      t.is(sha256(buf.subarray(0, at)), sha256(all));
      t.is(stats().recvPool.leased, 0, 'every held lease went back');
    });
    c = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'a.test', ca: A!.cert });
    c.on('error', () => {});
    await guard(once(c, 'secureConnect'), 10_000, 'handshake');
    c.write(msgs[0]);
    await srv.done;
    c.destroy();
    await srv.l.close();
    srv.ctx.close();
  });
});
