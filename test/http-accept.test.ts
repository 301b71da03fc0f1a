/**
 * serve()'s accept path: connections come through listener.acceptEach (no promise made by the listener
 * per connection, in both accept modes), req.remoteAddr is read from the stream on first ask (no
 * getpeername for a handler that never asks) and equals the socket's real peer, it stays readable for a
 * handler whose connection the server closed or that upgraded it, and a connection whose setup throws
 * is closed and reported while the server goes on accepting.
 */
import net from 'node:net';
import { serve, type Handler, type HttpServer, type ServeOptions, type ServerRequest } from '@ringio/http';
import { TcpListener, TcpStream } from '@ringio/net';
import { acceptModes as modes, fdCount, fdsBackTo, guard, promiseCounter, rtTest, run, tempDir, withAcceptMode as withMode } from './helpers.js';
import { raw, statuses } from './http-util.js';

const { tmp } = tempDir('ringio-http-accept-');

/** serve() on a listener bound first, so that the accept mode applies (the listener reads it as serve() starts it). */
async function serveIn(multishot: string | undefined, opts: Omit<ServeOptions, 'listener' | 'port' | 'host'>, handler: Handler): Promise<HttpServer> {
  const listener = await TcpListener.bind('127.0.0.1:0');
  return withMode(multishot, () => serve({ ...opts, listener }, handler));
}

/** Counts reads of TcpStream's peerAddr (each one a getpeername unless the accept gave the address). */
function countPeerReads(): { readonly count: number; restore(): void } {
  const desc = Object.getOwnPropertyDescriptor(TcpStream.prototype, 'peerAddr')!;
  let count = 0;
  Object.defineProperty(TcpStream.prototype, 'peerAddr', {
    configurable: true,
    get(this: TcpStream) {
      count++;
      return desc.get!.call(this);
    },
  });
  return {
    get count() {
      return count;
    },
    restore: () => Object.defineProperty(TcpStream.prototype, 'peerAddr', desc),
  };
}

/** One GET with Connection: close on a fresh node:net socket: the reply and the client's local port. */
function getOnce(port: number, path: string): Promise<{ text: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let localPort = 0;
    sock.on('connect', () => {
      localPort = sock.localPort!;
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (d) => parts.push(d));
    sock.on('close', () => resolve({ text: Buffer.concat(parts).toString('latin1'), localPort }));
    sock.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

const peerHandler: Handler = (req, res) => {
  if (req.url === '/peer') {
    const p = req.remoteAddr;
    res.end(typeof p === 'string' ? `unix:${p}` : `${p.address}:${p.port}`);
  } else res.end('ok');
};

for (const [mode, multishot] of modes) {
  rtTest(`http accept, ${mode}: serve() accepts through acceptEach: 60 connections, no promise from the listener after the first`, async (t) => {
    const fds = fdCount();
    await run(async () => {
      const listener = await TcpListener.bind('127.0.0.1:0');
      const s = withMode(multishot, () => serve({ listener }, peerHandler));
      const server = await s;
      const port = listener.localAddr.port;
      // serve() runs the listener's acceptEach: a second one is refused.
      const second = await listener.acceptEach(() => {}).then(
        () => 'resolved',
        (e: Error) => e.message,
      );
      t.regex(second, /already running/, 'serve() accepts with acceptEach');
      t.is(statuses((await getOnce(port, '/')).text)[0], 200);
      // Promises whose innermost ringio frame is the listener's (accept(), its iterator): none per connection.
      const hook = promiseCounter(/^(?:(?![^\n]*packages\/)[^\n]*\n)*[^\n]*packages\/net\/dist\/listener\.js/, 24);
      hook.enable();
      const N = 60;
      const replies = [];
      for (let i = 0; i < N; i += 10) replies.push(...(await Promise.all(Array.from({ length: 10 }, () => getOnce(port, '/peer')))));
      hook.disable();
      t.is(replies.length, N);
      for (const r of replies) {
        t.is(statuses(r.text)[0], 200);
        t.true(r.text.endsWith(`\r\n\r\n127.0.0.1:${r.localPort}`), `remoteAddr is the client's own address (${r.localPort})`);
      }
      t.is(hook.count, 0, 'the listener makes no promise per connection');
      t.is(server.stats().handlerErrors, 0);
      await server.close();
      t.true(listener.closed, 'close() closes the listener it was given');
    });
    await fdsBackTo(fds, 3000);
  });

  rtTest(`http accept, ${mode}: remoteAddr is read on first ask only, and equals the socket's peer`, async (t) => {
    await run(async () => {
      const peerReads = countPeerReads();
      try {
        const s = await serveIn(multishot, {}, peerHandler);
        const port = (s.address as { port: number }).port;
        for (let i = 0; i < 20; i++) t.is(statuses((await getOnce(port, '/')).text)[0], 200);
        t.is(peerReads.count, 0, 'a handler that never reads remoteAddr costs no peer lookup');
        const r = await getOnce(port, '/peer');
        t.true(r.text.endsWith(`127.0.0.1:${r.localPort}`));
        t.true(peerReads.count <= 1, 'read once');
        // A keep-alive connection: the same peer for every request on it, looked up once.
        const reads0 = peerReads.count;
        const ka = await raw(port, 'GET /peer HTTP/1.1\r\nHost: x\r\n\r\nGET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        const ports = [...ka.text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => m[1]);
        t.is(ports.length, 2);
        t.is(ports[0], ports[1]);
        t.true(peerReads.count - reads0 <= 1, 'one lookup per connection at most');
        await s.close();
      } finally {
        peerReads.restore();
      }
    });
  });

  rtTest(`http accept, ${mode}: a connection whose setup throws is closed and reported; accepting goes on`, async (t) => {
    const fds = fdCount();
    await run(async () => {
      const errors: unknown[] = [];
      const server = await serveIn(multishot, { onError: (e) => void errors.push(e) }, (req, res) => res.end('fine'));
      const port = (server.address as { port: number }).port;
      t.is(statuses((await getOnce(port, '/')).text)[0], 200);
      // The next connection's setup (its read buffer from the server's pool) throws once.
      const internal = server as unknown as { _pool: Buffer[] };
      const pool = internal._pool;
      const boom = new Error('setup failed');
      let armed = true;
      internal._pool = Object.assign([] as Buffer[], pool, {
        pop(): Buffer | undefined {
          if (armed) {
            armed = false;
            throw boom;
          }
          return Array.prototype.pop.call(this) as Buffer | undefined;
        },
      });
      const failed = await getOnce(port, '/');
      t.is(failed.text, '', 'the failed connection is closed without a reply');
      t.is(errors.length, 1);
      t.is(errors[0], boom, 'onError gets what the setup threw');
      t.is(server.stats().handlerErrors, 1, 'counted');
      for (let i = 0; i < 5; i++) t.is(statuses((await getOnce(port, '/')).text)[0], 200, 'later connections are served');
      await server.close();
    });
    await fdsBackTo(fds, 3000);
  });
}

rtTest('http accept: remoteAddr on a Unix socket is the peer\'s name, read lazily', async (t) => {
  await run(async () => {
    const path = tmp('s.sock');
    const server = await serve({ path }, peerHandler);
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(path);
      const parts: Buffer[] = [];
      sock.on('connect', () => sock.write('GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      sock.on('data', (d) => parts.push(d));
      sock.on('close', () => resolve(Buffer.concat(parts).toString('latin1')));
      sock.on('error', reject);
    });
    t.true(reply.endsWith('\r\n\r\nunix:'), 'an unnamed client: the empty path');
    await server.close();
  });
});

rtTest('http accept: remoteAddr stays readable after the server closed the connection under the handler, and after an upgrade', async (t) => {
  await run(async () => {
    let seen: ServerRequest | undefined;
    let inHandler!: () => void;
    const entered = new Promise<void>((r) => (inHandler = r));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let late: unknown;
    const server = await serve({ port: 0, onError: () => {} }, async (req, res) => {
      seen = req;
      inHandler();
      await held;
      late = req.remoteAddr; // the connection was closed by closeAll() meanwhile
      res.end('late');
    });
    const port = (server.address as { port: number }).port;
    const client = getOnce(port, '/slow');
    await guard(entered, 5000, 'the handler runs');
    const closing = server.closeAll();
    await guard(client, 5000, 'the client sees the close');
    release();
    await guard(closing, 5000, 'closeAll');
    const { localPort } = await client;
    t.truthy(seen);
    t.deepEqual(late !== undefined && typeof late === 'object' ? (late as { port: number }).port : undefined, localPort, 'the peer, read after the close');

    const server2 = await serve({ port: 0 }, async (req) => {
      const { stream } = await req.upgrade();
      await stream.close();
      late = req.remoteAddr;
    });
    const port2 = (server2.address as { port: number }).port;
    late = undefined;
    const up = await getOnce(port2, '/up');
    t.is(up.text, '');
    await guard(
      (async () => {
        while (late === undefined) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the upgrade handler ran',
    );
    t.is((late as { port: number }).port, up.localPort, 'the peer, read after the upgraded stream closed');
    await server2.close();
  });
});

rtTest('http accept: remoteAddr read first after the client reset the connection is \'\', not a throw', async (t) => {
  await run(async () => {
    let inHandler!: () => void;
    const entered = new Promise<void>((r) => (inHandler = r));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let late: unknown;
    let threw: unknown;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const server = await serve({ port: 0, onError: () => {} }, async (req, res) => {
      inHandler();
      await held;
      try {
        late = req.remoteAddr; // first ask, after the RST: getpeername says ENOTCONN
      } catch (e) {
        threw = e;
      }
      res.end('late');
      done();
    });
    const port = (server.address as { port: number }).port;
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    let localPort = 0;
    sock.on('connect', () => {
      localPort = sock.localPort!;
      sock.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    await guard(entered, 5000, 'the handler runs');
    sock.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50)); // the RST reaches the server's socket
    release();
    await guard(finished, 5000, 'the handler finished');
    t.is(threw, undefined, 'reading remoteAddr did not throw');
    // '' where the address had to come from getpeername (io_uring's multishot accept brings none); the
    // real peer where the accept itself brought it (epoll's accept4).
    const port0 = late !== null && typeof late === 'object' ? (late as { port: number }).port : undefined;
    t.true(late === '' || port0 === localPort, `a peer gone before anyone asked reads as '' or as itself (${JSON.stringify(late)})`);
    await server.close();
  });
});
