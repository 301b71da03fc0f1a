/**
 * @ringio/http's lease path (plain sockets): requests read through readLeases and handled in its
 * callback, responses queued with send(), and held responses (forward.hold / release, what ringio-proxy
 * answers with). Pipelined mixes of sync, async, held, bodied and HEAD requests answered in order; a held
 * response released with an error (500) or before its handler returned; a client that leaves while a
 * response is held (onClientGone, nothing left behind) or while pipelined answers go unread; an upgrade
 * on a connection whose reads went multishot keeps the bytes sent right behind the upgrade request.
 */
import net from 'node:net';
import { forward, HttpClient, serve, type Handler } from '@ringio/http';
import { configureRecvPool, stats } from '@ringio/runtime';
import { rtTest } from './helpers.js';
import { raw, statuses, withServer } from './http-util.js';

const H = 'Host: x\r\n';
const later = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Answers by path: /sync/N at once, /async/N after an await, /held/N held and released a few ms later, /body/N with the body's length. */
const mixed: Handler = (req, res) => {
  const url = req.url;
  if (url.startsWith('/sync/')) return void res.end(`sync ${url}`);
  if (url.startsWith('/async/')) {
    return (async () => {
      await later(2);
      await res.end(`async ${url}`);
    })();
  }
  if (url.startsWith('/held/')) {
    forward.hold(res);
    setTimeout(() => {
      res.end(`held ${url}`).then(() => forward.release(res), (e: unknown) => forward.release(res, e));
    }, 3);
    return undefined;
  }
  if (url.startsWith('/body/')) {
    return (async () => {
      const b = await req.bytes();
      await res.end(`body ${url} ${b.length}`);
    })();
  }
  return void res.end(`other ${url}`);
};

/** The bodies of the responses in a raw reply (Content-Length framed), in order. */
function bodies(text: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const head = text.slice(at, end);
    const m = /content-length: (\d+)/i.exec(head);
    const len = m === null ? 0 : Number(m[1]);
    const isHead = /x-head: 1/i.test(head);
    out.push(isHead ? '(head)' : text.slice(end + 4, end + 4 + len));
    at = end + 4 + (isHead ? 0 : len);
  }
}

rtTest('http leases: pipelined sync, async, held, bodied and HEAD requests are answered in order', async (t) => {
  await withServer({}, (req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'x-head': '1' });
      return void res.end();
    }
    return mixed(req, res);
  }, async (port) => {
    const kinds = ['sync', 'held', 'async', 'held', 'sync', 'body', 'held', 'head', 'sync', 'held'];
    let bytes = '';
    const want: string[] = [];
    for (let i = 0; i < 40; i++) {
      const k = kinds[i % kinds.length]!;
      if (k === 'body') {
        bytes += `POST /body/${i} HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`;
        want.push(`body /body/${i} 5`);
      } else if (k === 'head') {
        bytes += `HEAD /h/${i} HTTP/1.1\r\n${H}\r\n`;
        want.push('(head)');
      } else {
        bytes += `GET /${k}/${i} HTTP/1.1\r\n${H}\r\n`;
        want.push(`${k} /${k}/${i}`);
      }
    }
    bytes += `GET /sync/last HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    want.push('sync /sync/last');
    // All at once, and again in small pieces (heads split across reads).
    for (const gap of [0, 1]) {
      const pieces = gap === 0 ? [bytes] : bytes.match(/[\s\S]{1,37}/g)!;
      const r = await raw(port, pieces, { gapMs: gap, ms: 20_000 });
      t.true(r.closed);
      t.deepEqual(statuses(r.text), want.map(() => 200));
      t.deepEqual(bodies(r.text), want);
    }
  });
});

rtTest('http leases: a held response released with an error gets 500; one released before its handler returned goes on', async (t) => {
  const reported: unknown[] = [];
  await withServer({ onError: (e) => reported.push(e) }, (req, res) => {
    forward.hold(res);
    if (req.url === '/early') {
      void res.end('early');
      forward.release(res);
      return undefined;
    }
    setTimeout(() => forward.release(res, new Error('upstream exploded')), 5);
    return undefined;
  }, async (port) => {
    const ok = await raw(port, `GET /early HTTP/1.1\r\n${H}\r\nGET /early HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    t.deepEqual(statuses(ok.text), [200, 200]);
    t.deepEqual(bodies(ok.text), ['early', 'early']);
    const bad = await raw(port, `GET /late HTTP/1.1\r\n${H}\r\n`);
    t.deepEqual(statuses(bad.text), [500]);
    t.true(bad.closed, 'the connection closes after the 500');
    t.is(reported.length, 1);
    t.regex(String((reported[0] as Error).message), /upstream exploded/);
  });
});

rtTest('http leases: a client that leaves while its response is held is seen at once; nothing is left behind', async (t) => {
  let gone = 0;
  let waiting: (() => void) | undefined;
  const arrived = new Promise<void>((r) => (waiting = r));
  await withServer({}, (req, res) => {
    if (req.url === '/ok') return void res.end('ok');
    forward.hold(res);
    forward.onClientGone(req, () => {
      gone++;
      forward.release(res, Object.assign(new Error('client gone'), { code: 'ERR_RINGIO_CLOSED' }));
    });
    waiting?.();
    return undefined;
  }, async (port, s) => {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /wait HTTP/1.1\r\n${H}\r\n`);
    await arrived;
    t.is(s.stats().connections, 1);
    sock.destroy();
    for (let i = 0; i < 100 && (gone === 0 || s.stats().connections > 0); i++) await later(10);
    t.is(gone, 1, 'onClientGone ran');
    t.is(s.stats().connections, 0, 'the connection is gone');
    // Still serving.
    const r = await raw(port, `GET /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    t.deepEqual(statuses(r.text), [200]);
    t.deepEqual(bodies(r.text), ['ok']);
  });
});

rtTest('http leases: clients that reset with pipelined answers unread leave nothing behind', async (t) => {
  const body = Buffer.alloc(48 * 1024, 'z');
  await withServer({}, (req, res) => {
    if (req.url === '/held') {
      forward.hold(res);
      setImmediate(() => res.end(body).then(() => forward.release(res), (e: unknown) => forward.release(res, e)));
      return undefined;
    }
    return void res.end(body);
  }, async (port, s) => {
    for (let i = 0; i < 6; i++) {
      await new Promise<void>((resolve) => {
        const sock = net.connect(port, '127.0.0.1', () => {
          let reqs = '';
          for (let j = 0; j < 64; j++) reqs += `GET /${j % 2 === 0 ? 'held' : 'sync'} HTTP/1.1\r\n${H}\r\n`;
          sock.write(reqs);
        });
        sock.pause();
        sock.once('readable', () => {
          setTimeout(() => {
            sock.resetAndDestroy();
            resolve();
          }, 30);
        });
        sock.on('error', () => resolve());
      });
    }
    for (let i = 0; i < 200 && s.stats().connections > 0; i++) await later(20);
    t.is(s.stats().connections, 0);
    const r = await raw(port, `GET /held HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, { ms: 10_000 });
    t.deepEqual(statuses(r.text), [200]);
    t.is(bodies(r.text)[0]!.length, body.length);
  });
});

rtTest('http leases: an upgrade after keep-alive requests keeps the bytes sent right behind it', async (t) => {
  await withServer({}, async (req, res) => {
    if (req.url !== '/up') return void res.end('plain');
    const { stream, head } = await req.upgrade();
    const s = stream as unknown as { writeAll(b: Uint8Array): Promise<unknown>; read(b: Buffer): Promise<[number, Buffer]>; close(): Promise<void> };
    await s.writeAll(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n'));
    // Echo: what came with the head first, then what the stream reads, until the client says "bye".
    let seen = head.toString('latin1');
    if (head.length > 0) await s.writeAll(head);
    const buf = Buffer.alloc(4096);
    while (!seen.includes('bye')) {
      const [n] = await s.read(buf);
      if (n === 0) break;
      seen += buf.toString('latin1', 0, n);
      await s.writeAll(buf.subarray(0, n));
    }
    await s.close();
  }, async (port) => {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let text = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (text += d));
    const until = async (pred: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !pred(); i++) await later(10);
    };
    // Enough requests, each answered before the next, for the connection's reads to go multishot.
    for (let i = 0; i < 12; i++) {
      const n = (text.match(/plain/g) ?? []).length;
      sock.write(`GET /k HTTP/1.1\r\n${H}\r\n`);
      await until(() => (text.match(/plain/g) ?? []).length > n);
    }
    t.is((text.match(/plain/g) ?? []).length, 12);
    text = '';
    sock.write(`GET /up HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: echo\r\n\r\nfirst-bytes;`);
    await later(20);
    sock.write('second-bytes;');
    await until(() => text.includes('second-bytes;'));
    sock.write('bye');
    await until(() => text.includes('bye'));
    sock.destroy();
    t.true(text.startsWith('HTTP/1.1 101 '));
    const after = text.slice(text.indexOf('\r\n\r\n') + 4);
    t.is(after, 'first-bytes;second-bytes;bye');
  });
});

rtTest('http leases: a flood past the read buffer while a handler waits pauses reading; a reset gives every lease back', async (t) => {
  let release: (() => void) | undefined;
  await withServer({}, (req, res) => {
    if (req.url === '/wait') {
      forward.hold(res);
      release = () => res.end('late').then(() => forward.release(res), (e: unknown) => forward.release(res, e));
      return undefined;
    }
    return void res.end('ok');
  }, async (port, s) => {
    // Pipelined requests well past the read buffer (16 KiB) behind one that waits: reading pauses.
    let flood = `GET /wait HTTP/1.1\r\n${H}\r\n`;
    while (flood.length < 256 * 1024) flood += `GET /ok HTTP/1.1\r\n${H}X-Pad: ${'p'.repeat(200)}\r\n\r\n`;
    const sock = net.connect(port, '127.0.0.1', () => sock.write(flood));
    sock.on('error', () => {});
    for (let i = 0; i < 200 && release === undefined; i++) await later(5);
    t.truthy(release, 'the first request arrived');
    await later(50);
    t.true(stats().recvPool.leased <= 8, `leases held while paused: ${stats().recvPool.leased}`);
    sock.resetAndDestroy();
    for (let i = 0; i < 100 && s.stats().connections > 0; i++) await later(10);
    release!();
    for (let i = 0; i < 100 && (s.stats().connections > 0 || stats().recvPool.leased > 0); i++) await later(10);
    t.is(s.stats().connections, 0);
    t.is(stats().recvPool.leased, 0, 'every lease went back to the pool');
    // And the same flood read to its end: every request answered, in order.
    let n = 0;
    let all = `GET /ok HTTP/1.1\r\n${H}\r\n`;
    for (n = 1; all.length < 256 * 1024; n++) all += `GET /ok HTTP/1.1\r\n${H}X-Pad: ${'p'.repeat(200)}\r\n\r\n`;
    all += `GET /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    const r = await raw(port, all, { ms: 20_000 });
    t.is(statuses(r.text).length, n + 1);
  });
});

rtTest('http leases: a head parsed in its lease stays the request\'s until the request ends, then the lease goes back once', async (t) => {
  // A bodiless head alone in a read is parsed in the lease itself (no copy into the connection's buffer):
  // the lease is the request's until its response ends. Held requests read their URL and a field only
  // after hundreds of reads on another connection went through the receive pool (a lease given back
  // early would by then hold another request's bytes), and every lease is back in the pool at the end
  // (one never given back stays counted; one given back twice throws ERR_RINGIO_LEASE_RELEASED).
  const held: (() => void)[] = [];
  let base = 0;
  await withServer({}, (req, res) => {
    if (req.url.startsWith('/held/')) {
      forward.hold(res);
      held.push(() => {
        const answer = `${req.url} ${req.headers.get('x-tag')}`;
        res.end(answer).then(() => forward.release(res), (e: unknown) => forward.release(res, e));
      });
      return undefined;
    }
    return void res.end(`ok ${req.headers.get('x-tag')}`);
  }, async (port, s) => {
    base = stats().recvPool.leased;
    const socks: net.Socket[] = [];
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const sock = net.connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.setEncoding('latin1');
      texts.push('');
      sock.on('data', (d: string) => (texts[i] += d));
      socks.push(sock);
      // One write per head: each arrives alone in its read, as a keep-alive client sends it.
      sock.write(`GET /held/${i}/${'a'.repeat(i * 7)} HTTP/1.1\r\n${H}X-Tag: tag-${i}-${'z'.repeat(20 + i)}\r\n\r\n`);
    }
    for (let i = 0; i < 200 && held.length < 4; i++) await later(5);
    t.is(held.length, 4, 'the four held requests arrived');
    t.true(stats().recvPool.leased - base >= 4, `the held requests' leases are out: ${stats().recvPool.leased - base}`);
    // Reads on another connection, one request at a time, with other bytes at the same offsets.
    const other = net.connect(port, '127.0.0.1');
    await new Promise((r) => other.once('connect', r));
    other.setEncoding('latin1');
    let otherText = '';
    other.on('data', (d: string) => (otherText += d));
    for (let i = 0; i < 300; i++) {
      const tag = `other-${i}-${'w'.repeat(i % 40)}`;
      other.write(`GET /other/${'q'.repeat(i % 50)} HTTP/1.1\r\n${H}X-Tag: ${tag}\r\n\r\n`);
      for (let j = 0; j < 500 && !otherText.endsWith(`ok ${tag}`); j++) await later(1);
      t.true(otherText.endsWith(`ok ${tag}`), `other request ${i}`);
    }
    other.destroy();
    for (const f of held) f();
    for (let i = 0; i < 200 && texts.some((x) => !x.includes('\r\n\r\n') || !/tag-\d-z+$/.test(x)); i++) await later(5);
    for (let i = 0; i < 4; i++) t.true(texts[i]!.endsWith(`/held/${i}/${'a'.repeat(i * 7)} tag-${i}-${'z'.repeat(20 + i)}`), texts[i]);
    // The same connections go on (keep-alive), the next heads parsed in their leases too.
    for (let i = 0; i < 4; i++) {
      texts[i] = '';
      socks[i]!.write(`GET /again HTTP/1.1\r\n${H}X-Tag: again-${i}\r\nConnection: close\r\n\r\n`);
    }
    for (let i = 0; i < 200 && texts.some((x) => !x.endsWith(`again-${texts.indexOf(x)}`)); i++) await later(5);
    for (let i = 0; i < 4; i++) t.true(texts[i]!.endsWith(`ok again-${i}`), texts[i]);
    for (const sock of socks) sock.destroy();
    for (let i = 0; i < 100 && (s.stats().connections > 0 || stats().recvPool.leased > base); i++) await later(10);
    t.is(stats().recvPool.leased, base, 'every lease went back to the pool');
  });
});

rtTest('http leases: requests parsed in their leases leave the receive pool room for the reads that answer them (a proxy with a small pool)', async (t) => {
  // Each held request is answered by a request to another server of the same thread (a proxy in one):
  // its answer takes reads on two more connections. With a pool of 8 buffers and 24 requests at once,
  // requests that kept their leases while waiting would take every buffer and nothing would move again
  // (until the client's timeouts); in-place parsing stops at half the pool.
  let client: HttpClient | undefined;
  let upPort = 0;
  await withServer({}, (req, res) => {
    forward.hold(res);
    client!.request(`http://127.0.0.1:${upPort}/up${req.url}`).then(
      async (r) => {
        const body = await r.text();
        await res.end(`${req.url} ${body}`);
        forward.release(res);
      },
      (e: unknown) => forward.release(res, e),
    );
    return undefined;
  }, async (port) => {
    configureRecvPool({ buffers: 8, maxBuffers: 8, bufferSize: 2048 });
    const up = await serve({ port: 0 }, (req, res) => void res.end(`from ${req.url}`));
    upPort = (up.address as { port: number }).port;
    client = new HttpClient({ headersTimeout: 60_000 });
    try {
      const t0 = Date.now();
      const replies = await Promise.all(
        Array.from({ length: 24 }, (_, i) => raw(port, `GET /r${i} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, { ms: 20_000 })),
      );
      for (let i = 0; i < 24; i++) {
        t.true(replies[i]!.closed, `reply ${i} came`);
        t.true(replies[i]!.text.endsWith(`/r${i} from /up/r${i}`), replies[i]!.text);
      }
      t.true(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    } finally {
      await client.close();
      await up.closeAll();
    }
  });
});
