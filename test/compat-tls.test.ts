/**
 * @ringio/compat with node:tls on the driver under test, both ways: a TLS server on ringio sockets
 * (new tls.TLSSocket(toDuplex(stream), { isServer: true }), and tls.Server fed with
 * emit('connection', duplex)) against node's TLS client, and node's TLS client running over a ringio
 * TcpStream (tls.connect({ socket: toDuplex(stream) })) against a node TLS server. Each echoes 8 MiB
 * byte-exact. The certificate is made with openssl at test time; without openssl these tests skip with
 * the reason.
 */
import { once } from 'node:events';
import tls from 'node:tls';
import type { ExecutionContext } from 'ava';
import { toDuplex } from '@ringio/compat';
import { TcpListener, TcpStream } from '@ringio/net';
import { spawn, stats } from '@ringio/runtime';
import { fdCount, fdsBackTo, guard, randomBytes, rtTest, run, sha256, testCertificate } from './helpers.js';

const MiB = 1024 * 1024;
const pem = testCertificate();

/** rtTest that skips, with the reason, when no certificate could be made. */
function tlsTest(title: string, fn: (cert: { cert: Buffer; key: Buffer }) => Parameters<typeof rtTest>[1]): void {
  rtTest(
    title,
    async (t) => {
      await fn(pem as { cert: Buffer; key: Buffer })(t);
    },
    60_000,
    'missing' in pem ? pem.missing : null,
  );
}

/** Echoes everything the TLS socket receives, and ends when the peer ends. */
function echo(sock: tls.TLSSocket, errors: string[]): void {
  sock.on('error', (e: NodeJS.ErrnoException) => errors.push(`server: ${e.code ?? e.message}`));
  sock.pipe(sock);
}

/**
 * Waits for the client's handshake (verified), echoes 8 MiB of random bytes through it and checks them
 * byte-exact, then destroys the client.
 */
async function echo8MiB(t: ExecutionContext, client: tls.TLSSocket, serverErrors: string[]): Promise<void> {
  await guard(once(client, 'secureConnect'), 10_000, 'the TLS handshake');
  t.true(client.authorized, 'the client verified the server certificate');
  const src = randomBytes(8 * MiB);
  const got = await guard(roundTrip(client, src), 40_000, '8 MiB over TLS');
  t.is(got.length, src.length);
  t.is(sha256(got), sha256(src), 'byte-exact');
  t.deepEqual(serverErrors, []);
  client.destroy();
}

/** Sends src over a connected TLS socket, half-closes, and resolves what came back. */
async function roundTrip(sock: tls.TLSSocket, src: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  sock.on('data', (b: Buffer) => parts.push(b));
  const ended = once(sock, 'end');
  for (let off = 0; off < src.length; ) {
    const n = Math.min(src.length - off, 1 + ((Math.random() * 128 * 1024) | 0));
    if (!sock.write(src.subarray(off, off + n))) await once(sock, 'drain');
    off += n;
  }
  sock.end();
  await ended;
  return Buffer.concat(parts);
}

for (const how of ['new tls.TLSSocket(duplex, { isServer: true })', "tls.Server's emit('connection', duplex)"] as const) {
  tlsTest(`node:tls server over toDuplex (${how}): node's TLS client echoes 8 MiB byte-exact`, (pem) => async (t) => {
    await run(async () => {
      const fds0 = fdCount();
      const secureContext = tls.createSecureContext(pem);
      const errors: string[] = [];
      const l = await TcpListener.bind('127.0.0.1:0');
      const servers: tls.TLSSocket[] = [];
      const tlsServer = tls.createServer(pem, (sock) => {
        servers.push(sock);
        echo(sock, errors);
      });
      const accepting = spawn(async () => {
        const [stream] = await l.accept();
        const d = toDuplex(stream);
        if (how.startsWith('new')) {
          const sock = new tls.TLSSocket(d, { isServer: true, secureContext });
          servers.push(sock);
          echo(sock, errors);
        } else {
          tlsServer.emit('connection', d);
        }
        return d;
      });
      const client = tls.connect({ host: '127.0.0.1', port: l.localAddr.port, ca: pem.cert, servername: 'localhost' });
      await echo8MiB(t, client, errors);
      const d = await accepting;
      if (!d.closed) await guard(once(d, 'close'), 5000, 'the server-side Duplex closes');
      t.true(d.bytesRead > 8 * MiB && d.bytesWritten > 8 * MiB, 'the ciphertext went through the Duplex');
      t.is(servers.length, 1);
      await l.close();
      t.is(stats().opsInFlight, 0);
      t.is(await fdsBackTo(fds0), fds0);
    });
  });
}

tlsTest("node's TLS client over toDuplex (tls.connect({ socket })): a node:tls server echoes 8 MiB byte-exact", (pem) => async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const errors: string[] = [];
    const server = tls.createServer(pem, (sock) => echo(sock, errors));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const d = toDuplex(await TcpStream.connect({ host: '127.0.0.1', port }));
    await echo8MiB(t, tls.connect({ socket: d, ca: pem.cert, servername: 'localhost' }), errors);
    if (!d.closed) await guard(once(d, 'close'), 5000, 'the client Duplex closes with the TLS socket');
    server.close();
    await once(server, 'close');
    t.is(stats().opsInFlight, 0);
    t.is(await fdsBackTo(fds0), fds0);
  });
});

tlsTest('node:tls on both ends over toDuplex: 8 MiB echoed byte-exact, ringio sockets on both sides', (pem) => async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const errors: string[] = [];
    const secureContext = tls.createSecureContext(pem);
    const l = await TcpListener.bind('127.0.0.1:0');
    const accepting = spawn(async () => {
      const [stream] = await l.accept();
      const d = toDuplex(stream);
      echo(new tls.TLSSocket(d, { isServer: true, secureContext }), errors);
      return d;
    });
    const cd = toDuplex(await TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port }));
    await echo8MiB(t, tls.connect({ socket: cd, ca: pem.cert, servername: 'localhost' }), errors);
    const sd = await accepting;
    await Promise.all([cd, sd].map((d) => (d.closed ? undefined : guard(once(d, 'close'), 5000, 'both Duplexes close'))));
    await l.close();
    t.is(stats().opsInFlight, 0);
    t.is(await fdsBackTo(fds0), fds0);
  });
});
