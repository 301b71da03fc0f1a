#!/usr/bin/env node
// Long fuzz runs: npm run fuzz -- [--ops N] [--seed S] [--runs R] [--driver uring|epoll|both]
// [--concurrency C]. Each run is test/fuzz-engine.ts's runFuzz (built by tsc -b into dist/test) with
// `ops` API calls; runs after the first use seeds S+1, S+2, ... A failure prints the reproducing seed
// and exits 1. Prints ops per run and ops/s, and a summary line per driver.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    runs: { type: 'string', default: '1' },
    driver: { type: 'string', default: process.env.RINGIO_DRIVER || 'both' },
    concurrency: { type: 'string', default: '6' },
    'no-build': { type: 'boolean', default: false },
  },
});
const int = (name, v, min) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${v}`);
    process.exit(2);
  }
  return n;
};
const ops = int('ops', values.ops, 1);
const runs = int('runs', values.runs, 1);
const concurrency = int('concurrency', values.concurrency, 1);
const seed0 = values.seed === undefined ? (Date.now() ^ (process.pid << 8)) >>> 0 : int('seed', values.seed, 0);
const drivers = values.driver === 'both' ? ['uring', 'epoll'] : [values.driver];
for (const d of drivers) {
  if (!['uring', 'epoll', 'auto'].includes(d)) {
    console.error(`--driver must be uring, epoll, auto or both, got ${d}`);
    process.exit(2);
  }
}
if (!values['no-build']) execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], { cwd: root, stdio: 'inherit' });
const { runFuzz } = await import(pathToFileURL(join(root, 'dist', 'test', 'fuzz-engine.js')).href);

let failed = false;
for (const driver of drivers) {
  let total = 0;
  let longest = 0;
  let ms = 0;
  for (let i = 0; i < runs; i++) {
    const seed = (seed0 + i) >>> 0;
    const t0 = performance.now();
    let last = t0;
    try {
      const r = await runFuzz({
        ops,
        seed,
        driver,
        concurrency,
        progressEvery: 100_000,
        progress: (n) => {
          const now = performance.now();
          if (now - last > 10_000) {
            last = now;
            console.log(`  ${driver} seed ${seed}: ${n} ops, ${Math.round(n / ((now - t0) / 1000))} ops/s`);
          }
        },
      });
      total += r.ops;
      longest = Math.max(longest, r.ops);
      ms += r.ms;
      console.log(
        `${driver} seed ${seed}: ${r.ops} ops, ${r.scenarios} scenarios, ${r.bytesChecked} bytes checked, ` +
          `${r.aborts} aborts, ${r.closes} closes, ${r.resets} resets seen, entries ${r.entries}, ${(r.ms / 1000).toFixed(1)} s ` +
          `(${Math.round(r.ops / (r.ms / 1000))} ops/s), 0 failures`,
      );
      console.log(`  scenarios: ${Object.entries(r.kinds).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    } catch (e) {
      failed = true;
      console.error(`FAILED: ${driver} seed ${seed}\n${e?.message ?? e}`);
      if (e?.cause) console.error('cause:', e.cause);
      break;
    }
  }
  console.log(`${driver}: ${total} ops in ${runs} run(s), longest ${longest}, ${(ms / 1000).toFixed(1)} s, ${failed ? 'FAILED' : '0 failures'}`);
  if (failed) break;
}
process.exit(failed ? 1 : 0);
