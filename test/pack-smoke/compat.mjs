// @ringio/compat from its tarball: a node:http server on ringio sockets answers a node:http client.
import http from 'node:http';
import { start, spawn } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';
import { toDuplex } from '@ringio/compat';

const body = await start(async () => {
  const listener = await TcpListener.bind('127.0.0.1:0');
  const server = http.createServer((req, res) => res.end(`hello ${req.method} ${req.url}\n`));
  server.emit('listening');
  const accept = spawn(async () => {
    for await (const [stream] of listener) server.emit('connection', toDuplex(stream));
  });
  const { port } = listener.localAddr;
  const text = await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/smoke', agent: false }, (res) => {
      let s = '';
      res.setEncoding('utf8').on('data', (c) => (s += c)).on('end', () => resolve(`${res.statusCode} ${s}`));
    });
    req.on('error', reject);
  });
  await listener.close();
  await accept;
  server.closeAllConnections();
  return text;
});
if (body !== '200 hello GET /smoke\n') throw new Error(`response ${JSON.stringify(body)}`);
console.log(`ok compat: node:http over ringio answered ${JSON.stringify(body.trim())}`);
