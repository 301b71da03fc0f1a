/**
 * The fuzz tier's short runs (test/fuzz-engine.ts): random op sequences over pipes, sockets, datagrams,
 * files, timers, channels, spawnBlocking and tasks, with aborts, closes and resets, on the driver under
 * test. Each run checks the data, that every promise settled, opsInFlight, the fds and unhandled
 * rejections. Seeds are fixed (reproducible) plus one fresh seed per run of the suite, printed on failure;
 * long runs: `npm run fuzz -- --ops N --seed S`.
 */
import { DRIVER, rtTestUntimed } from './helpers.js';
import { runFuzz, FuzzFailure } from './fuzz-engine.js';

const fresh = (Date.now() ^ (process.pid << 8)) >>> 0;
const runs: [number, number][] = [
  [1, 20_000],
  [2, 20_000],
  [3, 20_000],
  [fresh, 40_000],
];

for (const [seed, ops] of runs) {
  rtTestUntimed(`fuzz: ${ops} ops, seed ${seed}${seed === fresh ? ' (fresh this run)' : ''}`, async (t) => {
    t.timeout(150_000);
    try {
      const r = await runFuzz({ ops, seed, driver: DRIVER, hangMs: 60_000 });
      t.log(`${r.ops} ops in ${r.scenarios} scenarios, ${r.bytesChecked} bytes checked, ${r.aborts} aborts, ${r.closes} closes, ${r.resets} resets, entries ${r.entries}, ${Math.round(r.ms)} ms`);
      t.true(r.ops >= ops);
      t.true(r.scenarios > 10);
    } catch (e) {
      if (e instanceof FuzzFailure) t.fail(e.message);
      throw e;
    }
  });
}
