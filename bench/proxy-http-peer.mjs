#!/usr/bin/env node
// The Node peers of bench/proxy-http.mjs, one per process: a reverse proxy on 127.0.0.1:<port> to the
// upstream http://127.0.0.1:<upstreamPort>, the way their documentation sets them up for keep-alive.
//   http-proxy-3: createProxyServer with a keep-alive http.Agent (maxSockets 128) under node:http.
//   @fastify/http-proxy: its defaults (undici pool with keep-alive), fastify's logger off.
// Usage: node bench/proxy-http-peer.mjs http-proxy-3|fastify <port> <upstreamPort>
import http from 'node:http';

const [kind, port, upstreamPort] = process.argv.slice(2);
const target = `http://127.0.0.1:${Number(upstreamPort)}`;
if (kind === 'http-proxy-3') {
  const { createProxyServer } = await import('http-proxy-3');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const proxy = createProxyServer({ target, agent });
  proxy.on('error', (_err, _req, res) => {
    if (res && 'writeHead' in res && !res.headersSent) res.writeHead(502).end();
  });
  const server = http.createServer((req, res) => proxy.web(req, res));
  server.keepAliveTimeout = 60_000;
  server.listen(Number(port), '127.0.0.1');
} else if (kind === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
  await app.register(proxy, { upstream: target });
  await app.listen({ port: Number(port), host: '127.0.0.1' });
} else {
  console.error(`unknown peer ${kind} (http-proxy-3 or fastify)`);
  process.exit(2);
}
