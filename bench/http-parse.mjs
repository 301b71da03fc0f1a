#!/usr/bin/env node
// Scenario: parsing HTTP/1.1 heads, two approaches side by side (for docs/design/http.md):
//   ringio   @ringio/http's HeadParser: a TypeScript scanner over the bytes, offsets into an Int32Array,
//            the method interned, no other string made (then: url and one header made as strings, the
//            way a handler that reads req.url and one header pays; for a response, one header)
//   llhttp   Node's native llhttp binding (the HTTPParser node:http uses): C parsing, and a JS callback
//            with the method, url and every header as strings
// Heads: wrk's (2 fields), curl's (3 fields) and a browser's (14 fields, 560 bytes) requests, and
// nginx's response head (5 fields, 150 bytes: what a proxy in front of nginx scans per request). Rounds
// are interleaved, figures are medians of ns per head.
// --roots a,b: the scanner of each checkout (its packages built) in the same process, rounds interleaved
// (ringio_scan@<dir name>, without the url+host case): an A/B of two builds.
// Usage: node bench/http-parse.mjs [--rounds 5] [--n 500000] [--roots /path/a,/path/b]
import { createRequire } from 'node:module';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { arg, emit, interleave, median, table } from './lib.mjs';
import { HeadParser } from '../packages/http/dist/parse.js';
import { HeaderView } from '../packages/http/dist/headers.js';

const require = createRequire(import.meta.url);
const { HTTPParser } = require('_http_common');
const rounds = Number(arg('rounds', 5));
const n = Number(arg('n', 500_000));
const roots = arg('roots', '') === '' ? [] : String(arg('roots', '')).split(',').map((r) => resolve(r));
const builds = await Promise.all(roots.map(async (r) => ({ name: basename(r), HeadParser: (await import(pathToFileURL(`${r}/packages/http/dist/parse.js`).href)).HeadParser })));

const heads = {
  wrk: 'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n',
  curl: 'GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n',
  browser:
    'GET /static/app.js?v=1234 HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n' +
    'sec-ch-ua: "Chromium";v="120", "Not?A_Brand";v="8"\r\nsec-ch-ua-mobile: ?0\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n' +
    'sec-ch-ua-platform: "Linux"\r\nAccept: */*\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\n' +
    'Sec-Fetch-Dest: script\r\nReferer: https://www.example.com/\r\nAccept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.9\r\nCookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\r\n',
  nginx_response:
    'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 23:00:00 GMT\r\n' +
    'Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n',
};

function ringio(buf, withStrings, isResponse, Parser = HeadParser) {
  const p = new Parser({ maxHeaders: 100, maxHeaderSize: 16384, maxRequestLineSize: 8192 });
  const view = new HeaderView(buf, p.offs, 0, p.names);
  return () => {
    let sink = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const end = isResponse ? p.response(buf, 0, buf.length) : p.request(buf, 0, buf.length);
      if (end <= 0) throw new Error(`parse failed: ${p.errReason}`);
      sink += end;
      if (withStrings) {
        view._count = p.count;
        if (isResponse) sink += view.get('content-type')?.length ?? 0;
        else sink += buf.latin1Slice(p.targetStart, p.targetEnd).length + (view.get('host')?.length ?? 0);
      }
    }
    if (sink === 0) throw new Error('parse failed');
    return Number(process.hrtime.bigint() - t0) / n;
  };
}

function llhttp(buf, isResponse) {
  const p = new HTTPParser();
  let sink = 0;
  p[HTTPParser.kOnHeadersComplete] = (versionMajor, versionMinor, headers, method, url, statusCode) => {
    sink += headers.length + (isResponse ? statusCode : url.length);
  };
  p[HTTPParser.kOnHeaders] = () => {};
  p[HTTPParser.kOnBody] = () => {};
  p[HTTPParser.kOnMessageComplete] = () => {};
  p.initialize(isResponse ? HTTPParser.RESPONSE : HTTPParser.REQUEST, {});
  return () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = p.execute(buf);
      if (typeof r !== 'number') throw r;
    }
    if (sink === 0) throw new Error('parse failed');
    return Number(process.hrtime.bigint() - t0) / n;
  };
}

const out = [];
for (const [name, text] of Object.entries(heads)) {
  const buf = Buffer.from(text, 'latin1');
  const isResponse = name.endsWith('_response');
  const ours = builds.length > 0 ? builds.map((b) => ({ name: `ringio_scan@${b.name}`, run: ringio(buf, false, isResponse, b.HeadParser) })) : [
    { name: 'ringio_scan', run: ringio(buf, false, isResponse) },
    { name: isResponse ? 'ringio_scan+one_get' : 'ringio_scan+url+host', run: ringio(buf, true, isResponse) },
  ];
  const cases = [
    ...ours,
    // llhttp is given the response's 5-byte body too, or it would take the next head's bytes as it.
    { name: 'llhttp_native', run: llhttp(isResponse ? Buffer.concat([buf, Buffer.from('hello')]) : buf, isResponse) },
  ];
  const runs = await interleave(rounds, cases, { rotate: true });
  const base = median(runs.get('llhttp_native'));
  for (const c of cases) {
    const ns = median(runs.get(c.name));
    out.push({ bench: 'http-parse', head: name, bytes: buf.length, parser: c.name, ns_per_head: Number(ns.toFixed(1)), ratio_to_llhttp: Number((ns / base).toFixed(3)) });
  }
}
table(out.map(({ bench, ...r }) => r));
emit(out);
