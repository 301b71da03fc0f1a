/**
 * node:http2 and node:https served on ringio sockets, under real load generators, on the driver under
 * test: h2load (nghttp2-client) against an h2c server, small responses and 2 MiB bodies; wrk against an
 * https server; listenSecure (ringio's TLS) under h2load's HTTP/1.1 mode; and node:http2's client over
 * ringio's createConnection. The tools are installed by .ci/run
 * when missing; a test whose tool is absent skips with the reason. These tests count requests and
 * errors, never time.
 */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import http2 from 'node:http2';
import https from 'node:https';
import { promisify } from 'node:util';
import http from 'node:http';
import net from 'node:net';
import { connect, jsStreamGuard, listenSecure, toDuplex } from '@ringio/compat';
import { tlsCounts, UnixStream } from '@ringio/net';
import { stats } from '@ringio/runtime';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { serve } from './compat-helpers.js';
import { fixture, guard, hashToEnd, randomBytes, rtTest, run, runNode, sha256, testCertificate } from './helpers.js';

const run$ = promisify(execFile);
const MiB = 1024 * 1024;

/** Whether a tool is on PATH, or why not. */
async function tool(name: string): Promise<string | null> {
  try {
    await run$('sh', ['-c', `command -v ${name}`]);
    return null;
  } catch {
    return `${name} is not installed (.ci/run installs it: apt-get install ${name === 'h2load' ? 'nghttp2-client' : name})`;
  }
}

/** h2load's "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout" line. */
function h2loadCounts(out: string): Record<string, number> {
  const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!m) throw new Error(`no requests line in h2load's output:\n${out}`);
  const [total, started, done, succeeded, failed, errored, timeout] = m.slice(1).map(Number) as number[];
  return { total: total!, started: started!, done: done!, succeeded: succeeded!, failed: failed!, errored: errored!, timeout: timeout! };
}

function h2Server(big: Buffer): http2.Http2Server {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers[':path'] === '/big') {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': big.length });
      stream.end(big);
    } else {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('hello h2\n');
    }
  });
  return server;
}

async function withTool(t: ExecutionContext, name: string): Promise<boolean> {
  const missing = await tool(name);
  if (missing !== null) {
    t.log(`skipped: ${missing}`);
    t.pass();
    return false;
  }
  return true;
}

rtTest('node:http2 (h2c) on ringio sockets under h2load: 4,000 small responses and 40 bodies of 2 MiB, all succeeded', async (t) => {
  if (!(await withTool(t, 'h2load'))) return;
  await run(async () => {
    const big = randomBytes(2 * MiB);
    const server = h2Server(big);
    const srv = await serve(server);
    try {
      const small = await guard(run$('h2load', ['-n', '4000', '-c', '4', '-m', '16', `http://127.0.0.1:${srv.port}/`]), 60_000, 'h2load small');
      const s = h2loadCounts(small.stdout);
      t.like(s, { total: 4000, done: 4000, succeeded: 4000, failed: 0, errored: 0, timeout: 0 });
      const large = await guard(run$('h2load', ['-n', '40', '-c', '2', '-m', '4', `http://127.0.0.1:${srv.port}/big`]), 60_000, 'h2load big');
      const l = h2loadCounts(large.stdout);
      t.like(l, { total: 40, succeeded: 40, failed: 0, errored: 0 });
      const traffic = /traffic: .*?\((\d+)\) total.*?\((\d+)\) data/.exec(large.stdout);
      t.truthy(traffic, large.stdout);
      t.true(Number(traffic![2]) >= 40 * big.length, `data bytes ${traffic![2]}`);
    } finally {
      await srv.close();
      server.close();
    }
  });
}, 120_000);

rtTest("node:http2's client over ringio's createConnection against the same server: a 2 MiB body byte-exact, and 100 concurrent streams", async (t) => {
  await run(async () => {
    const big = randomBytes(2 * MiB);
    const server = h2Server(big);
    const srv = await serve(server);
    const session = http2.connect(`http://127.0.0.1:${srv.port}`, { createConnection: () => connect(srv.port, '127.0.0.1') as never });
    session.on('error', () => {});
    try {
      const get = (path: string): Promise<Buffer> =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': path });
          const parts: Buffer[] = [];
          req.on('data', (c: Buffer) => parts.push(c));
          req.on('end', () => resolve(Buffer.concat(parts)));
          req.on('error', reject);
          req.end();
        });
      const body = await guard(get('/big'), 20_000, 'the 2 MiB body');
      t.is(sha256(body), sha256(big));
      const smalls = await guard(Promise.all(Array.from({ length: 100 }, () => get('/'))), 20_000, '100 streams');
      t.true(smalls.every((b) => b.toString() === 'hello h2\n'));
    } finally {
      session.close();
      await srv.close();
      server.close();
    }
  });
}, 60_000);

/** An HTTP/2 frame: 9-byte header (length, type, flags, stream id) and the payload. */
function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

rtTest("node:http2 over toDuplex: a request followed at once by a reset gets its 'stream' event on a live stream, as on a net.Socket, and the server goes on", async (t) => {
  // The client's preface, SETTINGS and a GET's HEADERS (HPACK: :method GET, :scheme http, :path /,
  // :authority localhost), then a TCP reset: the server's reads hold the bytes and the reset (or its
  // SETTINGS write fails with ECONNRESET) in one batch of completions. A handler that calls respond()
  // without checking, as most do, threw ERR_HTTP2_INVALID_STREAM out of the process before rule 10 of
  // toDuplex (the error a turn later); plain Node emits 'stream' on a live stream for every such request.
  const N = 40;
  const block = Buffer.concat([Buffer.from([0x82, 0x86, 0x84, 0x41, 9]), Buffer.from('localhost')]);
  const hello = Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    h2Frame(4, 0, 0, Buffer.alloc(0)),
    h2Frame(1, 0x5, 1, block), // END_STREAM | END_HEADERS
  ]);
  await run(async () => {
    // A handler as most are: respond() without checking the stream; guarded here only to name a throw,
    // which would otherwise end the test process.
    const server = http2.createServer();
    let emitted = 0;
    let deadAtEmit = 0;
    const thrown: string[] = [];
    server.on('stream', (stream) => {
      emitted++;
      if (stream.destroyed) deadAtEmit++;
      stream.on('error', () => {});
      try {
        stream.respond({ ':status': 200 });
        stream.end('reset\n');
      } catch (e) {
        thrown.push(String((e as { code?: string }).code ?? e));
      }
    });
    server.on('sessionError', () => {});
    const srv = await serve(server);
    try {
      for (let i = 0; i < N; i++) {
        await guard(
          new Promise<void>((resolve, reject) => {
            const c = net.connect(srv.port, '127.0.0.1', () => c.write(hello, () => (c.resetAndDestroy(), resolve())));
            c.on('error', reject);
          }),
          5000,
          `client ${i}`,
        );
      }
      for (let waited = 0; emitted < N && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      t.deepEqual(thrown, [], 'respond() threw');
      t.is(deadAtEmit, 0, "'stream' events on a destroyed stream");
      t.is(emitted, N, "every request's 'stream' event, as plain Node emits them");
      // The server goes on: a normal client gets its answer.
      const session = http2.connect(`http://127.0.0.1:${srv.port}`);
      session.on('error', () => {});
      try {
        const body = await guard(
          new Promise<string>((resolve, reject) => {
            const req = session.request({ ':path': '/' });
            let s = '';
            req.setEncoding('utf8');
            req.on('data', (c: string) => (s += c));
            req.on('end', () => resolve(s));
            req.on('error', reject);
            req.end();
          }),
          5000,
          'a request after the resets',
        );
        t.is(body, 'reset\n');
      } finally {
        session.close();
      }
    } finally {
      await srv.close();
      server.close();
    }
  });
});

const pem = testCertificate();

/** Whether the certificate could be made and the tool is there; logs the reason and passes when not. */
async function withPemAndTool(t: ExecutionContext, name: string): Promise<boolean> {
  if ('missing' in pem) {
    t.log(`skipped: ${pem.missing}`);
    t.pass();
    return false;
  }
  return withTool(t, name);
}

rtTest('node:https on ringio sockets under wrk: every request answered 200, no socket errors', async (t) => {
  if (!(await withPemAndTool(t, 'wrk')) || 'missing' in pem) return;
  await run(async () => {
    const server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end('hello https\n');
    });
    const srv = await serve(server);
    try {
      const { stdout } = await guard(run$('wrk', ['-t', '1', '-c', '8', '-d', '1s', `https://127.0.0.1:${srv.port}/`]), 30_000, 'wrk');
      const m = /(\d+) requests in/.exec(stdout);
      t.truthy(m, stdout);
      t.true(Number(m![1]) > 0, stdout);
      t.false(/Socket errors/.test(stdout), stdout);
      t.false(/Non-2xx/.test(stdout), stdout);
    } finally {
      await srv.close();
      server.close();
    }
  });
}, 60_000);

rtTest('listenSecure under h2load (HTTP/1.1 over TLS): 3,000 requests on 16 keep-alive connections all succeed; every pool lease and TLS session goes back', async (t) => {
  if (!(await withPemAndTool(t, 'h2load')) || 'missing' in pem) return;
  await run(async () => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(req.socket && (req.socket as { encrypted?: boolean }).encrypted ? 'hello https\n' : 'not encrypted\n');
    });
    const secure = await listenSecure(server, { tls: { cert: pem.cert, key: pem.key } });
    try {
      const { stdout } = await guard(
        run$('h2load', ['--h1', '-n', '3000', '-c', '16', `https://127.0.0.1:${secure.address.port}/`]),
        60_000,
        'h2load --h1',
      );
      t.like(h2loadCounts(stdout), { total: 3000, succeeded: 3000, failed: 0, errored: 0, timeout: 0 }, stdout);
      const body = /traffic: .*?\((\d+)\) data/.exec(stdout);
      t.is(Number(body?.[1]), 3000 * 'hello https\n'.length, 'every body was the encrypted one');
      t.is(secure.handshakeErrors, 0);
    } finally {
      await secure.close();
      server.closeAllConnections();
      server.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    t.is(stats().recvPool.leased, 0, 'every lease went back');
    t.is(tlsCounts().sessions, 0, 'every TLS session was freed');
  });
}, 90_000);

rtTest("the JSStreamSocket guard: a write after a shutdown (node:http2 closing a session mid-transfer) completes with EPIPE instead of killing the process", async (t) => {
  await run(async () => {
    const [a, b] = UnixStream.pair();
    const d = toDuplex(a);
    t.is(jsStreamGuard, 'installed');
    // node:tls (as node:http2) wraps a Duplex that is not a net.Socket in its internal JSStreamSocket.
    const sock = new tls.TLSSocket(d);
    sock.on('error', () => {});
    type Handle = { finishWrite(req: unknown, code: number): void; finishShutdown(req: unknown, code: number): void };
    const js = (sock as unknown as { _handle: { _parentWrap: { _handle: Handle; doShutdown(req: object): number; doWrite(req: object, bufs: Buffer[]): number } } })._handle._parentWrap;
    const finished: Array<[unknown, number]> = [];
    // Stand-ins for the native completions, so the requests can be plain objects.
    js._handle.finishWrite = (req, code) => void finished.push([req, code]);
    js._handle.finishShutdown = () => {};
    const shutdownReq = {};
    js.doShutdown(shutdownReq);
    const writeReq = {};
    // Unguarded, this throws ERR_INTERNAL_ASSERTION from node's internals (uncaught when C++ calls it).
    t.is(js.doWrite(writeReq, [Buffer.from('late frame')]), 0);
    await new Promise((r) => setImmediate(r));
    t.deepEqual(finished, [[writeReq, -32]], 'the late write completed with EPIPE');
    sock.destroy();
    d.destroy();
    await b.close();
  });
});

rtTest('the JSStreamSocket guard is installed by the first Duplex, not by loading @ringio/compat (a process that only hands sockets to libuv runs no TLS code)', async (t) => {
  const r = await runNode([fixture('compat-guard-lazy.mjs')], 30_000);
  t.is(r.stderr, '');
  t.is(r.stdout, '0 not installed: no Duplex made yet\n0 not installed: no Duplex made yet\n1 installed\n1 installed\n');
  t.is(r.code, 0);
});

type JsWrap = {
  _handle: { finishWrite(req: unknown, code: number): void; finishShutdown(req: unknown, code: number): void };
  doWrite(req: object, bufs: Buffer[]): number;
};

/** node:tls over the Duplex, as node:http2 does: its JSStreamSocket, with the native completion recorded. */
function jsStreamOver(d: Duplex): { sock: tls.TLSSocket; js: JsWrap; finished: Array<[unknown, number]> } {
  const sock = new tls.TLSSocket(d);
  sock.on('error', () => {});
  const js = (sock as unknown as { _handle: { _parentWrap: JsWrap } })._handle._parentWrap;
  const finished: Array<[unknown, number]> = [];
  js._handle.finishWrite = (req, code) => void finished.push([req, code]);
  js._handle.finishShutdown = () => {};
  return { sock, js, finished };
}

rtTest("JSStreamSocket's write batches go to the socket whole (no write() per buffer), in order with the Duplex's own writes, completed once the kernel took them", async (t) => {
  await run(async () => {
    const [a, b] = UnixStream.pair();
    const d = toDuplex(a);
    const { sock, js, finished } = jsStreamOver(d);
    // The chunks node:stream handed to the Duplex (one that waited for the batch is handed over twice).
    const through = new Set<unknown>();
    const spy = (name: '_write' | '_writev'): void => {
      const f = d[name] as (...args: unknown[]) => void;
      (d as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        through.add(args[0]);
        f.apply(d, args);
      };
    };
    spy('_write');
    spy('_writev');
    // 600 buffers, 4.7 MiB (as node:http2 hands over 9-byte frame headers and 16 KiB payloads), then small ones.
    const big: Buffer[] = [];
    for (let i = 0; i < 300; i++) big.push(randomBytes(9), randomBytes(16384));
    const small = [randomBytes(9), randomBytes(100), randomBytes(7)];
    const req1 = {};
    t.is(js.doWrite(req1, big), 0);
    // A write on the Duplex itself while the batch is in flight leaves after it.
    const tail = randomBytes(5000);
    const tailDone = new Promise<void>((resolve, reject) => d.write(tail, (e) => (e ? reject(e) : resolve())));
    const reading = hashToEnd(b);
    t.deepEqual(finished, [], 'not completed before the kernel took the batch');
    await tailDone;
    await new Promise((r) => setImmediate(r));
    t.deepEqual(finished, [[req1, 0]]);
    t.deepEqual([...through], [tail], 'only the Duplex\'s own write went through node:stream');
    // node:stream busy (corked): the batch goes the original way, behind what is queued.
    d.cork();
    const corked = randomBytes(3000);
    d.write(corked);
    const req2 = {};
    t.is(js.doWrite(req2, small), 0);
    d.uncork();
    for (let i = 0; i < 200 && finished.length < 2; i++) await new Promise((r) => setImmediate(r));
    t.deepEqual(finished[1], [req2, 0]);
    t.true(through.size > 1, 'the corked case went through node:stream');
    d.end();
    const [n, hash] = await reading;
    const expected = [...big, tail, corked, ...small];
    t.is(n, expected.reduce((s, x) => s + x.length, 0));
    t.is(hash, sha256(...expected));
    t.is(d.bytesWritten, n);
    sock.destroy();
    d.destroy();
    await b.close();
  });
});

rtTest('a JSStreamSocket write batch to a peer that has gone fails with its errno, and the Duplex is destroyed with the error', async (t) => {
  await run(async () => {
    const [a, b] = UnixStream.pair();
    const d = toDuplex(a);
    const errors: Array<Error & { code?: string }> = [];
    d.on('error', (e) => errors.push(e));
    const { sock, js, finished } = jsStreamOver(d);
    await b.close();
    const req = {};
    t.is(js.doWrite(req, [randomBytes(9), randomBytes(200_000)]), 0);
    for (let i = 0; i < 200 && finished.length === 0; i++) await new Promise((r) => setImmediate(r));
    t.is(finished.length, 1);
    t.is(finished[0]![0], req);
    t.true([-32, -104].includes(finished[0]![1]), `code ${finished[0]![1]} (EPIPE or ECONNRESET)`);
    await new Promise((r) => setImmediate(r));
    t.true(d.destroyed);
    t.true(errors.length >= 1 && ['EPIPE', 'ECONNRESET'].includes(errors[0]!.code!), JSON.stringify(errors));
    sock.destroy();
  });
});

rtTest('a program whose main returns with an HTTP/2 session (both ends on ringio) and an idle keep-alive socket open exits 0, with nothing on stderr', (t) => {
  const program = `
    import http from 'node:http';
    import http2 from 'node:http2';
    import { start } from '@ringio/runtime';
    import { TcpListener } from '@ringio/net';
    import { toDuplex, connect, createConnection } from '@ringio/compat';
    await start(async () => {
      const l = await TcpListener.bind('127.0.0.1:0');
      const server = http2.createServer();
      server.on('stream', (s) => { s.respond({ ':status': 200 }); s.end('h2'); });
      (async () => { for await (const [st] of l) server.emit('connection', toDuplex(st)); })().catch(() => {});
      const session = http2.connect('http://127.0.0.1:' + l.localAddr.port, { createConnection: () => connect(l.localAddr.port, '127.0.0.1') });
      const get = (path) => new Promise((res, rej) => {
        const r = session.request({ ':path': path });
        let b = '';
        r.on('data', (c) => (b += c));
        r.on('end', () => res(b));
        r.on('error', rej);
        r.end();
      });
      const hs = http.createServer((q, s) => s.end('h1'));
      await new Promise((r) => hs.listen(0, '127.0.0.1', r));
      hs.unref();
      const agent = new http.Agent({ keepAlive: true });
      agent.createConnection = createConnection;
      const h1 = await new Promise((res) => http.get({ host: '127.0.0.1', port: hs.address().port, agent }, (r) => {
        let b = '';
        r.on('data', (c) => (b += c));
        r.on('end', () => res(b));
      }));
      console.log(await get('/'), h1);
      // main returns: the session, its server side and the agent's idle socket are still open.
    });
    console.log('exited start');
  `;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', program], { cwd: root, encoding: 'utf8', timeout: 30_000, env: process.env });
  t.is(r.stderr, '');
  t.is(r.stdout, 'h2 h1\nexited start\n');
  t.is(r.status, 0);
});
