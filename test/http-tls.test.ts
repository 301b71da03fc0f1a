/**
 * HTTPS with @ringio/http on the driver under test: serve({ tls }) against curl (--cacert with SNI through
 * --resolve, each name verified against its own certificate, and -k) and node:https with a keep-alive
 * Agent (one connection for many requests, a 1 MiB POST echoed); HttpClient with https: URLs against
 * node:https (pooled, verified, and typed failures); failed handshakes counted in stats().tlsErrors; and
 * @ringio/compat's listenSecure serving express over ringio TLS (req.secure) to node:https.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import { promisify } from 'node:util';
import express from 'express';
import { listenSecure } from '@ringio/compat';
import { HttpClient, serve } from '@ringio/http';
import { tlsCounts, type SocketAddr } from '@ringio/net';
import { rtTest, run } from './helpers.js';
import { closeSecure, makeCert, opensslMissing } from './tls-helpers.js';

const A = opensslMissing === null ? makeCert(['a.test', 'localhost']) : undefined;
const B = opensslMissing === null ? makeCert(['b.test']) : undefined;
const exec = promisify(execFile);
const curlMissing: string | null = await exec('curl', ['--version']).then(
  () => null,
  () => 'curl is not installed',
);
const tlsTest = (title: string, fn: Parameters<typeof rtTest>[1]): void => rtTest(title, fn, 60_000, opensslMissing ?? curlMissing);

/** A node:https GET or POST; resolves status, body and the socket's local port (to count connections). */
function httpsRequest(port: number, path: string, opts: https.RequestOptions & { body?: Buffer } = {}): Promise<{ status: number; body: Buffer; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, servername: 'a.test', ca: A!.cert, ...opts }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), localPort: (req.socket as net.Socket).localPort ?? 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

tlsTest('serve({ tls }): curl with SNI picks each certificate; node:https keeps one connection; a 1 MiB POST echoes', async (t) => {
  await run(async () => {
    const server = await serve({ port: 0, tls: { cert: A!.cert, key: A!.key, sni: [{ cert: B!.cert, key: B!.key }] } }, async (req, res) => {
      let n = 0;
      const h = createHash('sha256');
      for await (const chunk of req.body) {
        n += chunk.length;
        h.update(chunk);
      }
      res.end(`${req.method} ${req.url} ${n} ${n > 0 ? h.digest('hex') : ''}`);
    });
    const port = (server.address as SocketAddr).port;
    const dir = (await import('node:fs')).mkdtempSync('/tmp/ringio-https-');
    const fs = await import('node:fs');
    fs.writeFileSync(`${dir}/a.pem`, A!.cert);
    fs.writeFileSync(`${dir}/b.pem`, B!.cert);
    try {
      for (const name of ['a', 'b']) {
        // Verifies only if the server chose this name's certificate.
        const { stdout } = await exec('curl', ['-sS', '--max-time', '10', '--cacert', `${dir}/${name}.pem`, '--resolve', `${name}.test:${port}:127.0.0.1`, `https://${name}.test:${port}/x`]);
        t.is(stdout, 'GET /x 0 ');
      }
      const wrong = await exec('curl', ['-sS', '--max-time', '10', '--cacert', `${dir}/a.pem`, '--resolve', `b.test:${port}:127.0.0.1`, `https://b.test:${port}/`]).catch((e: { code?: number }) => e);
      t.is((wrong as { code?: number }).code, 60, 'curl refuses a certificate that is not the one it trusts (exit 60)');
      const { stdout: k } = await exec('curl', ['-sSk', '--max-time', '10', `https://127.0.0.1:${port}/k`, `https://127.0.0.1:${port}/k2`]);
      t.is(k, 'GET /k 0 GET /k2 0 ', 'curl -k, two requests on one connection');
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      const ports = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const r = await httpsRequest(port, `/r${i}`, { agent });
        t.is(r.body.toString(), `GET /r${i} 0 `);
        ports.add(r.localPort);
      }
      t.is(ports.size, 1, 'keep-alive over TLS: one connection');
      const big = Buffer.alloc(1024 * 1024, 7);
      const posted = await httpsRequest(port, '/up', { agent, method: 'POST', body: big, headers: { 'content-length': String(big.length) } });
      t.is(posted.body.toString(), `POST /up ${big.length} ${createHash('sha256').update(big).digest('hex')}`);
      agent.destroy();
      // A plain-HTTP request to the HTTPS port: a failed handshake, counted, the server unharmed.
      const before = server.stats().tlsErrors;
      t.true(before >= 1, 'the handshake curl refused is counted');
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => s.once('close', r));
      for (let i = 0; i < 50 && server.stats().tlsErrors === before; i++) await new Promise((r) => setTimeout(r, 20));
      t.is(server.stats().tlsErrors, before + 1);
      t.is((await httpsRequest(port, '/after')).status, 200);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await server.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 }, 'the server freed its context and sessions');
  });
});

tlsTest('HttpClient: https: URLs pooled per origin, verified with ca; bad certificates reject with Node codes', async (t) => {
  let connections = 0;
  const srv = https.createServer({ cert: A!.cert, key: A!.key }, (req, res) => res.end(`hello ${req.url}`));
  srv.on('secureConnection', () => connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    await run(async () => {
      const client = new HttpClient({ tls: { ca: A!.cert } });
      for (let i = 0; i < 10; i++) {
        const r = await client.request(`https://localhost:${port}/${i}`);
        t.is(r.status, 200);
        t.is(await r.text(), `hello /${i}`);
      }
      t.is(connections, 1, 'one pooled connection');
      await client.close();
      const misnamed = new HttpClient({ tls: () => ({ ca: A!.cert, servername: 'wrong.test' }) });
      await t.throwsAsync(misnamed.request(`https://127.0.0.1:${port}/`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      await misnamed.close();
      const strict = new HttpClient();
      await t.throwsAsync(strict.request(`https://localhost:${port}/`), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      await strict.close();
      const lax = new HttpClient({ tls: (origin) => ({ rejectUnauthorized: origin.hostname !== 'localhost' }) });
      t.is(await (await lax.request(`https://localhost:${port}/lax`)).text(), 'hello /lax');
      await lax.close();
      t.throws(() => new HttpClient({ tls: 5 as never }), { instanceOf: TypeError });
      await new Promise((r) => setTimeout(r, 50));
      t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
    });
  } finally {
    srv.close();
  }
});

tlsTest('compat listenSecure: express over ringio TLS to node:https (req.secure, keep-alive)', async (t) => {
  await run(async () => {
    const app = express();
    app.get('/who', (req, res) => {
      res.send(`${req.secure} ${req.protocol}`);
    });
    const http = await import('node:http');
    const server = http.createServer(app);
    const l = await listenSecure(server, { tls: { cert: A!.cert, key: A!.key } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await httpsRequest(l.address.port, '/who', { agent });
        t.is(r.status, 200);
        t.is(r.body.toString(), 'true https');
      }
      const s = net.connect(l.address.port, '127.0.0.1');
      s.on('error', () => {});
      s.end('not tls at all\r\n\r\n');
      await new Promise((r) => s.once('close', r));
      for (let i = 0; i < 50 && l.handshakeErrors === 0; i++) await new Promise((r) => setTimeout(r, 20));
      t.is(l.handshakeErrors, 1);
    } finally {
      await closeSecure(agent, l, server);
    }
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});
