/**
 * @ringio/net's TlsStream (TLS in the addon over memory BIOs) on the driver under test: against node:tls
 * both ways with 4 MiB echoed byte-exact;  SNI choosing the certificate (checked by node:tls here, by curl
 * in test/http-tls.test.ts); verification failures typed with Node's codes (self-signed, wrong name,
 * wrong CA) and rejectUnauthorized: false; peers that send garbage instead of a ClientHello, close
 * mid-handshake or say nothing (timeout) fail only their own handshake; and every SSL object and fd is
 * freed afterwards (tlsCounts, fd count).
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { TcpListener, TcpStream, TlsContext, TlsStream, tlsCounts } from '@ringio/net';
import { spawn, stats } from '@ringio/runtime';
import { fdCount, fdsBackTo, guard, randomBytes, rtTest, run, sha256 } from './helpers.js';
import { makeCert, opensslMissing, type Pem } from './tls-helpers.js';

const MiB = 1024 * 1024;
const A = opensslMissing === null ? makeCert(['a.test', 'localhost']) : undefined;
const B = opensslMissing === null ? makeCert(['b.test', '*.wild.test']) : undefined;
const tlsTest = (title: string, fn: Parameters<typeof rtTest>[1]): void => rtTest(title, fn, 60_000, opensslMissing);

/** A ringio TLS echo server: accepts, handshakes, echoes until the peer ends, then closes. */
async function echoServer(ctx: TlsContext, failures: unknown[]): Promise<{ port: number; close: () => Promise<void> }> {
  const l = await TcpListener.bind('127.0.0.1:0');
  const task = spawn(async () => {
    try {
      for await (const [s] of l) {
        void (async () => {
          let t: TlsStream | undefined;
          try {
            t = await TlsStream.accept(s, ctx, { handshakeTimeout: 2000 });
            const buf = new Uint8Array(65536);
            for (;;) {
              const [n] = await t.read(buf);
              if (n === 0) break;
              await t.writeAll(buf, { length: n });
            }
          } catch (e) {
            failures.push(e);
          } finally {
            await t?.close();
          }
        })();
      }
    } catch {
      // closed
    }
  });
  return {
    port: l.localAddr.port,
    close: async () => {
      await l.close();
      await task;
    },
  };
}

/** A ringio TLS client and server connected over loopback (certificate A), with the listener and context. */
async function tlsPair(): Promise<{ ctx: TlsContext; l: TcpListener; client: TlsStream; server: TlsStream }> {
  const ctx = TlsContext.server({ cert: A!.cert, key: A!.key });
  const l = await TcpListener.bind('127.0.0.1:0');
  const accepted = spawn(async () => TlsStream.accept((await l.accept())[0], ctx));
  const client = await TlsStream.over(await TcpStream.connect(l.localAddr), { servername: 'a.test', ca: A!.cert });
  return { ctx, l, client, server: await accepted };
}

/** Connects node:tls, returns the peer certificate's CN (and the socket). */
async function nodeClient(port: number, servername: string, ca: Pem): Promise<tls.TLSSocket> {
  const s = tls.connect({ host: '127.0.0.1', port, servername, ca: ca.cert });
  await guard(once(s, 'secureConnect'), 10_000, 'node:tls handshake');
  return s;
}

tlsTest('TlsStream server: node:tls echoes 4 MiB byte-exact; SNI picks the certificate; no SSL object or fd left', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const ctx = TlsContext.server({ cert: A!.cert, key: A!.key, sni: [{ cert: B!.cert, key: B!.key }] });
    const failures: unknown[] = [];
    const srv = await echoServer(ctx, failures);
    const c = await nodeClient(srv.port, 'a.test', A!);
    t.is((c.getPeerCertificate() as { subject: { CN: string } }).subject.CN, 'a.test');
    t.true(c.authorized);
    const src = randomBytes(4 * MiB);
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    const ended = once(c, 'end');
    c.end(src);
    await guard(ended, 30_000, '4 MiB echo');
    t.is(sha256(Buffer.concat(parts)), sha256(src));
    for (const [name, cn] of [['b.test', 'b.test'], ['x.wild.test', 'b.test'], ['unknown.test', 'a.test']] as const) {
      const s = tls.connect({ host: '127.0.0.1', port: srv.port, servername: name, rejectUnauthorized: false });
      await guard(once(s, 'secureConnect'), 10_000, `handshake for ${name}`);
      t.is((s.getPeerCertificate() as { subject: { CN: string } }).subject.CN, cn, `SNI ${name}`);
      s.destroy();
    }
    await srv.close();
    ctx.close();
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
    t.true((await fdsBackTo(fds0)) <= fds0, 'fds back');
    t.deepEqual(failures.filter((e) => (e as { code?: string }).code !== 'ECONNRESET'), []);
  });
});

tlsTest('TlsStream client: against node:tls, 4 MiB both ways, readv/writev/readExact, shutdown sends close_notify', async (t) => {
  await run(async () => {
    const server = tls.createServer({ cert: A!.cert, key: A!.key, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const c = await TlsStream.connect({ host: '127.0.0.1', port }, { ca: A!.cert, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
      t.is(c.info.protocol, 'TLSv1.3');
      t.is(c.alpnProtocol, 'http/1.1');
      t.true(c.info.authorized);
      const src = randomBytes(4 * MiB);
      const writing = (async () => {
        await c.writev([src.subarray(0, 1000), src.subarray(1000, 70_000)]);
        await c.writeAll(src, { offset: 70_000 });
        await c.shutdown();
      })();
      const got = Buffer.alloc(src.length);
      await c.readExact(got, { length: 100 });
      const [n] = await c.readv([got.subarray(100, 200), got.subarray(200, 300)]);
      let at = 100 + n;
      for (;;) {
        const [m] = await c.read(got, { offset: at, length: Math.min(65536, got.length - at) });
        if (m === 0) break;
        at += m;
        if (at === got.length) {
          const [end] = await c.read(new Uint8Array(16));
          t.is(end, 0, 'end of stream after the echo');
          break;
        }
      }
      await writing;
      t.is(at, src.length);
      t.is(sha256(got), sha256(src));
      await c.close();
      await c.close(); // idempotent
      await t.throwsAsync(c.read(new Uint8Array(4)), { code: 'ERR_RINGIO_CLOSED' });
    } finally {
      server.close();
    }
  });
});

tlsTest('TlsStream client: verification failures are TlsErrors with Node codes; rejectUnauthorized: false connects; nothing leaks', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const server = tls.createServer({ cert: A!.cert, key: A!.key });
    server.on('tlsClientError', () => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const addr = { host: '127.0.0.1', port };
    try {
      await t.throwsAsync(TlsStream.connect(addr, { servername: 'localhost' }), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', name: 'TlsError' });
      await t.throwsAsync(TlsStream.connect(addr, { servername: 'other.test', ca: A!.cert }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      await t.throwsAsync(TlsStream.connect(addr, { servername: 'a.test', ca: B!.cert }), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      const c = await TlsStream.connect(addr, { servername: 'other.test', rejectUnauthorized: false });
      t.false(c.info.authorized);
      t.is(c.info.authorizationError, 'DEPTH_ZERO_SELF_SIGNED_CERT');
      await c.close();
      const ip = await TlsStream.connect(addr, { ca: A!.cert }); // verified against IP:127.0.0.1
      t.true(ip.info.authorized);
      await ip.close();
      await t.throwsAsync(TlsStream.connect({ host: '127.0.0.1', port: 1 }), { code: 'ECONNREFUSED' });
      t.throws(() => TlsContext.server({ cert: A!.cert, key: B!.key }), { code: 'ERR_OSSL_KEY_VALUES_MISMATCH' });
      t.throws(() => TlsContext.server({ cert: 'not a pem', key: A!.key }), { message: /options\.cert/ });
      t.throws(() => TlsContext.client({ ca: 'nothing here' }), { instanceOf: TypeError });
      t.throws(() => TlsContext.server({} as never), { instanceOf: TypeError });
    } finally {
      server.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    t.is(tlsCounts().sessions, 0);
    t.true((await fdsBackTo(fds0)) <= fds0, 'fds back');
  });
});

tlsTest('TLS server: garbage instead of a ClientHello, a close mid-handshake, a silent peer and a reset fail only their own handshake', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const ctx = TlsContext.server({ cert: A!.cert, key: A!.key });
    const failures: { code?: string }[] = [];
    const srv = await echoServer(ctx, failures);
    const raw = async (bytes: Buffer | null, how: 'end' | 'reset' | 'wait'): Promise<Buffer> => {
      const s = net.connect(srv.port, '127.0.0.1');
      await once(s, 'connect');
      const got: Buffer[] = [];
      s.on('data', (b: Buffer) => got.push(b));
      s.on('error', () => {});
      if (bytes !== null) s.write(bytes);
      if (how === 'end') s.end();
      if (how === 'reset') s.resetAndDestroy();
      if (how !== 'reset') await guard(new Promise((r) => s.once('close', r)), 10_000, 'the server closes the connection');
      return Buffer.concat(got);
    };
    await raw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'wait');
    // A handshake record holding an unknown message type: OpenSSL answers with an alert record.
    const alert = await raw(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0x00, 0x00, 0x01, 0x00]), 'wait');
    t.is(alert[0], 0x15, 'a TLS alert record answers the bad handshake message');
    // The first bytes of a ClientHello, then FIN.
    await raw(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), 'end');
    await raw(randomBytes(64 * 1024), 'wait');
    await raw(null, 'wait'); // says nothing: the 2 s handshake timeout closes it
    await raw(Buffer.from([0x16, 0x03, 0x01]), 'reset');
    // The server still serves.
    const c = await nodeClient(srv.port, 'a.test', A!);
    c.end('still here');
    const [echo] = (await guard(once(c, 'data'), 10_000, 'echo')) as [Buffer];
    t.is(echo.toString(), 'still here');
    await srv.close();
    ctx.close();
    const codes = failures.map((e) => e.code).sort();
    t.true(codes.includes('ERR_SSL_HTTP_REQUEST'), codes.join());
    t.true(codes.includes('ECONNRESET'), codes.join());
    t.true(codes.includes('ERR_TLS_HANDSHAKE_TIMEOUT'), codes.join());
    t.true(failures.length >= 4, codes.join());
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
    t.true((await fdsBackTo(fds0)) <= fds0, 'fds back');
  });
});

tlsTest('TlsStream over a plain stream: close() mid-read frees the session; reads after close reject ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const { ctx, l, client, server } = await tlsPair();
    const pending = server.read(new Uint8Array(100));
    await new Promise((r) => setTimeout(r, 20));
    await server.close();
    const err = await t.throwsAsync(pending);
    t.is((err as { code?: string }).code, 'ERR_RINGIO_CLOSED');
    const [n] = await client.read(new Uint8Array(10));
    t.is(n, 0, 'the client sees the end (close_notify or FIN)');
    await client.close();
    await l.close();
    ctx.close();
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});

tlsTest('TlsStream reads ciphertext from the receive pool: a waiting read holds no buffer, an aborted read loses nothing, every lease goes back', async (t) => {
  await run(async () => {
    const { ctx, l, client, server } = await tlsPair();
    // Waiting reads on both sides: neither holds a pool buffer.
    const ac = new AbortController();
    const aborted = server.read(new Uint8Array(64), { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    t.is(stats().recvPool.leased, 0, 'a waiting TLS read holds no pool buffer');
    t.not(stats().recvPool.mode, 'none', 'the TLS reads went through the pool');
    ac.abort();
    t.is(((await t.throwsAsync(aborted)) as { name?: string }).name, 'AbortError');
    // Bytes sent after the abort reach the next read, in order; a large message arrives byte-exact
    // through reads smaller than a record (the rest stays in the session, not in a pool buffer).
    const msg = randomBytes(200_000);
    const sent = client.writeAll(msg);
    const got = new Uint8Array(msg.length);
    let have = 0;
    const small = new Uint8Array(1000);
    while (have < msg.length) {
      const [n] = await server.read(small);
      t.true(n > 0);
      got.set(small.subarray(0, n), have);
      have += n;
    }
    await sent;
    t.is(sha256(got), sha256(msg));
    t.is(stats().recvPool.leased, 0, 'every lease went back');
    await client.shutdown();
    const [end] = await server.read(small);
    t.is(end, 0, 'close_notify reads as the end');
    await client.close();
    await server.close();
    await l.close();
    ctx.close();
    t.is(stats().recvPool.leased, 0);
  });
});

tlsTest('a worker that exits with TLS sessions and contexts open: its addon frees them, the process goes on', async (t) => {
  const { Worker } = await import('node:worker_threads');
  const runtime = new URL('../../packages/runtime/dist/index.js', import.meta.url).href;
  const netPkg = new URL('../../packages/net/dist/index.js', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { start } = await import(${JSON.stringify(runtime)});
      const { UnixStream, TlsContext, TlsStream, tlsCounts } = await import(${JSON.stringify(netPkg)});
      await start(async () => {
        const ctx = TlsContext.server({ cert: workerData.cert, key: workerData.key });
        const [a, b] = UnixStream.pair();
        const [server, client] = await Promise.all([TlsStream.accept(a, ctx), TlsStream.over(b, { servername: 'a.test', ca: workerData.cert })]);
        await client.writeAll(new Uint8Array(1000));
        parentPort.postMessage(tlsCounts());
        // returns without closing server, client or ctx
      }, { driver: workerData.driver });
    })().catch((e) => { parentPort.postMessage({ error: String(e && e.stack || e) }); });
  `;
  for (let i = 0; i < 3; i++) {
    const w = new Worker(code, { eval: true, workerData: { cert: A!.cert, key: A!.key, driver: process.env.RINGIO_DRIVER ?? 'auto' } });
    const exited = once(w, 'exit');
    const [msg] = (await guard(once(w, 'message'), 20_000, `worker ${i}: its report`)) as [{ contexts?: number; sessions?: number; error?: string }];
    t.is(msg.error, undefined);
    t.deepEqual(msg, { contexts: 1, sessions: 2 });
    const [exitCode] = (await guard(exited, 20_000, `worker ${i}: its exit`)) as [number];
    t.is(exitCode, 0);
  }
});
