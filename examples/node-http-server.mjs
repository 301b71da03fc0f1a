#!/usr/bin/env node
// The node:http baseline for bench/http.mjs: the same handler as examples/http-server.mjs on plain
// node:http (libuv sockets).
// Usage: node examples/node-http-server.mjs --port P [--host 127.0.0.1]
import http from 'node:http';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback;
};
const port = Number(opt('port', '8081'));
const host = opt('host', '127.0.0.1');

const BODY = Buffer.from('hello world\n');
function hello(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
}

const server = http.createServer(hello);
server.listen(port, host, () => console.error(`node:http on ${host}:${server.address().port}`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
