/**
 * ringio-proxy with protocol = "http": routing by host and path (404 when nothing matches), hop-by-hop
 * removal and Forwarded headers both ways, chunked and 64 MiB bodies both ways, upstream down (502) and
 * slow (504), an upstream that closes idle pooled connections while requests flow (0 failures), a
 * smuggling attempt (Content-Length with Transfer-Encoding) refused before the upstream, and a reload that
 * keeps the upstream pool. Also: Via, a client leaving before the upstream's answer (cancelled upstream),
 * a table of smuggling attempts as raw bytes, 64 concurrent 64 KiB responses while idle pooled
 * connections are watched, a WebSocket session that SIGTERM's drain waits for, pipelined requests answered
 * in order, clients that close mid-response, small responses of every length relayed exact over one pooled
 * connection. The proxy runs as a child process on the driver under test; upstreams and
 * clients are node:http / node:net in the test process.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { exec, has } from './http-util.js';
import { freePort, proxyTest, readBytes, runProxy, startProxy, tempDir, type ProxyProc } from './proxy-helpers.js';

interface Up {
  server: http.Server;
  port: number;
  url: string;
  requests: number;
  connections: number;
  lastHeaders: http.IncomingHttpHeaders;
  close(): Promise<void>;
}

/** A node:http upstream that answers with `handler`; counts requests and TCP connections. */
async function httpUpstream(handler: (req: http.IncomingMessage, res: http.ServerResponse, up: Up) => void, opts: http.ServerOptions & { keepAliveTimeout?: number } = {}): Promise<Up> {
  const up: Up = { server: undefined as unknown as http.Server, port: 0, url: '', requests: 0, connections: 0, lastHeaders: {}, close: async () => {} };
  const server = http.createServer(opts, (req, res) => {
    up.requests++;
    up.lastHeaders = req.headers;
    handler(req, res, up);
  });
  if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    up.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.server = server;
  up.port = (server.address() as net.AddressInfo).port;
  up.url = `http://127.0.0.1:${up.port}`;
  up.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return up;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | AsyncIterable<Buffer>; agent?: http.Agent | false } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const b = opts.body;
    if (b === undefined) req.end();
    else if (Buffer.isBuffer(b)) req.end(b);
    else
      void (async () => {
        try {
          for await (const c of b) if (!req.write(c)) await new Promise((r) => req.once('drain', r));
          req.end();
        } catch (e) {
          req.destroy(e as Error);
        }
      })();
  });
}

function httpConfig(dir: ReturnType<typeof tempDir>, port: number, routes: string, extra = ''): string {
  return dir.file(
    'proxy.toml',
    `[servers.web]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n${extra}\n${routes}`,
  );
}

function route(path: string, urls: string[], host?: string): string {
  return `[[servers.web.routes]]\n${host ? `host = "${host}"\n` : ''}path = "${path}"\nupstreams = [${urls.map((u) => `{ url = "${u}" }`).join(', ')}]\n`;
}

async function withProxy(t: ExecutionContext, file: string, fn: (p: ProxyProc) => Promise<void>): Promise<void> {
  const p = await startProxy(file);
  try {
    await fn(p);
  } finally {
    const { code } = await p.stop();
    t.is(code, 0, p.stderr);
  }
}

proxyTest('http: routes by host and longest path prefix; no match is a 404', async (t) => {
  const a = await httpUpstream((req, res) => res.end(`A ${req.url}`));
  const b = await httpUpstream((req, res) => res.end(`B ${req.url}`));
  const d = tempDir();
  const port = await freePort();
  const file = httpConfig(d, port, route('/a/', [a.url]) + route('/a/long/', [b.url]) + route('/b/', [b.url]) + route('/', [b.url], 'h.test'));
  try {
    await withProxy(t, file, async () => {
      const body = async (path: string, host?: string) => {
        const r = await get(port, path, host ? { headers: { host } } : {});
        return `${r.status} ${r.body.toString()}`;
      };
      t.is(await body('/a/1?q=2'), '200 A /a/1?q=2');
      t.is(await body('/a/long/x'), '200 B /a/long/x');
      t.is(await body('/b/'), '200 B /b/');
      t.is(await body('/c'), '404 no route\n');
      t.is(await body('/a'), '404 no route\n'); // a prefix, not a segment match: "/a" is not under "/a/"
      t.is(await body('/c', 'H.TEST:8080'), '200 B /c'); // host is case-insensitive, its port ignored
      t.is(await body('/a/1', 'h.test'), '200 A /a/1'); // the longer host-less prefix wins
      t.is(await body('/a/../c'), '404 no route\n'); // routed on the normalized path the upstream would see
      t.is(await body('/c', 'other.test'), '404 no route\n');
    });
  } finally {
    await a.close();
    await b.close();
    d.cleanup();
  }
});

proxyTest('http: hop-by-hop fields are removed both ways, Forwarded and X-Forwarded-* added, Host passed through', async (t) => {
  const up = await httpUpstream((req, res) => {
    res.setHeader('Connection', 'x-resp-hop');
    res.setHeader('X-Resp-Hop', '1');
    res.setHeader('Keep-Alive', 'timeout=5');
    res.setHeader('Proxy-Authenticate', 'Basic');
    res.setHeader('Upgrade', 'foo');
    res.setHeader('Trailer', 'x-t');
    res.setHeader('X-Keep', 'yes');
    res.end(JSON.stringify(req.headers));
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      const r = await get(port, '/h', {
        agent: false,
        headers: {
          host: 'app.test:81',
          connection: 'keep-alive, X-Req-Hop',
          'x-req-hop': '1',
          'keep-alive': '300',
          te: 'trailers',
          'proxy-connection': 'keep-alive',
          'proxy-authorization': 'Basic eDp5',
          'x-forwarded-for': '10.0.0.1',
          forwarded: 'for=10.0.0.1',
          'x-forwarded-proto': 'https',
          'x-end-to-end': 'kept',
        },
      });
      t.is(r.status, 200);
      const seen = JSON.parse(r.body.toString()) as Record<string, string>;
      for (const h of ['x-req-hop', 'keep-alive', 'te', 'proxy-connection', 'proxy-authorization', 'upgrade', 'transfer-encoding']) t.false(h in seen, `${h} reached the upstream`);
      t.not(seen.connection?.toLowerCase().includes('x-req-hop'), true);
      t.is(seen.host, 'app.test:81');
      t.is(seen['x-end-to-end'], 'kept');
      t.is(seen['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
      t.is(seen.forwarded, 'for=10.0.0.1, for=127.0.0.1;proto=http;host="app.test:81"');
      t.is(seen['x-forwarded-proto'], 'http');
      t.is(seen['x-forwarded-host'], 'app.test:81');
      for (const h of ['x-resp-hop', 'keep-alive', 'proxy-authenticate', 'upgrade', 'trailer']) t.false(h in r.headers, `${h} reached the client`);
      t.is(r.headers['x-keep'], 'yes');
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: Forwarded fields follow each request (Host changes, a client X-Forwarded-For, then none again)', async (t) => {
  const up = await httpUpstream((req, res) => res.end(JSON.stringify(req.headers)));
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      const seen = async (headers: Record<string, string>): Promise<Record<string, string>> => {
        const r = await get(port, '/f', { headers });
        t.is(r.status, 200);
        return JSON.parse(r.body.toString()) as Record<string, string>;
      };
      for (const host of ['a.test', 'a.test', 'b.test:8080', 'a.test']) {
        const h = await seen({ host });
        t.is(h.forwarded, `for=127.0.0.1;proto=http;host="${host}"`);
        t.is(h['x-forwarded-host'], host);
        t.is(h['x-forwarded-for'], '127.0.0.1');
      }
      const own = await seen({ host: 'a.test', 'x-forwarded-for': '10.1.2.3' });
      t.is(own['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
      const again = await seen({ host: 'a.test' });
      t.is(again['x-forwarded-for'], '127.0.0.1');
      t.is(again.forwarded, 'for=127.0.0.1;proto=http;host="a.test"');
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

function sha(): { update(b: Buffer): void; hex(): string } {
  const h = createHash('sha256');
  return { update: (b) => h.update(b), hex: () => h.digest('hex') };
}

async function* pattern(total: number, piece: number, into: { update(b: Buffer): void }): AsyncIterable<Buffer> {
  let sent = 0;
  let i = 0;
  while (sent < total) {
    const n = Math.min(piece, total - sent);
    const b = Buffer.alloc(n, (i++ * 31) & 0xff);
    b.writeUInt32LE(i, 0);
    into.update(b);
    sent += n;
    yield b;
  }
}

proxyTest('http: 64 MiB bodies stream both ways, chunked and with Content-Length', async (t) => {
  const SIZE = 64 << 20;
  // echo: the request body streamed back (chunked, since node does not know the length)
  const up = await httpUpstream((req, res) => {
    if (req.url === '/download') {
      res.setHeader('content-length', String(SIZE));
      const h = sha();
      void (async () => {
        for await (const c of pattern(SIZE, 65536, h)) if (!res.write(c)) await new Promise((r) => res.once('drain', r));
        res.end();
        (up as Up & { sent?: string }).sent = h.hex();
      })();
      return;
    }
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
      if (!res.write(c)) {
        req.pause();
        res.once('drain', () => req.resume());
      }
    });
    req.on('end', () => res.end());
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      // chunked upload, chunked echo
      const sent = sha();
      const r = await get(port, '/echo', { method: 'POST', body: pattern(SIZE, 100_000, sent) });
      t.is(r.status, 200);
      t.is(r.body.length, SIZE);
      t.is(createHash('sha256').update(r.body).digest('hex'), sent.hex());
      t.is(up.lastHeaders['transfer-encoding'], 'chunked');
      // Content-Length upload: passed on with its length, not re-chunked
      const body = Buffer.alloc(8 << 20, 7);
      const r2 = await get(port, '/echo', { method: 'PUT', body, headers: { 'content-length': String(body.length) } });
      t.is(r2.status, 200);
      t.is(up.lastHeaders['content-length'], String(body.length));
      t.true(r2.body.equals(body));
      // Content-Length download
      const r3 = await get(port, '/download');
      t.is(r3.status, 200);
      t.is(r3.headers['content-length'], String(SIZE));
      t.is(r3.body.length, SIZE);
      t.is(createHash('sha256').update(r3.body).digest('hex'), (up as Up & { sent?: string }).sent!);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
}, 240_000);

proxyTest('http: upstream down is a 502, a slow upstream a 504', async (t) => {
  const slow = await httpUpstream((_req, res) => {
    const timer = setTimeout(() => res.end('late'), 3000);
    res.on('close', () => clearTimeout(timer));
  });
  const dead = await freePort();
  const d = tempDir();
  const port = await freePort();
  const file = httpConfig(d, port, route('/down/', [`http://127.0.0.1:${dead}`]) + route('/slow/', [slow.url]), 'response_timeout = "300ms"');
  try {
    await withProxy(t, file, async () => {
      const r = await get(port, '/down/x');
      t.is(r.status, 502);
      t.regex(r.body.toString(), /ECONNREFUSED/);
      const started = Date.now();
      const s = await get(port, '/slow/x');
      t.is(s.status, 504);
      t.true(Date.now() - started < 2500, 'answered by the proxy, not by the upstream');
      // the proxy still serves after both
      t.is((await get(port, '/down/y')).status, 502);
    });
  } finally {
    await slow.close();
    d.cleanup();
  }
});

proxyTest('http: an upstream that closes idle pooled connections while requests flow: 0 failed idempotent requests', async (t) => {
  // keepAliveTimeout 30 ms: pooled connections die all the time, often just as the proxy reuses them.
  const up = await httpUpstream((req, res) => res.end(`ok ${req.url}`), { keepAliveTimeout: 30 });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      let ok = 0;
      const failures: string[] = [];
      const until = Date.now() + 3000;
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          let i = 0;
          while (Date.now() < until) {
            const path = `/r/${w}/${i++}`;
            try {
              const r = await get(port, path);
              if (r.status !== 200 || r.body.toString() !== `ok ${path}`) failures.push(`${path}: ${r.status} ${r.body}`);
              else ok++;
            } catch (e) {
              failures.push(`${path}: ${(e as Error).message}`);
            }
            // idle gaps around the upstream's keep-alive timeout
            await new Promise((r) => setTimeout(r, (w * 7 + i * 13) % 45));
          }
        }),
      );
      t.deepEqual(failures, []);
      t.true(ok > 100, `only ${ok} requests`);
      t.true(up.connections > 5, `the upstream closed few connections (${up.connections}): the race was not exercised`);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a smuggling attempt (Content-Length with Transfer-Encoding) is refused before the upstream', async (t) => {
  const up = await httpUpstream((_req, res) => res.end('reached'));
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      const s = net.connect({ port, host: '127.0.0.1' });
      await new Promise((r) => s.once('connect', r));
      s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n');
      const got = (await readBytes(s, 1 << 20, 5000)).toString();
      s.destroy();
      t.regex(got, /^HTTP\/1\.1 400 /);
      t.is(got.match(/HTTP\/1\.1/g)?.length, 1, 'one response, then the connection closed');
      t.is(up.requests, 0);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: small responses (0 to 200 bytes, each arriving whole) are relayed byte for byte, all over one pooled upstream connection', async (t) => {
  // The usual small response is ended at once with its body copied from the upstream connection's buffer
  // (forward.endNowBuffered): each length must come back exact (the copy's short and long paths), and
  // the body must be taken once and ended, which puts the upstream connection back in the pool (else
  // the next request would need a new one).
  const bodyOf = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + n) & 255));
  const up = await httpUpstream((req, res) => {
    const b = bodyOf(Number(req.url!.slice(1)));
    res.setHeader('content-length', b.length);
    res.end(b);
  }, { keepAliveTimeout: 120_000 });
  const d = tempDir();
  const port = await freePort();
  const file = httpConfig(d, port, route('/', [up.url]), 'upstream_keepalive = "60s"');
  const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await withProxy(t, file, async () => {
      for (let n = 0; n <= 200; n++) {
        const got = await get(port, `/${n}`, { agent: one });
        t.is(got.status, 200);
        if (!got.body.equals(bodyOf(n))) t.fail(`the body of ${n} bytes differs`);
      }
      t.is(up.requests, 201);
      t.is(up.connections, 1, 'every response freed its upstream connection for the next request');
    });
  } finally {
    one.destroy();
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a reload that keeps a route\'s upstream set keeps its pooled connections', async (t) => {
  // Long keep-alive on both ends: on a loaded machine a reload can take seconds, and an idle pooled
  // connection that expires meanwhile would be replaced for a reason unrelated to the reload.
  const up = await httpUpstream((req, res) => res.end(`ok ${req.url}`), { keepAliveTimeout: 120_000 });
  const other = await httpUpstream((req, res) => res.end(`other ${req.url}`));
  const d = tempDir();
  const port = await freePort();
  const KEEP = 'upstream_keepalive = "60s"';
  const file = httpConfig(d, port, route('/', [up.url]), KEEP);
  try {
    await withProxy(t, file, async (p) => {
      for (let i = 0; i < 5; i++) t.is((await get(port, `/${i}`)).body.toString(), `ok /${i}`);
      t.is(up.connections, 1);
      httpConfig(d, port, route('/', [up.url]) + route('/other/', [other.url]), KEEP);
      p.child.kill('SIGHUP');
      await p.waitFor('reloaded', 20000, (l) => l.generation === 2);
      for (let i = 0; i < 5; i++) t.is((await get(port, `/${i}`)).body.toString(), `ok /${i}`);
      t.is((await get(port, '/other/x')).body.toString(), 'other /other/x');
      t.is(up.connections, 1, 'the pool was carried over: no new upstream connection');
    });
  } finally {
    await up.close();
    await other.close();
    d.cleanup();
  }
});

proxyTest('http: a WebSocket session (ws as client and upstream) passes through after the 101', async (t) => {
  const { WebSocketServer, WebSocket } = await import('ws');
  const up = await httpUpstream((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server: up.server });
  let seenXff = '';
  wss.on('connection', (ws, req) => {
    seenXff = String(req.headers['x-forwarded-for'] ?? '');
    ws.on('message', (m, binary) => ws.send(m, { binary }));
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/ws/', [up.url]) + route('/', [up.url])), async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/chat`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const next = () => new Promise<Buffer>((resolve) => ws.once('message', (m) => resolve(m as Buffer)));
      let got = next();
      ws.send('hello');
      t.is((await got).toString(), 'hello');
      const big = Buffer.alloc(1 << 20, 9);
      got = next();
      ws.send(big);
      t.true((await got).equals(big));
      t.is(seenXff, '127.0.0.1');
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.close(1000);
      t.is(await closed, 1000);
      // the same server still answers plain requests
      t.is((await get(port, '/x')).body.toString(), 'plain');
    });
  } finally {
    wss.close();
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a client that goes away mid-body cancels the upstream request', async (t) => {
  let upstreamClosed: () => void = () => {};
  const closedEarly = new Promise<void>((r) => (upstreamClosed = r));
  const up = await httpUpstream((req, res) => {
    if (req.url === '/x') return void res.setHeader('content-length', '2').end('ok');
    // an endless response, one 64 KiB piece every 5 ms
    const piece = Buffer.alloc(65536, 1);
    const timer = setInterval(() => res.write(piece), 5);
    res.on('close', () => {
      clearInterval(timer);
      if (!res.writableFinished) upstreamClosed();
    });
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/endless', agent: false }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (n > 1 << 20) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      });
      await Promise.race([closedEarly, new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream response was not cancelled within 5 s')), 5000))]);
      t.pass();
      // the proxy still serves
      t.is((await get(port, '/x', { agent: false })).body.toString(), 'ok');
      const head = await get(port, '/x', { agent: false, method: 'HEAD' });
      t.is(head.status, 200);
      t.is(head.headers['content-length'], '2');
      t.is(head.body.length, 0);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a client that half-closes after its request is gone, as for nginx (499): the upstream request is cancelled, the connection closes unanswered (no 500), nothing is logged as an upstream failure', async (t) => {
  let upstreamClosed: () => void = () => {};
  const cancelled = new Promise<void>((r) => (upstreamClosed = r));
  const up = await httpUpstream((req, res) => {
    if (req.url === '/x') return void res.setHeader('content-length', '2').end('ok');
    // /slow: no answer until the proxy gives up on it
    res.on('close', () => {
      if (!res.writableFinished) upstreamClosed();
    });
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async (p) => {
      for (const version of ['1.1', '1.0']) {
        const reply = await new Promise<string>((resolve, reject) => {
          const s = net.connect({ port, host: '127.0.0.1' }, () => s.end(`GET /slow HTTP/${version}\r\nHost: a\r\n\r\n`));
          const parts: Buffer[] = [];
          const timer = setTimeout(() => (s.destroy(), reject(new Error('the proxy did not close within 10 s'))), 10_000);
          s.on('data', (c: Buffer) => parts.push(c));
          s.on('close', () => (clearTimeout(timer), resolve(Buffer.concat(parts).toString('latin1'))));
          s.on('error', () => {});
        });
        t.is(reply, '', `HTTP/${version}: no answer to a client that left (got ${JSON.stringify(reply.slice(0, 40))})`);
      }
      await Promise.race([cancelled, new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream request was not cancelled within 5 s')), 5000))]);
      t.is((await get(port, '/x', { agent: false })).body.toString(), 'ok', 'the proxy still serves');
      t.is(p.count('http_upstream_failed'), 0, 'a client leaving is not an upstream failure');
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: per-route layers: strip prefix, header set/remove both ways, a static response', async (t) => {
  const up = await httpUpstream((req, res) => {
    res.setHeader('x-internal', 'secret');
    res.setHeader('server', 'upstream/1');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const d = tempDir();
  const port = await freePort();
  const routes =
    route('/svc/', [up.url]) +
    'strip_prefix = true\nset_request_headers = { host = "internal.test", "X-Route" = "svc" }\nremove_request_headers = ["cookie"]\n' +
    'set_response_headers = { server = "ringio" }\nremove_response_headers = ["X-Internal"]\n' +
    '[[servers.web.routes]]\npath = "/health"\nresponse = { status = 200, body = "up\\n" }\n' +
    '[[servers.web.routes]]\npath = "/gone/"\nresponse = { status = 410, body = "{}", content_type = "application/json" }\n';
  try {
    await withProxy(t, httpConfig(d, port, routes), async () => {
      const r = await get(port, '/svc/a/b?c=1', { headers: { cookie: 'k=v', 'x-route': 'client', host: 'outer.test' } });
      t.is(r.status, 200);
      const seen = JSON.parse(r.body.toString()) as { url: string; headers: Record<string, string> };
      t.is(seen.url, '/a/b?c=1');
      t.is(seen.headers.host, 'internal.test');
      t.is(seen.headers['x-route'], 'svc');
      t.false('cookie' in seen.headers);
      t.is(seen.headers['x-forwarded-host'], 'outer.test');
      t.is(r.headers.server, 'ringio');
      t.false('x-internal' in r.headers);
      t.is((JSON.parse((await get(port, '/svc/')).body.toString()) as { url: string }).url, '/');
      const h = await get(port, '/health');
      t.is(`${h.status} ${h.headers['content-type']} ${h.body}`, '200 text/plain up\n');
      const g = await get(port, '/gone/x');
      t.is(`${g.status} ${g.headers['content-type']} ${g.body}`, '410 application/json {}');
      t.is(up.requests, 2);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: weighted balance over a route\'s upstreams; a refused connect falls over to the next upstream', async (t) => {
  const a = await httpUpstream((_req, res) => res.end('A'));
  const b = await httpUpstream((_req, res) => res.end('B'));
  const dead = await freePort();
  const d = tempDir();
  const port = await freePort();
  const routes =
    `[[servers.web.routes]]\npath = "/w/"\nbalance = "weighted"\nupstreams = [{ url = "${a.url}", weight = 2 }, { url = "${b.url}", weight = 1 }]\n` +
    `[[servers.web.routes]]\npath = "/f/"\nupstreams = [{ url = "http://127.0.0.1:${dead}" }, { url = "${a.url}" }]\n`;
  try {
    await withProxy(t, httpConfig(d, port, routes), async (p) => {
      const seen: string[] = [];
      for (let i = 0; i < 9; i++) seen.push((await get(port, '/w/x')).body.toString());
      t.is(seen.filter((x) => x === 'A').length, 6, seen.join(''));
      t.is(seen.filter((x) => x === 'B').length, 3, seen.join(''));
      for (let i = 0; i < 4; i++) {
        const r = await get(port, '/f/x');
        t.is(`${r.status} ${r.body}`, '200 A');
      }
      const down = await p.waitFor('upstream_down', 5000);
      t.is(down.upstream, `127.0.0.1:${dead}`);
    });
  } finally {
    await a.close();
    await b.close();
    d.cleanup();
  }
});

proxyTest('http: Forwarded fields are kept per connection (two keep-alive connections from two addresses, interleaved)', async (t) => {
  const up = await httpUpstream((req, res) => res.end(JSON.stringify(req.headers)));
  const d = tempDir();
  const port = await freePort();
  // One connection each, from 127.0.0.1 and 127.0.0.2 (both loopback on Linux).
  const agents = ['127.0.0.1', '127.0.0.2'].map((localAddress) => new http.Agent({ keepAlive: true, maxSockets: 1, localAddress }));
  const ports = new Set<number>();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url]), '[runtime]\nthreads = 1'), async () => {
      const seen = async (i: number, headers: Record<string, string>): Promise<Record<string, string>> => {
        const r = await new Promise<http.IncomingMessage & { text: string }>((resolve, reject) => {
          const q = http.request({ host: '127.0.0.1', port, path: '/k', headers, agent: agents[i] }, (res) => {
            ports.add(res.socket.localPort!);
            let text = '';
            res.setEncoding('latin1');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve(Object.assign(res, { text })));
          });
          q.on('error', reject);
          q.end();
        });
        t.is(r.statusCode, 200);
        return JSON.parse(r.text) as Record<string, string>;
      };
      for (const [i, host, xff] of [
        [0, 'a.test', ''], [1, 'a.test', ''], [0, 'a.test', ''], [1, 'b.test', ''], [0, 'b.test', ''], [0, 'b.test', '10.9.8.7'],
        [1, 'b.test', ''], [0, 'b.test', ''], [1, 'a.test', '10.0.0.2'], [1, 'a.test', ''],
      ] as const) {
        const ip = `127.0.0.${i + 1}`;
        const h = await seen(i, xff === '' ? { host } : { host, 'x-forwarded-for': xff });
        t.is(h.forwarded, `for=${ip};proto=http;host="${host}"`);
        t.is(h['x-forwarded-for'], xff === '' ? ip : `${xff}, ${ip}`);
        t.is(h['x-forwarded-host'], host);
        t.is(h['x-forwarded-proto'], 'http');
      }
      t.is(ports.size, 2); // each agent kept its one connection
    });
  } finally {
    for (const a of agents) a.destroy();
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: Via is added both ways when configured, after the one the client sent', async (t) => {
  const up = await httpUpstream((req, res) => {
    res.setHeader('via', '1.1 origin-cache');
    res.end(String(req.headers.via ?? ''));
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url]), 'via = "edge-1"'), async () => {
      const r = await get(port, '/v', { headers: { via: '1.0 fred' } });
      t.is(r.body.toString(), '1.0 fred, 1.1 edge-1');
      t.is(r.headers.via, '1.1 origin-cache, 1.1 edge-1');
      const plain = await get(port, '/v');
      t.is(plain.body.toString(), '1.1 edge-1');
      // An HTTP/1.0 client's version goes upstream in Via.
      const s = net.connect(port, '127.0.0.1');
      s.write('GET /v HTTP/1.0\r\nHost: x\r\n\r\n'); // the proxy closes after the response
      const chunks: Buffer[] = [];
      for await (const c of s) chunks.push(c as Buffer);
      t.regex(Buffer.concat(chunks).toString('latin1'), /\r\n\r\n1\.0 edge-1$/);
    });
    // Off by default.
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      const r = await get(port, '/v', { agent: false });
      t.is(r.body.toString(), '');
      t.is(r.headers.via, '1.1 origin-cache');
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a client that leaves before the upstream answers cancels the upstream request', async (t) => {
  let upstreamClosed: () => void = () => {};
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const up = await httpUpstream((req, res) => {
    if (req.url === '/x') return void res.end('ok');
    res.on('close', () => upstreamClosed()); // never answers; its connection closing is the cancel
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      const s = net.connect({ port, host: '127.0.0.1' });
      await new Promise((r) => s.once('connect', r));
      s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      while (up.requests === 0) await new Promise((r) => setTimeout(r, 10));
      s.destroy();
      const t0 = Date.now();
      const outcome = await Promise.race([closed.then(() => 'cancelled'), new Promise((r) => setTimeout(() => r('still waiting'), 5000))]);
      t.is(outcome, 'cancelled', 'the upstream request was cancelled');
      t.true(Date.now() - t0 < 5000);
      // The proxy still serves, and a fresh upstream connection carries the next request.
      t.is((await get(port, '/x', { agent: false })).body.toString(), 'ok');
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: smuggling attempts through the proxy are refused and never forwarded', async (t) => {
  let completed = 0;
  const up = await httpUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      completed++;
      res.end('reached');
    });
  });
  const d = tempDir();
  const port = await freePort();
  const attempts: [string, string][] = [
    ['CL + TE', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG'],
    ['TE + CL', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG'],
    ['duplicate CL', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['CL list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!'],
    ['CL sign', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello'],
    ['CL hex', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n'],
    ['space before colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
    ['bare LF', 'GET / HTTP/1.1\nHost: x\n\n'],
    ['bare LF in a field', 'GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n'],
    ['bare CR', 'GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n'],
    ['TE chunked, identity', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['TE identity', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nhello'],
    ['TE xchunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['negative chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n'],
    ['chunk size overflow', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n'],
    ['chunk without CRLF', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n'],
  ];
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      for (const [what, bytes] of attempts) {
        const s = net.connect({ port, host: '127.0.0.1' });
        await new Promise((r) => s.once('connect', r));
        s.write(bytes + 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
        const got = (await readBytes(s, 1 << 20, 5000)).toString('latin1');
        s.destroy();
        t.regex(got, /^HTTP\/1\.1 (4\d\d|501) /, `${what}: refused`);
        t.is(got.match(/HTTP\/1\.1 \d/g)?.length, 1, `${what}: one response, then the connection closed`);
        t.false(got.includes('reached'), `${what}: nothing came back from the upstream`);
      }
      t.is(completed, 0, 'no request of an attempt (nor one smuggled behind it) reached the upstream whole');
      // An honest chunked request still goes through.
      const ok = await get(port, '/fine', { method: 'POST', body: (async function* () { yield Buffer.from('hello'); })() });
      t.is(ok.body.toString(), 'reached');
      t.is(completed, 1);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: 64 clients fetching 64 KiB responses while pooled connections idle and get watched: every body intact', async (t) => {
  const body = Buffer.alloc(65536);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const up = await httpUpstream((_req, res) => {
    res.setHeader('content-length', body.length);
    res.end(body);
  });
  const d = tempDir();
  const port = await freePort();
  // A short keep-alive makes the pool's ticker run every few ms: idle connections get watch reads all the time.
  const file = httpConfig(d, port, route('/', [up.url]), 'upstream_keepalive = "100ms"');
  const many = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    await withProxy(t, file, async () => {
      let ok = 0;
      const bad: string[] = [];
      await Promise.all(
        Array.from({ length: 64 }, async (_, k) => {
          for (let i = 0; i < 25; i++) {
            try {
              const r = await get(port, `/b${k}-${i}`, { agent: many });
              if (r.status === 200 && r.body.equals(body)) ok++;
              else bad.push(`${r.status} ${r.body.length}`);
            } catch (e) {
              bad.push((e as Error).message);
            }
            if (i % 8 === 7) await new Promise((r) => setTimeout(r, 15)); // let connections idle past a tick
          }
        }),
      );
      t.deepEqual(bad, []);
      t.is(ok, 64 * 25);
    });
  } finally {
    many.destroy();
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: an upgraded WebSocket session counts for drain: SIGTERM waits for it, and it still relays meanwhile', async (t) => {
  const { WebSocketServer, WebSocket } = await import('ws');
  const up = await httpUpstream((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server: up.server });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  const d = tempDir();
  const port = await freePort();
  const file = d.file('proxy.toml', `[upgrade]\nsocket = "${d.dir}/up.sock"\ndrain_timeout = "20s"\n[servers.web]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n${route('/', [up.url])}`);
  const p = await startProxy(file);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echo = async (m: string): Promise<string> => {
      const got = new Promise<Buffer>((resolve) => ws.once('message', (x) => resolve(x as Buffer)));
      ws.send(m);
      return (await got).toString();
    };
    t.is(await echo('before'), 'before');
    p.child.kill('SIGTERM');
    await p.waitFor('stopping');
    await new Promise((r) => setTimeout(r, 500));
    t.is(p.child.exitCode, null, 'the proxy waits for the session');
    t.is(await echo('during drain'), 'during drain');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(1000);
    t.is(await closed, 1000);
    const exit = await p.exited;
    t.is(exit.code, 0, p.stderr);
    t.like(p.logs.find((l) => l.event === 'drained'), { forced: 0 });
  } finally {
    await p.stop('SIGKILL');
    wss.close();
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a reload and an --upgrade under wrk load: no failed request, no socket error', async (t) => {
  if (!has('wrk')) {
    t.log('wrk is not installed (apt-get install wrk): skipped');
    t.pass();
    return;
  }
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const d = tempDir();
  const port = await freePort();
  const conf = (extra: string): string =>
    `[upgrade]\nsocket = "${d.dir}/up.sock"\ndrain_timeout = "20s"\n[servers.web]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n${extra}\n${route('/', [up.url])}`;
  const file = d.file('proxy.toml', conf(''));
  const oldP = await startProxy(file);
  let newP: ProxyProc | undefined;
  try {
    const load = exec('wrk', ['-t1', '-c16', '-d8s', `http://127.0.0.1:${port}/`], { ms: 30000 });
    await new Promise((r) => setTimeout(r, 1500));
    d.file('proxy.toml', conf('via = true'));
    oldP.child.kill('SIGHUP');
    await oldP.waitFor('reloaded', 20000, (l) => l.generation === 2);
    await new Promise((r) => setTimeout(r, 1000));
    newP = runProxy(file, ['--upgrade']);
    await newP.waitFor('started', 30000);
    t.is((await oldP.exited).code, 0, oldP.stderr);
    const { out, code } = await load;
    t.is(code, 0, out);
    t.regex(out, /Requests\/sec:/);
    t.notRegex(out, /Non-2xx/, out);
    t.notRegex(out, /Socket errors/, out);
    const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    t.true(total > 100, out);
    t.true(up.requests >= total, `the upstream saw ${up.requests} requests, wrk counted ${total}`);
  } finally {
    await newP?.stop();
    await oldP.stop('SIGKILL');
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: a client that aborts mid-request-body ends the upstream request without a complete body', async (t) => {
  let ended = 0;
  let cut: () => void = () => {};
  let cutP = new Promise<void>((r) => (cut = r));
  const up = await httpUpstream((req, res) => {
    if (req.url === '/x') return void res.end('ok');
    req.on('data', () => {});
    req.on('end', () => {
      ended++;
      res.end('whole');
    });
    req.on('close', () => {
      if (!req.complete) cut();
    });
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      for (const framing of ['Content-Length: 1048576', 'Transfer-Encoding: chunked']) {
        const s = net.connect({ port, host: '127.0.0.1' });
        await new Promise((r) => s.once('connect', r));
        const piece = Buffer.alloc(65536, 7);
        s.write(`POST /up HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n`);
        for (let i = 0; i < 2; i++) s.write(framing.startsWith('Transfer') ? Buffer.concat([Buffer.from('10000\r\n'), piece, Buffer.from('\r\n')]) : piece);
        while (up.requests === 0) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, 100));
        s.destroy();
        const outcome = await Promise.race([cutP.then(() => 'cut'), new Promise((r) => setTimeout(() => r('still open'), 10000))]);
        t.is(outcome, 'cut', `${framing}: the upstream request ended without its body`);
        cutP = new Promise<void>((r) => (cut = r));
        up.requests = 0;
      }
      t.is(ended, 0, 'no upstream request saw a complete body');
      t.is((await get(port, '/x', { agent: false })).body.toString(), 'ok');
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

/** Sends `bytes` on a fresh connection and reads until the proxy closes it (latin1). */
function rawExchange(port: number, bytes: string, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(bytes));
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close after ${ms} ms: ${Buffer.concat(parts).toString('latin1').slice(-300)}`));
    }, ms);
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts).toString('latin1'));
    });
    s.on('error', () => {});
  });
}

/** The responses in a raw reply (Content-Length framed): status and body, in order. */
function responses(text: string): [number, string][] {
  const out: [number, string][] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const head = text.slice(at, end);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    const bodiless = /^HEAD /.test(head) || /\r\nx-was-head: 1/i.test(head);
    out.push([status, bodiless ? '' : text.slice(end + 4, end + 4 + len)]);
    at = end + 4 + (bodiless ? 0 : len);
  }
}

proxyTest('http: pipelined requests through the proxy are answered in order (bodiless ones on the callback path, bodies and HEADs among them)', async (t) => {
  const up = await httpUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = `${req.method} ${req.url} ${Buffer.concat(chunks).length}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...(req.method === 'HEAD' ? { 'x-was-head': '1' } : {}) });
      // Some answers come late, so later requests' answers are ready first upstream-side.
      if (req.url!.endsWith('7')) setTimeout(() => res.end(req.method === 'HEAD' ? undefined : body), 15);
      else res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      let bytes = '';
      const want: [number, string][] = [];
      for (let i = 0; i < 48; i++) {
        if (i % 11 === 5) {
          bytes += `POST /p${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`;
          want.push([200, `POST /p${i} 3`]);
        } else if (i % 13 === 9) {
          bytes += `HEAD /h${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
          want.push([200, '']);
        } else {
          bytes += `GET /g${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
          want.push([200, `GET /g${i} 0`]);
        }
      }
      bytes += 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      want.push([200, 'GET /last 0']);
      t.deepEqual(responses(await rawExchange(port, bytes)), want);
      // The same, one request per write, answered one by one on a single connection.
      const s = net.connect({ port, host: '127.0.0.1' });
      await new Promise((r) => s.once('connect', r));
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (c: string) => (text += c));
      for (let i = 0; i < 20; i++) {
        s.write(`GET /one${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
        for (let k = 0; k < 300 && responses(text).length <= i; k++) await new Promise((r) => setTimeout(r, 5));
      }
      s.destroy();
      t.deepEqual(responses(text).map(([, b]) => b), Array.from({ length: 20 }, (_, i) => `GET /one${i} 0`));
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: clients that close mid-response (answers unread, pipelined) leave the proxy serving and its upstream pool bounded', async (t) => {
  const big = Buffer.alloc(64 * 1024, 'q');
  const up = await httpUpstream((req, res) => {
    if (req.url === '/slow') {
      // The head and part of the body, the rest later: the client is gone by then.
      res.writeHead(200, { 'content-length': String(big.length * 4) });
      res.write(big);
      setTimeout(() => res.end(Buffer.concat([big, big, big])), 100);
      return;
    }
    res.end(req.url === '/big' ? big : 'ok');
  });
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [up.url])), async () => {
      for (let i = 0; i < 6; i++) {
        await new Promise<void>((resolve) => {
          const s = net.connect({ port, host: '127.0.0.1' }, () => {
            let reqs = '';
            for (let j = 0; j < 32; j++) reqs += `GET /${j % 3 === 0 ? 'big' : j % 3 === 1 ? 'small' : 'slow'} HTTP/1.1\r\nHost: x\r\n\r\n`;
            s.write(reqs);
          });
          s.pause();
          s.once('readable', () =>
            setTimeout(() => {
              if (i % 2 === 0) s.resetAndDestroy();
              else s.destroy();
              resolve();
            }, 20),
          );
          s.on('error', () => resolve());
        });
      }
      // Still serving, every byte intact.
      const r = await get(port, '/big', { agent: false });
      t.is(r.status, 200);
      t.true(r.body.equals(big));
      t.is((await get(port, '/small', { agent: false })).body.toString(), 'ok');
      // The upstream connections the proxy opened stay bounded (pooled or closed, none leaked per request).
      t.true(up.connections <= 24, `upstream connections: ${up.connections}`);
    });
  } finally {
    await up.close();
    d.cleanup();
  }
});

proxyTest('http: the upstream request line is the client\'s method and target with HTTP/1.1, whatever minor version the client sent', async (t) => {
  // A raw upstream that records each request line (the proxy copies an HTTP/1.1 line as it came, and
  // writes the others anew).
  const lines: string[] = [];
  const server = net.createServer((s) => {
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        lines.push(buf.slice(0, buf.indexOf('\r\n')));
        buf = buf.slice(end + 4);
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upPort = (server.address() as net.AddressInfo).port;
  const d = tempDir();
  const port = await freePort();
  try {
    await withProxy(t, httpConfig(d, port, route('/', [`http://127.0.0.1:${upPort}`])), async () => {
      const long = `/${'l'.repeat(90)}?q=${'v'.repeat(20)}`;
      const want: string[] = [];
      let bytes = '';
      for (const version of ['1.1', '1.0', '1.9']) {
        for (const [method, target] of [['GET', '/a'], ['DELETE', long], ['OPTIONS', '/o?x=1']] as const) {
          bytes += `${method} ${target} HTTP/${version}\r\nHost: x\r\n${version === '1.0' ? 'Connection: keep-alive\r\n' : ''}\r\n`;
          want.push(`${method} ${target} HTTP/1.1`);
        }
      }
      const text = await rawExchange(port, `${bytes}GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      want.push('GET /last HTTP/1.1');
      t.is(text.match(/HTTP\/1\.1 200 /g)?.length, want.length, text);
      t.deepEqual(lines, want);
    });
  } finally {
    server.close();
    d.cleanup();
  }
});
