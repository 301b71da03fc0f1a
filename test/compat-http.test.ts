/**
 * @ringio/compat with node:http on the driver under test: an http.Server that never listens serves
 * ringio TcpStreams through toDuplex (server.emit('connection', duplex)), and node:http's client talks to
 * it over node:net. A GET, 100 keep-alive requests on one connection, pipelined requests, a 16 MiB POST
 * echoed and checksummed, and clients that abort mid-body (FIN and RST), each ending with no fd, op or
 * Duplex left behind.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { toDuplex, type SocketDuplex } from '@ringio/compat';
import { TcpListener, TcpStream } from '@ringio/net';
import { sleep, spawn, stats } from '@ringio/runtime';
import { fdCount, fdsBackTo, guard, randomBytes, rtTest, run, sha256 } from './helpers.js';

const MiB = 1024 * 1024;

interface RingioHttp {
  port: number;
  server: http.Server;
  /** Every Duplex the server was given, in accept order. */
  duplexes: SocketDuplex[];
  /** Closes the listener, destroys what is still open and waits until every Duplex has closed. */
  close(): Promise<void>;
}

/** node:http on a ringio listener: each accepted TcpStream goes to the server as a Duplex. */
async function ringioHttp(handler: http.RequestListener, opts: http.ServerOptions = {}): Promise<RingioHttp> {
  const l = await TcpListener.bind('127.0.0.1:0');
  const server = http.createServer(opts, handler);
  const duplexes: SocketDuplex[] = [];
  const accepting = spawn(async () => {
    for await (const [stream] of l) {
      const d = toDuplex(stream);
      duplexes.push(d);
      server.emit('connection', d);
    }
  });
  return {
    port: l.localAddr.port,
    server,
    duplexes,
    async close() {
      await l.close();
      await accepting;
      for (const d of duplexes) d.destroy();
      await Promise.all(duplexes.map((d) => (d.closed ? undefined : once(d, 'close'))));
    },
  };
}

function closeOf(d: SocketDuplex): Promise<unknown> {
  return d.closed ? Promise.resolve() : once(d, 'close');
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reused: boolean;
  clientPort: number;
}

/** One request with node:http's client; `body` is written in random-sized chunks. */
function request(opts: http.RequestOptions, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', ...opts }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(parts),
          reused: req.reusedSocket,
          clientPort: req.socket!.localPort!,
        }),
      );
    });
    req.on('error', reject);
    if (body === undefined) {
      req.end();
      return;
    }
    let off = 0;
    const pump = (): void => {
      while (off < body.length) {
        const n = Math.min(body.length - off, 1 + ((Math.random() * 256 * 1024) | 0));
        const more = req.write(body.subarray(off, off + n));
        off += n;
        if (!more) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

const hello: http.RequestListener = (req, res) => {
  const s = req.socket;
  res.writeHead(200, {
    'content-type': 'text/plain',
    'x-peer': `${s.remoteAddress}:${s.remotePort}`,
    'x-local': `${s.localAddress}:${s.localPort} ${s.localFamily} ${s.remoteFamily}`,
  });
  res.end('hello world\n');
};

rtTest('node:http over toDuplex: a GET gets its status, headers and body, and the server sees the peer', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const srv = await ringioHttp(hello);
    const r = await guard(request({ port: srv.port, path: '/hello', agent: false }), 10_000, 'GET');
    t.is(r.status, 200);
    t.is(r.headers['content-type'], 'text/plain');
    t.is(r.body.toString(), 'hello world\n');
    t.is(r.headers['x-peer'], `127.0.0.1:${r.clientPort}`, 'req.socket.remoteAddress/remotePort come from the TcpStream');
    t.is(r.headers['x-local'], `127.0.0.1:${srv.port} IPv4 IPv4`);
    t.is(srv.duplexes.length, 1);
    const d = srv.duplexes[0]!;
    // agent: false sends Connection: close, so the server ends and closes the connection by itself.
    if (!d.closed) await guard(once(d, 'close'), 5000, 'the server closes the connection');
    t.true(d.bytesRead > 0 && d.bytesWritten > 0);
    await srv.close();
    t.is(stats().opsInFlight, 0);
    t.is(await fdsBackTo(fds0), fds0, 'no fd left open');
  });
});

rtTest('node:http over toDuplex: 100 keep-alive requests share one connection', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const srv = await ringioHttp((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`you asked for ${req.url}`);
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let reused = 0;
    for (let i = 0; i < 100; i++) {
      const r = await guard(request({ port: srv.port, path: `/n/${i}`, agent }), 10_000, `request ${i}`);
      t.is(r.status, 200);
      if (r.body.toString() !== `you asked for /n/${i}`) t.fail(`request ${i} got '${r.body.toString()}'`);
      if (r.reused) reused++;
    }
    t.is(reused, 99, 'every request after the first reused the connection');
    t.is(srv.duplexes.length, 1, 'the server accepted one connection');
    t.false(srv.duplexes[0]!.destroyed, 'the connection is still open between requests');
    agent.destroy();
    await guard(once(srv.duplexes[0]!, 'close'), 5000, 'the server sees the client close');
    await srv.close();
    t.is(stats().opsInFlight, 0);
    t.is(await fdsBackTo(fds0), fds0);
  });
});

rtTest('node:http over toDuplex: 20 pipelined requests in one write are answered in order', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const srv = await ringioHttp((req, res) => {
      // Answer after a random delay, so order comes from node:http's queue, not from timing.
      setTimeout(() => {
        res.setHeader('content-type', 'text/plain');
        res.end(`<${req.url}>`);
      }, Math.random() * 5);
    });
    const N = 20;
    let wire = '';
    for (let i = 0; i < N; i++) {
      wire += `GET /p/${i} HTTP/1.1\r\nHost: x\r\n${i === N - 1 ? 'Connection: close\r\n' : ''}\r\n`;
    }
    const c = net.connect(srv.port, '127.0.0.1');
    await once(c, 'connect');
    // One segment. No half-close: node:http aborts the requests it has not answered when the client
    // ends (httpAllowHalfOpen is false), on net.Socket as here.
    c.write(wire);
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    await guard(once(c, 'end'), 10_000, 'all responses');
    c.destroy();
    const text = Buffer.concat(parts).toString('latin1');
    const bodies = [...text.matchAll(/\r\n\r\n<([^>]*)>/g)].map((m) => m[1]);
    t.deepEqual(
      bodies,
      Array.from({ length: N }, (_, i) => `/p/${i}`),
    );
    t.is(text.split('HTTP/1.1 200 OK').length - 1, N);
    t.is(srv.duplexes.length, 1);
    await srv.close();
    t.is(stats().opsInFlight, 0);
    t.is(await fdsBackTo(fds0), fds0);
  });
});

rtTest('node:http over toDuplex: a 16 MiB POST is echoed back byte-exact (sha256)', async (t) => {
  await run(async () => {
    const fds0 = fdCount();
    const srv = await ringioHttp((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      pipeline(req, res).catch((e: unknown) => t.fail(`server pipeline: ${String(e)}`));
    });
    const body = randomBytes(16 * MiB);
    const r = await guard(
      request({ port: srv.port, method: 'POST', path: '/echo', agent: false, headers: { 'content-length': body.length } }, body),
      60_000,
      '16 MiB echo',
    );
    t.is(r.status, 200);
    t.is(r.body.length, body.length);
    t.is(sha256(r.body), sha256(body));
    const d = srv.duplexes[0]!;
    t.true(d.bytesRead > body.length, 'the server read the body (and the headers)');
    t.true(d.bytesWritten > body.length, 'the server wrote the body back (and the headers)');
    await srv.close();
    t.is(stats().opsInFlight, 0);
    t.is(await fdsBackTo(fds0), fds0);
  }, 60_000);
}, 90_000);

for (const how of ['closes (FIN)', 'resets (RST)'] as const) {
  rtTest(`node:http over toDuplex: a client that ${how} mid-body: the request is aborted and nothing leaks`, async (t) => {
    await run(async () => {
      const fds0 = fdCount();
      let received = 0;
      const seen: string[] = [];
      let settled!: () => void;
      const requestDone = new Promise<void>((resolve) => (settled = resolve));
      const srv = await ringioHttp((req, res) => {
        req.on('data', (c: Buffer) => (received += c.length));
        req.on('aborted', () => seen.push('aborted'));
        req.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.code ?? e.message}`));
        req.on('close', () => {
          seen.push(`close complete=${req.complete}`);
          settled();
        });
        res.on('close', () => seen.push('res close'));
      });
      const c = net.connect(srv.port, '127.0.0.1');
      await once(c, 'connect');
      c.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${16 * MiB}\r\n\r\n`);
      c.write(randomBytes(MiB));
      const until = performance.now() + 10_000;
      while (received < MiB && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
      t.is(received, MiB, 'the server got the first MiB of the body');
      if (how === 'resets (RST)') c.resetAndDestroy();
      else c.destroy();
      await guard(requestDone, 10_000, "the request's close");
      t.true(seen.includes('aborted'), `the request was aborted (saw ${seen.join(', ')})`);
      t.true(seen.includes('close complete=false'), `the request closed incomplete (saw ${seen.join(', ')})`);
      const d = srv.duplexes[0]!;
      if (!d.closed) await guard(once(d, 'close'), 5000, 'the server-side Duplex closes by itself');
      t.true(d.destroyed);
      await srv.close();
      t.is(stats().opsInFlight, 0, 'no op left in flight');
      t.is(await fdsBackTo(fds0), fds0, 'no fd left open');
    });
  });
}

rtTest("node:http over toDuplex: keepAliveTimeout closes an idle connection through the Duplex's setTimeout", async (t) => {
  await run(async () => {
    const srv = await ringioHttp(hello);
    srv.server.keepAliveTimeout = 100; // node:http arms socket.setTimeout(100 + 1000) after each response
    // A raw client that keeps the connection (node's Agent would drop it itself on 'Keep-Alive: timeout=0').
    const c = net.connect(srv.port, '127.0.0.1');
    await once(c, 'connect');
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    const ended = once(c, 'end');
    // hello answers chunked: the response is complete at the last chunk.
    while (!Buffer.concat(parts).toString('latin1').endsWith('\r\n0\r\n\r\n')) await sleep(1);
    const t0 = performance.now();
    const d = srv.duplexes[0]!;
    t.is(d.timeout, 1100);
    await guard(once(d, 'close'), 5000, 'the idle connection is closed');
    const ms = performance.now() - t0;
    t.true(ms >= 1000 && ms < 3000, `closed after ${ms.toFixed(0)} ms`);
    await guard(ended, 5000, 'the client sees the close');
    c.destroy();
    await srv.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest("node:http over toDuplex: after emit('listening'), headersTimeout answers 408 and closeIdleConnections works", async (t) => {
  await run(async () => {
    const srv = await ringioHttp(hello, { headersTimeout: 300, requestTimeout: 600, connectionsCheckingInterval: 50 });
    // http.Server starts tracking connections (timeouts, closeIdleConnections) on 'listening'.
    srv.server.emit('listening');
    const slow = net.connect(srv.port, '127.0.0.1');
    await once(slow, 'connect');
    slow.write('GET / HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    const parts: Buffer[] = [];
    slow.on('data', (b: Buffer) => parts.push(b));
    await guard(once(slow, 'end'), 5000, 'the server gives up on the headers');
    t.regex(Buffer.concat(parts).toString('latin1'), /^HTTP\/1\.1 408 /);
    slow.destroy();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.is((await guard(request({ port: srv.port, path: '/', agent }), 10_000, 'GET')).status, 200);
    const idle = srv.duplexes[1]!;
    t.false(idle.destroyed);
    srv.server.closeIdleConnections();
    await guard(once(idle, 'close'), 5000, 'closeIdleConnections closes the idle keep-alive connection');
    agent.destroy();
    await srv.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest("node:http over toDuplex: an 'upgrade' hands the Duplex to the handler, which then speaks its own protocol", async (t) => {
  await run(async () => {
    const srv = await ringioHttp(hello);
    srv.server.on('upgrade', (req, socket, head) => {
      t.is(socket, srv.duplexes[0], "'upgrade' gets the Duplex itself");
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      if (head.length > 0) socket.write(head);
      socket.pipe(socket); // from now on: a raw echo
    });
    const c = net.connect(srv.port, '127.0.0.1');
    await once(c, 'connect');
    c.write('GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bytes|');
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    const payload = randomBytes(MiB);
    c.end(payload);
    await guard(once(c, 'end'), 10_000, 'the echo ends');
    const all = Buffer.concat(parts);
    const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n';
    t.is(all.subarray(0, head.length).toString('latin1'), head);
    t.is(all.subarray(head.length, head.length + 12).toString('latin1'), 'early bytes|');
    t.true(all.subarray(head.length + 12).equals(payload), 'the bytes after the upgrade are echoed byte-exact');
    c.destroy();
    await srv.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest("node:http's client over toDuplex (createConnection): requests to a node:http server", async (t) => {
  await run(async () => {
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => res.end(`${req.method} ${req.url} ${sha256(Buffer.concat(parts))}`));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    // One request on a connection of its own: the request option.
    const one = toDuplex(await TcpStream.connect({ host: '127.0.0.1', port }));
    const r0 = await guard(request({ port, path: '/one', createConnection: () => one }), 10_000, 'GET with createConnection');
    t.is(r0.body.toString(), `GET /one ${sha256()}`);
    t.true(one.bytesWritten > 0, 'the request went through the Duplex');
    await guard(closeOf(one), 5000, 'a request without an agent closes its connection');
    // Keep-alive: an Agent whose connection is the Duplex.
    const d = toDuplex(await TcpStream.connect({ host: '127.0.0.1', port }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // The Agent asks for a connection once; it then keeps the socket for the following requests.
    (agent as unknown as { createConnection: () => SocketDuplex }).createConnection = () => d;
    const body = randomBytes(3 * MiB);
    for (let i = 0; i < 5; i++) {
      const r = await guard(request({ port, method: 'POST', path: `/up/${i}`, agent }, body), 20_000, `POST ${i}`);
      t.is(r.body.toString(), `POST /up/${i} ${sha256(body)}`);
    }
    t.true(d.bytesWritten > 5 * body.length, 'all five went through the one Duplex');
    agent.destroy();
    await guard(closeOf(d), 5000, 'the Duplex closes with the agent');
    server.close();
    await once(server, 'close');
    t.is(stats().opsInFlight, 0);
  });
});
