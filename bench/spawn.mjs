#!/usr/bin/env node
// Scenario: spawn + join of an empty task, one after another, on each driver, with tinybench.
// The anchor, measured in the same run: awaiting an empty async function called through a microtask
// (what a task costs with no run queue, handle or abort support).
// Usage: node bench/spawn.mjs [--rounds 5] [--batch 10000] [--time 500]
import { spawn, start } from '@ringio/runtime';
import { Bench } from 'tinybench';
import { arg, emit, median, table } from './lib.mjs';

const rounds = Number(arg('rounds', 5));
const batch = Number(arg('batch', 10000));
const time = Number(arg('time', 500));
const empty = async () => {};

async function round(driver) {
  return start(
    async () => {
      const bench = new Bench({ time, warmupTime: 100 });
      bench.add('anchor', async () => {
        for (let i = 0; i < batch; i++) await Promise.resolve().then(empty);
      });
      bench.add('ringio', async () => {
        for (let i = 0; i < batch; i++) await spawn(empty);
      });
      await bench.warmup();
      await bench.run();
      const out = {};
      for (const t of bench.tasks) out[t.name] = (batch * 1000) / t.result.mean; // tasks per second
      return out;
    },
    { driver },
  );
}

const res = { uring: [], epoll: [] };
for (let r = 0; r < rounds; r++) {
  for (const d of ['uring', 'epoll']) res[d].push(await round(d));
}
const out = [];
for (const d of ['uring', 'epoll']) {
  const anchor = median(res[d].map((x) => x.anchor));
  const ringio = median(res[d].map((x) => x.ringio));
  out.push({ bench: 'spawn', case: 'anchor', driver: d, rounds, tasks_per_s: Math.round(anchor), ratio_to_anchor: 1 });
  out.push({
    bench: 'spawn',
    case: 'ringio',
    driver: d,
    rounds,
    tasks_per_s: Math.round(ringio),
    ratio_to_anchor: Number((ringio / anchor).toFixed(3)),
  });
}
table(out.map(({ bench, ...r }) => r));
emit(out);
