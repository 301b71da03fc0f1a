#!/usr/bin/env node
// Scenario: echo round-trip latency and throughput, 64-byte messages: 1 connection at depth 1 and at
// depth 4, and 64 and 256 connections at depth 1. Servers: ringio on io_uring, ringio on epoll,
// node:net, and a C io_uring echo server (the physical limit). The server runs pinned to CPU 0 and the
// load generator to CPU 1; rounds are interleaved server by server, figures are medians.
//
// Instruments: the C load generator and C echo server of ../shared/bench when that folder is there;
// otherwise the project's own: bench/loadgen.mjs (a ringio client; slower than the C one, so its CPU
// share is printed to tell when it is the bottleneck) and bench/experiments/echo-variants.c in its
// `plain` mode (built with gcc and liburing-dev; without them the C column is left out, with a message).
//
// --boost (root or CAP_SYS_NICE, on a kernel with autogroup scheduling): each server and load generator
// runs in its own session with its autogroup at nice -20, so that on a machine shared with other work
// (where every process's session is its own scheduling group, and plain nice does nothing across
// groups) the measured pair gets its CPUs as on a quiet machine. Every server gets the same treatment.
//
// Usage: node bench/latency.mjs [--rounds 5] [--secs 3] [--cases 1x1,1x4,64x1,256x1] [--servers a,b] [--boost]
//        (--servers may also name ringio_uring_rented and ringio_uring_fixed1024, below)
//        [--node-args '--min-semi-space-size=16'] [--baseline DIR]
// --baseline DIR: also runs DIR's examples/echo-server.mjs (another checkout, built) as ringio_uring_base
// and ringio_epoll_base, in the same interleaved rounds: an A/B of a change against the commit before.
// Several: --baseline name=DIR,name2=DIR2 (servers ringio_uring_name, ...).
// Output: a table on stderr, one JSON line per (case, server) on stdout. CPU per message is the
// server's utime + stime over the measured interval; the user column is utime alone.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, emit, has, median, table } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 3));
const size = 64;
const cases = arg('cases', '1x1,1x4,64x1,256x1')
  .split(',')
  .map((c) => {
    const [conns, depth] = c.split('x').map(Number);
    return { conns, depth: depth || 1 };
  });

if (!has('taskset')) {
  console.error('taskset (util-linux) is missing: it pins the server and the load generator to their CPUs');
  process.exit(1);
}

// The instruments.
let loadgen;
let cServer = null;
if (existsSync(join(shared, 'build.sh'))) {
  if (!existsSync(join(tools, 'loadgen')) || !existsSync(join(tools, 'echo_uring'))) {
    execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'inherit' });
  }
  loadgen = { kind: 'c', cmd: (port, conns, depth) => [join(tools, 'loadgen'), String(port), String(conns), String(size), String(secs), String(depth)] };
  cServer = [join(tools, 'echo_uring')];
} else {
  console.error(`${shared} is absent: using bench/loadgen.mjs and bench/experiments/echo-variants.c`);
  loadgen = {
    kind: 'js',
    cmd: (port, conns, depth) => [
      process.execPath,
      join(root, 'bench/loadgen.mjs'),
      '--port', String(port), '--conns', String(conns), '--size', String(size), '--secs', String(secs), '--depth', String(depth),
    ],
  };
  const out = join(tools, 'echo-variants');
  try {
    if (!existsSync(out)) {
      mkdirSync(tools, { recursive: true });
      execFileSync('gcc', ['-O2', '-o', out, join(root, 'bench/experiments/echo-variants.c'), '-l:liburing.a'], { stdio: 'inherit' });
    }
    cServer = [out, 'plain'];
  } catch {
    console.error('the C io_uring server could not be built (needs gcc and liburing-dev): its column is left out');
  }
}

const boost = process.argv.includes('--boost');
let boostWarned = false;
/** With --boost: the child leads its own session (so its own autogroup); give that group nice -20. */
function boosted(child) {
  if (!boost) return;
  try {
    writeFileSync(`/proc/${child.pid}/autogroup`, '-20');
  } catch (e) {
    if (!boostWarned) console.error(`--boost: cannot set the autogroup's nice (${e.code ?? e.message}); running unboosted`);
    boostWarned = true;
  }
}

const node = process.execPath;
// --node-args: node flags for every Node server alike (space-separated), e.g. '--min-semi-space-size=16'.
const nodeArgs = arg('node-args', '').split(' ').filter(Boolean);
const allServers = [
  { name: 'ringio_uring', cmd: [node, ...nodeArgs, join(root, 'examples/echo-server.mjs'), '--driver', 'uring', '--port'] },
  { name: 'ringio_epoll', cmd: [node, ...nodeArgs, join(root, 'examples/echo-server.mjs'), '--driver', 'epoll', '--port'] },
  { name: 'node_net', cmd: [node, ...nodeArgs, join(root, 'examples/node-net-echo.mjs'), '--port'] },
  ...(cServer ? [{ name: 'c_uring', cmd: cServer }] : []),
];
// Opt-in (named in --servers only): the io_uring example with its rented 16 KiB buffer per connection
// instead of pooled reads, and with the receive pool fixed at 1024 buffers (the default before it grew).
const extraServers = [
  { name: 'ringio_uring_rented', cmd: [node, ...nodeArgs, join(root, 'examples/echo-server.mjs'), '--driver', 'uring', '--reads', 'rented', '--port'] },
  { name: 'ringio_uring_fixed1024', cmd: allServers[0].cmd, env: { RINGIO_RECV_POOL: '1024:1024' } },
];
const baseline = arg('baseline', null);
if (baseline) {
  for (const spec of baseline.split(',')) {
    const [name, dir] = spec.includes('=') ? spec.split('=') : ['base', spec];
    for (const d of ['uring', 'epoll']) {
      allServers.push({ name: `ringio_${d}_${name}`, cmd: [node, ...nodeArgs, join(dir, 'examples/echo-server.mjs'), '--driver', d, '--port'] });
    }
  }
}
const only = arg('servers', null);
const servers = only ? [...allServers, ...extraServers].filter((s) => only.split(',').includes(s.name)) : allServers;

// Listening ports come from below the kernel's ephemeral range: on a machine where other work keeps tens
// of thousands of connections open, a port inside it is often some connection's local port already,
// and the server's bind fails (6 of 48 servers in one run with ports drawn from 20000-39999).
const ephemeralLow = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
})();
function freePortGuess() {
  const lo = Math.min(20000, ephemeralLow - 2000);
  return lo + Math.floor(Math.random() * (ephemeralLow - lo));
}

function listening(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

async function measure(server, conns, depth) {
  const port = freePortGuess();
  const env = server.env ? { ...process.env, ...server.env } : process.env;
  const child = spawn('taskset', ['-c', '0', ...server.cmd, String(port)], { stdio: 'ignore', detached: boost, env });
  boosted(child);
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = await listening(port);
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    if (!up) throw new Error('the server did not listen');
    const t0 = cpuSeconds(child.pid);
    const u0 = cpuSeconds(child.pid, { user: true });
    const [cmd, ...args] = loadgen.cmd(port, conns, depth);
    const out = await new Promise((resolve, reject) => {
      const lg = spawn('taskset', ['-c', '1', cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'], detached: boost });
      boosted(lg);
      let s = '';
      lg.stdout.on('data', (d) => (s += d));
      lg.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`load generator exited ${code}`))));
    });
    const t1 = cpuSeconds(child.pid);
    const u1 = cpuSeconds(child.pid, { user: true });
    const m = JSON.parse(out.trim().split('\n').pop());
    if (!(m.msgs_per_s > 0)) throw new Error('no messages echoed');
    return { ...m, server_cpu: (t1 - t0) / secs, server_user: (u1 - u0) / secs };
  } finally {
    child.kill('SIGKILL');
  }
}

const load0 = loadavg()[0];
const out = [];
for (const { conns, depth } of cases) {
  const runs = new Map(servers.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of servers) {
      try {
        const m = await measure(s, conns, depth);
        runs.get(s.name).push(m);
        console.error(`${conns}x${depth} round ${r + 1}/${rounds} ${s.name}: ${m.msgs_per_s} msgs/s p50 ${m.p50_us} p99 ${m.p99_us} p999 ${m.p999_us} µs`);
      } catch (e) {
        console.error(`${conns}x${depth} round ${r + 1}/${rounds} ${s.name}: ${e.message}`);
      }
    }
  }
  const med = (name, f) => median(runs.get(name).map(f));
  const cpuPerMsg = (m) => (m.server_cpu / m.msgs_per_s) * 1e6;
  const userPerMsg = (m) => (m.server_user / m.msgs_per_s) * 1e6;
  const has_ = (name) => runs.has(name) && runs.get(name).length > 0;
  for (const s of servers) {
    if (!has_(s.name)) continue;
    const msgs = med(s.name, (m) => m.msgs_per_s);
    const row = {
      bench: 'latency',
      server: s.name,
      conns,
      depth,
      size,
      rounds: runs.get(s.name).length,
      msgs_per_s: Math.round(msgs),
      p50_us: med(s.name, (m) => m.p50_us),
      p99_us: med(s.name, (m) => m.p99_us),
      p999_us: med(s.name, (m) => m.p999_us),
      server_cpu_us_per_msg: Number(med(s.name, cpuPerMsg).toFixed(2)),
      // utime alone: the server's own code (JS, for a Node server), which the kernel's share dilutes.
      server_user_us_per_msg: Number(med(s.name, userPerMsg).toFixed(2)),
      loadgen: loadgen.kind,
      load_avg: Number(load0.toFixed(2)),
      boost,
    };
    if (has_('node_net')) row.ratio_to_node_net = Number((msgs / med('node_net', (m) => m.msgs_per_s)).toFixed(3));
    if (has_('c_uring')) {
      row.p99_ratio_to_c = Number((row.p99_us / med('c_uring', (m) => m.p99_us)).toFixed(2));
      row.p999_ratio_to_c = Number((row.p999_us / med('c_uring', (m) => m.p999_us)).toFixed(2));
      row.cpu_ratio_to_c = Number((row.server_cpu_us_per_msg / med('c_uring', cpuPerMsg)).toFixed(3));
    }
    out.push(row);
  }
}
table(out.map(({ bench, size: _s, loadgen: _l, boost: _b, ...r }) => r));
console.error(`load average at start ${load0.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}`);
emit(out);
