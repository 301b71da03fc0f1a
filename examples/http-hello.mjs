#!/usr/bin/env node
// @ringio/http's native server: answers every request with 'hello world\n' (text/plain, keep-alive),
// like examples/http-server.mjs does with node:http over toDuplex. With --size N the body is N bytes.
// With --fetch the same answer comes from a WHATWG fetch handler (Request/Response), to price that path.
// Usage: node examples/http-hello.mjs --port P [--threads N] [--driver uring|epoll|auto] [--host 127.0.0.1] [--size N] [--fetch]
import { start, stats } from '@ringio/runtime';
import { serve } from '@ringio/http';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback;
};
const port = Number(opt('port', '8080'));
const host = opt('host', '127.0.0.1');
const driver = opt('driver', process.env.RINGIO_DRIVER || 'auto');
const threads = opt('threads', '1') === 'auto' ? 'auto' : Number(opt('threads', '1'));
const size = opt('size', undefined);

const BODY = size === undefined ? Buffer.from('hello world\n') : Buffer.alloc(Number(size), 'x');
// A frozen header object: its bytes are serialized once and reused for every response.
const HEADERS = Object.freeze({ 'content-type': 'text/plain' });

async function main(ctx) {
  // One server per thread on the same port: SO_REUSEPORT lets the kernel spread the connections.
  const handler = argv.includes('--fetch')
    ? { fetch: () => new Response(BODY, { headers: HEADERS }) }
    : (req, res) => {
        res.writeHead(200, HEADERS);
        res.end(BODY);
      };
  const server = await serve({ host, port, reusePort: true }, handler);
  const s = stats();
  console.error(
    `ringio native http on ${host}:${server.address.port}, thread ${ctx.threadId + 1}/${ctx.threads}, driver ${s.driver}` +
      (s.fallbackReason ? ` (${s.fallbackReason})` : ''),
  );
  const stop = () => server.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  ctx.signal.addEventListener('abort', stop);
  await server.wait();
}

await start(main, { driver, threads });
