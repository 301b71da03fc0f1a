/**
 * @ringio/http's client against nginx and node:http servers: keep-alive reuse, chunked and
 * Content-Length bodies both ways, streamed uploads with backpressure, HEAD/204/304, the retry of an
 * idempotent request on a pooled connection the server closed, an idle close noticed, abort by signal,
 * timeouts, Unix-socket origins, an upgrade, maxConnections, and malformed responses.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { HttpClient, request, serve, type ClientResponse } from '@ringio/http';
import { sleep } from '@ringio/runtime';
import { fdCount, fdsBackTo, rejectionOf, rtTest, run, tempDir } from './helpers.js';
import { clientTest, has } from './http-util.js';

const MiB = 1024 * 1024;
const { dir, tmp } = tempDir('ringio-http-client-');

/** A node:http server on a port or a Unix path (started and stopped outside the runtime). */
async function nodeServer(handler: http.RequestListener, opts: { path?: string; keepAliveTimeout?: number } = {}): Promise<{ url: string; server: http.Server; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const server = http.createServer(handler);
  if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (opts.path) server.listen(opts.path);
  else server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const a = server.address();
  const url = typeof a === 'string' ? 'http://localhost' : `http://127.0.0.1:${a!.port}`;
  return {
    url,
    server,
    sockets,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

const nodeRoutes: http.RequestListener = (req, res) => {
  const u = new URL(req.url!, 'http://x');
  if (u.pathname === '/hello') return res.end('hello world\n');
  if (u.pathname === '/sha') {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    req.on('end', () => res.end(`${n} ${h.digest('hex')} ${req.headers['transfer-encoding'] ?? 'cl:' + req.headers['content-length']}`));
    return;
  }
  if (u.pathname === '/chunks') {
    const n = Number(u.searchParams.get('n') ?? 100);
    let i = 0;
    const more = (): void => {
      while (i < n) {
        if (!res.write(Buffer.alloc(1000, i++ % 256))) return void res.once('drain', more);
      }
      res.end();
    };
    return more();
  }
  if (u.pathname === '/status') {
    res.statusCode = Number(u.searchParams.get('s'));
    return res.end();
  }
  if (u.pathname === '/slow') {
    return setTimeout(() => res.end('slow'), Number(u.searchParams.get('ms') ?? 1000));
  }
  if (u.pathname === '/headers') return res.end(JSON.stringify(req.headers));
  res.statusCode = 404;
  res.end('nope');
};

rtTest('http client: node:http server, keep-alive reuse, bodies both ways', async (t) => {
  const srv = await nodeServer(nodeRoutes);
  try {
    await clientTest(t, async (c) => {
      let r = await c.request(`${srv.url}/hello`);
      t.is(r.status, 200);
      t.is(r.statusText, 'OK');
      t.is(r.httpVersion, '1.1');
      t.is(r.headers.get('content-length'), '12');
      t.is(await r.text(), 'hello world\n');
      for (let i = 0; i < 20; i++) t.is(await (await c.request(`${srv.url}/hello`)).text(), 'hello world\n');
      t.is(srv.sockets.size, 1, 'twenty-one requests on one connection');
      // Chunked download, read piece by piece.
      r = await c.request(`${srv.url}/chunks?n=3000`);
      t.is(r.headers.get('transfer-encoding'), 'chunked');
      let n = 0;
      for await (const piece of r.body) n += piece.length;
      t.is(n, 3_000_000);
      // Uploads: a Buffer (Content-Length), a string, and an async iterable (chunked, with backpressure).
      const big = Buffer.alloc(5 * MiB, 3);
      r = await c.request(`${srv.url}/sha`, { method: 'POST', body: big });
      t.is(await r.text(), `${big.length} ${createHash('sha256').update(big).digest('hex')} cl:${big.length}`);
      r = await c.request(`${srv.url}/sha`, { method: 'PUT', body: 'héllo' });
      t.is(await r.text(), `6 ${createHash('sha256').update('héllo').digest('hex')} cl:6`);
      let produced = 0;
      async function* gen(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 200; i++) {
          produced++;
          yield Buffer.alloc(64 * 1024, i);
        }
      }
      const expect = createHash('sha256');
      for (let i = 0; i < 200; i++) expect.update(Buffer.alloc(64 * 1024, i));
      r = await c.request(`${srv.url}/sha`, { method: 'POST', body: gen() });
      t.is(await r.text(), `${200 * 64 * 1024} ${expect.digest('hex')} chunked`);
      t.is(produced, 200);
      // Bodiless responses.
      for (const s of [204, 304]) {
        r = await c.request(`${srv.url}/status?s=${s}`);
        t.is(r.status, s);
        t.is((await r.bytes()).length, 0);
      }
      r = await c.request(`${srv.url}/hello`, { method: 'HEAD' });
      t.is(r.status, 200);
      t.is((await r.bytes()).length, 0);
      // Headers go out as given, Host is added.
      r = await c.request(`${srv.url}/headers`, { headers: { 'x-one': '1', 'X-Two': ['a', 'b'] } });
      const seen = (await r.json()) as Record<string, string>;
      t.is(seen['x-one'], '1');
      t.is(seen['x-two'], 'a, b');
      t.is(seen.host, srv.url.slice('http://'.length));
      t.is(srv.sockets.size, 1, 'still one connection');
    });
  } finally {
    await srv.close();
  }
});

rtTest('http client: a pooled connection the server closed is retried once (idempotent), noticed when idle', async (t) => {
  // A server that answers the first request of a connection and drops the connection at its second
  // (the pooled connection died as the request came: nothing answered); in 'close-after' mode it answers
  // one request per connection without saying so, then closes.
  let conns = 0;
  let mode: 'drop-second' | 'close-after' = 'drop-second';
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const raw = net.createServer((s) => {
    conns++;
    let n = 0;
    s.on('data', () => {
      n++;
      if (mode === 'close-after') s.end(ok);
      else if (n === 1) s.write(ok);
      else s.destroy();
    });
    s.on('error', () => {});
  });
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  const url = `http://127.0.0.1:${(raw.address() as net.AddressInfo).port}/`;
  try {
    await clientTest(t, async (c) => {
      t.is(await (await c.request(url)).text(), 'ok');
      // The pooled connection is dead by now: the GET is retried on a new one.
      t.is(await (await c.request(url)).text(), 'ok');
      t.is(conns, 2);
      // A POST is not retried.
      const e = await rejectionOf(t, c.request(url, { method: 'POST', body: 'x' }).then((r) => r.text()));
      t.true(['ERR_RINGIO_UNEXPECTED_EOF', 'ECONNRESET', 'EPIPE'].includes(e.code!), e.code);
      t.is(conns, 2);
      // Left idle, a closed connection is noticed and dropped: the next request connects afresh.
      mode = 'close-after';
      t.is(await (await c.request(url)).text(), 'ok');
      await sleep(400);
      const before = conns;
      t.is(await (await c.request(url)).text(), 'ok');
      t.is(conns, before + 1);
    }, { keepAliveTimeout: 2000 });
  } finally {
    raw.close();
  }
});

rtTest('http client: signal aborts, headersTimeout, connect refused, malformed responses', async (t) => {
  const srv = await nodeServer(nodeRoutes);
  const bad = net.createServer((s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'));
    s.on('error', () => {});
  });
  bad.listen(0, '127.0.0.1');
  await once(bad, 'listening');
  try {
    await clientTest(t, async (c) => {
      const ctl = new AbortController();
      const p = c.request(`${srv.url}/slow?ms=5000`, { signal: ctl.signal });
      setTimeout(() => ctl.abort(new Error('enough')), 50);
      const e = await rejectionOf(t, p);
      t.is(e.name, 'AbortError');
      // Aborting after the head arrived fails the body read.
      const ctl2 = new AbortController();
      const r2 = await c.request(`${srv.url}/chunks?n=100000`, { signal: ctl2.signal });
      t.truthy(await r2.body.read());
      ctl2.abort();
      const be = await rejectionOf(t, r2.bytes());
      t.is(be.name, 'AbortError');
      const already = await rejectionOf(t, c.request(`${srv.url}/hello`, { signal: AbortSignal.abort() }));
      t.is(already.name, 'AbortError');
      // The client still works afterwards.
      t.is(await (await c.request(`${srv.url}/hello`)).text(), 'hello world\n');
      const slow = new HttpClient({ headersTimeout: 200 });
      try {
        const te = await rejectionOf(t, slow.request(`${srv.url}/slow?ms=3000`));
        t.is(te.code, 'ERR_RINGIO_TIMEOUT');
      } finally {
        await slow.close();
      }
      const refused = await rejectionOf(t, c.request('http://127.0.0.1:1/'));
      t.is(refused.code, 'ECONNREFUSED');
      const pe = await rejectionOf(t, c.request(`http://127.0.0.1:${(bad.address() as net.AddressInfo).port}/`));
      t.is(pe.code, 'ERR_RINGIO_HTTP_PARSE');
      await t.throwsAsync(c.request('ftp://example.com/'), { instanceOf: TypeError });
      await t.throwsAsync(c.request(`${srv.url}/`, { method: 'GE T' }), { instanceOf: TypeError });
      await t.throwsAsync(c.request(`${srv.url}/`, { headers: { 'x-bad': 'a\r\nInjected: 1' } }), { instanceOf: TypeError });
      t.throws(() => new HttpClient({ maxConnections: 0 }), { instanceOf: RangeError, message: /maxConnections/ });
      t.throws(() => new HttpClient({ bogus: 1 } as never), { instanceOf: TypeError, message: /bogus/ });
    });
  } finally {
    bad.close();
    await srv.close();
  }
});

rtTest('http client: maxConnections queues requests; Unix-socket origins; request() default client', async (t) => {
  const path = tmp('node.sock');
  const srv = await nodeServer(nodeRoutes, { path });
  const tcp = await nodeServer(nodeRoutes);
  try {
    await clientTest(t, async (c) => {
      const rs = await Promise.all(Array.from({ length: 40 }, () => c.request('http://localhost/hello', { socketPath: path }).then((r) => r.text())));
      t.true(rs.every((b) => b === 'hello world\n'));
      t.true(srv.sockets.size <= 3, `at most maxConnections (${srv.sockets.size})`);
      const r: ClientResponse = await request(`${tcp.url}/hello`);
      t.is(await r.text(), 'hello world\n');
    }, { maxConnections: 3 });
  } finally {
    await srv.close();
    await tcp.close();
  }
});

rtTest('http client: the last piece of a Content-Length body stays intact while the next request runs', async (t) => {
  // Regression: the connection went back to its pool as the last piece was returned, so the next
  // request reused it and read its response head into the buffer that piece points into.
  const bodies = ['A'.repeat(300), 'B'.repeat(300)];
  let n = 0;
  const srv = await nodeServer((_req, res) => {
    const b = bodies[n++ % 2]!;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': b.length });
    res.end(b);
  });
  try {
    await clientTest(t, async (c) => {
      const first = await c.request(`${srv.url}/a`);
      let last: Uint8Array | null = null;
      let got = 0;
      while (!first.body.done) {
        last = await first.body.read();
        got += last?.length ?? 0;
      }
      t.is(got, 300);
      t.truthy(last);
      const seen = Buffer.from(last!).toString('latin1');
      // The next request, while the first response's last piece is still held.
      const second = await c.request(`${srv.url}/b`);
      t.is(await second.text(), bodies[1]);
      t.is(Buffer.from(last!).toString('latin1'), seen, 'the held piece was overwritten');
      t.true(seen.split('').every((ch) => ch === 'A'));
      t.is(await first.body.read(), null); // the end: the first connection goes back to the pool now
      const third = await c.request(`${srv.url}/c`);
      t.is(await third.text(), bodies[0]);
      t.true(srv.sockets.size <= 2, `connections reused (${srv.sockets.size} opened)`);
    }, { maxConnections: 2 });
  } finally {
    await srv.close();
  }
});

rtTest('http client: upgrade hands over the stream', async (t) => {
  const srv = http.createServer((_req, res) => res.end('no'));
  srv.on('upgrade', (req, socket: net.Socket, head) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\nfirst`);
    if (head.length) socket.write(head);
    socket.on('data', (d) => socket.write(d.toString().toUpperCase()));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    await clientTest(t, async (c) => {
      const r = await c.request(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`, { upgrade: 'echo' });
      t.is(r.status, 101);
      t.truthy(r.stream);
      let got = r.head!.toString();
      await r.stream!.writeAll(Buffer.from('hi'));
      const buf = Buffer.alloc(64);
      while (got.length < 'firstHI'.length) {
        const [n] = await r.stream!.read(buf);
        got += buf.toString('latin1', 0, n);
      }
      t.is(got, 'firstHI');
      await r.stream!.close();
    });
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});

rtTest('http client: nginx as the server', async (t) => {
  if (!has('nginx')) {
    t.log('skipped: nginx is not installed (.ci/run installs it)');
    t.pass();
    return;
  }
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const file = Buffer.alloc(3 * MiB + 11, 'n');
  writeFileSync(`${dir}/big.bin`, file);
  const conf = tmp('nginx.conf');
  writeFileSync(conf, `worker_processes 1; daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  keepalive_requests 10000;
  server { listen 127.0.0.1:${port}; root ${dir};
    location = /hello { default_type text/plain; return 200 "hello world\\n"; }
    location = /gone { return 404; } } }\n`);
  const nginx: ChildProcess = spawnChild('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  // If this worker is ended (a timeout), nginx must not outlive it.
  const reap = (): void => void nginx.kill('SIGKILL');
  process.once('exit', reap);
  try {
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await clientTest(t, async (c) => {
      const base = `http://127.0.0.1:${port}`;
      const rs = await Promise.all(Array.from({ length: 200 }, () => c.request(`${base}/hello`).then((r) => r.text())));
      t.true(rs.every((b) => b === 'hello world\n'));
      const r = await c.request(`${base}/big.bin`);
      t.is(r.headers.get('content-length'), String(file.length));
      t.true((await r.bytes()).equals(file));
      const g = await c.request(`${base}/gone`);
      t.is(g.status, 404);
      await g.bytes();
    });
  } finally {
    process.removeListener('exit', reap);
    nginx.kill('SIGTERM');
    await once(nginx, 'exit');
  }
});

rtTest('http client: 1 GiB streamed up to an echoing ringio server and back at once, flat memory', async (t) => {
  const GiB = 1024 * MiB;
  const before = fdCount();
  await run(async () => {
    const s = await serve({ port: 0, maxBodySize: Infinity }, async (req, res) => {
      res.writeHead(200);
      for await (const chunk of req.body) await res.write(chunk);
      await res.end();
    });
    const c = new HttpClient();
    try {
      const rss0 = process.memoryUsage().rss;
      let peak = rss0;
      const piece = Buffer.alloc(MiB, 5);
      async function* up(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 1024; i++) {
          if ((i & 63) === 0) peak = Math.max(peak, process.memoryUsage().rss);
          yield piece;
        }
      }
      // The server echoes while it reads: the response streams back while the upload is still going.
      const r = await c.request(`http://127.0.0.1:${(s.address as { port: number }).port}/`, { method: 'POST', body: up() });
      t.is(r.headers.get('transfer-encoding'), 'chunked');
      let n = 0;
      for await (const chunk of r.body) {
        n += chunk.length;
        if ((n & (64 * MiB - 1)) < chunk.length) peak = Math.max(peak, process.memoryUsage().rss);
      }
      t.is(n, GiB);
      const grew = (peak - rss0) / MiB;
      t.log(`rss grew ${grew.toFixed(0)} MiB`);
      t.true(grew < 256, `memory stayed flat (grew ${grew.toFixed(0)} MiB)`);
      // The connection went back to the pool once both directions ended.
      t.is(await (await c.request(`http://127.0.0.1:${(s.address as { port: number }).port}/`, { method: 'POST', body: 'x' })).text(), 'x');
      t.is(s.stats().connections, 1);
    } finally {
      await c.close();
      await s.closeAll();
    }
  }, 170_000);
  t.true((await fdsBackTo(before)) <= before, 'no fd left behind');
}, 180_000);
