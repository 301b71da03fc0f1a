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
// connections, opened once for the whole run, one request in flight on each, as wrk -c C) sends
// --warmup requests; then `callgrind_control --instr=on`, one uncounted window of --reqs requests,
// and --windows times: `callgrind_control -z` (zero), --reqs requests, `callgrind_control -d` (dump).
// Each window's total divided by --reqs is one figure; the table gives the median and the spread
// over windows (a window with a major GC or a late JIT compile costs more), and the same without the
// JIT compiler's work (tier-ups and re-optimizations still happen after the warm-up, more in some
// windows than in others: the steadier figure for an A/B). The breakdown is the median window's (by
// that figure), with the callers of its top builtins and C++ functions (which JS function's access
// went through an IC stub).
// Kinds: JS by tier, V8 builtins (IC stubs among them), V8 compiler, V8 GC, other node/V8 C++
// (runtime calls), the addon (ringio.node), libc. With several builds, the functions whose median
// over the windows moved most against the first build's.
// Under valgrind the proxy is ~50x slower than its client, so every loop turn sees all C connections
// ready (full batches): the figure is a saturated proxy's, as in bench/proxy-http.mjs.
// Builds: --roots /path/a,/path/b (each a checkout with its packages built) run one after the other
// (the counts do not depend on load). An A/B of two builds with the defaults takes ~9 min on a loaded
// machine; the windows of one run then agree within ~1-2% (a scavenge in a window or not).
// Usage: node bench/experiments/proxy-instructions.mjs [--roots .] [--drivers uring] [--warmup 30000]
//          [--reqs 5000] [--windows 5] [--conns 64] [--top 40] [--keep DIR (leave the callgrind files there)]
//          [--node-flags --flag1,--flag2 (for the proxy's node; default --single-threaded)]
// Then, for a closer look: callgrind_annotate DIR/cg.PID.N (names of JIT code are addresses there;
// DIR/perf-PID.map names them).
// --server: what runs under callgrind. `proxy` (default, above); `proxy-https`: the same proxy with TLS
// terminated (`tls = { cert, key }`, a P-256 certificate made with openssl as bench/proxy-http.mjs's
// https case), the client over node:tls; `compat-https`: bench/compat.mjs's https server (node:http
// behind @ringio/compat's listenSecure, no upstream); `node-https`: the same node:http on plain
// node:https (the anchor of bench/compat.mjs --cases https); `nginx-https`: nginx terminating TLS in
// front of the same upstream, as bench/proxy-http.mjs's https case runs it (one process: master_process
// off; C code only, so the breakdown is by symbol). The TLS clients' keep-alive connections
// are made before the warm-up, so no handshake is counted: the figure is a keep-alive request's.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, freePort, has, median, nginxConf, nginxProxyConf, ringioProxyConfig, stopProc, table, waitForPort } from '../lib.mjs';
import { control, fnMedians, keepDumps, parseDump, perfMap } from './callgrind.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '../..');
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const drivers = String(arg('drivers', 'uring')).split(',');
const warmup = Number(arg('warmup', 30_000));
const reqs = Number(arg('reqs', 5000));
const windows = Number(arg('windows', 5));
const conns = Number(arg('conns', 64));
const top = Number(arg('top', 40));
const keep = arg('keep', '');
// Node flags for the proxy, comma-separated. --single-threaded by default: no concurrent compiler
// thread, so when a function is optimized, and what it inlines, does not depend on thread timing (with
// it two builds inlined the same, and a change showed as its own per-function moves; without it the
// same build's functions were inlined differently from run to run). --node-flags '' for none.
const nodeFlags = String(arg('node-flags', '--single-threaded')).split(',').filter(Boolean);
const tmp = mkdtempSync(join(tmpdir(), 'ringio-proxy-instr-'));
const server = String(arg('server', 'proxy'));
if (!['proxy', 'proxy-https', 'compat-https', 'node-https', 'nginx-https'].includes(server)) {
  console.error(`--server ${server}: one of proxy, proxy-https, compat-https, node-https, nginx-https`);
  process.exit(2);
}
const https = server !== 'proxy';
const cert = join(tmp, 'cert.pem');
const key = join(tmp, 'key.pem');

for (const tool of ['valgrind', 'callgrind_control', 'nginx', ...(https ? ['openssl'] : [])]) {
  if (!has(tool)) {
    console.error(`missing: ${tool} (apt-get install -y valgrind nginx-light); nothing to measure without it`);
    process.exit(2);
  }
}

/**
 * `n` keep-alive connections to the proxy, opened once and kept for the whole run (as wrk keeps its
 * connections: a window pays for no accept and no connection set-up). `run(total)` sends `total` GET
 * requests over them, one in flight on each, and resolves once all are answered; anything but a 200,
 * or a connection closed, rejects. `close()` ends them.
 */
async function clients(port, n) {
  const req = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  let left = 0;
  let busy = 0;
  let done;
  let fail;
  let closing = false;
  const next = (s) => {
    if (left <= 0) {
      if (--busy === 0) done();
      return;
    }
    left--;
    s.write(req);
  };
  const open = () =>
    new Promise((res, rej) => {
      const s = https ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => res(s)) : connect(port, '127.0.0.1', () => res(s));
      let buf = '';
      s.on('error', (e) => (fail ? fail(e) : rej(e)));
      s.on('close', () => !closing && fail?.(new Error('the proxy closed a connection')));
      s.on('data', (d) => {
        buf += d.toString('latin1');
        for (;;) {
          const h = buf.indexOf('\r\n\r\n');
          if (h < 0) return;
          const m = /\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, h));
          if (!buf.startsWith('HTTP/1.1 200') || !m) return fail(new Error(`unexpected response: ${buf.slice(0, 80)}`));
          const end = h + 4 + Number(m[1]);
          if (buf.length < end) return;
          buf = buf.slice(end);
          next(s);
        }
      });
    });
  const socks = await Promise.all(Array.from({ length: n }, open));
  return {
    run(total) {
      return new Promise((res, rej) => {
        left = total;
        busy = socks.length;
        done = res;
        fail = rej;
        for (const s of socks) next(s);
      });
    },
    close() {
      closing = true;
      for (const s of socks) s.destroy();
    },
  };
}

/** The command line of the server measured (see --server). */
function serverCmd(root, driver, port, conf, upPort) {
  if (server === 'nginx-https') {
    // bench/proxy-http.mjs's nginx, TLS included, in one process.
    const { f, dir } = nginxProxyConf(tmp, upPort, port, ` ssl; ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3`, { single: true });
    return ['nginx', '-c', f, '-p', dir, '-e', '/dev/null'];
  }
  const node = [process.execPath, '--perf-basic-prof', ...nodeFlags];
  if (server === 'proxy' || server === 'proxy-https') return [...node, join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', conf];
  const impl = server === 'compat-https' ? 'ringio' : 'node';
  return [...node, join(root, 'bench/compat.mjs'), '--serve', 'https', '--impl', impl, '--port', String(port), '--driver', driver, '--cert', cert, '--key', key];
}

async function once(root, driver, upPort) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, 'run-'));
  const conf = ringioProxyConfig(dir, { port, upPort, driver, extra: server === 'proxy-https' ? `tls = { cert = "${cert}", key = "${key}" }\n` : '' });
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--dump-instr=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`, ...serverCmd(root, driver, port, conf, upPort)],
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
    const load = await clients(port, conns);
    await load.run(warmup);
    control(child.pid, '--instr=on');
    // The first instrumented requests cost ~2x the steady state (the proxy was fast a moment ago and is
    // slow now: its batches change size): one window's worth is sent and not counted.
    await load.run(reqs);
    const figures = [];
    for (let w = 0; w < windows; w++) {
      control(child.pid, '-z');
      await load.run(reqs);
      control(child.pid, '-d');
      const parts = readdirSync(dir).filter((f) => /^cg\.\d+\.\d+$/.test(f));
      const last = parts.sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2])).pop();
      const total = Number(/^summary: (\d+)$/m.exec(readFileSync(join(dir, last), 'latin1'))?.[1]);
      console.error(`  ${driver} ${root}: window ${w + 1}/${windows}: ${Math.round(total / reqs)} instructions/request`);
      figures[w] = { file: join(dir, last), perReq: total / reqs };
    }
    // Every window parsed: the figure without the JIT compiler's work (tier-up and re-optimization
    // still happen after the warm-up, in some windows more than in others).
    const map = perfMap(child.pid);
    for (const f of figures) {
      f.dump = parseDump(f.file, map, root);
      const comp = [...f.dump.kinds].filter(([k]) => k.startsWith('V8 compiler')).reduce((a, [, v]) => a + v, 0);
      f.noCompiler = (f.dump.total - comp) / reqs;
    }
    const sorted = [...figures].sort((a, b) => a.noCompiler - b.noCompiler);
    const mid = sorted[(sorted.length - 1) >> 1];
    // Each function's median over the windows (steadier than one window's: a function's own count
    // varies less than the total, which a GC or a compile in one window moves).
    const medians = fnMedians(figures.map((f) => f.dump));
    load.close();
    return { figures: figures.map((f) => f.perReq), noCompiler: figures.map((f) => f.noCompiler), dump: mid.dump, fnMedians: medians };
  } finally {
    await stopProc(child);
    keepDumps(dir, child.pid, keep);
  }
}

try {
  if (https) execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
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
          'without compiler (median)': Math.round(median(r.noCompiler)),
          'w/o compiler min': Math.round(Math.min(...r.noCompiler)),
          'w/o compiler max': Math.round(Math.max(...r.noCompiler)),
          windows: r.figures.length,
        });
      }
    }
    for (const r of results) {
      const per = (ir) => (ir / reqs).toFixed(0).padStart(7);
      console.error(`\n${r.driver} ${r.root}: the median window (by the figure without the compiler), ${per(r.dump.total).trim()} instructions/request, by kind:`);
      for (const [k, v] of [...r.dump.kinds].sort((a, b) => b[1] - a[1])) console.error(`  ${per(v)}  ${((100 * v) / r.dump.total).toFixed(1).padStart(5)}%  ${k}`);
      console.error(`top ${top} functions (exclusive instructions/request, each function's median over the windows):`);
      for (const [k, v] of [...r.fnMedians].sort((a, b) => b[1] - a[1]).slice(0, top)) console.error(`  ${per(v)}  ${k.slice(0, 150)}`);
      // Who calls the builtins (IC stubs: a megamorphic or uninlined access) and the C++ among the top:
      // inclusive instructions/request of the calls, by the JS function (or symbol) at the call site.
      console.error('callers of the top builtins and C++ functions (inclusive instructions/request of the calls):');
      // The ICs of baseline (Sparkplug) code too: their callers are functions TurboFan has not optimized.
      const natives = [...r.dump.fns]
        .filter(([k]) => !k.startsWith('JS:'))
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
        .concat([...r.dump.callers.keys()].filter((k) => /^Builtin:\w+IC\w*Baseline$/.test(k)).map((k) => [k, 0]));
      for (const [k] of natives) {
        const m = r.dump.callers.get(k);
        if (m === undefined) continue;
        const list = [...m].sort((a, b) => b[1] - a[1]).slice(0, 4);
        console.error(`  ${k.slice(0, 100)}:`);
        for (const [c, v] of list) console.error(`    ${per(v)}  ${c.slice(0, 140)}`);
      }
    }
    // Builds side by side: the functions whose median moved most against the first build's (JIT code
    // is named by its source position, so a function whose lines moved shows as one gone, one new).
    for (const r of results.slice(1)) {
      const a = results.find((x) => x.driver === r.driver);
      if (a === r) continue;
      const strip = (k) => k.replace(/ [^ ]*:\d+:\d+$/, '');
      const fold = (m) => {
        const o = new Map();
        for (const [k, v] of m) o.set(strip(k), (o.get(strip(k)) ?? 0) + v);
        return o;
      };
      const fa = fold(a.fnMedians);
      const fb = fold(r.fnMedians);
      const diffs = [...new Set([...fa.keys(), ...fb.keys()])].map((k) => [k, (fb.get(k) ?? 0) - (fa.get(k) ?? 0)]).filter(([k]) => !/v8::internal::compiler/.test(k));
      diffs.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
      console.error(`\n${r.driver}: ${r.root} against ${a.root}, the ${top} largest moves of a function's median (instructions/request; source positions dropped from names):`);
      for (const [k, v] of diffs.slice(0, top)) console.error(`  ${(v / reqs >= 0 ? '+' : '') + (v / reqs).toFixed(0).padStart(6)}  ${k.slice(0, 150)}`);
    }
    console.error(`\n${server} instructions per request (callgrind; ${conns} connections, ${warmup} warm-up requests, ${windows} windows of ${reqs})`);
    table(rows);
    emit(rows.map((r) => ({ bench: 'proxy-instructions', server, ...r })));
  } finally {
    await stopProc(upstream, 'SIGQUIT');
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
