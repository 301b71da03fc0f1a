#!/usr/bin/env node
// Scenario: hand a trivial function to another thread and wait for its result, one job at a time.
// Cases, interleaved round by round, medians:
//   raw       worker.postMessage(args) + await the 'message' reply from a worker that runs the function:
//             the least any thread pool on worker_threads can do (the anchor)
//   ringio    await spawnBlocking(fn, args) on a ringio runtime: JoinHandle, job queue, pool, errors
// Also reports ringio with 4 jobs in flight (throughput, not round trips).
// Usage: node bench/spawn-blocking.mjs [--rounds 5] [--jobs 20000]
import { Worker } from 'node:worker_threads';
import { spawnBlocking, start } from '@ringio/runtime';
import { arg, emit, median, table } from './lib.mjs';

const rounds = Number(arg('rounds', 5));
const jobs = Number(arg('jobs', 20000));
const add = (a, b) => a + b;

const workerSrc = `
const { parentPort } = require('node:worker_threads');
const add = ${add.toString()};
parentPort.on('message', (m) => parentPort.postMessage(add(m[0], m[1])));
`;

async function raw() {
  const w = new Worker(workerSrc, { eval: true });
  const job = (i) => {
    const p = new Promise((r) => w.once('message', r));
    w.postMessage([i, 1]);
    return p;
  };
  for (let i = 0; i < 500; i++) await job(i);
  const t0 = performance.now();
  for (let i = 0; i < jobs; i++) await job(i);
  const ms = performance.now() - t0;
  await w.terminate();
  return (jobs * 1000) / ms;
}

async function ringio(inFlight) {
  return start(
    async () => {
      for (let i = 0; i < 500; i++) await spawnBlocking(add, i, 1);
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < jobs) {
            const i = next++;
            if ((await spawnBlocking(add, i, 1)) !== i + 1) throw new Error('wrong result');
          }
        }),
      );
      return (jobs * 1000) / (performance.now() - t0);
    },
    { blockingThreads: inFlight === 1 ? 1 : 2 },
  );
}

const cases = [
  { name: 'raw', run: raw },
  { name: 'ringio', run: () => ringio(1) },
  { name: 'ringio x4 in flight', run: () => ringio(4) },
];
const results = new Map(cases.map((c) => [c.name, []]));
for (let r = 0; r < rounds; r++) for (const c of cases) results.get(c.name).push(await c.run());
const anchor = median(results.get('raw'));
const rows = cases.map((c) => {
  const rate = median(results.get(c.name));
  return { case: c.name, 'jobs/s': Math.round(rate), 'µs/job': (1e6 / rate).toFixed(1), 'vs raw': (rate / anchor).toFixed(3) + '×' };
});
table(rows);
emit(rows);
