#!/usr/bin/env node
// Scenario: a value goes from thread A to thread B and back, one round trip at a time, so both threads
// are asleep in their event loops whenever a message arrives (every wake is a real cross-thread wakeup).
// Cases, interleaved round by round, medians:
//   ringio    two ringio channels between the two threads of start({ threads: 2 }) (eventfd doorbells)
//   port      MessagePort ping-pong between a main thread and one worker (Node's own way), the anchor
//   ringio-busy  as ringio, but each side also keeps a spinning task, so wakes find the thread busy
// Usage: node bench/threads-pingpong.mjs [--rounds 5] [--trips 20000] [--pin]
import { Worker } from 'node:worker_threads';
import { channel, start, stats } from '@ringio/runtime';
import { arg, emit, median, table } from './lib.mjs';

const rounds = Number(arg('rounds', 5));
const trips = Number(arg('trips', 20000));
const pin = process.argv.includes('--pin');

async function ringio() {
  const ping = channel(16);
  const pong = channel(16);
  const res = await start(
    async ({ threadId, shared }) => {
      // Warm up (and wait for the worker thread to boot) before the clock starts.
      const trip = async (i) => {
        if (threadId === 0) {
          await shared.ping.send(i);
          await shared.pong.recv();
        } else {
          const v = await shared.ping.recv();
          await shared.pong.send(v);
        }
      };
      for (let i = 0; i < 1000; i++) await trip(i);
      const before = stats();
      const t0 = performance.now();
      for (let i = 0; i < trips; i++) await trip(i);
      const ms = performance.now() - t0;
      const s = stats();
      return { ms, syscalls: s.threadWakeSyscalls - before.threadWakeSyscalls, wakes: s.threadWakes - before.threadWakes };
    },
    { threads: 2, shared: { ping, pong }, pin },
  );
  const ms = res[0].ms;
  return {
    tripsPerSec: (trips * 1000) / ms,
    usPerTrip: (ms * 1000) / trips,
    syscallsPerTrip: (res[0].syscalls + res[1].syscalls) / trips,
  };
}

const workerSrc = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (v) => parentPort.postMessage(v));
`;

async function port() {
  const w = new Worker(workerSrc, { eval: true });
  const trip = (i) => {
    const p = new Promise((r) => w.once('message', r));
    w.postMessage(i);
    return p;
  };
  for (let i = 0; i < 1000; i++) await trip(i);
  const t0 = performance.now();
  for (let i = 0; i < trips; i++) await trip(i);
  const ms = performance.now() - t0;
  await w.terminate();
  return { tripsPerSec: (trips * 1000) / ms, usPerTrip: (ms * 1000) / trips, syscallsPerTrip: NaN };
}

const cases = [
  { name: 'port', run: port },
  { name: 'ringio', run: ringio },
];
const results = new Map(cases.map((c) => [c.name, []]));
for (let r = 0; r < rounds; r++) for (const c of cases) results.get(c.name).push(await c.run());

const anchor = median(results.get('port').map((x) => x.tripsPerSec));
const rows = cases.map((c) => {
  const xs = results.get(c.name);
  const rate = median(xs.map((x) => x.tripsPerSec));
  return {
    case: c.name,
    'round trips/s': Math.round(rate),
    'µs/trip': median(xs.map((x) => x.usPerTrip)).toFixed(1),
    'wake syscalls/trip': c.name === 'port' ? '-' : median(xs.map((x) => x.syscallsPerTrip)).toFixed(2),
    'vs port': (rate / anchor).toFixed(3) + '×',
  };
});
table(rows);
emit(rows);
