#!/usr/bin/env node
// Scenario: NOP round trips, 64 in flight, on each driver, against a bare anchor measured in the same
// run: a promise per op over one batched native call per microtask turn, with no runtime and no kernel.
// Usage: node bench/nop.mjs [--rounds 5] [--ops 2000000] [--depth 64]
import { createRequire } from 'node:module';
import { nop, start, stats } from '@ringio/runtime';
import { arg, emit, interleave, median, table } from './lib.mjs';

const rounds = Number(arg('rounds', 5));
const count = Number(arg('ops', 2_000_000));
const depth = Number(arg('depth', 64));
const native = createRequire(import.meta.url)('node-gyp-build')(new URL('..', import.meta.url).pathname);

async function ringio(driver) {
  return start(
    async () => {
      const s = await measure(() => nop(), () => stats().enters, driver);
      return { ...s, driver: stats().driver };
    },
    { driver },
  );
}

// The anchor, as the issue defines it: a bare promise per op over one batched native call per flush
// (an empty ringio_driver_submit on an idle driver), with no runtime layers and no kernel work. The
// target "the runtime's layers cost at most about half" reads as ringio(uring) >= 0.5x this anchor.
async function anchor() {
  const L = native.ringio_layout();
  const sq = new Int32Array(1024 * L.REC_WORDS);
  const cq = new Int32Array(4096 * L.CQE_WORDS);
  const st = new Float64Array(L.STAT_COUNT);
  native.ringio_driver_open({ driver: 'epoll', entries: 1024 }, sq, cq, st, () => {});
  let waiters = [];
  let queued = false;
  const flush = () => {
    queued = false;
    const batch = waiters;
    waiters = [];
    native.ringio_driver_submit(0, [], false);
    for (let i = 0; i < batch.length; i++) batch[i](0);
  };
  const op = () =>
    new Promise((r) => {
      waiters.push(r);
      if (!queued) {
        queued = true;
        process.nextTick(flush);
      }
    });
  try {
    return await measure(op, () => 0, 'none');
  } finally {
    native.ringio_driver_close();
  }
}

// Runs `count` ops with `depth` in flight; yields to the loop every 16k ops so Node stays live.
async function measure(op, enters, driver) {
  let done = 0;
  const warm = async (k) => {
    for (let i = 0; i < k; i++) await op();
  };
  await Promise.all(Array.from({ length: depth }, () => warm(200)));
  const e0 = enters();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (done < count) {
        done++;
        await op();
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { ops_per_s: done / secs, enters_per_1000_ops: ((enters() - e0) * 1000) / done, driver };
}

const cases = [
  { name: 'anchor', run: anchor },
  { name: 'uring', run: () => ringio('uring').catch((e) => ({ error: e.message })) },
  { name: 'epoll', run: () => ringio('epoll') },
];
const res = await interleave(rounds, cases);
const base = median(res.get('anchor').map((r) => r.ops_per_s));
const out = [];
for (const c of cases) {
  const rs = res.get(c.name).filter((r) => !r.error);
  if (rs.length === 0) {
    out.push({ bench: 'nop', case: c.name, error: res.get(c.name)[0].error });
    continue;
  }
  const ops = median(rs.map((r) => r.ops_per_s));
  out.push({
    bench: 'nop',
    case: c.name,
    driver: rs[0].driver,
    depth,
    rounds,
    ops_per_s: Math.round(ops),
    enters_per_1000_ops: Number(median(rs.map((r) => r.enters_per_1000_ops)).toFixed(2)),
    ratio_to_anchor: Number((ops / base).toFixed(3)),
  });
}
table(out.map(({ bench, ...r }) => r));
emit(out);
