/**
 * @ringio/http server framing with raw bytes (RFC 9112 §6.3, §11): every smuggling and syntax rule gets
 * its status and a closed connection; limits (414, 431, 413), timeouts (408, idle close), pipelining,
 * HTTP/1.0 keep-alive, HEAD, Expect: 100-continue, chunked bodies with extensions and trailers, handler
 * errors (500, reported), and no fd left behind.
 */
import net from 'node:net';
import { type Handler } from '@ringio/http';
import { connectOutcome, rtTest } from './helpers.js';
import { raw, statuses, withServer } from './http-util.js';

const echo: Handler = async (req, res) => {
  const body = await req.bytes();
  res.writeHead(200, { 'content-type': 'text/plain', 'x-method': req.method, 'x-url': req.url });
  await res.end(`${req.method} ${req.url} ${body.length}:${body.toString('latin1')}`);
};

const H = 'Host: x\r\n';

/** Requests the server must refuse with `status` and then close. */
const refused: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding with Content-Length (smuggled GET)', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /admin HTTP/1.1\r\n${H}\r\n0\r\n\r\n`, 400],
  ['differing Content-Lengths', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['a Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, 400],
  ['a signed Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, 400],
  ['Transfer-Encoding not ending in chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding: gzip alone', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, 400],
  ['chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding in HTTP/1.0', `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['a bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
  ['whitespace after the chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n`, 400],
  ['a negative chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n`, 400],
  ['an overflowing chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n`, 400],
  ['chunk data longer than its size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n`, 400],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, 400],
  ['a bare CR in a value', `GET / HTTP/1.1\r\n${H}X-A: o\rne\r\n\r\n`, 400],
  ['a bare LF line ending', `GET / HTTP/1.1\r\n${H}X-A: one\n\r\n`, 400],
  ['a bare CR line ending', `GET / HTTP/1.1\r\n${H}X-A: one\r\r\n\r\n`, 400],
  ['whitespace before the colon', `GET / HTTP/1.1\r\n${H}Content-Length : 0\r\n\r\n`, 400],
  ['a tab before the colon', `GET / HTTP/1.1\r\n${H}X-A\t: 1\r\n\r\n`, 400],
  ['an invalid byte in a name', `GET / HTTP/1.1\r\n${H}X@A: 1\r\n\r\n`, 400],
  ['an empty name', `GET / HTTP/1.1\r\n${H}: 1\r\n\r\n`, 400],
  ['a NUL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, 400],
  ['a control byte in the target', `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, 400],
  ['a DEL in the target', `GET /a\x7fb HTTP/1.1\r\n${H}\r\n`, 400],
  ['a non-ASCII byte in the target', `GET /a\xffb HTTP/1.1\r\n${H}\r\n`, 400],
  ['two spaces in the request line', `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
  ['a bad method', `G(T / HTTP/1.1\r\n${H}\r\n`, 400],
  ['a lower-case version', `GET / http/1.1\r\n${H}\r\n`, 400],
  ['HTTP/2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505],
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['two Hosts', `GET / HTTP/1.1\r\n${H}${H}\r\n`, 400],
  ['an unknown expectation', `GET / HTTP/1.1\r\n${H}Expect: magic\r\n\r\n`, 417],
  ['a request line over 8 KiB', `GET /${'a'.repeat(9000)} HTTP/1.1\r\n${H}\r\n`, 414],
  ['a header section over 16 KiB', `GET / HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(17000)}\r\n\r\n`, 431],
  ['more than 100 fields', `GET / HTTP/1.1\r\n${H}${'X-N: 1\r\n'.repeat(101)}\r\n`, 431],
  ['a Content-Length over maxBodySize', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999\r\n\r\n`, 413],
];

for (const [what, bytes, status] of refused) {
  rtTest(`http framing: ${what} gets ${status} and the connection closes`, async (t) => {
    let calls = 0;
    await withServer({}, async (req, res) => {
      calls++;
      await echo(req, res);
    }, async (port) => {
      const r = await raw(port, bytes);
      t.deepEqual(statuses(r.text), [status], r.text.slice(0, 300));
      t.regex(r.text, /\r\nConnection: close\r\n/);
      t.true(r.closed, 'the server closed the connection');
    });
    // The smuggling cases: the handler never saw a second request.
    t.true(calls <= 1);
  });
}

rtTest('http framing: a chunked body over maxBodySize gets 413', async (t) => {
  await withServer({ maxBodySize: 10 }, echo, async (port) => {
    const r = await raw(port, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n`);
    t.deepEqual(statuses(r.text), [413]);
    t.true(r.closed);
  });
});

rtTest('http framing: pipelined requests are answered in order, bodies included', async (t) => {
  await withServer({}, echo, async (port) => {
    const reqs =
      `GET /1 HTTP/1.1\r\n${H}\r\n` +
      `POST /2 HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc` +
      `POST /3 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\nde\r\n1\r\nf\r\n0\r\nX-Trailer: t\r\n\r\n` +
      `\r\nGET /4 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    // One write, and again byte by byte.
    for (const bytes of [reqs, [...reqs].map((c) => Buffer.from(c, 'latin1'))]) {
      const r = await raw(port, bytes as string);
      t.deepEqual(statuses(r.text), [200, 200, 200, 200]);
      const bodies = [...r.text.matchAll(/\r\n\r\n((?:GET|POST) \/\d [^H]*?)(?=HTTP|$)/g)].map((m) => m[1]);
      t.deepEqual(bodies, ['GET /1 0:', 'POST /2 3:abc', 'POST /3 3:def', 'GET /4 0:']);
      t.true(r.closed);
    }
  });
});

rtTest('http framing: HTTP/1.0 closes unless keep-alive is asked for; HEAD has no body', async (t) => {
  await withServer({}, echo, async (port) => {
    let r = await raw(port, 'GET /a HTTP/1.0\r\n\r\n');
    t.deepEqual(statuses(r.text), [200]);
    t.true(r.closed);
    t.regex(r.text, /Connection: close/);
    r = await raw(port, 'GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n');
    t.deepEqual(statuses(r.text), [200, 200]);
    t.regex(r.text, /Connection: keep-alive/);
    t.true(r.closed);
    r = await raw(port, `HEAD /h HTTP/1.1\r\n${H}\r\nGET /g HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    t.deepEqual(statuses(r.text), [200, 200]);
    const [head] = r.text.split('HTTP/1.1 200 OK').filter(Boolean);
    t.regex(head!, /Content-Length: 10\r\n/);
    t.true(head!.endsWith('\r\n\r\n'), 'no body after a HEAD response');
  });
});

rtTest('http framing: Expect: 100-continue gets 100 Continue once the handler reads the body', async (t) => {
  await withServer({}, echo, async (port) => {
    const r = await raw(port, [`POST /c HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n`, 'hi'], { gapMs: 100 });
    t.true(r.text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n'), r.text);
    t.regex(r.text, /POST \/c 2:hi$/);
  });
});

rtTest('http framing: an unread body is drained to keep the connection, a huge one closes it', async (t) => {
  await withServer({}, (_req, res) => res.end('ok'), async (port) => {
    let r = await raw(port, `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    t.deepEqual(statuses(r.text), [200, 200]);
    r = await raw(port, `POST / HTTP/1.1\r\n${H}Content-Length: 10000000\r\n\r\nabcde`);
    t.deepEqual(statuses(r.text), [200]);
    t.true(r.closed);
  });
});

rtTest('http framing: a handler that throws gives 500, the error is reported, the server goes on', async (t) => {
  const reported: unknown[] = [];
  await withServer({ onError: (e) => reported.push(e) }, (req, res) => {
    if (req.url === '/boom') throw new Error('boom');
    if (req.url === '/late') {
      return res.write('partial').then(() => {
        throw new Error('late');
      });
    }
    return res.end('fine');
  }, async (port, s) => {
    let r = await raw(port, `GET /boom HTTP/1.1\r\n${H}\r\nGET / HTTP/1.1\r\n${H}\r\n`);
    t.deepEqual(statuses(r.text), [500]);
    t.true(r.closed);
    r = await raw(port, `GET /late HTTP/1.1\r\n${H}\r\n`);
    t.deepEqual(statuses(r.text), [200]);
    t.false(r.text.includes('0\r\n\r\n'), 'the chunked body is cut short, not ended');
    t.true(r.closed);
    r = await raw(port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    t.true(r.text.endsWith('fine'));
    t.deepEqual(reported.map((e) => (e as Error).message), ['boom', 'late']);
    t.is(s.stats().handlerErrors, 2);
  });
});

rtTest('http framing: a slow head gets 408, an idle keep-alive connection is closed', async (t) => {
  await withServer({ headersTimeout: 300, keepAliveTimeout: 300 }, echo, async (port) => {
    // A drip that never ends the head (slowloris): 408 although bytes keep coming.
    const drip = Array.from({ length: 40 }, (_, i) => (i === 0 ? `GET / HTTP/1.1\r\n${H}` : 'X-A: 1\r\n'));
    let r = await raw(port, drip, { gapMs: 25, ms: 10_000 });
    t.deepEqual(statuses(r.text), [408]);
    t.true(r.closed);
    r = await raw(port, `GET / HTTP/1.1\r\n${H}\r\n`, { ms: 10_000 });
    t.deepEqual(statuses(r.text), [200]);
    t.true(r.closed, 'closed after the keep-alive timeout');
  });
});

rtTest('http framing: a stalled body gets 408', async (t) => {
  await withServer({ bodyTimeout: 300 }, echo, async (port) => {
    const r = await raw(port, `POST / HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nabc`, { ms: 10_000 });
    t.deepEqual(statuses(r.text), [408]);
    t.true(r.closed);
  });
});

rtTest('http framing: a peer that resets mid-body or mid-head leaves nothing behind', async (t) => {
  await withServer({}, echo, async (port, s) => {
    for (const bytes of [`POST / HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\nabc`, 'GET / HT', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nab`]) {
      const r = await raw(port, bytes, { end: true });
      t.true(r.closed);
    }
    for (let i = 0; i < 50 && s.stats().connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
    t.is(s.stats().connections, 0);
  });
});

rtTest('http framing: peers that leave mid-response do not crash the server (an un-awaited end() of 8 MiB)', async (t) => {
  const body = Buffer.alloc(8 * 1024 * 1024, 'y');
  await withServer({}, (_req, res) => {
    res.writeHead(200);
    void res.end(body); // not awaited, as handlers often do
  }, async (port, s) => {
    // Clients that do not read an answer larger than the socket buffers, then reset: the send in
    // flight fails with ECONNRESET or EPIPE.
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve) => {
        const sock = net.connect(port, '127.0.0.1', () => sock.write(`GET / HTTP/1.1\r\n${H}\r\n`.repeat(2)));
        sock.pause();
        sock.once('readable', () => {
          setTimeout(() => {
            sock.resetAndDestroy();
            resolve();
          }, 100);
        });
        sock.on('error', () => resolve());
      });
    }
    // The server still answers.
    const r = await raw(port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, { ms: 30_000 });
    t.deepEqual(statuses(r.text), [200]);
    t.true(r.closed);
    t.is(r.text.length - r.text.indexOf('\r\n\r\n') - 4, body.length);
    for (let i = 0; i < 100 && s.stats().connections > 0; i++) await new Promise((res) => setTimeout(res, 20));
    t.is(s.stats().connections, 0);
  });
});

rtTest('http framing: close() closes idle keep-alive connections at once and stops accepting', async (t) => {
  await withServer({ keepAliveTimeout: 60_000 }, echo, async (port, s) => {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.on('error', () => {});
    sock.write(`GET / HTTP/1.1\r\n${H}\r\n`);
    await new Promise<void>((resolve) => sock.once('data', () => resolve()));
    t.is(s.stats().connections, 1);
    // Waiting for the 60 s keep-alive timeout would run past this test's own 30 s timeout.
    await s.close();
    await closed;
    t.is(s.stats().connections, 0);
    const refused = await connectOutcome(port);
    t.is(refused, 'ECONNREFUSED');
  });
});
