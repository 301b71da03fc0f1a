/**
 * @ringio/http's client and the buffer of a raw head (forward.send / sendTo, the proxy's path; client.ts
 * rule 7): a bodiless head is sent from its own buffer, which the connection takes (the head gets the
 * connection's free one). The caller may write its head's buffer again once the response head arrived,
 * even while the connection is still sending (a response that came before the whole request); a request
 * that fails before its response head gives the head its bytes back, for the client's own retry on a new
 * connection (rule 3) and for the caller's (the proxy's next upstream). A raw node:net server scripts the
 * upstreams and records the bytes each connection received.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { forward, HttpClient, type CallHandle, type ClientResponse, type RawHead } from '@ringio/http';
import { rtTest } from './helpers.js';
import { clientTest } from './http-util.js';

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Scripted {
  url: string;
  /** Each request head received, with the number of the connection it came on (1, 2, ...). */
  heads: { conn: number; text: string }[];
  /** The next request head received is not answered: the connection is destroyed (and, with `refuse`, the listener closed first). */
  dropNext(refuse: boolean): void;
  close(): Promise<void>;
}

/** An upstream that answers every bodiless request with OK, unless told to drop the next one. */
async function scripted(): Promise<Scripted> {
  const heads: { conn: number; text: string }[] = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;
  let drop: { refuse: boolean } | undefined;
  const server = net.createServer((s) => {
    const conn = ++conns;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let acc = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      for (;;) {
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return;
        heads.push({ conn, text: acc.subarray(0, end + 4).toString('latin1') });
        acc = acc.subarray(end + 4);
        if (drop !== undefined) {
          const { refuse } = drop;
          drop = undefined;
          if (refuse) server.close();
          s.destroy();
          return;
        }
        s.write(OK);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    dropNext: (refuse) => (drop = { refuse }),
    async close() {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function rawHead(text: string): RawHead {
  return { buf: Buffer.from(text, 'latin1'), len: text.length, flags: 0, declared: -1 };
}

function getText(url: string, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n\r\n`;
}

/** forward.sendTo: resolves with the response (its body read to the end), rejects with the request's error. */
function sendTo(c: HttpClient, url: string, head: RawHead, onHead?: (r: ClientResponse) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const call: CallHandle = {
      _conn: undefined,
      _cancelled: false,
      _onHead: (r) => {
        try {
          onHead?.(r);
          const piece = forward.bufferedPiece(r.body);
          const text = piece === undefined ? '' : Buffer.from(piece).toString('latin1');
          forward.endBody(r.body);
          resolve(`${r.status} ${text}`);
        } catch (e) {
          reject(e);
        }
      },
      _onFail: reject,
    };
    forward.sendTo(c, forward.origin(c, url), 'GET', head, call);
  });
}

rtTest('http client raw head: a pooled connection found dead sends the head again on a new one, byte for byte', async (t) => {
  const up = await scripted();
  try {
    await clientTest(t, async (c) => {
      const first = getText(up.url, '/first');
      t.is(await sendTo(c, up.url, rawHead(first)), '200 ok');
      // The second head (another length and other bytes than the first, whose buffer the connection
      // gave back in exchange) goes out on the idle connection, which the upstream drops on reading it.
      up.dropNext(false);
      const second = getText(up.url, `/second-${'x'.repeat(40)}`);
      const head = rawHead(second);
      t.is(await sendTo(c, up.url, head), '200 ok');
      t.deepEqual(
        up.heads.map((h) => h.conn),
        [1, 1, 2],
        'sent on the pooled connection, then retried once on a new one',
      );
      t.is(up.heads[1]!.text, second);
      t.is(up.heads[2]!.text, second, 'the retry sent the head as it was');
    });
  } finally {
    await up.close();
  }
});

rtTest('http client raw head: a request that fails before its response gives its head the bytes back, for the caller to send elsewhere', async (t) => {
  const a = await scripted();
  const b = await scripted();
  try {
    await clientTest(t, async (c) => {
      t.is(await sendTo(c, a.url, rawHead(getText(a.url, '/warm'))), '200 ok');
      // Upstream a drops the next request and stops listening: the client's retry is refused, and the
      // caller (a proxy trying its next upstream) gets the error with its head whole again.
      a.dropNext(true);
      const text = getText(a.url, `/moved-${'y'.repeat(100)}`);
      const head = rawHead(text);
      const err = (await sendTo(c, a.url, head).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string } | undefined;
      t.is(err?.code, 'ECONNREFUSED');
      t.is(head.len, text.length);
      t.is(head.buf.subarray(0, head.len).toString('latin1'), text, 'the head has its bytes back');
      t.is(await sendTo(c, b.url, head), '200 ok');
      t.is(b.heads.at(-1)!.text, text, 'the next upstream got the head as it was');
    });
  } finally {
    await a.close();
    await b.close();
  }
});

rtTest('http client raw head: the caller may write its head buffer once the response head arrived, while the request is still being sent', async (t) => {
  // A head far larger than the socket buffers, answered by the upstream as soon as its first bytes came
  // (then it stops reading): the response head arrives while the send is still in flight. The caller
  // overwrites its head's buffer right there (the proxy reuses it for its next request); the upstream
  // must still receive the head exactly as it was.
  const pad = 16 * 1024 * 1024;
  let expected = '';
  let received = Buffer.alloc(0);
  let resume: (() => void) | undefined;
  const done = new Promise<void>((r) => (resume = r));
  let total = 0;
  let gotAll: (() => void) | undefined;
  const all = new Promise<void>((r) => (gotAll = r));
  let answered = 0;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      if (answered === 0) {
        // The warm-up request: answered whole.
        const acc = Buffer.concat(chunks);
        if (acc.indexOf('\r\n\r\n') < 0) return;
        chunks.length = 0;
        total = 0;
        answered = 1;
        s.write(OK);
        return;
      }
      if (answered === 1) {
        answered = 2;
        s.write(OK);
        s.pause();
        void done.then(() => s.resume());
      }
      if (total >= expected.length) {
        received = Buffer.concat(chunks);
        chunks.length = 0;
        total = 0;
        gotAll!();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    await clientTest(t, async (c) => {
      t.is(await sendTo(c, url, rawHead(getText(url, '/warm'))), '200 ok');
      expected = `GET /big HTTP/1.1\r\nHost: ${new URL(url).host}\r\nX-Pad: ${'p'.repeat(pad)}\r\n\r\n`;
      const head = rawHead(expected);
      const got = await sendTo(c, url, head, () => {
        head.buf.fill(0x5a); // the caller's next head, written over whatever buffer the head has now
        resume!();
      });
      t.is(got, '200 ok');
      await all;
      t.is(received.length, expected.length);
      t.is(sha(received), sha(Buffer.from(expected, 'latin1')), 'the upstream received the head unchanged');
      // The connection goes on: its next request is answered.
      answered = 0;
      t.is(await sendTo(c, url, rawHead(getText(url, '/after'))), '200 ok');
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
