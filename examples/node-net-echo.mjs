#!/usr/bin/env node
// The node:net baseline for the echo benchmark: socket.on('data', d => socket.write(d)), noDelay.
// Usage: node examples/node-net-echo.mjs --port P (or the port as the last argument)
import net from 'node:net';

const argv = process.argv.slice(2);
const i = argv.indexOf('--port');
const last = argv[argv.length - 1];
const port = Number(i >= 0 ? argv[i + 1] : /^\d+$/.test(last ?? '') ? last : '7001');

const sockets = new Set();
const server = net.createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('data', (d) => socket.write(d));
  socket.on('error', () => socket.destroy());
});
server.listen(port, '127.0.0.1', () => console.error(`node:net echo on 127.0.0.1:${server.address().port}`));
// server.close() waits for open connections: end them too, as the ringio servers do.
const stop = () => {
  server.close(() => process.exit(0));
  for (const s of sockets) s.destroy();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
