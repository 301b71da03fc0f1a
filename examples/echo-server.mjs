#!/usr/bin/env node
// A TCP echo server on ringio: echoes every byte back, for as long as it runs.
// Usage: node examples/echo-server.mjs --port P [--driver uring|epoll|auto] [--host 127.0.0.1]
// The port may also be the last argument (as the reference instruments in ../shared/bench pass it).
import { spawn, start, stats } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback;
};
const last = argv[argv.length - 1];
const port = Number(opt('port', /^\d+$/.test(last ?? '') ? last : '7000'));
const host = opt('host', '127.0.0.1');
const driver = opt('driver', process.env.RINGIO_DRIVER || 'auto');

async function echo(stream) {
  // One rented buffer per connection: it goes to the kernel and comes back with every read and write.
  let buf = Buffer.allocUnsafe(16384);
  try {
    for (;;) {
      const [n, b] = await stream.read(buf);
      if (n === 0) break;
      [, buf] = await stream.writeAll(b, { length: n });
    }
  } catch (e) {
    if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE' && e.code !== 'ERR_RINGIO_CLOSED') throw e;
  } finally {
    await stream.close();
  }
}

await start(
  async (ctx) => {
    const listener = await TcpListener.bind({ host, port });
    const s = stats();
    console.error(`ringio echo on ${host}:${listener.localAddr.port}, driver ${s.driver}${s.fallbackReason ? ` (${s.fallbackReason})` : ''}`);
    const stop = () => listener.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    ctx.signal.addEventListener('abort', stop);
    for await (const [stream] of listener) spawn(() => echo(stream));
  },
  { driver },
);
