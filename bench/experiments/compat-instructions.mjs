#!/usr/bin/env node
// Scenario: instructions per request of bench/compat.mjs's servers (the same `--serve` code), ringio's
// against plain Node's, counted by valgrind's callgrind: the figure does not depend on what else the
// machine runs, unlike compat.mjs's req/s (issue #18's cases connect, http-close and http2-handoff).
//
// How: the server under `valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes` (start-up
// and warm-up uninstrumented); the load generator as compat.mjs runs it (ab without keep-alive, a new
// connection per request, at -c32 for connect and at --concurrency for http-close; h2load -c4 -m4 for
// http2-handoff), warmed up as compat.mjs warms up (ab: 1,000 requests, 8 connections closed without a
// request, then --warmup requests). Then `callgrind_control --instr=on`, one uncounted window, and
// --windows windows of --reqs requests each, zeroed before and dumped after. Per window: the main
// thread's instructions per request and the whole process's (every thread: V8's compiler and GC
// workers too), and both without the JIT compiler's work. The breakdown is the main thread's in the
// median window; with several servers, the functions whose median moved most against the first's
// (main thread; JIT code named by node's --perf-basic-prof map, source positions dropped).
// Kernel work is not counted (valgrind sees user space). For http2-handoff each window starts its own
// h2load, so it opens 4 connections per --reqs requests: connection setup and the JIT's reaction to it
// are in every window. http2-handoff-steady.mjs measures the state compat.mjs's rounds do (4 connections
// for the whole run).
// Usage: node bench/experiments/compat-instructions.mjs [--case connect|http-close|http2-handoff]
//          [--concurrency 10] [--impls node,uring,epoll] [--roots .] [--warmup 10000] [--reqs 2000]
//          [--windows 3] [--top 30] [--node-flags --flag1,--flag2 (default none)] [--keep DIR]
// A server is IMPL or IMPL@ROOT (a checkout with its packages built); --roots gives every impl for each.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { arg, emit, freePort, has, idleConnections, median, stopProc, table } from '../lib.mjs';
import { COMPILER, control, fnMedians, keepDumps, largestMoves, parseDump, perfMap, startCompatServer } from './callgrind.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '../..');
const kind = String(arg('case', 'connect'));
const h2 = kind === 'http2-handoff';
const concurrency = Number(arg('concurrency', kind === 'http-close' ? 10 : kind === 'connect' ? 32 : 4));
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const impls = String(arg('impls', 'node,uring,epoll')).split(',');
const warmup = Number(arg('warmup', h2 ? 1000 : 10_000));
const reqs = Number(arg('reqs', h2 ? 100 : 2000));
const windows = Number(arg('windows', 3));
const top = Number(arg('top', 30));
const keep = arg('keep', '');
const nodeFlags = String(arg('node-flags', '')).split(',').filter(Boolean);
const tmp = mkdtempSync(join(tmpdir(), 'ringio-compat-instr-'));
const run = promisify(execFile);

for (const tool of ['valgrind', 'callgrind_control', h2 ? 'h2load' : 'ab']) {
  if (!has(tool)) {
    console.error(`missing: ${tool} (apt-get install -y valgrind ${h2 ? 'nghttp2-client' : 'apache2-utils'})`);
    process.exit(2);
  }
}

/** `n` requests as compat.mjs's load generator sends them; throws on failed requests. */
async function load(port, n) {
  if (h2) {
    const { stdout } = await run('h2load', ['-c4', '-m4', '-n', String(n), `http://127.0.0.1:${port}/`], { maxBuffer: 1 << 24 });
    const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(stdout);
    if (Number(m?.[1]) !== n) throw new Error(`h2load: ${stdout.slice(-400)}`);
    return;
  }
  const { stdout } = await run('ab', ['-q', `-c${concurrency}`, '-n', String(n), '-s', '60', `http://127.0.0.1:${port}/`]);
  const failed = Number(/Failed requests:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  if (failed > 0) throw new Error(`ab: ${failed} failed requests`);
}

/** The dump files of dump number `n` (one per thread): thread number -> file. */
function dumpFiles(dir, pid, n) {
  const files = new Map();
  for (const f of readdirSync(dir)) {
    const m = new RegExp(`^cg\\.${pid}\\.${n}-(\\d+)$`).exec(f);
    if (m) files.set(Number(m[1]), join(dir, f));
  }
  return files;
}

const summary = (file) => Number(/^summary: (\d+)$/m.exec(readFileSync(file, 'latin1'))?.[1] ?? 0);

async function once(root, impl) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, 'run-'));
  const child = await startCompatServer({ root, kind, impl, port, dir, nodeFlags });
  try {
    if (!h2) {
      await load(port, 1000);
      await idleConnections(port, 8);
    }
    await load(port, warmup);
    control(child.pid, '--instr=on');
    await load(port, Math.max(reqs >> 1, 1));
    const figures = [];
    let dumps = 0;
    for (let w = 0; w < windows; w++) {
      control(child.pid, '-z');
      await load(port, reqs);
      control(child.pid, '-d');
      dumps++;
      const files = dumpFiles(dir, child.pid, dumps);
      const mainFile = files.get(1);
      if (mainFile === undefined) throw new Error(`no dump of the main thread in ${dir}`);
      let all = 0;
      for (const f of files.values()) all += summary(f);
      figures.push({ mainFile, files: [...files.values()], main: summary(mainFile) / reqs, all: all / reqs });
      console.error(`  ${impl} ${root}: window ${w + 1}/${windows}: main thread ${Math.round(summary(mainFile) / reqs)}, process ${Math.round(all / reqs)} instructions/request`);
    }
    const map = perfMap(child.pid);
    const compiler = (d) => [...d.kinds].filter(([k]) => k.startsWith('V8 compiler')).reduce((a, [, v]) => a + v, 0);
    for (const f of figures) {
      f.dump = parseDump(f.mainFile, map, root);
      let comp = compiler(f.dump);
      for (const other of f.files) if (other !== f.mainFile) comp += compiler(parseDump(other, map, root));
      f.mainNoComp = (f.dump.total - compiler(f.dump)) / reqs;
      f.allNoComp = f.all - comp / reqs;
    }
    const mid = [...figures].sort((a, b) => a.mainNoComp - b.mainNoComp)[(figures.length - 1) >> 1];
    return { figures, dump: mid.dump, fnMedians: fnMedians(figures.map((f) => f.dump)) };
  } finally {
    await stopProc(child);
    keepDumps(dir, child.pid, keep);
  }
}

try {
  console.error(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (instruction counts do not depend on it)`);
  const servers = roots.flatMap((root) => impls.map((spec) => (spec.includes('@') ? { impl: spec.split('@')[0], root: resolve(spec.split('@')[1]) } : { impl: spec, root })));
  const results = [];
  for (const { impl, root } of servers) results.push({ impl, root, ...(await once(root, impl)) });
  const rows = results.map((r) => {
    const f = (k) => r.figures.map((x) => x[k]);
    return {
      server: `${r.impl}${servers.some((s) => s.root !== here) ? `@${r.root}` : ''}`,
      'main thread': Math.round(median(f('main'))),
      'main w/o compiler': Math.round(median(f('mainNoComp'))),
      'main min..max': `${Math.round(Math.min(...f('main')))}..${Math.round(Math.max(...f('main')))}`,
      process: Math.round(median(f('all'))),
      'process w/o compiler': Math.round(median(f('allNoComp'))),
      windows: r.figures.length,
    };
  });
  const per = (ir) => (ir / reqs).toFixed(0).padStart(8);
  for (const r of results) {
    console.error(`\n${r.impl} ${r.root}: main thread, median window, ${per(r.dump.total).trim()} instructions/request, by kind:`);
    for (const [k, v] of [...r.dump.kinds].sort((a, b) => b[1] - a[1])) console.error(`  ${per(v)}  ${((100 * v) / r.dump.total).toFixed(1).padStart(5)}%  ${k}`);
    console.error(`top ${top} functions (exclusive instructions/request, median over the windows):`);
    for (const [k, v] of [...r.fnMedians].sort((a, b) => b[1] - a[1]).slice(0, top)) console.error(`  ${per(v)}  ${k.slice(0, 150)}`);
    // Who calls the top builtins and C++ functions (IC stubs, runtime calls): inclusive instructions/request by call site.
    console.error('callers of the top builtins and C++ functions (inclusive instructions/request of the calls):');
    for (const [k] of [...r.dump.fns].filter(([n]) => !n.startsWith('JS:')).sort((x, y) => y[1] - x[1]).slice(0, 12)) {
      const m = r.dump.callers.get(k);
      if (m === undefined) continue;
      console.error(`  ${k.slice(0, 100)}:`);
      for (const [c, v] of [...m].sort((x, y) => y[1] - x[1]).slice(0, 4)) console.error(`    ${per(v)}  ${c.slice(0, 140)}`);
    }
  }
  const strip = (k) => k.replace(/ [^ ]*:\d+:\d+$/, '').replace(/^JS:[*^~]?/, 'JS:');
  const fold = (m) => {
    const o = new Map();
    for (const [k, v] of m) o.set(strip(k), (o.get(strip(k)) ?? 0) + v);
    return o;
  };
  const a = results[0];
  for (const r of results.slice(1)) {
    const fa = fold(a.fnMedians);
    const fb = fold(r.fnMedians);
    const diffs = largestMoves(fa, fb).filter(([k]) => !COMPILER.test(k));
    console.error(`\n${r.impl} ${r.root} against ${a.impl} ${a.root}: the ${top} largest moves (main thread, instructions/request, tiers folded):`);
    for (const [k, x, y] of diffs.slice(0, top)) console.error(`  ${((y - x) / reqs >= 0 ? '+' : '') + ((y - x) / reqs).toFixed(0).padStart(7)}  ${k.slice(0, 150)}`);
  }
  const what = `${kind}${h2 ? '' : ` -c${concurrency}`}`;
  console.error(`\n${what}: instructions per request (callgrind; ${warmup} warm-up requests, ${windows} windows of ${reqs})`);
  table(rows);
  emit(rows.map((r) => ({ bench: 'compat-instructions', case: kind, ...(h2 ? {} : { concurrency }), ...r })));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
