/**
 * @ringio/http's server against real clients: curl (GET, chunked upload and download, HEAD), ab -k,
 * wrk, h2load --h1 (16-deep pipelining), node:http's client and undici; the WHATWG fetch handler; a
 * WebSocket over req.upgrade() handled by the ws package; 1,000 concurrent keep-alive connections; a
 * 1 GiB streamed upload and download with flat memory; Unix-socket serving; graceful close().
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { ExecutionContext } from 'ava';
import { Pool } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { toDuplex } from '@ringio/compat';
import { serve, type Handler, type HttpServer, type ServeOptions } from '@ringio/http';
import { UnixListener } from '@ringio/net';
import { fdCount, fdsBackTo, rtTest, run, tempDir } from './helpers.js';
import { exec, has } from './http-util.js';

const MiB = 1024 * 1024;
const { tmp } = tempDir('ringio-http-');

/** A handler with a few routes the tests share. */
const routes: Handler = async (req, res) => {
  switch (req.url) {
    case '/hello':
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('hello world\n');
    case '/echo': {
      // Streams the request body back, chunked, with its sha256 in a header of a second request.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for await (const chunk of req.body) await res.write(chunk);
      return res.end();
    }
    case '/sha': {
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of req.body) {
        h.update(chunk);
        n += chunk.length;
      }
      return res.end(`${n} ${h.digest('hex')}`);
    }
    case '/chunks': {
      res.writeHead(200);
      for (let i = 0; i < 100; i++) await res.write(`line ${i}\n`);
      return res.end();
    }
    default:
      res.writeHead(404);
      return res.end('not found\n');
  }
};

async function withServer(t: ExecutionContext, opts: Partial<ServeOptions>, handler: Handler, fn: (port: number, s: HttpServer) => Promise<void>, ms = 60_000): Promise<void> {
  const before = fdCount();
  await run(async () => {
    const s = await serve({ port: 0, ...opts }, handler);
    try {
      await fn(typeof s.address === 'string' ? 0 : s.address.port, s);
      await s.close();
    } finally {
      await s.closeAll();
    }
  }, ms);
  t.true((await fdsBackTo(before)) <= before, 'no fd left behind');
}

function skipWithout(t: ExecutionContext, tool: string): boolean {
  if (has(tool)) return false;
  t.log(`skipped: ${tool} is not installed (.ci/run installs it)`);
  t.pass();
  return true;
}

rtTest('http server: curl GET, HEAD, chunked download and chunked upload', async (t) => {
  if (skipWithout(t, 'curl')) return;
  await withServer(t, {}, routes, async (port) => {
    const base = `http://127.0.0.1:${port}`;
    let r = await exec('curl', ['-s', '-i', `${base}/hello`]);
    t.regex(r.out, /^HTTP\/1\.1 200 OK\r\n/);
    t.regex(r.out, /\r\nContent-Length: 12\r\n/);
    t.true(r.out.endsWith('\r\n\r\nhello world\n'));
    r = await exec('curl', ['-s', '-I', `${base}/hello`]);
    t.regex(r.out, /Content-Length: 12/);
    r = await exec('curl', ['-s', '-i', `${base}/chunks`]);
    t.regex(r.out, /Transfer-Encoding: chunked/);
    t.is(r.out.split('\r\n\r\n')[1], Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
    const payload = Buffer.alloc(3 * MiB + 7, 'z');
    r = await exec('curl', ['-s', '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `${base}/sha`], { input: payload });
    t.is(r.out, `${payload.length} ${createHash('sha256').update(payload).digest('hex')}`);
    r = await exec('curl', ['-s', '--data-binary', '@-', `${base}/echo`], { input: payload });
    t.is(r.out.length, payload.length);
    r = await exec('curl', ['-s', '-w', '%{http_code}:%{num_connects} ', '-o', '/dev/null', `${base}/nope`, '-o', '/dev/null', `${base}/hello`]);
    t.is(r.out, '404:1 200:0 ', 'two requests on one keep-alive connection');
  });
});

rtTest('http server: ab -k, wrk and h2load --h1 (pipelined) get only 200s', async (t) => {
  const missing = ['ab', 'wrk', 'h2load'].filter((c) => !has(c));
  if (missing.length === 3) {
    t.log(`skipped: ${missing.join(', ')} not installed (.ci/run installs them)`);
    t.pass();
    return;
  }
  if (missing.length > 0) t.log(`not installed, not run: ${missing.join(', ')}`);
  await withServer(t, {}, routes, async (port, s) => {
    const url = `http://127.0.0.1:${port}/hello`;
    if (has('ab')) {
      const r = await exec('ab', ['-k', '-n', '2000', '-c', '16', url]);
      t.regex(r.out, /Complete requests:\s+2000/);
      t.regex(r.out, /Failed requests:\s+0/);
      t.regex(r.out, /Keep-Alive requests:\s+2000/);
    }
    if (has('wrk')) {
      const r = await exec('wrk', ['-t1', '-c32', '-d1s', url]);
      t.regex(r.out, /\d+ requests in/);
      t.notRegex(r.out, /Non-2xx|Socket errors/, r.out);
    }
    if (has('h2load')) {
      const r = await exec('h2load', ['--h1', '-n', '4000', '-c', '8', '-m', '16', url]);
      t.regex(r.out, /requests: 4000 total, 4000 started, 4000 done, 4000 succeeded, 0 failed, 0 errored/, r.out);
      t.regex(r.out, /status codes: 4000 2xx/);
    }
    t.true(s.stats().requests > 0);
  });
});

rtTest('http server: node:http client and undici (request, stream upload, pipelining)', async (t) => {
  await withServer(t, {}, routes, async (port) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const get = (path: string, method = 'GET', body?: Buffer): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString('latin1'), headers: res.headers }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => get(i % 2 ? '/hello' : '/nope')));
    t.deepEqual(all.map((r) => r.status), Array.from({ length: 50 }, (_, i) => (i % 2 ? 200 : 404)));
    const big = Buffer.alloc(2 * MiB, 'q');
    const echoed = await get('/echo', 'POST', big);
    t.is(echoed.body.length, big.length);
    t.is(echoed.headers['transfer-encoding'], 'chunked');
    agent.destroy();

    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 2, pipelining: 8 });
    try {
      const rs = await Promise.all(
        Array.from({ length: 64 }, async () => {
          const r = await pool.request({ path: '/hello', method: 'GET' });
          return [r.statusCode, await r.body.text()] as const;
        }),
      );
      t.true(rs.every(([st, b]) => st === 200 && b === 'hello world\n'));
      async function* gen(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 64; i++) yield Buffer.alloc(16 * 1024, i);
      }
      const r = await pool.request({ path: '/sha', method: 'POST', body: gen() as never });
      const expect = createHash('sha256');
      for (let i = 0; i < 64; i++) expect.update(Buffer.alloc(16 * 1024, i));
      t.is(await r.body.text(), `${64 * 16 * 1024} ${expect.digest('hex')}`);
    } finally {
      await pool.close();
    }
  });
});

rtTest('http server: the WHATWG fetch handler', async (t) => {
  const before = fdCount();
  await run(async () => {
    const s = await serve({ port: 0 }, {
      async fetch(request: Request) {
        const u = new URL(request.url);
        if (request.method === 'POST') return new Response(`${request.headers.get('x-a')} ${(await request.text()).length}`, { status: 201 });
        if (u.pathname === '/stream') {
          return new Response(new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('a'));
              c.enqueue(new TextEncoder().encode('b'));
              c.close();
            },
          }));
        }
        return new Response('hi', { headers: { 'x-path': u.pathname + u.search } });
      },
    });
    const port = (s.address as { port: number }).port;
    try {
      let r = await fetch(`http://127.0.0.1:${port}/x?y=1`);
      t.is(r.status, 200);
      t.is(r.headers.get('x-path'), '/x?y=1');
      t.is(r.headers.get('content-length'), '2');
      t.is(await r.text(), 'hi');
      r = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'z'.repeat(100_000), headers: { 'x-a': 'v' } });
      t.is(r.status, 201);
      t.is(await r.text(), 'v 100000');
      r = await fetch(`http://127.0.0.1:${port}/stream`);
      t.is(r.headers.get('transfer-encoding'), 'chunked');
      t.is(await r.text(), 'ab');
    } finally {
      await s.closeAll();
    }
  });
  t.true((await fdsBackTo(before)) <= before, 'no fd left behind');
});

rtTest('http server: req.upgrade() to a WebSocket handled by ws (over toDuplex)', async (t) => {
  await withServer(t, {}, async (req, res) => {
    if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') return res.writeHead(426).end('upgrade required');
    const { stream, head } = await req.upgrade();
    const wss = new WebSocketServer({ noServer: true });
    const nodeReq = { method: req.method, url: req.url, headers: req.headers.toObject() } as unknown as http.IncomingMessage;
    const socket = toDuplex(stream);
    await new Promise<void>((resolve) => {
      wss.handleUpgrade(nodeReq, socket as never, head, (ws) => {
        ws.on('message', (m, isBinary) => ws.send(isBinary ? m : `echo ${String(m)}`));
        ws.on('close', () => resolve());
      });
    });
    wss.close();
  }, async (port) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => {
        ws.send('one');
        ws.send('two');
      });
      ws.on('message', (m) => {
        got.push(String(m));
        if (got.length === 2) ws.close();
      });
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    t.deepEqual(got, ['echo one', 'echo two']);
  });
});

rtTest('http server: 1,000 concurrent keep-alive connections', async (t) => {
  let inFlight = 0;
  let peak = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => (release = r));
  await withServer(t, { keepAliveTimeout: 60_000 }, async (_req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    if (inFlight === 1000) release();
    await all;
    inFlight--;
    await res.end('ok');
  }, async (port, s) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1000, maxFreeSockets: 1000 });
    const one = (): Promise<string> =>
      new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let b = '';
          res.setEncoding('utf8').on('data', (d) => (b += d)).on('end', () => resolve(b));
        }).on('error', reject);
      });
    let bodies: string[];
    try {
      bodies = await Promise.all(Array.from({ length: 1000 }, one));
    } catch (e) {
      agent.destroy();
      throw e;
    }
    t.true(bodies.every((b) => b === 'ok'));
    t.is(peak, 1000, 'all 1,000 requests were in the handler at once');
    t.is(s.stats().connections, 1000);
    // A second round reuses the 1,000 connections.
    inFlight = 0;
    try {
      const again = await Promise.all(Array.from({ length: 1000 }, one));
      t.true(again.every((b) => b === 'ok'));
      t.is(s.stats().connections, 1000);
    } finally {
      agent.destroy();
    }
  }, 120_000);
}, 180_000);

rtTest('http server: 1 GiB streamed up and down with flat memory', async (t) => {
  const GiB = 1024 * MiB;
  await withServer(t, { maxBodySize: Infinity }, routes, async (port) => {
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    try {
      // Upload through node:http's client: 1 GiB in 1 MiB pieces, echoed back and counted.
      const piece = Buffer.alloc(MiB, 7);
      const echoed = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/echo', method: 'POST' }, (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => (n += d.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        });
        req.on('error', reject);
        let sent = 0;
        const pump = (): void => {
          while (sent < GiB) {
            sent += piece.length;
            if (!req.write(piece)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      t.is(echoed, GiB);
    } finally {
      clearInterval(sample);
    }
    const grew = (peakRss - rssBefore) / MiB;
    t.log(`rss grew ${grew.toFixed(0)} MiB while 1 GiB went up and back`);
    t.true(grew < 256, `memory stayed flat (grew ${grew.toFixed(0)} MiB)`);
  }, 170_000);
}, 180_000);

rtTest('http server: a Unix socket, an existing listener, and close() finishing a request in progress', async (t) => {
  const path = tmp('http.sock');
  const before = fdCount();
  await run(async () => {
    const s = await serve({ path }, routes);
    t.is(s.address, path);
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ socketPath: path, path: '/hello' }, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (d) => (b += d)).on('end', () => resolve(b));
      }).on('error', reject);
    });
    t.is(body, 'hello world\n');
    await s.close();

    const l = await UnixListener.bind(tmp('given.sock'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    const s2 = await serve({ listener: l }, async (_req, res) => {
      entered();
      await gate;
      await res.end('late');
    });
    const reply = new Promise<{ body: string; conn: string | undefined }>((resolve, reject) => {
      http.get({ socketPath: l.localAddr, path: '/' }, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (d) => (b += d)).on('end', () => resolve({ body: b, conn: res.headers.connection }));
      }).on('error', reject);
    });
    await inHandler;
    const closing = s2.close();
    release();
    const r = await reply;
    t.is(r.body, 'late', 'the request in progress finished');
    t.is(r.conn, 'close');
    await closing;
    t.is(s2.stats().connections, 0);
  });
  t.true((await fdsBackTo(before)) <= before, 'no fd left behind');
});
