#!/usr/bin/env node
// A TLS echo server: node:tls over ringio sockets. Each accepted TcpStream becomes a Duplex (toDuplex)
// and node:tls runs on top of it (new tls.TLSSocket(duplex, { isServer: true })). Without --cert/--key
// it makes a throwaway self-signed certificate for localhost with openssl, and prints its path.
// Usage: node examples/tls-echo.mjs --port P [--driver uring|epoll|auto] [--cert cert.pem --key key.pem]
// Try:   openssl s_client -quiet -connect 127.0.0.1:P -CAfile <the printed cert>
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { start, stats } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';
import { toDuplex } from '@ringio/compat';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback;
};
const port = Number(opt('port', '8443'));
const host = opt('host', '127.0.0.1');
const driver = opt('driver', process.env.RINGIO_DRIVER || 'auto');
let certFile = opt('cert', undefined);
let keyFile = opt('key', undefined);

if ((certFile === undefined) !== (keyFile === undefined)) {
  console.error('give both --cert and --key, or neither');
  process.exit(2);
}
let tmp;
if (certFile === undefined) {
  tmp = mkdtempSync(join(tmpdir(), 'ringio-tls-echo-'));
  certFile = join(tmp, 'cert.pem');
  keyFile = join(tmp, 'key.pem');
  try {
    // A P-256 key and a one-day self-signed certificate for localhost and 127.0.0.1.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    console.error(`could not make a certificate with openssl (${e.code ?? e.message}): pass --cert and --key`);
    rmSync(tmp, { recursive: true, force: true });
    process.exit(2);
  }
}
const secureContext = tls.createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });

function echo(stream) {
  const socket = new tls.TLSSocket(toDuplex(stream), { isServer: true, secureContext });
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('end', () => socket.end());
  socket.on('error', (e) => {
    console.error(`connection error: ${e.code ?? e.message}`);
    socket.destroy();
  });
}

try {
  await start(
    async (ctx) => {
      const listener = await TcpListener.bind({ host, port });
      const stop = () => listener.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      ctx.signal.addEventListener('abort', stop);
      const s = stats(); // said once the signals are handled
      console.error(`ringio TLS echo on ${host}:${listener.localAddr.port}, driver ${s.driver}; certificate ${certFile}`);
      for await (const [stream] of listener) echo(stream);
    },
    { driver },
  );
} finally {
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
}
