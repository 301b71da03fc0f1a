#!/usr/bin/env node
// Config broadcast: thread 0 refreshes a configuration every second; every thread serves the newest one.
// Usage: node examples/config-broadcast.mjs [--port P] [--threads N|auto] [--config file.json] [--seconds S]
//
// Each thread listens on the same port (SO_REUSEPORT) and answers every connection with one JSON line:
// the thread that answered, the config version it saw and the config. Thread 0 re-reads --config (or,
// without it, makes up a new config) every second and publishes it with watch.set(); the other threads
// pick it up with watch.get() per request (free: a version check, then a cached value) and log each
// change they see through watch.changed().
//
// Try it:  node examples/config-broadcast.mjs --port 7400 --threads 2 &
//          for i in 1 2 3; do nc -q1 127.0.0.1 7400 </dev/null; sleep 1; done
import { readFile } from 'node:fs/promises';
import { interval, spawn, start, watch } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const port = Number(opt('port', '7400'));
const threadsArg = opt('threads', '2');
const threads = threadsArg === 'auto' ? 'auto' : Number(threadsArg);
const configFile = opt('config', undefined);
const seconds = Number(opt('seconds', '0'));

async function loadConfig(generation) {
  if (configFile !== undefined) return { generation, ...JSON.parse(await readFile(configFile, 'utf8')) };
  return { generation, greeting: `hello #${generation}`, refreshedAt: new Date().toISOString() };
}

const config = watch(await loadConfig(0));
const stop = watch(false);

const results = await start(
  async ({ threadId, threads: n, shared, signal }) => {
    const { config, stop } = shared;
    const listener = await TcpListener.bind({ host: '127.0.0.1', port }, { reusePort: true });
    const close = () => listener.close();
    if (signal.aborted) close();
    else signal.addEventListener('abort', close);
    stop.changed().then(close, close);

    // Every thread logs the changes it sees.
    spawn(async () => {
      for (;;) {
        let cfg;
        try {
          cfg = await config.changed();
        } catch {
          return; // the watch was closed: we are stopping
        }
        console.log(`thread ${threadId}/${n}: now serving config generation ${cfg.generation}`);
      }
    });

    // Thread 0 refreshes the config every second, and stops everything after --seconds.
    if (threadId === 0) {
      spawn(async () => {
        let generation = 0;
        for await (const tick of interval(1000, { signal })) {
          config.set(await loadConfig(++generation));
          if (seconds > 0 && tick >= seconds) {
            stop.set(true);
            config.close();
            return;
          }
        }
      });
      if (seconds === 0) {
        const all = () => {
          stop.set(true);
          config.close();
        };
        process.once('SIGINT', all);
        process.once('SIGTERM', all);
      }
    }

    let served = 0;
    for await (const [stream] of listener) {
      served++;
      spawn(async () => {
        try {
          const line = JSON.stringify({ thread: threadId, version: config.version, config: config.get() }) + '\n';
          await stream.writeAll(Buffer.from(line));
        } catch {
          // the client went away
        } finally {
          await stream.close();
        }
      });
    }
    return served;
  },
  { threads, shared: { config, stop } },
);
console.log(`served per thread: ${JSON.stringify(results)}`);
