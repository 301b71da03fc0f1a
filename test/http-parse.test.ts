/**
 * @ringio/http's head scanner (HeadParser) in one pass against its two passes: a head whole in the
 * buffer is scanned once (request(), response()), anything else (a head still arriving, an error, a
 * limit) the two-pass way. Both must give the same results for every head: valid ones, every smuggling
 * and syntax error of http-framing.test.ts, random mutations of valid heads, each split at every byte
 * boundary, with bytes after the split that would complete the head (the scanner must not read past the
 * end it was given). A few heads are also checked against what they must give, and the server answers
 * one head dripped byte by byte and one split around each field line.
 */
import test from 'ava';
import { rtTest } from './helpers.js';
import { raw, withServer } from './http-util.js';

interface Parser {
  offs: Int32Array;
  count: number;
  method: string;
  targetStart: number;
  targetEnd: number;
  minor: number;
  status: number;
  reasonStart: number;
  reasonEnd: number;
  contentLength: number;
  hasTE: boolean;
  chunked: boolean;
  conn: number;
  expectContinue: boolean;
  hasUpgrade: boolean;
  hostCount: number;
  headStart: number;
  headEnd: number;
  errStatus: number;
  errReason: string;
  request(buf: Buffer, start: number, end: number): number;
  response(buf: Buffer, start: number, end: number): number;
  resetScan(): void;
}
interface ParserClass {
  new (limits: { maxHeaders: number; maxHeaderSize: number; maxRequestLineSize: number }): Parser;
  onePass: boolean;
}

const { HeadParser } = (await import(new URL('../../packages/http/dist/parse.js', import.meta.url).href)) as { HeadParser: ParserClass };
const LIMITS = { maxHeaders: 20, maxHeaderSize: 600, maxRequestLineSize: 200 };

/** Everything a scan leaves that a caller may read. */
function state(p: Parser, r: number, kind: 'request' | 'response'): unknown {
  if (r < 0) return { r, errStatus: p.errStatus, errReason: p.errReason };
  if (r === 0) return { r };
  return {
    r,
    ...(kind === 'request' ? { method: p.method, target: [p.targetStart, p.targetEnd] } : { status: p.status, reason: [p.reasonStart, p.reasonEnd] }),
    minor: p.minor,
    fields: Array.from(p.offs.subarray(0, 4 * p.count)),
    contentLength: p.contentLength,
    hasTE: p.hasTE,
    chunked: p.chunked,
    conn: p.conn,
    expectContinue: p.expectContinue,
    hasUpgrade: p.hasUpgrade,
    hostCount: p.hostCount,
    head: [p.headStart, p.headEnd],
  };
}

/**
 * Scans `head` (at offset 7 of a buffer that holds all of it, then junk) as it would arrive: its first
 * `split` bytes, then all of it; the states after each call. The bytes past `split` are in the buffer
 * from the start: a scanner that reads past the end it is given sees a whole head too early.
 */
function scan(kind: 'request' | 'response', head: Buffer, split: number, onePass: boolean): unknown[] {
  HeadParser.onePass = onePass;
  try {
    const buf = Buffer.alloc(head.length + 64, 'x');
    head.copy(buf, 7);
    const p = new HeadParser(LIMITS);
    const out: unknown[] = [];
    const ends = split > 0 && split < head.length ? [split, head.length] : [head.length];
    for (const n of ends) {
      const r = p[kind](buf, 7, 7 + n);
      out.push(state(p, r, kind));
      if (r !== 0) break;
    }
    return out;
  } finally {
    HeadParser.onePass = true;
  }
}

/** Both ways agree on `head` at every split; returns the one-pass result of the whole head. */
function agree(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, kind: 'request' | 'response', head: Buffer, label: string): unknown {
  for (let split = 0; split <= head.length; split++) {
    t.deepEqual(scan(kind, head, split, true), scan(kind, head, split, false), `${label}, split at ${split}`);
  }
  return scan(kind, head, 0, true)[0];
}

const H = 'Host: x\r\n';
const requests: string[] = [
  'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n',
  'GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n',
  '\r\n\r\nGET /after-empty-lines HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET / HTTP/1.0\r\n\r\n',
  'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  `GET /a?b=c HTTP/1.1\r\n${H}X-Empty:\r\nX-Ows: \t padded \t \r\nX-Obs: caf\xe9\r\n\r\n`,
  `POST /p HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`,
  `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
  `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade, keep-alive\r\nUpgrade: websocket\r\n\r\n`,
  `PUT /e HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx`,
  `OPTIONS * HTTP/1.1\r\n${H}\r\n`,
  `CONNECT example.com:443 HTTP/1.1\r\n${H}\r\n`,
  `PURGE /x HTTP/1.1\r\n${H}\r\nGET /next HTTP/1.1\r\n${H}\r\n`,
  `GET / HTTP/1.9\r\n${H}\r\n`,
  `GET / HTTP/1.1\r\n${H}${'X-N: 1\r\n'.repeat(19)}\r\n`,
  // errors (http-framing.test.ts's list, and the limits of LIMITS)
  `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /admin HTTP/1.1\r\n${H}\r\n0\r\n\r\n`,
  `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
  `POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`,
  `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`,
  `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
  `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X-A: o\rne\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X-A: one\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X-A: one\r\r\n\r\n`,
  `GET / HTTP/1.1\n${H}\r\n`,
  `GET / HTTP/1.1\r\n${H}Content-Length : 0\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X-A\t: 1\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X@A: 1\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}: 1\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`,
  `GET /a\x01b HTTP/1.1\r\n${H}\r\n`,
  `GET /a\x7fb HTTP/1.1\r\n${H}\r\n`,
  `GET /a\xffb HTTP/1.1\r\n${H}\r\n`,
  `GET  / HTTP/1.1\r\n${H}\r\n`,
  `G(T / HTTP/1.1\r\n${H}\r\n`,
  `GET / http/1.1\r\n${H}\r\n`,
  `GET / HTTP/2.0\r\n${H}\r\n`,
  `GET / HTTP/1.1 \r\n${H}\r\n`,
  'GET / HTTP/1.1\r\n\r\n',
  `GET / HTTP/1.1\r\n${H}${H}\r\n`,
  `GET / HTTP/1.1\r\n${H}Expect: magic\r\n\r\n`,
  `GET /${'a'.repeat(250)} HTTP/1.1\r\n${H}\r\n`,
  `GET / HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(700)}\r\n\r\n`,
  `GET / HTTP/1.1\r\n${H}${'X-N: 1\r\n'.repeat(20)}\r\n`,
  `GET / HTTP/1.1\r\n${H} X-Lead: 1\r\n\r\n`,
  '\r\rGET / HTTP/1.1\r\n\r\n',
  '\nGET / HTTP/1.1\r\n\r\n',
];
const responses: string[] = [
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 16:50:30 GMT\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\nhello world\n',
  'HTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 404 Nicht gefunden \xfc\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Ows:  v  \r\n\r\n',
  // errors
  'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n',
  'HTTP/1.1 200 OK\nX-A: 1\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n',
  'HTTP/1.1 200 O\x01K\r\n\r\n',
  'HTTP/1.1 2000 OK\r\n\r\n',
  'HTTP/1.1 099 OK\r\n\r\n',
  'HTTP/1.1 20 OK\r\n\r\n',
  'HTTP/2 200 OK\r\n\r\n',
  'http/1.1 200 OK\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-Big: ' + 'b'.repeat(700) + '\r\n\r\n',
  'HTTP/1.1 200 OK\r\n' + 'X-N: 1\r\n'.repeat(21) + '\r\n',
];

test('a request head: one pass and two passes agree at every split (valid heads, every error, the limits)', (t) => {
  for (const h of requests) agree(t, 'request', Buffer.from(h, 'latin1'), JSON.stringify(h));
});

test('a response head: one pass and two passes agree at every split', (t) => {
  for (const h of responses) agree(t, 'response', Buffer.from(h, 'latin1'), JSON.stringify(h));
});

test('one pass gives what a head must give (not only what the two passes give)', (t) => {
  const req = Buffer.from(`GET /a?b HTTP/1.1\r\nHost: x\r\nX-Ows: \t v w \t\r\nContent-Length: 0\r\n\r\n`, 'latin1');
  t.like(agree(t, 'request', req, 'req'), {
    r: 7 + req.length,
    method: 'GET',
    target: [7 + 4, 7 + 8],
    minor: 1,
    contentLength: 0,
    hostCount: 1,
    head: [7, 7 + req.length],
  });
  const s = scan('request', req, 0, true)[0] as { fields: number[] };
  const at = (i: number): string => req.toString('latin1', s.fields[i]! - 7, s.fields[i + 1]! - 7);
  t.deepEqual([at(0), at(2), at(4), at(6), at(8), at(10)], ['Host', 'x', 'X-Ows', 'v w', 'Content-Length', '0']);
  const res = Buffer.from('HTTP/1.1 503 Busy Now\r\nRetry-After: 1\r\n\r\n', 'latin1');
  t.like(agree(t, 'response', res, 'res'), { r: 7 + res.length, status: 503, reason: [7 + 13, 7 + 21], minor: 1 });
  t.like(agree(t, 'request', Buffer.from(`GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`), 'bare CR'), { r: -1, errStatus: 400, errReason: 'bare CR in the head' });
  t.like(agree(t, 'request', Buffer.from(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n two\r\n\r\n`), 'obs-fold'), { r: -1, errStatus: 400, errReason: 'obs-fold or whitespace at the start of a field line' });
  t.like(agree(t, 'request', Buffer.from(`GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n`), 'CL+TE'), { r: -1, errStatus: 400, errReason: 'both Content-Length and Transfer-Encoding' });
  // A head cut anywhere is not whole, though the bytes after the cut (in the buffer) would make it so.
  for (let split = 1; split < req.length; split++) t.deepEqual(scan('request', req, split, true)[0], { r: 0 }, `split at ${split}`);
});

test('random mutations of valid heads: one pass and two passes agree', (t) => {
  // A fixed seed: a failure names its case, and the same cases run each time.
  let seed = 0x2f6e2b1;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const special = [0, 9, 10, 13, 32, 44, 58, 0x7f, 0xe9, 0x41, 0x61];
  const bases = [requests[1]!, requests[5]!, requests[8]!, responses[0]!, responses[6]!];
  let n = 0;
  for (let k = 0; k < 1500; k++) {
    const base = bases[k % bases.length]!;
    const b = Buffer.from(base, 'latin1');
    for (let m = 1 + rand(3); m > 0; m--) b[rand(b.length)] = special[rand(special.length)]!;
    const kind = base.startsWith('HTTP/') ? 'response' : 'request';
    for (const split of [0, rand(b.length), rand(b.length)]) {
      t.deepEqual(scan(kind, b, split, true), scan(kind, b, split, false), `${JSON.stringify(b.toString('latin1'))} split at ${split}`);
      n++;
    }
  }
  t.is(n, 4500);
});

rtTest('the server answers a head dripped byte by byte, and one split around each field line', async (t) => {
  await withServer(
    {},
    (req, res) => res.writeHead(200, { 'x-a': req.headers.get('x-a') ?? '-' }).end(req.url),
    async (port) => {
      const head = `GET /drip HTTP/1.1\r\n${H}X-A: dripped\r\nConnection: close\r\n\r\n`;
      const dripped = await raw(port, head.split(''), { gapMs: 1 });
      t.true(dripped.closed);
      t.regex(dripped.text, /^HTTP\/1\.1 200 OK\r\n[^]*x-a: dripped\r\n[^]*\r\n\r\n\/drip$/i);
      const lines = `GET /lines HTTP/1.1\r\n${H}X-A: split\r\nConnection: close\r\n\r\n`;
      const split = await raw(port, lines.split(/(?<=\r\n)/), { gapMs: 5 });
      t.regex(split.text, /^HTTP\/1\.1 200 OK\r\n[^]*x-a: split\r\n[^]*\/lines$/i);
    },
  );
});

test("the scanner's name codes, and a head forwarded by them (hop-by-hop fields left out, in any case)", async (t) => {
  interface View {
    _names: Uint8Array;
  }
  const { HeaderView } = (await import(new URL('../../packages/http/dist/headers.js', import.meta.url).href)) as {
    HeaderView: new (buf: Buffer, offs: Int32Array, count: number, names: Uint8Array) => View;
  };
  const fwd = (await import(new URL('../../packages/http/dist/forward.js', import.meta.url).href)) as {
    forwardFields(h: View, out: { buf: Buffer; len: number; flags: number; declared: number }, rules: { request: boolean; dropLength: boolean; dropHost: boolean; drop: Set<string> | undefined }): number;
  };
  const names = [
    'TE', 'Via', 'Host', 'Date', 'Expect', 'Upgrade', 'Trailer', 'Forwarded', 'Connection', 'Keep-Alive', 'Content-Length',
    'X-Forwarded-For', 'Proxy-Connection', 'X-Forwarded-Host', 'Transfer-Encoding', 'X-Forwarded-Proto', 'Proxy-Authenticate',
    'Proxy-Authorization',
  ];
  // Each name in two cases, between look-alikes of the same length (not to be left out).
  const lookAlike = (n: string): string => `${n.slice(0, -1)}${n.endsWith('x') ? 'y' : 'x'}`;
  const value = (n: string): string => (n === 'Content-Length' ? '0' : n === 'Transfer-Encoding' ? 'chunked' : n === 'Expect' ? '100-continue' : 'v');
  // Host and Transfer-Encoding once (twice is an error), in upper case.
  const once = (n: string): boolean => n === 'Host' || n === 'Transfer-Encoding';
  const lines = names.flatMap((n) => [`${lookAlike(n)}: a`, ...(once(n) ? [] : [`${n}: ${value(n)}`]), `${n.toUpperCase()}: ${value(n)}`, `X-Other-${n}: b`]);
  for (const kind of ['request', 'response'] as const) {
    // A request head may not have both framings: one head without Transfer-Encoding, one without Content-Length.
    for (const without of ['Transfer-Encoding', 'Content-Length']) {
      const fields = lines.filter((l) => !l.toLowerCase().startsWith(`${without.toLowerCase()}:`)).join('\r\n');
      const text = kind === 'request' ? `GET / HTTP/1.1\r\n${fields}\r\n\r\n` : `HTTP/1.1 200 OK\r\n${fields}\r\n\r\n`;
      const buf = Buffer.from(text, 'latin1');
      const p = new HeadParser({ maxHeaders: 100, maxHeaderSize: 8192, maxRequestLineSize: 8192 }) as Parser & { names: Uint8Array };
      const end = kind === 'request' ? p.request(buf, 0, buf.length) : p.response(buf, 0, buf.length);
      t.is(end, buf.length, `${kind} without ${without}: ${p.errReason}`);
      // Every name the scanner knows gets its own code, the same in both cases; look-alikes get none.
      const codes = new Map<string, number>();
      for (let i = 0; i < p.count; i++) {
        const name = buf.toString('latin1', p.offs[4 * i]!, p.offs[4 * i + 1]!).toLowerCase();
        const known = names.some((n) => n.toLowerCase() === name);
        if (!known) t.is(p.names[i], 0, name);
        else {
          t.not(p.names[i], 0, name);
          t.is(codes.get(name) ?? p.names[i], p.names[i], name);
          codes.set(name, p.names[i]!);
        }
      }
      t.is(new Set(codes.values()).size, codes.size);
      for (const request of [true, false]) {
        const h = new HeaderView(buf, p.offs, p.count, p.names);
        const out = { buf: Buffer.alloc(64), len: 0, flags: 0, declared: -1 };
        const seen = fwd.forwardFields(h, out, { request, dropLength: false, dropHost: false, drop: undefined });
        // What must be copied: every field line but the hop-by-hop ones (and, of a request, Expect, Forwarded, X-Forwarded-*).
        const hop = ['te', 'upgrade', 'trailer', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'proxy-authenticate', 'proxy-authorization'];
        const left = request ? [...hop, 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'] : hop;
        const kept = fields.split('\r\n').filter((l) => !left.includes(l.slice(0, l.indexOf(':')).toLowerCase()));
        t.is(out.buf.toString('latin1', 0, out.len), `${kept.join('\r\n')}\r\n`, `${kind} head forwarded as a ${request ? 'request' : 'response'}`);
        // The flags of the fields seen: Connection, Host, Date, Content-Length (when sent), Via, and a request's Forwarded / X-Forwarded-*.
        const want = 1 | 2 | 64 | 256 | (without === 'Content-Length' ? 0 : 128) | (request ? 4 | 8 | 16 | 32 : 0);
        t.is(seen, want, `${kind} head forwarded as a ${request ? 'request' : 'response'}: flags`);
      }
    }
  }
});

test("connectionNamesOf skips the fields when the scanner saw only keep-alive / close in Connection, and finds every other name", async (t) => {
  interface View {
    get(name: string): string | null;
  }
  const { HeaderView } = (await import(new URL('../../packages/http/dist/headers.js', import.meta.url).href)) as {
    HeaderView: new (buf: Buffer, offs: Int32Array, count: number, names: Uint8Array, connNames?: boolean) => View;
  };
  const { CONN_OTHER } = (await import(new URL('../../packages/http/dist/parse.js', import.meta.url).href)) as { CONN_OTHER: number };
  const fwd = (await import(new URL('../../packages/http/dist/forward.js', import.meta.url).href)) as {
    connectionNamesOf(h: View): Set<string> | undefined;
    connectionNames(v: string | null): Set<string> | undefined;
  };
  // Connection field values (one field, or several); each compared with the string way of reading them.
  const values = [
    ['keep-alive'], ['close'], ['Keep-Alive'], ['CLOSE'], ['keep-alive, x-a'], ['X-A'], ['upgrade'], ['Upgrade, keep-alive'],
    [' close , X-B '], ['keep-alive,,close'], [''], ['close', 'x-c'], ['keep-alive', 'close'], ['x-close'], ['keep-alivex'],
    ['closer'], ['keep-alive\tx-d'], ['te, trailer'],
  ];
  for (const kind of ['request', 'response'] as const) {
    for (const onePass of [true, false]) {
      HeadParser.onePass = onePass;
      try {
        for (const vs of values) {
          const fields = `Host: x\r\n${vs.map((v) => `Connection: ${v}\r\n`).join('')}X-Z: z\r\n`;
          const buf = Buffer.from(kind === 'request' ? `GET / HTTP/1.1\r\n${fields}\r\n` : `HTTP/1.1 200 OK\r\n${fields}\r\n`, 'latin1');
          const p = new HeadParser({ maxHeaders: 100, maxHeaderSize: 8192, maxRequestLineSize: 8192 }) as Parser & { names: Uint8Array };
          t.is(kind === 'request' ? p.request(buf, 0, buf.length) : p.response(buf, 0, buf.length), buf.length, `${kind} ${JSON.stringify(vs)}: ${p.errReason}`);
          const h = new HeaderView(buf, p.offs, p.count, p.names, (p.conn & CONN_OTHER) !== 0);
          const want = fwd.connectionNames(h.get('connection'));
          t.deepEqual(fwd.connectionNamesOf(h), want, `${kind} ${JSON.stringify(vs)}${onePass ? '' : ', two passes'}`);
          // A view that says nothing of the scan (the default) reads the fields: the same names.
          t.deepEqual(fwd.connectionNamesOf(new HeaderView(buf, p.offs, p.count, p.names)), want);
        }
      } finally {
        HeadParser.onePass = true;
      }
    }
  }
});

test("name codes by length and first letter, then the whole name four bytes a step: a name one byte off gets none, and its framing is not read", (t) => {
  const known: [string, string][] = [
    // name, a value that fails the head when the name is taken as this one (or '' when none does)
    ['te', ''], ['via', ''], ['host', ''], ['date', ''], ['expect', 'magic'], ['upgrade', ''], ['trailer', ''], ['forwarded', ''],
    ['connection', ''], ['keep-alive', ''], ['content-length', 'x'], ['x-forwarded-for', ''], ['proxy-connection', ''],
    ['x-forwarded-host', ''], ['transfer-encoding', 'gzip'], ['x-forwarded-proto', ''], ['proxy-authenticate', ''],
    ['proxy-authorization', ''],
  ];
  const parse = (fields: string[]): Parser & { names: Uint8Array } => {
    // Host is there once (a name one byte off Host beside it is not a second one).
    const host = fields.some((f) => f.toLowerCase().startsWith('host:')) ? '' : H;
    const buf = Buffer.from(`GET / HTTP/1.1\r\n${host}${fields.map((f) => `${f}\r\n`).join('')}\r\n`, 'latin1');
    const p = new HeadParser({ maxHeaders: 100, maxHeaderSize: 8192, maxRequestLineSize: 8192 }) as Parser & { names: Uint8Array };
    const r = p.request(buf, 0, buf.length);
    t.is(r, buf.length, `${JSON.stringify(fields)}: ${p.errReason}`);
    agree(t, 'request', buf, JSON.stringify(fields));
    return p;
  };
  const codes = new Map<string, number>();
  for (const [name] of known) {
    // Each byte in upper case on its own: the same code as the name in lower case.
    const at = name === 'host' ? 0 : 1;
    const code = parse([`${name}: ${name === 'content-length' ? '1' : name === 'transfer-encoding' ? 'chunked' : name === 'expect' ? '100-continue' : 'v'}`]).names[at]!;
    t.not(code, 0, name);
    codes.set(name, code);
    for (let j = 0; j < name.length; j++) {
      const n = name.slice(0, j) + name[j]!.toUpperCase() + name.slice(j + 1);
      t.is(parse([`${n}: ${name === 'content-length' ? '1' : name === 'transfer-encoding' ? 'chunked' : name === 'expect' ? '100-continue' : 'v'}`]).names[at], code, n);
    }
  }
  t.is(new Set(codes.values()).size, known.length);
  // One byte off at each position (a tchar that no case folding makes the right one), and the first byte
  // replaced by a tchar that is not a letter but has the letter's low 5 bits (the same table entry):
  // no code, and a value that would fail the head as that field is not read.
  const other = (c: string): string[] => {
    const out = ['#', '!'];
    for (const x of "!#$%&'*+-.^_`|~0123456789") if ((x.charCodeAt(0) & 31) === (c.charCodeAt(0) & 31)) out.push(x);
    return out.filter((x) => x.toLowerCase() !== c);
  };
  let n = 0;
  for (const [name, bad] of known) {
    for (let j = 0; j < name.length; j++) {
      for (const x of j === 0 ? other(name[0]!) : ['#', name[j] === 'z' ? 'y' : 'z']) {
        const off = name.slice(0, j) + x + name.slice(j + 1);
        const p = parse([`${off}: ${bad || 'v'}`]);
        t.is(p.names[1], 0, off);
        n++;
      }
    }
    // The name itself with that value fails the head (the value above was read only if the name was taken).
    if (bad) {
      const buf = Buffer.from(`GET / HTTP/1.1\r\n${H}${name}: ${bad}\r\n\r\n`, 'latin1');
      const p = new HeadParser(LIMITS);
      t.is(p.request(buf, 0, buf.length), -1, `${name}: ${bad}`);
    }
  }
  t.true(n > 250);
  // The framing rules on names in any case, both ways: CL with TE, differing CLs, a second Host.
  for (const [kind, h, reason] of [
    ['request', `POST / HTTP/1.1\r\n${H}cOnTeNt-LeNgTh: 5\r\nTRANSFER-encoding: chunked\r\n\r\n`, 'both Content-Length and Transfer-Encoding'],
    ['request', `POST / HTTP/1.1\r\n${H}CONTENT-LENGTH: 5\r\ncontent-length: 6\r\n\r\n`, 'differing Content-Length values'],
    ['request', `GET / HTTP/1.1\r\n${H}HOST: y\r\n\r\n`, 'more than one Host'],
    ['response', 'HTTP/1.1 200 OK\r\ntransfer-ENCODING: chunked\r\nContent-LENGTH: 1\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
    ['response', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nCONTENT-LENGTH: 2\r\n\r\n', 'differing Content-Length values'],
  ] as const) {
    t.like(agree(t, kind, Buffer.from(h, 'latin1'), h), { r: -1, errReason: reason }, h);
  }
});

test('the four-bytes-a-step reads of long heads (DataView words) agree with the byte-by-byte scan: every byte value at every place of a name and a value, any alignment, any buffer offset', (t) => {
  // A head is read in words only when its field section is WORDS_MIN (64) bytes or more: each one here
  // has a filler field of 70 bytes. The byte under test goes into a name or a value at each of 12
  // places (three words, so at each of the four places in a word), after a prefix of 0..3 bytes, in a
  // buffer whose byteOffset is 0 or not (a DataView of the whole ArrayBuffer reads at byteOffset + p).
  // The two-pass scan reads every byte by the tables. (A word test that takes a byte it should not
  // gives a head the two passes refuse, or other offsets; one that refuses a good word only costs time:
  // the byte-by-byte loop reads it.)
  const filler = `X-Filler: ${'f'.repeat(60)}\r\n`;
  const heads: [kind: 'request' | 'response', head: Buffer][] = [];
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(b);
    for (let at = 0; at < 12; at++) {
      const pad = 'abcd'.slice(0, at % 4);
      // And the end of the name or value (the colon, the CR) at three of the four places in a word for
      // each byte: a word test that misses a byte in one place of a word may still stop at the CR there.
      const tail = 'xyz'.slice(0, (b + (at >> 2)) % 4);
      const name = `${'Name-abcdefgh'.slice(0, at)}${ch}${'ijklmnop-qrstu'.slice(at)}${tail}`;
      const value = `${'v1/2 3;q=0.5,x'.slice(0, at)}${ch}${'Wxyz \u00e9/;=,abcd'.slice(at)}${tail}`;
      for (const line of [`${name}: v\r\n`, `X-${pad}: ${value}\r\n`, `${pad}${name}:${value}\r\n`]) {
        heads.push(['request', Buffer.from(`GET /${pad} HTTP/1.1\r\n${H}${filler}${line}\r\n`, 'latin1')]);
        heads.push(['response', Buffer.from(`HTTP/1.1 200 OK${pad}\r\n${filler}${line}Content-Length: 0\r\n\r\n`, 'latin1')]);
      }
    }
  }
  // Each head at offset 7 of a buffer of its own (byteOffset 0), then of a buffer that starts 5 bytes
  // into a shared ArrayBuffer; one parser for all of those (its view of the last buffer is kept).
  const shared = new ArrayBuffer(4096);
  const reused = new HeadParser(LIMITS);
  let words = 0;
  for (const [kind, head] of heads) {
    const want = scan(kind, head, 0, false)[0];
    t.deepEqual(scan(kind, head, 0, true)[0], want, `${kind} ${JSON.stringify(head.toString('latin1'))}`);
    const buf = Buffer.from(shared, 5, head.length + 64).fill(0x78);
    head.copy(buf, 7);
    const r = reused[kind](buf, 7, 7 + head.length);
    const got = state(reused, r, kind) as { fields?: number[]; head?: number[] };
    // The same offsets, relative to the buffer.
    t.deepEqual(got, want, `${kind} at byteOffset 5 ${JSON.stringify(head.toString('latin1'))}`);
    if (r > 0) words++;
  }
  // Valid heads among them (so the word path ran to the end of heads, not only into errors).
  t.true(words > 1000, `${words} valid heads`);
});
