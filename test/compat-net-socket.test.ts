/**
 * toNetSocket on the driver under test: node:http2 (h2c) and node:http served over net.Sockets handed over
 * from ringio's accept (bodies byte-exact, the ringio stream closed, no fd left behind); node:https with
 * node:tls on the native handle; UnixStreams too;
 * and the errors: a TlsStream, a non-stream, a closed stream, bad options.
 */
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import net from 'node:net';
import { toNetSocket } from '@ringio/compat';
import { TcpListener, TcpStream, TlsContext, TlsStream, UnixStream } from '@ringio/net';
import { spawn } from '@ringio/runtime';
import { fdCount, fdsBackTo, guard, randomBytes, rejectionOf, rtTest, run, sha256, testCertificate } from './helpers.js';

const MiB = 1024 * 1024;

rtTest('toNetSocket: node:http2 over handed-over sockets serves 2 MiB bodies byte-exact; the streams are closed, no fd left', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const big = randomBytes(2 * MiB);
    const server = http2.createServer({ maxSessionMemory: 64 }); // 8 bodies of 2 MiB in flight at once
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-length': big.length });
      stream.end(big);
    });
    const l = await TcpListener.bind('127.0.0.1:0');
    const handed: { stream: TcpStream; socket: net.Socket }[] = [];
    const accepting = spawn(async () => {
      for await (const [stream] of l) {
        const socket = toNetSocket(stream);
        handed.push({ stream, socket });
        server.emit('connection', socket);
      }
    });
    const client = http2.connect(`http://127.0.0.1:${l.localAddr.port}`);
    const get = async (): Promise<string> => {
      const req = client.request({ ':path': '/' });
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      await once(req, 'end');
      return sha256(Buffer.concat(parts));
    };
    const sums = await guard(Promise.all(Array.from({ length: 8 }, get)), 15_000, 'h2 requests');
    t.deepEqual(sums, Array(8).fill(sha256(big)));
    t.is(handed.length, 1, 'one connection');
    const { stream, socket } = handed[0]!;
    t.true(socket instanceof net.Socket);
    t.is(stream.fd, -1, 'the ringio stream is closed');
    t.is(socket.remotePort, (client.socket as net.Socket).localPort, 'the socket is the same connection');
    client.close();
    await once(socket, 'close');
    await l.close();
    await accepting;
    t.is(await fdsBackTo(fds0), fds0, 'no fd left behind');
  });
});

rtTest('toNetSocket: node:http over handed-over TCP and Unix sockets; half-open kept when asked', async (t) => {
  await run(async () => {
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => res.end(sha256(Buffer.concat(parts))));
    });
    const l = await TcpListener.bind('127.0.0.1:0');
    const accepting = spawn(async () => {
      for await (const [stream] of l) server.emit('connection', toNetSocket(stream));
    });
    const body = randomBytes(300_000);
    const res = await guard(
      new Promise<string>((resolve, reject) => {
        const req = http.request({ port: l.localAddr.port, host: '127.0.0.1', method: 'POST', agent: false }, (r) => {
          let s = '';
          r.setEncoding('utf8').on('data', (c: string) => (s += c)).on('end', () => resolve(s));
        });
        req.on('error', reject);
        req.end(body);
      }),
      10_000,
      'http request',
    );
    t.is(res, sha256(body));
    await l.close();
    await accepting;

    // A Unix pair: the handed-over end is a net.Socket (a pipe handle); allowHalfOpen: true keeps its
    // write side open after the peer's end.
    const [a, b] = await UnixStream.pair();
    const s = toNetSocket(b, { allowHalfOpen: true });
    await a.writeAll(Buffer.from('ping'));
    await a.shutdown();
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    await once(s, 'end');
    t.is(Buffer.concat(got).toString(), 'ping');
    t.true(s.writable, 'the write side stays open (allowHalfOpen)');
    s.end('pong');
    const back = new Uint8Array(16);
    const [n] = await a.read(back);
    t.is(Buffer.from(back.subarray(0, n)).toString(), 'pong');
    await a.close();
    s.destroy();
  });
});

rtTest('toNetSocket: node:https (node:tls on the native handle) over a handed-over socket', async (t) => {
  const pem = testCertificate();
  if ('missing' in pem) {
    t.log(`skipped: ${pem.missing}`);
    t.pass();
    return;
  }
  await run(async () => {
    const server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => res.end(`hello ${(req.socket as tls.TLSSocket).encrypted}`));
    const l = await TcpListener.bind('127.0.0.1:0');
    const accepting = spawn(async () => {
      for await (const [stream] of l) server.emit('connection', toNetSocket(stream));
    });
    const body = await guard(
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: l.localAddr.port, ca: pem.cert, servername: 'localhost', agent: false }, (r) => {
            let s = '';
            r.setEncoding('utf8').on('data', (c: string) => (s += c)).on('end', () => resolve(s));
          })
          .on('error', reject);
      }),
      10_000,
      'https request',
    );
    t.is(body, 'hello true');
    await l.close();
    await accepting;
    server.close();
  });
});

rtTest('toNetSocket: a TlsStream, a non-stream and bad options are TypeErrors; a closed stream ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const [a, b] = await UnixStream.pair();
    t.throws(() => toNetSocket(null as never), { instanceOf: TypeError });
    t.throws(() => toNetSocket({ fd: 'x', close: async () => {} } as never), { instanceOf: TypeError });
    t.throws(() => toNetSocket(a, null as never), { instanceOf: TypeError });
    t.throws(() => toNetSocket(a, { allowHalfOpen: 'yes' as never }), { instanceOf: TypeError, message: /allowHalfOpen/ });
    t.true(a.fd >= 0, 'a refused hand-over leaves the stream open');
    await a.close();
    t.throws(() => toNetSocket(a), { code: 'ERR_RINGIO_CLOSED' });
    await b.close();

    const pem = testCertificate();
    if ('missing' in pem) {
      t.log(`TlsStream case skipped: ${pem.missing}`);
      return;
    }
    const ctx = TlsContext.server({ cert: pem.cert, key: pem.key });
    const l = await TcpListener.bind('127.0.0.1:0');
    const accepted = spawn(async () => TlsStream.accept((await l.accept())[0], ctx));
    const client = await TlsStream.over(await TcpStream.connect(l.localAddr), { servername: 'localhost', rejectUnauthorized: false });
    const server = await accepted;
    t.throws(() => toNetSocket(server as never), { instanceOf: TypeError, message: /TlsStream/ });
    await client.close();
    await server.close();
    await l.close();
    ctx.close();
    t.is((await rejectionOf(t, server.read(new Uint8Array(1)))).code, 'ERR_RINGIO_CLOSED');
  });
});
