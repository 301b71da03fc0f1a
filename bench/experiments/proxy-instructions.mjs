#!/usr/bin/env node
// Scenario: instructions per proxied request through ringio-proxy (protocol = "http"), counted by
// valgrind's callgrind, so a change of a few hundred instructions per request shows whatever else the
// machine runs (wall-clock benches cannot see it). Also shows where they go: JS functions by name
// (V8's JIT code is matched to node's --perf-basic-prof map), V8 builtins and bytecode handlers by
// name, the addon, libc and node's C++ by symbol. Kernel work is not counted (valgrind sees user space).
//
// How: an nginx upstream (`return 200 "hello world\n"`, keep-alive) and ringio-proxy (threads = 1)
// under `valgrind --tool=callgrind --instr-atstart=no` (uninstrumented until the warm-up is over, so
// start-up and JIT warm-up run ~5x faster than instrumented). A client in this process (C keep-alive
// connections, one request in flight on each, as wrk -c C) sends --warmup requests; then
// `callgrind_control --instr=on`, one uncounted window of --reqs requests, and --windows times:
// `callgrind_control -z` (zero), --reqs requests, `callgrind_control -d` (dump). Each window's total
// divided by --reqs is one figure; the table gives the median and the spread over windows (a window
// with a major GC or a late JIT compile costs more; the median is the steady state). The breakdown
// is the median window's. Kinds: JS by tier, V8 builtins (IC stubs among them), node/V8 C++ (GC,
// runtime calls), the addon (ringio.node), libc.
// Under valgrind the proxy is ~50x slower than its client, so every loop turn sees all C connections
// ready (full batches): the figure is a saturated proxy's, as in bench/proxy-http.mjs.
// Builds: --roots /path/a,/path/b (each a checkout with its packages built) run one after the other
// (the counts do not depend on load). Each run takes ~1 min start-up plus ~3 s per 1000 requests.
// Usage: node bench/experiments/proxy-instructions.mjs [--roots .] [--drivers uring] [--warmup 20000]
//          [--reqs 5000] [--windows 5] [--conns 64] [--top 40] [--keep DIR (leave the callgrind files there)]
// Then, for a closer look: callgrind_annotate DIR/cg.PID.N (names of JIT code are addresses there).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, freePort, has, median, nginxConf, stopProc, table, waitForPort } from '../lib.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '../..');
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const drivers = String(arg('drivers', 'uring')).split(',');
const warmup = Number(arg('warmup', 20_000));
const reqs = Number(arg('reqs', 5000));
const windows = Number(arg('windows', 5));
const conns = Number(arg('conns', 64));
const top = Number(arg('top', 40));
const keep = arg('keep', '');
const tmp = mkdtempSync(join(tmpdir(), 'ringio-proxy-instr-'));

for (const tool of ['valgrind', 'callgrind_control', 'nginx']) {
  if (!has(tool)) {
    console.error(`missing: ${tool} (apt-get install -y valgrind nginx-light); nothing to measure without it`);
    process.exit(2);
  }
}

/** Sends `total` GET requests over `n` keep-alive connections, one in flight on each; rejects on anything but 200. */
function load(port, n, total) {
  const req = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  let left = total;
  const one = () =>
    new Promise((res, rej) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      const next = () => {
        if (left <= 0) return s.end(), res();
        left--;
        s.write(req);
      };
      s.on('connect', next).on('error', rej).on('close', () => (left > 0 ? rej(new Error('the proxy closed a connection')) : res()));
      s.on('data', (d) => {
        buf += d.toString('latin1');
        for (;;) {
          const h = buf.indexOf('\r\n\r\n');
          if (h < 0) return;
          const m = /\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, h));
          if (!buf.startsWith('HTTP/1.1 200') || !m) return rej(new Error(`unexpected response: ${buf.slice(0, 80)}`)), s.destroy();
          const end = h + 4 + Number(m[1]);
          if (buf.length < end) return;
          buf = buf.slice(end);
          next();
        }
      });
    });
  return Promise.all(Array.from({ length: n }, one));
}

function control(pid, ...args) {
  execFileSync('callgrind_control', [...args, String(pid)], { stdio: 'ignore', timeout: 120_000 });
}

/** The perf map node wrote (--perf-basic-prof): sorted [start, end, name]; a later entry for the same start wins. */
function perfMap(pid) {
  const byStart = new Map();
  for (const line of readFileSync(`/tmp/perf-${pid}.map`, 'latin1').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) byStart.set(parseInt(m[1], 16), [parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]]);
  }
  return [...byStart.values()].sort((a, b) => a[0] - b[0]);
}

function lookup(map, addr) {
  let lo = 0;
  let hi = map.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid][0] <= addr) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi >= 0 && addr < map[hi][1] ? map[hi][2] : undefined;
}

/**
 * A callgrind dump (--dump-instr=yes) as { total, fns: Map<name, Ir>, kinds: Map<kind, Ir> }: exclusive
 * cost per function, JIT code named from the perf map. Call lines (calls=, then the inclusive cost of
 * the call) are skipped; positions are absolute (0x...), relative (+n, -n) or the same (*).
 */
function parseDump(file, map, root) {
  const names = { ob: new Map(), fn: new Map() };
  const fns = new Map();
  const kinds = new Map();
  let ob = '';
  let fn = '';
  let addr = 0;
  let skip = false;
  let total = 0;
  const short = (s) => s.replaceAll(`file://${root}/`, '').replaceAll(`${root}/`, '');
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    const c = line.charCodeAt(0);
    if (c === 48 || c === 43 || c === 45 || c === 42) {
      // 0x.., +n, -n, *: a cost line
      const sp = line.indexOf(' ');
      const pos = line.slice(0, sp);
      if (pos.startsWith('0x')) addr = parseInt(pos, 16);
      else if (c === 43) addr += parseInt(pos.slice(1), 10);
      else if (c === 45) addr -= parseInt(pos.slice(1), 10);
      if (skip) {
        skip = false;
        continue;
      }
      const parts = line.split(' ');
      const ir = Number(parts[2] ?? 0);
      if (!ir) continue;
      total += ir;
      const jit = lookup(map, addr);
      let name;
      let kind;
      if (jit !== undefined) {
        name = short(jit);
        kind = /^JS:\*/.test(jit) ? 'JS optimized (TurboFan)' : /^JS:\^/.test(jit) ? 'JS baseline (Sparkplug)' : /^JS:/.test(jit) ? 'JS interpreted' : /^BytecodeHandler:/.test(jit) ? 'bytecode handlers' : /^Builtin:/.test(jit) ? 'V8 builtins' : jit.split(':')[0];
      } else {
        const base = ob.split('/').pop() || '???';
        name = `${fn} [${base}]`;
        kind = base === 'ringio.node' ? 'addon' : /^lib(c|m|stdc\+\+|pthread)\b/.test(base) ? 'libc/libstdc++' : base === 'node' ? 'node/V8 C++' : base === '???' || base === '' ? 'unknown code' : base;
      }
      add(fns, name, ir);
      add(kinds, kind, ir);
      continue;
    }
    if (line.startsWith('calls=')) {
      skip = true;
      continue;
    }
    const m = /^(ob|fn|cob|cfn|cfi|cfl|fl|fi|fe)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (m) {
      const table = m[1].endsWith('ob') ? names.ob : m[1].endsWith('fn') ? names.fn : undefined;
      if (table && m[3] !== undefined) table.set(m[2], m[3]);
      if (m[1] === 'ob') ob = names.ob.get(m[2]) ?? '';
      else if (m[1] === 'fn') fn = names.fn.get(m[2]) ?? '';
    }
  }
  return { total, fns, kinds };
}

async function once(root, driver, upPort) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, 'run-'));
  const conf = join(dir, 'p.toml');
  writeFileSync(
    conf,
    `[runtime]\nthreads = 1\ndriver = "${driver}"\n[upgrade]\nsocket = "${join(dir, 'up.sock')}"\n[servers.bench]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n[[servers.bench.routes]]\npath = "/"\nupstreams = [{ url = "http://127.0.0.1:${upPort}" }]\n`,
  );
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--dump-instr=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath, '--perf-basic-prof', join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', conf],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
  );
  child.err = '';
  child.stderr.on('data', (d) => (child.err += d));
  child.stdout.resume();
  try {
    // Start-up under valgrind takes tens of seconds: wait up to 5 min.
    for (let i = 0; ; i++) {
      try {
        await waitForPort(port, child, 'ringio-proxy');
        break;
      } catch (e) {
        if (i === 30 || child.exitCode !== null) throw new Error(`${e.message}\n${child.err.slice(-2000)}`);
      }
    }
    await load(port, conns, warmup);
    control(child.pid, '--instr=on');
    // The first instrumented requests cost ~2x the steady state (the proxy was fast a moment ago and is
    // slow now: its batches change size): one window's worth is sent and not counted.
    await load(port, conns, reqs);
    const figures = [];
    for (let w = 0; w < windows; w++) {
      control(child.pid, '-z');
      await load(port, conns, reqs);
      control(child.pid, '-d');
      const parts = readdirSync(dir).filter((f) => /^cg\.\d+\.\d+$/.test(f));
      const last = parts.sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2])).pop();
      const total = Number(/^summary: (\d+)$/m.exec(readFileSync(join(dir, last), 'latin1'))?.[1]);
      console.error(`  ${driver} ${root}: window ${w + 1}/${windows}: ${Math.round(total / reqs)} instructions/request`);
      figures[w] = { file: join(dir, last), perReq: total / reqs };
    }
    const sorted = [...figures].sort((a, b) => a.perReq - b.perReq);
    const mid = sorted[(sorted.length - 1) >> 1];
    const map = perfMap(child.pid);
    const dump = parseDump(mid.file, map, root);
    return { figures: figures.map((f) => f.perReq), dump, pid: child.pid };
  } finally {
    await stopProc(child);
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const f of readdirSync(dir)) if (f.startsWith('cg.')) execFileSync('cp', [join(dir, f), keep]);
    }
    rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
  }
}

try {
  const load0 = loadavg();
  console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')} (instruction counts do not depend on it)`);
  const upPort = await freePort();
  const up = nginxConf(tmp, 'up', `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } }`);
  const upstream = spawn('nginx', ['-c', up.f, '-p', up.dir, '-e', '/dev/null'], { stdio: 'ignore' });
  try {
    await waitForPort(upPort, upstream, 'the nginx upstream');
    const rows = [];
    const results = [];
    for (const driver of drivers) {
      for (const root of roots) {
        const r = await once(root, driver, upPort);
        results.push({ root, driver, ...r });
        const med = median(r.figures);
        rows.push({
          driver,
          ...(roots.length > 1 ? { build: root } : {}),
          'instr/req (median)': Math.round(med),
          min: Math.round(Math.min(...r.figures)),
          max: Math.round(Math.max(...r.figures)),
          windows: r.figures.length,
        });
      }
    }
    for (const r of results) {
      const per = (ir) => (ir / reqs).toFixed(0).padStart(7);
      console.error(`\n${r.driver} ${r.root}: median window, ${per(r.dump.total).trim()} instructions/request, by kind:`);
      for (const [k, v] of [...r.dump.kinds].sort((a, b) => b[1] - a[1])) console.error(`  ${per(v)}  ${((100 * v) / r.dump.total).toFixed(1).padStart(5)}%  ${k}`);
      console.error(`top ${top} functions (exclusive instructions/request):`);
      for (const [k, v] of [...r.dump.fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.error(`  ${per(v)}  ${k.slice(0, 150)}`);
    }
    console.error(`\nringio-proxy instructions per request (callgrind; ${conns} connections, ${warmup} warm-up requests, ${windows} windows of ${reqs})`);
    table(rows);
    emit(rows.map((r) => ({ bench: 'proxy-instructions', ...r })));
  } finally {
    await stopProc(upstream, 'SIGQUIT');
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
