/**
 * @ringio/compat's listenSecure and toDuplex over a TlsStream on the driver under test: strings written to
 * the Duplex in any encoding (corked batches copied straight into the write buffer, a lone string, a
 * batch over 64 KiB) arrive as the bytes Buffer.from would make, in order, through ringio's TLS to
 * node:tls; and node:http over listenSecure answers keep-alive requests whose heads and bodies (strings
 * and Buffers, chunked or not, up to 1 MiB) node:https reads byte-exact; listenSecure accepts through
 * acceptEach, and a connection whose hand-over throws is closed while the others are served.
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { listenSecure, toDuplex } from '@ringio/compat';
import { TcpListener, TlsContext, TlsStream, tlsCounts } from '@ringio/net';
import { spawn } from '@ringio/runtime';
import { acceptModes, fdCount, fdsBackTo, guard, randomBytes, rtTest, run, sha256, withAcceptMode } from './helpers.js';
import { closeSecure, makeCert, opensslMissing } from './tls-helpers.js';

const A = opensslMissing === null ? makeCert(['a.test', 'localhost']) : undefined;
const tlsTest = (title: string, fn: Parameters<typeof rtTest>[1]): void => rtTest(title, fn, 60_000, opensslMissing);

tlsTest('toDuplex over a TlsStream: strings in every encoding, corked, alone and in a batch over 64 KiB, arrive as Buffer.from makes them, in order', async (t) => {
  await run(async () => {
    const big = randomBytes(50_000);
    const writes: [string | Buffer, BufferEncoding | undefined, boolean][] = [
      // [chunk, encoding, cork before it]
      ['HTTP/1.1 200 OK\r\nx-name: é✓\r\n\r\n', 'latin1', true],
      ['héllo ✓ ', 'utf8', false],
      ['68656c6c6f', 'hex', false],
      [Buffer.from(' and bytes '), undefined, false],
      ['aGVsbG8gYmFzZTY0', 'base64', false],
      ['utf16 alone ✓', 'utf16le', true], // after an uncork: a string written by itself
      ['x'.repeat(40_000), 'latin1', true],
      [big, undefined, false],
      ['é'.repeat(10_000), 'utf8', false], // this batch is over 64 KiB: sent as Buffers
    ];
    const expected = Buffer.concat([...writes.map(([c, enc]) => (typeof c === 'string' ? Buffer.from(c, enc) : c)), Buffer.from('bye')]);
    const ctx = TlsContext.server({ cert: A!.cert, key: A!.key });
    const l = await TcpListener.bind('127.0.0.1:0');
    const served = spawn(async () => {
      const d = toDuplex(await TlsStream.accept((await l.accept())[0], ctx));
      let corked = false;
      for (const [chunk, enc, cork] of writes) {
        if (cork) {
          if (corked) d.uncork();
          d.cork();
          corked = true;
          if (typeof chunk === 'string' && enc === 'utf16le') {
            d.uncork();
            corked = false;
          }
        }
        if (enc === undefined) d.write(chunk);
        else d.write(chunk as string, enc);
      }
      if (corked) d.uncork();
      d.end('bye', 'latin1');
      await once(d, 'finish');
      d.destroy();
      await once(d, 'close');
    });
    const c = tls.connect({ host: '127.0.0.1', port: l.localAddr.port, servername: 'a.test', ca: A!.cert });
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    await guard(once(c, 'end'), 20_000, 'the end');
    const got = Buffer.concat(parts);
    t.is(got.length, expected.length);
    t.is(sha256(got), sha256(expected));
    c.destroy();
    await served;
    await l.close();
    ctx.close();
  });
});

tlsTest('listenSecure: node:http heads and bodies (strings and Buffers, chunked or sized, up to 1 MiB) reach node:https byte-exact on one keep-alive connection', async (t) => {
  await run(async () => {
    const body = randomBytes(1024 * 1024);
    const server = http.createServer((req, res) => {
      const n = Number(new URL(req.url!, 'http://x').searchParams.get('n'));
      if (req.url!.startsWith('/sized')) {
        res.writeHead(200, { 'content-length': n, 'x-note': 'sized' });
        res.end(body.subarray(0, n));
      } else if (req.url!.startsWith('/chunked')) {
        res.write('chunk one é ✓|');
        res.write(body.subarray(0, n));
        res.end('|last', 'latin1');
      } else res.end('text body é ✓');
    });
    const l = await listenSecure(server, { tls: { cert: A!.cert, key: A!.key } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: A!.cert });
    const get = (path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: l.address.port, path, servername: 'a.test', agent }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (b: Buffer) => parts.push(b));
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
            res.on('error', reject);
          })
          .on('error', reject);
      });
    try {
      for (const n of [0, 1, 1000, 16_379, 16_384, 70_000, 1024 * 1024]) {
        const s = await guard(get(`/sized?n=${n}`), 20_000, `sized ${n}`);
        t.is(s.status, 200);
        t.is(s.headers['x-note'], 'sized');
        t.is(sha256(s.body), sha256(body.subarray(0, n)), `sized ${n}`);
        const c = await guard(get(`/chunked?n=${n}`), 20_000, `chunked ${n}`);
        t.is(sha256(c.body), sha256(Buffer.concat([Buffer.from('chunk one é ✓|'), body.subarray(0, n), Buffer.from('|last', 'latin1')])), `chunked ${n}`);
      }
      t.is((await get('/text')).body.toString(), 'text body é ✓');
      t.is(l.handshakeErrors, 0);
    } finally {
      await closeSecure(agent, l, server);
    }
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});

for (const [mode, multishot] of acceptModes) {
  tlsTest(`listenSecure, ${mode}: accepts through acceptEach; a 'connection' listener that throws closes that connection only, reported and counted`, async (t) => {
    const fds = fdCount();
    await run(async () => {
      const server = http.createServer((req, res) => res.end(`hi ${req.socket.remotePort}`));
      let throwNext = false;
      server.prependListener('connection', () => {
        if (throwNext) {
          throwNext = false;
          throw new Error('a listener failed');
        }
      });
      const errors: unknown[] = [];
      const listener = await TcpListener.bind('127.0.0.1:0');
      const l = await withAcceptMode(multishot, () => listenSecure(server, { listener, tls: { cert: A!.cert, key: A!.key }, onError: (e) => void errors.push(e) }));
      // listenSecure runs the listener's acceptEach: a second one is refused.
      const second = await listener.acceptEach(() => {}).then(
        () => 'resolved',
        (e: Error) => e.message,
      );
      t.regex(second, /already running/);
      const agent = new https.Agent({ keepAlive: false, ca: A!.cert });
      const get = (): Promise<string> =>
        new Promise((resolve) => {
          https
            .get({ host: '127.0.0.1', port: l.address.port, path: '/', servername: 'a.test', agent }, (res) => {
              const parts: Buffer[] = [];
              res.on('data', (b: Buffer) => parts.push(b));
              res.on('end', () => resolve(Buffer.concat(parts).toString()));
            })
            .on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
        });
      for (let i = 0; i < 3; i++) t.regex(await get(), /^hi \d+$/);
      throwNext = true;
      t.regex(await get(), /^error /, 'the connection whose hand-over threw is closed');
      t.is(l.connectionErrors, 1);
      t.is(errors.length, 1);
      t.is((errors[0] as Error).message, 'a listener failed');
      const later = await Promise.all(Array.from({ length: 20 }, () => get()));
      for (const r of later) t.regex(r, /^hi \d+$/, 'later connections are served');
      t.is(l.handshakeErrors, 0);
      await closeSecure(agent, l, server);
      t.true(listener.closed);
    });
    await fdsBackTo(fds, 3000);
  });
}
