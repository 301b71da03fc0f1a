#!/usr/bin/env node
// node:http on ringio: a ringio TcpListener accepts, toDuplex() turns each TcpStream into a Duplex, and
// an http.Server that never listens itself serves it (server.emit('connection', duplex)).
// Answers every request with 'hello world\n' (text/plain, keep-alive).
// Usage: node examples/http-server.mjs --port P [--driver uring|epoll|auto] [--threads N] [--host 127.0.0.1]
import http from 'node:http';
import { start, stats, watch } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';
import { toDuplex } from '@ringio/compat';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback;
};
const port = Number(opt('port', '8080'));
const host = opt('host', '127.0.0.1');
const driver = opt('driver', process.env.RINGIO_DRIVER || 'auto');
const threads = Number(opt('threads', '1'));

const BODY = Buffer.from('hello world\n');
function hello(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
}

async function main(ctx) {
  // One listener per thread on the same port: SO_REUSEPORT lets the kernel spread the connections.
  const listener = await TcpListener.bind({ host, port }, { reusePort: true });
  const server = http.createServer(hello);
  // http.Server tracks its connections (headersTimeout, requestTimeout, closeAllConnections) from
  // 'listening' on; this server never listens itself, so say it once.
  server.emit('listening');
  // Signals reach thread 0 only: it tells every thread through a watch, and each closes its listener.
  const stop = () => listener.close();
  if (ctx.threadId === 0) {
    const all = () => ctx.shared.stopping.set(true);
    process.once('SIGINT', all);
    process.once('SIGTERM', all);
  }
  ctx.shared.stopping.changed({ signal: ctx.signal }).then(stop, stop);
  if (ctx.signal.aborted) stop();
  ctx.signal.addEventListener('abort', stop);
  // Said once the signals are handled: a supervisor may signal as soon as it reads this.
  const s = stats();
  console.error(
    `ringio http on ${host}:${listener.localAddr.port}, thread ${ctx.threadId + 1}/${ctx.threads}, driver ${s.driver}` +
      (s.fallbackReason ? ` (${s.fallbackReason})` : ''),
  );
  await listener.acceptEach((stream) => server.emit('connection', toDuplex(stream)));
  server.closeAllConnections();
}

const stopping = watch(false);
await start(main, { driver, threads, shared: { stopping } });
