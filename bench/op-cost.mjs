#!/usr/bin/env node
// Scenario: the runtime's own JavaScript cost per op, where real servers pay it: many op classes going
// through the same driver sites (submit, dispatch, settle), so those sites see as many hidden classes
// as a proxy's do. Eight NOP op classes, each with fields of its own like net's ops, submitted in turn
// through an FdHandle (tracked for close(), as every socket op is), 64 in flight, `await` per op.
// Reports CPU ns per op (user and system, from process.cpuUsage) and ops/s. A NOP's kernel work is
// tiny and batched, so user time here is mostly the driver's and the promise's.
// Builds can be compared in the same run: --roots /path/a,/path/b (each a checkout with its packages
// built); all are loaded into one process and measured in turn. Rounds are interleaved; figures are
// medians. Pin it (taskset -c 0) on a busy machine.
// --handles N spreads the 64 lanes over N FdHandles (64 / N ops in flight on each): --handles 32 is a
// server's sockets (a read and a send in flight on each), the default 1 a file with a deep queue.
// Usage: node bench/op-cost.mjs [--rounds 15] [--ops 200000] [--drivers uring,epoll] [--roots .] [--handles 1]
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, emit, interleave, median, table } from './lib.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', 15));
const count = Number(arg('ops', 200_000));
const drivers = String(arg('drivers', 'uring,epoll')).split(',');
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const handles = Number(arg('handles', 1));
if (!(Number.isInteger(handles) && handles >= 1 && 64 % handles === 0)) throw new RangeError('--handles must divide 64');

// Eight classes per build, eight hidden classes at every driver site (V8 goes megamorphic past four).
// Their constructors are generated so that each stores plain named fields, as an op class's does.
function opClasses(OpAble) {
  return Array.from({ length: 8 }, (_, k) => {
    const fields = Array.from({ length: k + 1 }, (_, j) => `this.f${k}_${j} = ${j};`).join(' ');
    return new Function(
      'OpAble',
      `return class Nop${k} extends OpAble {
        constructor() { super(); ${fields} }
        get name() { return 'nop'; }
        uringOp(sqe) { sqe.prep(0, -1); }
        complete(res) { return res; }
      };`,
    )(OpAble);
  });
}

// Every build is loaded into this one process (each with its own addon and module graph), and the
// measurements alternate between them: no process-to-process differences in the comparison.
const builds = [];
for (const root of roots) {
  const rt = await import(pathToFileURL(join(root, 'packages/runtime/dist/index.js')).href);
  const Handle = class extends rt.FdHandle {
    go(op) {
      return this.run(op, undefined);
    }
  };
  builds.push({ root, rt, Handle, classes: opClasses(rt.OpAble) });
}

async function once(b, driver, n) {
  return b.rt.start(
    async () => {
      const hs = Array.from({ length: handles }, () => new b.Handle(b.rt.eventfd(0)));
      const classes = b.classes;
      let done = 0;
      const lane = async (i) => {
        let k = i;
        const h = hs[i % handles];
        while (done < n) {
          done++;
          await h.go(new classes[k++ & 7]());
        }
      };
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 64 }, (_, i) => lane(i)));
      const secs = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      await Promise.all(hs.map((h) => h.close()));
      return { ops_per_s: n / secs, user_ns: (c.user * 1000) / n, sys_ns: (c.system * 1000) / n, load: loadavg()[0] };
    },
    { driver },
  );
}

const load0 = loadavg();
console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}`);
const label = (root) => (roots.length > 1 ? `${root} ` : '');
const cases = [];
for (const b of builds) for (const d of drivers) cases.push({ name: `${label(b.root)}${d}`, run: () => once(b, d, count) });
for (const c of cases) await c.run(); // warm-up: every build's code optimised before the first round
const res = await interleave(rounds, cases, { rotate: true });
const rows = [];
for (const b of builds) {
  for (const d of drivers) {
    const rs = res.get(`${label(b.root)}${d}`);
    rows.push({
      ...(roots.length > 1 ? { build: b.root } : {}),
      driver: d,
      'ops/s': Math.round(median(rs.map((m) => m.ops_per_s))),
      'user ns/op': Math.round(median(rs.map((m) => m.user_ns))),
      // The least disturbed round: on a shared machine the median moves with the neighbours' load.
      'user ns (min)': Math.round(Math.min(...rs.map((m) => m.user_ns))),
      'sys ns/op': Math.round(median(rs.map((m) => m.sys_ns))),
      load: median(rs.map((m) => m.load)).toFixed(2),
    });
  }
}
const load1 = loadavg();
console.error(`runtime cost per op: 8 op classes through ${handles} FdHandle(s), 64 in flight, ${count} ops a measurement (${rounds} rounds, medians)`);
table(rows);
console.error(`load average at end: ${load1.map((x) => x.toFixed(2)).join(' ')}`);
emit(rows.map((r) => ({ bench: 'op-cost', ...r, load_start: load0[0], load_end: load1[0] })));
