#!/usr/bin/env node
// Scenario: instructions per request of bench/compat.mjs's http2-handoff servers (the same `--serve`
// code: node:http2 h2c, 2 MiB bodies) in the steady state that compat.mjs's timed rounds measure: one
// h2load (-c4 -m4, four connections for the whole run) across the warm-up and every window, so no
// connection is opened or closed inside a window. compat-instructions.mjs --case http2-handoff starts a
// new h2load per window instead (four new connections per window of --reqs requests), so its figure
// includes connection setup, which compat.mjs's rounds amortize over thousands of requests.
//
// How: the server under `valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes`; h2load
// starts at once and runs --warm seconds uninstrumented, then `callgrind_control --instr=on`, 2 s
// uncounted, and --windows windows of --win seconds each, zeroed before and dumped after. A window's
// requests are the main thread's calls into nghttp2_submit_response (one per response), counted by
// callgrind itself. Per window: the main thread's instructions per request, without the JIT compiler's
// (none in the steady state), and by kind; then, against the first server, the functions whose median
// moved most, and with --callers the callers of V8's builtins that moved most (window 2).
// Kernel work is not counted (valgrind sees user space).
// Usage: node bench/experiments/http2-handoff-steady.mjs [--impls node,uring,epoll] [--warm 50]
//          [--win 12] [--windows 3] [--top 30] [--callers] [--node-flags --flag1,--flag2]
// A server is IMPL or IMPL@ROOT (a checkout with its packages built).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { arg, emit, freePort, has, median, stopProc, table } from '../lib.mjs';
import { control, fnMedians, largestMoves, parseDump, perfMap, startCompatServer } from './callgrind.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '../..');
const impls = String(arg('impls', 'node,uring,epoll')).split(',');
const warm = Number(arg('warm', 50));
const win = Number(arg('win', 12));
const windows = Number(arg('windows', 3));
const top = Number(arg('top', 30));
const showCallers = process.argv.includes('--callers');
const nodeFlags = String(arg('node-flags', '')).split(',').filter(Boolean);
const tmp = mkdtempSync(join(tmpdir(), 'ringio-h2-steady-'));

for (const tool of ['valgrind', 'callgrind_control', 'h2load']) {
  if (!has(tool)) {
    console.error(`missing: ${tool} (apt-get install -y valgrind nghttp2-client)`);
    process.exit(2);
  }
}

/** Calls into nghttp2_submit_response in a parsed dump: one per response the server sent. */
const responses = (dump) => [...dump.calls].reduce((n, [callee, c]) => (callee.startsWith('nghttp2_submit_response') ? n + c : n), 0);

async function once(impl, root) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, 'run-'));
  const child = await startCompatServer({ root, kind: 'http2-handoff', impl, port, dir, nodeFlags });
  let h2out = '';
  const load = spawn('h2load', ['-c4', '-m4', '-D', String(warm + 2 + windows * win + 60), `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
  load.stdout.setEncoding('utf8').on('data', (d) => (h2out += d));
  try {
    await sleep(warm * 1000);
    control(child.pid, '--instr=on');
    await sleep(2000);
    const figures = [];
    for (let w = 1; w <= windows; w++) {
      control(child.pid, '-z');
      await sleep(win * 1000);
      control(child.pid, '-d');
      const dump = parseDump(join(dir, `cg.${child.pid}.${w}-01`), perfMap(child.pid), root);
      const reqs = responses(dump);
      if (reqs < 100) throw new Error(`${impl}: window ${w} saw ${reqs} responses (h2load: ${h2out.slice(-400)})`);
      const compiler = [...dump.kinds].filter(([k]) => k.startsWith('V8 compiler')).reduce((a, [, v]) => a + v, 0);
      figures.push({ reqs, dump, main: dump.total / reqs, noComp: (dump.total - compiler) / reqs });
      console.error(`  ${impl} ${root}: window ${w}/${windows}: ${reqs} responses, main thread ${Math.round(dump.total / reqs)} instructions/request`);
    }
    return figures;
  } finally {
    load.kill();
    await stopProc(child);
    rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
  }
}

/** Each function's (or kind's, `of`) median instructions per request over a server's windows. */
const perReq = (figures, of) => fnMedians(figures.map((f) => f.dump), { of, per: (i) => figures[i].reqs });

try {
  const servers = impls.map((spec) => (spec.includes('@') ? { impl: spec.split('@')[0], root: resolve(spec.split('@')[1]) } : { impl: spec, root: here }));
  const results = [];
  for (const s of servers) results.push({ ...s, figures: await once(s.impl, s.root) });
  const base = median(results[0].figures.map((f) => f.noComp));
  const rows = results.map((r) => {
    const m = median(r.figures.map((f) => f.noComp));
    return {
      server: `${r.impl}${servers.some((s) => s.root !== here) ? `@${r.root}` : ''}`,
      'main thread': Math.round(median(r.figures.map((f) => f.main))),
      'main w/o compiler': Math.round(m),
      'min..max': `${Math.round(Math.min(...r.figures.map((f) => f.noComp)))}..${Math.round(Math.max(...r.figures.map((f) => f.noComp)))}`,
      'ratio to first': (m / base).toFixed(4),
      responses: r.figures.map((f) => f.reqs).join(','),
    };
  });
  for (const r of results) {
    const kinds = perReq(r.figures, (d) => d.kinds);
    console.error(`\n${r.impl} ${r.root}: main thread by kind (median window, instructions/request):`);
    for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1])) console.error(`  ${String(Math.round(v)).padStart(9)}  ${k}`);
  }
  const [a, ...rest] = results;
  const fa = perReq(a.figures, (d) => d.fns);
  for (const b of rest) {
    const fb = perReq(b.figures, (d) => d.fns);
    const moves = largestMoves(fa, fb);
    console.error(`\n${b.impl} against ${a.impl}: the ${top} largest moves (main thread, instructions/request: ${a.impl}, ${b.impl}, difference)`);
    for (const [n, x, y] of moves.slice(0, top)) console.error(`  ${String(Math.round(x)).padStart(8)} ${String(Math.round(y)).padStart(8)} ${String(Math.round(y - x)).padStart(7)}  ${n.slice(0, 140)}`);
    if (showCallers && a.figures.length > 1 && b.figures.length > 1) {
      const calls = (f) => {
        const m = new Map();
        for (const [callee, cm] of f.dump.callers) if (callee.startsWith('Builtin:')) for (const [c, v] of cm) m.set(`${c} -> ${callee}`, v / f.reqs);
        return m;
      };
      const ca = calls(a.figures[1]);
      const cb = calls(b.figures[1]);
      const moved = largestMoves(ca, cb);
      console.error(`\n${b.impl} against ${a.impl}: calls into V8 builtins that moved most (inclusive, window 2)`);
      for (const [k, x, y] of moved.slice(0, top)) console.error(`  ${String(Math.round(x)).padStart(8)} ${String(Math.round(y)).padStart(8)} ${String(Math.round(y - x)).padStart(7)}  ${k.slice(0, 160)}`);
    }
  }
  console.error('\nhttp2-handoff, steady state: instructions per request (callgrind, main thread, one h2load for the whole run)');
  table(rows);
  emit(rows.map((r) => ({ scenario: 'http2_handoff_steady', server: r.server, instructions_per_request: r['main w/o compiler'], ratio_to_first: Number(r['ratio to first']), windows, win_secs: win, warm_secs: warm })));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
