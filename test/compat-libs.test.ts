/**
 * The libraries Node users bring, on ringio sockets with one line of setup each, on the driver under
 * test: fastify, express and koa servers (node:http fed with toDuplex), a ws server and a ws client
 * (createConnection), socket.io, and undici's Client and Pool (connector()), over plain TCP and TLS. The
 * clients of the server tests are node:http over ringio's createConnection, so both ends run on ringio.
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { connect, connector, createConnection } from '@ringio/compat';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { Server as IoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import { Client, Pool } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { serve } from './compat-helpers.js';
import { guard, randomBytes, rtTest, run, sha256, testCertificate } from './helpers.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** node:http's client over ringio sockets: an Agent whose createConnection is ringio's. */
function ringioAgent(opts: http.AgentOptions = {}): http.Agent {
  const agent = new http.Agent({ keepAlive: true, ...opts });
  agent.createConnection = createConnection as never;
  return agent;
}

function request(agent: http.Agent, port: number, method: string, path: string, body?: Buffer | string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

rtTest('fastify on ringio sockets: JSON routes, a 4 MiB body echoed, 404s, 200 keep-alive requests on 4 connections', async (t) => {
  await run(async () => {
    const app = Fastify({ bodyLimit: 16 * 1024 * 1024 });
    app.get('/hello/:name', async (req) => ({ hello: (req.params as { name: string }).name }));
    app.post('/sum', async (req) => ({ sum: (req.body as number[]).reduce((a, b) => a + b, 0) }));
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.post('/echo', async (req, reply) => reply.type('application/octet-stream').send(req.body));
    await app.ready();
    const srv = await serve(app.server);
    let connections = 0;
    app.server.on('connection', () => connections++);
    const agent = ringioAgent({ maxSockets: 4 });
    try {
      const r = await request(agent, srv.port, 'GET', '/hello/ringio');
      t.is(r.status, 200);
      t.deepEqual(JSON.parse(r.body.toString()), { hello: 'ringio' });
      const sum = await request(agent, srv.port, 'POST', '/sum', JSON.stringify([1, 2, 3, 4]), { 'content-type': 'application/json' });
      t.deepEqual(JSON.parse(sum.body.toString()), { sum: 10 });
      t.is((await request(agent, srv.port, 'GET', '/nope')).status, 404);
      const src = randomBytes(4 * 1024 * 1024);
      const echo = await request(agent, srv.port, 'POST', '/echo', src, { 'content-type': 'application/octet-stream' });
      t.is(echo.status, 200);
      t.is(sha256(echo.body), sha256(src));
      const many = await Promise.all(Array.from({ length: 200 }, (_, i) => request(agent, srv.port, 'GET', `/hello/${i}`)));
      t.deepEqual(
        many.map((m) => JSON.parse(m.body.toString()).hello),
        Array.from({ length: 200 }, (_, i) => String(i)),
      );
      t.true(connections <= 4, `${connections} connections for maxSockets 4`);
    } finally {
      agent.destroy();
      await srv.close();
      await app.close();
    }
  });
});

rtTest('express on ringio sockets: routing, middleware, a streamed 2 MiB response, a 2 MiB JSON body', async (t) => {
  await run(async () => {
    const app = express();
    app.use(express.json({ limit: '8mb' }));
    app.use((req, res, next) => {
      res.setHeader('x-seen-by', 'middleware');
      next();
    });
    app.get('/user/:id', (req, res) => res.json({ id: req.params.id }));
    app.post('/count', (req, res) => res.json({ n: (req.body as { items: unknown[] }).items.length }));
    const big = randomBytes(2 * 1024 * 1024);
    app.get('/big', (_req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      for (let i = 0; i < big.length; i += 100_000) res.write(big.subarray(i, i + 100_000));
      res.end();
    });
    const server = http.createServer(app);
    const srv = await serve(server);
    const agent = ringioAgent();
    try {
      const u = await request(agent, srv.port, 'GET', '/user/42');
      t.is(u.status, 200);
      t.is(u.headers['x-seen-by'], 'middleware');
      t.deepEqual(JSON.parse(u.body.toString()), { id: '42' });
      const items = Array.from({ length: 100_000 }, (_, i) => ({ i, s: 'xxxxxxxx' }));
      const c = await request(agent, srv.port, 'POST', '/count', JSON.stringify({ items }), { 'content-type': 'application/json' });
      t.deepEqual(JSON.parse(c.body.toString()), { n: 100_000 });
      const b = await request(agent, srv.port, 'GET', '/big');
      t.is(b.headers['transfer-encoding'], 'chunked');
      t.is(sha256(b.body), sha256(big));
    } finally {
      agent.destroy();
      await srv.close();
    }
  });
});

rtTest('koa on ringio sockets: middleware chain and a body', async (t) => {
  await run(async () => {
    const app = new Koa();
    app.use(async (ctx, next) => {
      await next();
      ctx.set('x-took', 'measured');
    });
    app.use((ctx) => {
      ctx.body = { path: ctx.path, method: ctx.method };
    });
    const srv = await serve(http.createServer(app.callback()));
    const agent = ringioAgent();
    try {
      const r = await request(agent, srv.port, 'GET', '/a/b');
      t.is(r.status, 200);
      t.is(r.headers['x-took'], 'measured');
      t.deepEqual(JSON.parse(r.body.toString()), { path: '/a/b', method: 'GET' });
    } finally {
      agent.destroy();
      await srv.close();
    }
  });
});

rtTest('ws: a ws server on ringio sockets and a ws client with createConnection; 500 messages and 1 MiB binary echoed', async (t) => {
  await run(async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    const srv = await serve(server);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/chat`, { createConnection: createConnection as never });
      await guard(once(ws, 'open'), 5000, 'the WebSocket open');
      const got: string[] = [];
      const done500 = new Promise<void>((resolve) =>
        ws.on('message', (data, isBinary) => {
          if (isBinary) return;
          got.push(String(data));
          if (got.length === 500) resolve();
        }),
      );
      for (let i = 0; i < 500; i++) ws.send(`message ${i}`);
      await guard(done500, 10_000, '500 echoes');
      t.deepEqual(got, Array.from({ length: 500 }, (_, i) => `message ${i}`));
      const bin = randomBytes(1024 * 1024);
      const back = new Promise<Buffer>((resolve) => ws.on('message', (data, isBinary) => isBinary && resolve(data as Buffer)));
      ws.send(bin);
      t.is(sha256(await guard(back, 10_000, 'the binary echo')), sha256(bin));
      ws.close(1000, 'bye');
      const [code, reason] = (await guard(once(ws, 'close'), 5000, 'the close handshake')) as [number, Buffer];
      t.is(code, 1000);
      t.is(String(reason), 'bye');
    } finally {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await srv.close();
    }
  });
});

rtTest('socket.io on ringio sockets, with a websocket client on ringio sockets: events and acknowledgements', async (t) => {
  await run(async () => {
    const server = http.createServer();
    const ioServer = new IoServer(server, { transports: ['websocket'] });
    ioServer.on('connection', (sock) => {
      sock.on('add', (a: number, b: number, ack: (n: number) => void) => ack(a + b));
      sock.on('shout', (text: string) => sock.emit('echo', text.toUpperCase()));
    });
    const srv = await serve(server);
    let ringioSockets = 0;
    const agent = ringioAgent();
    agent.createConnection = ((opts: never, cb: never) => {
      ringioSockets++;
      return createConnection(opts, cb);
    }) as never;
    // engine.io-client hands `agent` to ws, which connects through it.
    const client = ioClient(`http://127.0.0.1:${srv.port}`, { transports: ['websocket'], reconnection: false, agent: agent as never });
    try {
      await guard(new Promise((resolve) => client.once('connect', () => resolve(undefined))), 5000, 'the socket.io connect');
      const sum = await guard(client.timeout(5000).emitWithAck('add', 2, 3), 6000, 'the ack');
      t.is(sum, 5);
      const echoed = new Promise<string>((resolve) => client.once('echo', resolve));
      client.emit('shout', 'hello');
      t.is(await guard(echoed, 5000, 'the echo'), 'HELLO');
      t.is(ringioSockets, 1, 'the client connected over a ringio socket');
    } finally {
      client.close();
      agent.destroy();
      ioServer.close();
      await srv.close();
    }
  });
});

rtTest("undici's Client and Pool with connector(): 100 requests over a Pool of 4 connections, a 1 MiB body, and a refused origin", async (t) => {
  let connections = 0;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => res.end(parts.length > 0 ? Buffer.concat(parts) : `got ${req.url}`));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    await run(async () => {
      const client = new Client(origin, { connect: connector() });
      const one = await client.request({ path: '/one', method: 'GET' });
      t.is(one.statusCode, 200);
      t.is(await one.body.text(), 'got /one');
      const body = randomBytes(1024 * 1024);
      const echo = await client.request({ path: '/echo', method: 'POST', body });
      t.is(sha256(Buffer.from(await echo.body.arrayBuffer())), sha256(body));
      await client.close();

      connections = 0;
      const pool = new Pool(origin, { connections: 4, connect: connector() });
      const texts = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => (await pool.request({ path: `/${i}`, method: 'GET' })).body.text()),
      );
      t.deepEqual(texts, Array.from({ length: 100 }, (_, i) => `got /${i}`));
      t.true(connections >= 1 && connections <= 4, `${connections} connections for connections: 4`);
      await pool.close();

      const dead = new Client('http://127.0.0.1:1', { connect: connector() });
      const err = (await dead.request({ path: '/', method: 'GET' }).catch((e: unknown) => e)) as NodeJS.ErrnoException & { address?: string; port?: number };
      t.is(err.code, 'ECONNREFUSED');
      t.is(err.message, 'connect ECONNREFUSED 127.0.0.1:1');
      t.is(err.address, '127.0.0.1');
      t.is(err.port, 1);
      await dead.close();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

const pem = testCertificate();

rtTest("undici over TLS with connector({ tls }): an https origin verified against the test CA", async (t) => {
  if ('missing' in pem) {
    t.log(`skipped: ${pem.missing}`);
    t.pass();
    return;
  }
  const server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => res.end(`secure ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `https://localhost:${(server.address() as net.AddressInfo).port}`;
  try {
    await run(async () => {
      const client = new Client(origin, { connect: connector({ tls: { ca: pem.cert } }) });
      const res = await client.request({ path: '/x', method: 'GET' });
      t.is(await res.body.text(), 'secure /x');
      await client.close();
      // Without the CA the certificate is refused.
      const strict = new Client(origin, { connect: connector() });
      const err = (await strict.request({ path: '/', method: 'GET' }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
      t.is(err.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
      await strict.close();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

rtTest("node:https's client through an https.Agent whose createConnection is tls.connect over ringio's createConnection", async (t) => {
  if ('missing' in pem) {
    t.log(`skipped: ${pem.missing}`);
    t.pass();
    return;
  }
  let connections = 0;
  const server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => res.end(`secure ${req.url}`));
  server.on('secureConnection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await run(async () => {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 2, ca: pem.cert });
      let ringioSockets = 0;
      agent.createConnection = ((opts: tls.ConnectionOptions & net.NetConnectOpts) => {
        ringioSockets++;
        return tls.connect({ ...opts, socket: createConnection(opts as never) });
      }) as never;
      const get = (i: number): Promise<string> =>
        new Promise((resolve, reject) => {
          https
            .get({ host: 'localhost', port, path: `/${i}`, agent }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (body += c));
              res.on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      const bodies = await guard(Promise.all(Array.from({ length: 10 }, (_, i) => get(i))), 20_000, '10 https requests');
      t.deepEqual(bodies, Array.from({ length: 10 }, (_, i) => `secure /${i}`));
      t.is(ringioSockets, 2);
      t.is(connections, 2, 'maxSockets: 2');
      agent.destroy();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

// connect is the same function as createConnection.
rtTest('connect and createConnection are the same function', (t) => {
  t.is(connect, createConnection);
});
