/**
 * @ringio/http's client reading plain sockets through leases (client.ts rule 6): responses split at
 * every byte boundary, a large body after a small one on the same pooled connection (the switch to
 * read() and back), the proxy's pooled path (forward.send), an upstream that closes mid-body (lease
 * path and read() path), stray bytes after a response, and an upgrade right after keep-alive requests
 * with bytes behind the 101. A raw node:net server scripts the upstream's bytes.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { forward, HttpClient, type CallHandle, type ClientResponse, type RawHead } from '@ringio/http';
import { sleep, stats } from '@ringio/runtime';
import { fdCount, fdsBackTo, rejectionOf, rtTest, run } from './helpers.js';

/** Deterministic body bytes: byte i is (i * 7 + n) & 255. */
function bodyOf(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + n) & 255;
  return b;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** The scripted server's pauses: Node's timers (it runs outside the runtime). */
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A scripted upstream: each bodiless request's path picks the bytes sent back. `conns` counts the
 * connections accepted; `served` the requests per connection, in order.
 */
async function upstream(): Promise<{ url: string; port: number; conns: () => number; close(): Promise<void> }> {
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    conns++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let acc = Buffer.alloc(0);
    let upgraded = false;
    let busy = Promise.resolve();
    s.on('data', (d: Buffer) => {
      if (upgraded) return void s.write(d); // an echo after the 101
      acc = Buffer.concat([acc, d]);
      for (;;) {
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return;
        const line = acc.subarray(0, acc.indexOf('\r\n')).toString('latin1');
        acc = acc.subarray(end + 4);
        const path = line.split(' ')[1]!;
        busy = busy.then(() => answer(s, path, () => (upgraded = true)));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    conns: () => conns,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function answer(s: net.Socket, path: string, upgrade: () => void): Promise<void> {
  const u = new URL(path, 'http://x');
  const n = Number(u.searchParams.get('n') ?? 0);
  switch (u.pathname) {
    case '/small':
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall');
      return;
    case '/partial':
      // The head and the first 1,000 of 50,000 body bytes in one write, then nothing.
      s.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n'), bodyOf(1000)]));
      return;
    case '/tag': {
      // A head and body of their own per n, in one write (one arrival).
      const body = `body-${n}-${'b'.repeat(n % 37)}`;
      s.write(`HTTP/1.1 200 OK\r\nX-Tag: tag-${n}-${'t'.repeat(n % 23)}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    case '/drip': {
      // Every byte of the head and the body in a write of its own.
      const bytes = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Drip: yes\r\n\r\n'), Buffer.from('0123456789')]);
      for (const b of bytes) {
        s.write(Buffer.of(b));
        await pause(1);
      }
      return;
    }
    case '/big': {
      // Content-Length, written in pieces of uneven sizes with pauses (arrivals of every size).
      const body = bodyOf(n);
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`);
      for (let i = 0, k = 1000; i < n; i += k, k = (k * 3) % 70001 + 1) {
        s.write(body.subarray(i, Math.min(n, i + k)));
        if (i % 5 === 0) await pause(1);
      }
      return;
    }
    case '/chunked': {
      const body = bodyOf(n);
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < n; i += 40_000) {
        const piece = body.subarray(i, Math.min(n, i + 40_000));
        s.write(`${piece.length.toString(16)}\r\n`);
        s.write(piece);
        s.write('\r\n');
      }
      s.write('0\r\n\r\n');
      return;
    }
    case '/cut':
      // Announces n bytes, sends a third of them, and closes.
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`);
      s.write(bodyOf(Math.floor(n / 3)));
      await pause(20);
      s.destroy();
      return;
    case '/extra':
      // A response followed by bytes that answer nothing: the connection must not be reused.
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextraHTTP/1.1 200 OK\r\n');
      return;
    case '/upgrade':
      upgrade();
      s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello');
      return;
  }
  s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
}

async function leaseTest(t: ExecutionContext, fn: (c: HttpClient, up: Awaited<ReturnType<typeof upstream>>) => Promise<void>): Promise<void> {
  const before = fdCount();
  const up = await upstream();
  try {
    await run(async () => {
      const c = new HttpClient();
      try {
        await fn(c, up);
      } finally {
        await c.close();
      }
    }, 60_000);
  } finally {
    await up.close();
  }
  await new Promise((r) => setTimeout(r, 100));
  t.true((await fdsBackTo(before)) <= before + 4, `no fd left behind (${fdCount()} > ${before})`);
}

/** A bodiless GET through forward.send (the proxy's pooled path: the head as bytes, the response's views into the read buffer). */
function rawGet(c: HttpClient, url: string, path: string): Promise<ClientResponse> {
  const u = new URL(url);
  const text = `GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`;
  const head: RawHead = { buf: Buffer.from(text, 'latin1'), len: text.length, flags: 0, declared: -1 };
  const call: CallHandle = { _conn: undefined, _cancelled: false };
  return forward.send(c, forward.origin(c, url), 'GET', head, null, call);
}

/** The whole body, read piece by piece (each piece copied before the next read, as its view is reused). */
async function whole(r: ClientResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let p = await r.body.read(); p !== null; p = await r.body.read()) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

rtTest('http client leases: split responses, large bodies after small ones on one pooled connection, both paths', async (t) => {
  await leaseTest(t, async (c, up) => {
    const seq: [string, number][] = [
      ['/small', 5],
      ['/drip', 10],
      ['/big?n=1048576', 1 << 20],
      ['/small', 5],
      ['/big?n=20000', 20000],
      ['/big?n=300000', 300000],
      ['/big?n=200000', 200000],
      ['/chunked?n=300000', 300000],
      ['/drip', 10],
      ['/small', 5],
    ];
    for (const raw of [false, true]) {
      for (const [path, n] of seq) {
        const r = raw ? await rawGet(c, up.url, path) : await c.request(up.url + path);
        t.is(r.status, 200, path);
        if (path === '/drip') t.is(r.headers.get('x-drip'), 'yes');
        const body = await whole(r);
        t.is(body.length, n, path);
        if (path === '/small') t.is(body.toString(), 'small');
        else if (path === '/drip') t.is(body.toString(), '0123456789');
        else t.is(sha(body), sha(bodyOf(n)), path);
      }
    }
    t.is(up.conns(), 1, 'every response on the one pooled connection');
    // Concurrent requests, mixed sizes, on a few pooled connections: every body intact.
    const got = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const path = i % 3 === 0 ? '/big?n=150000' : i % 3 === 1 ? '/small' : '/drip';
        const r = i % 2 === 0 ? await c.request(up.url + path) : await rawGet(c, up.url, path);
        return [path, await whole(r)] as const;
      }),
    );
    for (const [path, b] of got) {
      if (path === '/small') t.is(b.toString(), 'small');
      else if (path === '/drip') t.is(b.toString(), '0123456789');
      else t.is(sha(b), sha(bodyOf(150000)));
    }
  });
});

rtTest('http client leases: an upstream that closes mid-body fails the body read; the next request connects afresh', async (t) => {
  await leaseTest(t, async (c, up) => {
    // A small body (read through leases) and a large one (read with read() after the lease reads stop).
    for (const n of [3000, 600_000]) {
      for (const raw of [false, true]) {
        t.is(await (await c.request(`${up.url}/small`)).text(), 'small');
        const r = raw ? await rawGet(c, up.url, `/cut?n=${n}`) : await c.request(`${up.url}/cut?n=${n}`);
        t.is(r.status, 200);
        const e = await rejectionOf(t, whole(r));
        t.is(e.code, 'ERR_RINGIO_UNEXPECTED_EOF', `n=${n}`);
        const before = up.conns();
        t.is(await (await c.request(`${up.url}/small`)).text(), 'small');
        t.is(up.conns(), before + 1, 'a new connection after the cut one');
      }
    }
  });
});

rtTest('http client leases: stray bytes after a response drop the connection; an upgrade after keep-alive requests keeps the bytes behind the 101', async (t) => {
  await leaseTest(t, async (c, up) => {
    t.is(await (await c.request(`${up.url}/extra`)).text(), 'extra');
    await sleep(20);
    t.is(await (await c.request(`${up.url}/small`)).text(), 'small');
    t.is(up.conns(), 2, 'the connection with stray bytes was not reused');
    // Keep-alive requests (the lease reads running, then stopped by a large body and started again), then an upgrade on the same connection.
    t.is((await whole(await c.request(`${up.url}/big?n=100000`))).length, 100000);
    t.is(await (await c.request(`${up.url}/small`)).text(), 'small');
    t.is(await (await c.request(`${up.url}/small`)).text(), 'small');
    const r = await c.request(`${up.url}/upgrade`, { upgrade: 'echo' });
    t.is(r.status, 101);
    t.is(up.conns(), 2, 'the upgrade went on the pooled connection');
    t.is(r.head?.toString(), 'hello');
    const s = r.stream!;
    try {
      await s.writeAll(Buffer.from('ping'));
      const buf = Buffer.alloc(16);
      let got = 0;
      while (got < 4) {
        const [n] = await s.read(buf, { offset: got });
        if (n === 0) break;
        got += n;
      }
      t.is(buf.subarray(0, got).toString(), 'ping');
    } finally {
      await s.close();
    }
  });
});

/** forward.sendTo (the proxy's path: the response through callbacks), settled with what `onHead` returns. */
function sendTo<T>(c: HttpClient, url: string, path: string, onHead: (r: ClientResponse) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const text = `GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`;
    const head: RawHead = { buf: Buffer.from(text, 'latin1'), len: text.length, flags: 0, declared: -1 };
    const call: CallHandle = {
      _conn: undefined,
      _cancelled: false,
      _onHead: (r) => {
        try {
          resolve(onHead(r));
        } catch (e) {
          reject(e);
        }
      },
      _onFail: reject,
    };
    forward.sendTo(c, forward.origin(c, url), 'GET', head, call);
  });
}

rtTest('http client leases: a response read in its lease (forward.sendTo) stays whole however its reader takes it; every lease goes back once', async (t) => {
  // The client reads a callback's response in the lease it arrived in (no copy) while the callback runs.
  // Three readers: one that takes the whole response in the callback (the proxy's way), one that reads
  // nothing there and all of it later, one that takes the body's piece there and uses it later. The
  // later reads come after dozens of other arrivals went through the receive pool (a lease given back
  // too early would by then hold other bytes), and every lease is back in the pool at the end.
  await leaseTest(t, async (c, up) => {
    const base = stats().recvPool.leased;
    const tag = (n: number): string => `tag-${n}-${'t'.repeat(n % 23)}`;
    const body = (n: number): string => `body-${n}-${'b'.repeat(n % 37)}`;
    const later: { n: number; r: ClientResponse; piece: Uint8Array | undefined }[] = [];
    // Each kept response is asked for right after a whole one, on the connection that one left idle (the
    // path that reads in place; a new connection's first response takes the general one).
    for (let n = 0; n < 90; n++) {
      if (n % 2 === 0) {
        const got = await sendTo(c, up.url, `/tag?n=${n}`, (r) => {
          const p = forward.bufferedPiece(r.body);
          const text = `${r.headers.get('x-tag')} ${p === undefined ? '' : Buffer.from(p).toString('latin1')} ${r.body.done}`;
          forward.endBody(r.body);
          return text;
        });
        t.is(got, `${tag(n)} ${body(n)} true`);
      } else {
        const kept = await sendTo(c, up.url, `/tag?n=${n}`, (r) => ({ n, r, piece: n % 4 === 3 ? forward.bufferedPiece(r.body) : undefined }));
        later.push(kept);
      }
    }
    for (const { n, r, piece } of later) {
      t.is(r.headers.get('x-tag'), tag(n), `head of ${n}`);
      if (piece !== undefined) {
        t.is(Buffer.from(piece).toString('latin1'), body(n), `piece of ${n}`);
        forward.endBody(r.body);
      } else t.is((await whole(r)).toString('latin1'), body(n), `body of ${n}`);
    }
    // A piece taken in the callback of a response that is then dropped (its connection closes): the lease
    // goes back with the connection.
    await sendTo(c, up.url, '/tag?n=1', (r) => forward.endBody(r.body)); // an idle pooled connection for it
    const piece = await sendTo(c, up.url, '/partial', (r) => {
      const p = forward.bufferedPiece(r.body);
      void r.close();
      return p === undefined ? 0 : p.length;
    });
    t.true(piece > 0, 'a piece was taken in the callback');
    for (let i = 0; i < 100 && stats().recvPool.leased > base; i++) await sleep(5);
    t.is(stats().recvPool.leased, base, 'every lease went back to the pool');
  });
});
