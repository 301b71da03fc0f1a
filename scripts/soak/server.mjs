// The soak's server process (scripts/soak.mjs forks it, with --expose-gc and an IPC channel): one ringio
// runtime on the driver asked for, serving one variant on 127.0.0.1:<free port>. It answers the
// orchestrator's { t: 'stats' } with its RSS (after a full GC), fd count, open connections, errors and
// the runtime's opsInFlight; { t: 'stop' } closes the listener and every connection, and main returns.
//
// Variants: 'echo' (echo every byte, as examples/echo-server.mjs), 'node-http' (node:http over
// @ringio/compat's toDuplex, as examples/http-server.mjs), 'ringio-http' (@ringio/http's serve() on the
// same listener, as examples/http-hello.mjs). The http variants serve GET / with the 12-byte body
// 'hello world\n' on keep-alive connections. A variant either takes each accepted stream (serve) or the
// listener itself (listen: it runs its own accept loop), and says how many connections are open (open).
import http from 'node:http';
import { readdirSync } from 'node:fs';
import { spawn, start, stats } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';
import { toDuplex } from '@ringio/compat';
import { serve } from '@ringio/http';

const driver = process.argv[2];
const variant = process.argv[3];
const conns = new Set();
let errors = 0;
const errorSamples = [];
const countError = (e) => {
  errors++;
  if (errorSamples.length < 5) errorSamples.push(String(e?.stack ?? e));
};

const VARIANTS = {
  echo: {
    protocol: 'echo',
    serve(stream) {
      conns.add(stream);
      spawn(async () => {
        let buf = Buffer.allocUnsafe(4096);
        try {
          for (;;) {
            const [n, b] = await stream.read(buf);
            if (n === 0) break;
            [, buf] = await stream.writeAll(b, { length: n });
          }
        } catch (e) {
          if (e.code !== 'ERR_RINGIO_CLOSED') countError(e);
        } finally {
          conns.delete(stream);
          await stream.close();
        }
      });
    },
    stop() {
      for (const s of conns) void s.close();
    },
  },
  'node-http': (() => {
    const BODY = Buffer.from('hello world\n');
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.end(BODY);
    });
    server.keepAliveTimeout = 0; // the soak's connections idle between requests: never time them out
    server.headersTimeout = 0;
    server.requestTimeout = 0;
    server.on('clientError', (e, socket) => {
      if (e.code !== 'ECONNRESET') countError(e);
      socket.destroy();
    });
    server.emit('listening');
    return {
      protocol: 'http',
      serve(stream) {
        const d = toDuplex(stream);
        conns.add(d);
        d.on('close', () => conns.delete(d));
        d.on('error', (e) => {
          if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') countError(e);
        });
        server.emit('connection', d);
      },
      stop() {
        server.closeAllConnections();
        for (const d of conns) d.destroy();
      },
    };
  })(),
  'ringio-http': (() => {
    const BODY = Buffer.from('hello world\n');
    const HEAD = { 'content-type': 'text/plain' };
    let server;
    return {
      protocol: 'http',
      async listen(listener) {
        // Timeouts off: the soak's connections idle between requests for as long as it runs.
        server = await serve({ listener, keepAliveTimeout: 0, headersTimeout: 0, bodyTimeout: 0, onError: countError }, (req, res) => {
          res.writeHead(200, HEAD);
          return res.end(BODY);
        });
        await server.wait();
      },
      open: () => server?.stats().connections ?? 0,
      stop() {
        void server?.closeAll();
      },
    };
  })(),
};
const openConns = () => (v.open ? v.open() : conns.size);

const v = VARIANTS[variant];
if (v === undefined) {
  console.error(`unknown variant ${variant}: ${Object.keys(VARIANTS).join(', ')}`);
  process.exit(2);
}

await start(
  async ({ signal }) => {
    const listener = await TcpListener.bind('127.0.0.1:0', { backlog: 4096 });
    let stopping = false;
    const stop = () => {
      stopping = true;
      void listener.close();
      v.stop();
    };
    signal.addEventListener('abort', stop);
    process.on('message', (m) => {
      if (m?.t === 'stats') {
        globalThis.gc?.();
        const s = stats();
        process.send({
          t: 'stats',
          ...process.memoryUsage(), // rss, heapTotal, heapUsed, external, arrayBuffers
          fds: readdirSync('/proc/self/fd').length,
          conns: openConns(),
          errors,
          errorSamples,
          opsInFlight: s.opsInFlight,
          driver: s.driver,
        });
      } else if (m?.t === 'stop') stop();
    });
    process.send({ t: 'ready', port: listener.localAddr.port, protocol: v.protocol, driver: stats().driver });
    try {
      if (v.listen) await v.listen(listener);
      else for await (const [stream] of listener) v.serve(stream);
    } catch (e) {
      if (!stopping) throw e;
    }
    // Wait for the connections to finish closing before the runtime shuts down.
    while (openConns() > 0) await new Promise((r) => setTimeout(r, 20));
  },
  { driver },
);
process.send({ t: 'done', errors });
process.disconnect();
