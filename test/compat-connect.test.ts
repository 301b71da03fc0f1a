/**
 * @ringio/compat's connect/createConnection on the driver under test: a Socket returned at once that
 * connects in the background (events, connecting/pending/readyState, writes queued until connected,
 * connect() on a new Socket), node:net's error fields, destroy while connecting, Unix paths, argument
 * checks, node:http's Agent honouring maxSockets, and the quiet-close rule at runtime shutdown.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createConnection, Socket } from '@ringio/compat';
import { TcpListener, UnixListener } from '@ringio/net';
import { sleep, spawn } from '@ringio/runtime';
import test from 'ava';
import { fdCount, fdsBackTo, guard, randomBytes, rt, rtTest, run, sha256, type AnyErr } from './helpers.js';

/** A node:net echo server on 127.0.0.1 (outside the runtime), counting its connections. */
async function netEcho(): Promise<{ port: number; accepted: () => number; close(): Promise<void> }> {
  let n = 0;
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    n++;
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => n,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Collects everything the Duplex emits as 'data' until 'end'. */
function collect(d: NodeJS.ReadableStream, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    d.on('data', (c: Buffer) => {
      parts.push(c);
      got += c.length;
      if (got >= bytes) resolve(Buffer.concat(parts));
    });
    d.on('error', reject);
    d.on('end', () => resolve(Buffer.concat(parts)));
  });
}

/** A port with nothing listening: bound, then closed. */
async function deadPort(): Promise<number> {
  const l = await TcpListener.bind('127.0.0.1:0');
  const port = l.localAddr.port;
  await l.close();
  return port;
}

rtTest('connect returns at once and connects in the background: connecting, pending, readyState, connect then ready', async (t) => {
  const echo = await netEcho();
  const fds0 = fdCount();
  try {
    await run(async () => {
      const events: string[] = [];
      const s = connect(echo.port, '127.0.0.1', () => events.push('cb'));
      t.true(s instanceof Socket);
      t.true(s.connecting);
      t.true(s.pending);
      t.is(s.readyState, 'opening');
      t.is(s.remoteAddress, undefined);
      s.on('connect', () => events.push('connect'));
      s.on('ready', () => events.push('ready'));
      await guard(once(s, 'ready'), 5000, 'ready');
      t.deepEqual(events, ['cb', 'connect', 'ready']);
      t.false(s.connecting);
      t.false(s.pending);
      t.is(s.readyState, 'open');
      t.is(s.remoteAddress, '127.0.0.1');
      t.is(s.remotePort, echo.port);
      t.is(s.remoteFamily, 'IPv4');
      t.is(typeof s.localPort, 'number');
      s.destroy();
      await once(s, 'close');
    });
    t.is(await fdsBackTo(fds0), fds0);
  } finally {
    await echo.close();
  }
});

rtTest('writes before the connect completes are queued, sent in order once connected, and echoed byte-exact (1 MiB)', async (t) => {
  const echo = await netEcho();
  try {
    await run(async () => {
      const s = createConnection({ port: echo.port, host: '127.0.0.1' });
      const src = randomBytes(1024 * 1024);
      const got = collect(s, src.length);
      const callbacks: number[] = [];
      // Written in 100 pieces while connecting: all wait in the Duplex.
      for (let i = 0; i < 100; i++) {
        const piece = src.subarray((i * src.length) / 100, ((i + 1) * src.length) / 100);
        s.write(piece, (err) => callbacks.push(err ? -1 : i));
      }
      t.true(s.connecting, 'still connecting after the writes');
      s.end();
      const back = await guard(got, 10_000, 'the echo');
      t.is(back.length, src.length);
      t.is(sha256(back), sha256(src));
      t.deepEqual(callbacks, Array.from({ length: 100 }, (_, i) => i), 'every callback, in order, without error');
      await once(s, 'close');
    });
  } finally {
    await echo.close();
  }
});

rtTest("a refused connect: 'error' with node:net's fields and message, then 'close'; no fd left", async (t) => {
  const port = await deadPort();
  const fds0 = fdCount();
  await run(async () => {
    const s = connect({ port, host: '127.0.0.1' });
    const [err] = (await once(s, 'error')) as [AnyErr & { address?: string; port?: number; errno?: number }];
    t.is(err.code, 'ECONNREFUSED');
    t.is(err.errno, -111);
    t.is(err.syscall, 'connect');
    t.is(err.address, '127.0.0.1');
    t.is(err.port, port);
    t.is(err.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
    if (!s.closed) await once(s, 'close');
    t.true(s.destroyed);
    // The same fields as node:net's own error for the same connect.
    const nodeErr = await new Promise<AnyErr & { address?: string; port?: number; errno?: number }>((resolve) =>
      net.connect(port, '127.0.0.1').on('error', resolve),
    );
    t.deepEqual(
      { code: err.code, errno: err.errno, syscall: err.syscall, address: err.address, port: err.port, message: err.message },
      { code: nodeErr.code, errno: nodeErr.errno, syscall: nodeErr.syscall, address: nodeErr.address, port: nodeErr.port, message: nodeErr.message },
    );
  });
  t.is(await fdsBackTo(fds0), fds0);
});

rtTest('writes queued on a connect that fails get the error in their callbacks; no unhandled error with a listener', async (t) => {
  const port = await deadPort();
  await run(async () => {
    const s = connect(port, '127.0.0.1');
    const cbErrors: string[] = [];
    s.write('a', (e) => cbErrors.push((e as AnyErr | null)?.code ?? 'ok'));
    s.write('b', (e) => cbErrors.push((e as AnyErr | null)?.code ?? 'ok'));
    const [err] = (await once(s, 'error')) as [AnyErr];
    t.is(err.code, 'ECONNREFUSED');
    if (!s.closed) await once(s, 'close');
    t.is(cbErrors.length, 2);
    t.false(cbErrors.includes('ok'), `no write reported success: ${cbErrors.join(',')}`);
  });
});

rtTest("destroy() while connecting cancels the connect: 'close' without 'error' or 'connect', no fd left", async (t) => {
  // A listener that never accepts, with its backlog full, keeps connects pending; any connect works too.
  const l = await rt(() => TcpListener.bind('127.0.0.1:0'));
  const fds0 = fdCount();
  await run(async () => {
    for (let i = 0; i < 20; i++) {
      const s = connect(l.localAddr.port, '127.0.0.1');
      const seen: string[] = [];
      s.on('connect', () => seen.push('connect'));
      s.on('error', (e: AnyErr) => seen.push(`error ${e.code}`));
      if (i % 2 === 1) await sleep(0);
      s.destroy();
      await guard(once(s, 'close'), 5000, 'close');
      t.deepEqual(seen.filter((x) => x.startsWith('error')), []);
    }
  });
  t.is(await fdsBackTo(fds0), fds0);
  await rt(() => l.close());
});

rtTest('connect over a Unix path (string and { path }) echoes; a missing path fails with ENOENT and the address', async (t) => {
  const path = join(tmpdir(), `ringio-compat-connect-${process.pid}.sock`);
  const fds0 = fdCount();
  await run(async () => {
    const l = await UnixListener.bind(path);
    const serving = spawn(async () => {
      for (let i = 0; i < 2; i++) {
        const [st] = await l.accept();
        const [n, b] = await st.read(Buffer.alloc(64));
        await st.writeAll(b, { length: n });
        await st.close();
      }
    });
    for (const s of [connect(path), connect({ path })]) {
      s.end('over unix');
      t.is((await collect(s, 9)).toString(), 'over unix');
      if (!s.closed) await once(s, 'close');
    }
    await serving;
    await l.close();
    const missing = connect(`${path}.missing`);
    const [err] = (await once(missing, 'error')) as [AnyErr & { address?: string }];
    t.is(err.code, 'ENOENT');
    t.is(err.syscall, 'connect');
    t.is(err.address, `${path}.missing`);
    t.is(err.message, `connect ENOENT ${path}.missing`);
  });
  const { unlinkSync } = await import('node:fs');
  unlinkSync(path);
  t.is(await fdsBackTo(fds0), fds0);
});

rtTest('new Socket().connect(port, host) as pg calls it; setNoDelay/setKeepAlive before the connect are kept', async (t) => {
  const echo = await netEcho();
  try {
    await run(async () => {
      const s = new Socket();
      t.false(s.connecting);
      t.true(s.pending);
      t.is(s.setNoDelay(true), s);
      t.is(s.setKeepAlive(true, 1000), s);
      t.is(s.connect(echo.port, '127.0.0.1'), s);
      t.true(s.connecting);
      await once(s, 'connect');
      s.end('hello');
      t.is((await collect(s, 5)).toString(), 'hello');
      // connect() again on a connected socket: EISCONN, as net.Socket.
      const again = new Socket();
      again.on('error', () => {});
      again.connect(echo.port, '127.0.0.1');
      again.connect(echo.port, '127.0.0.1');
      const [err] = (await once(again, 'error')) as [AnyErr];
      t.is(err.code, 'EALREADY');
      if (!s.closed) await once(s, 'close');
    });
  } finally {
    await echo.close();
  }
});

rtTest('an aborted signal destroys the Socket with an AbortError (cause = the reason): while connecting, once connected, and already aborted', async (t) => {
  const echo = await netEcho();
  const fds0 = fdCount();
  try {
    await run(async () => {
      const early = new AbortController();
      const a = connect({ port: echo.port, host: '127.0.0.1', signal: early.signal });
      early.abort(new Error('changed my mind'));
      const [ea] = (await once(a, 'error')) as [AnyErr & { cause?: Error }];
      t.is(ea.code, 'ABORT_ERR');
      t.is(ea.cause?.message, 'changed my mind');
      if (!a.closed) await once(a, 'close');
      const late = new AbortController();
      const b = connect({ port: echo.port, host: '127.0.0.1', signal: late.signal });
      await once(b, 'connect');
      late.abort();
      const [eb] = (await once(b, 'error')) as [AnyErr];
      t.is(eb.code, 'ABORT_ERR');
      if (!b.closed) await once(b, 'close');
      const pre = AbortSignal.abort();
      const c = connect({ port: echo.port, host: '127.0.0.1', signal: pre });
      const [ec] = (await once(c, 'error')) as [AnyErr];
      t.is(ec.code, 'ABORT_ERR');
      if (!c.closed) await once(c, 'close');
    });
    t.is(await fdsBackTo(fds0), fds0);
  } finally {
    await echo.close();
  }
});

rtTest('bad arguments throw TypeError / RangeError naming what is wrong', async (t) => {
  await run(async () => {
    t.throws(() => connect(undefined as never), { instanceOf: TypeError });
    t.throws(() => connect({} as never), { instanceOf: TypeError, message: /port/ });
    t.throws(() => connect({ port: 70000 }), { instanceOf: RangeError, message: /port/ });
    t.throws(() => connect({ port: 1.5 }), { instanceOf: TypeError, message: /port/ });
    t.throws(() => connect({ port: 80, host: 5 as never }), { instanceOf: TypeError, message: /host/ });
    t.throws(() => connect({ port: 80, noDelay: 'yes' as never }), { instanceOf: TypeError, message: /noDelay/ });
    t.throws(() => connect({ port: 80, timeout: -1 }), { instanceOf: RangeError, message: /timeout/ });
    t.throws(() => connect({ port: 80, readSize: 0 }), { instanceOf: RangeError, message: /readSize/ });
    t.throws(() => new Socket(null as never), { instanceOf: TypeError });
    t.throws(() => connect({ port: 80, localAddress: '127.0.0.2' }), { instanceOf: TypeError, message: /localAddress/ });
  });
});

test.serial('connect outside a runtime throws ERR_RINGIO_NO_RUNTIME', (t) => {
  const err = t.throws(() => connect(80, '127.0.0.1')) as AnyErr;
  t.is(err.code, 'ERR_RINGIO_NO_RUNTIME');
});

rtTest("node:http's Agent with createConnection honours maxSockets: 50 requests, 10 connections, all answered", async (t) => {
  let connections = 0;
  let active = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    active++;
    peak = Math.max(peak, active);
    setTimeout(() => {
      active--;
      res.end(`reply ${req.url}`);
    }, 5);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await run(async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
      agent.createConnection = createConnection as never;
      const get = (i: number): Promise<string> =>
        new Promise((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port, path: `/${i}`, agent }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (body += c));
              res.on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      const bodies = await guard(Promise.all(Array.from({ length: 50 }, (_, i) => get(i))), 20_000, '50 requests');
      t.deepEqual(bodies, Array.from({ length: 50 }, (_, i) => `reply /${i}`));
      t.is(connections, 10, 'maxSockets: 10 connections');
      t.true(peak <= 10);
      agent.destroy();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

rtTest("a read error carries node:net's fields: read ECONNRESET (syscall read, errno)", async (t) => {
  // A node:net server that resets each connection once it has received a byte.
  const server = net.createServer((sock) => sock.once('data', () => sock.resetAndDestroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await run(async () => {
      const s = connect(port, '127.0.0.1');
      s.resume();
      s.write('x');
      const [err] = (await guard(once(s, 'error'), 5000, 'the reset')) as [AnyErr & { errno?: number }];
      t.is(err.code, 'ECONNRESET');
      t.is(err.syscall, 'read');
      t.is(err.errno, -104);
      t.is(err.message, 'read ECONNRESET');
      t.is(err.buf, undefined);
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
});

rtTest('at shutdown: an ending Socket and an open one close quietly, and a write after start() resolved goes nowhere without an error', async (t) => {
  const echo = await netEcho();
  const fds0 = fdCount();
  const errors: string[] = [];
  let open!: Socket;
  let closedAll!: Promise<unknown>;
  try {
    await run(async () => {
      const ending = connect(echo.port, '127.0.0.1');
      open = connect(echo.port, '127.0.0.1');
      for (const s of [ending, open]) s.on('error', (e: AnyErr) => errors.push(`${e.code}: ${e.message}`));
      await Promise.all([once(ending, 'connect'), once(open, 'connect')]);
      open.resume(); // a read in flight when main returns
      ending.end('bye'); // its shutdown is under way when main returns
      closedAll = Promise.all([ending, open].map((s) => (s.closed ? undefined : once(s, 'close'))));
    });
    await guard(closedAll, 5000, 'both Sockets closed');
    // Written after start() resolved: no runtime on this thread. The callback learns it; nothing is emitted.
    const late = await new Promise<AnyErr | null | undefined>((resolve) => open.write('late', resolve));
    t.truthy(late);
    await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(errors, []);
    t.is(await fdsBackTo(fds0), fds0, 'both fds closed');
  } finally {
    await echo.close();
  }
});

rtTest('at shutdown, a Socket still connecting goes away quietly', async (t) => {
  const l = await rt(() => TcpListener.bind('127.0.0.1:0'));
  const errors: string[] = [];
  let s!: Socket;
  await run(async () => {
    s = connect(l.localAddr.port, '127.0.0.1');
    s.on('error', (e: AnyErr) => errors.push(String(e.code)));
  });
  if (!s.closed) await guard(once(s, 'close'), 5000, 'close');
  t.deepEqual(errors, []);
  await rt(() => l.close());
});
