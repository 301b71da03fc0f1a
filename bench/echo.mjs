#!/usr/bin/env node
// Scenario: TCP echo of 64-byte messages at 1, 64 and 512 connections (one message in flight each).
// Servers: ringio on io_uring, ringio on epoll, node:net, and the C io_uring reference server, measured
// with the reference load generator in ../shared/bench (echo-run.sh pins the server to CPU 0 and the
// load generator to CPU 1). Rounds are interleaved server by server; figures are medians.
// Without ../shared/bench (or its build tools), the C server is left out and bench/loadgen.mjs (a Node
// load generator on ringio, slower than the C one: it can be the bottleneck) drives the Node servers.
// Usage: node bench/echo.mjs [--rounds 5] [--secs 3] [--conns 1,64,512] [--size 64]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, emit, median, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.RINGIO_BENCH_SHARED || join(root, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 3));
const size = Number(arg('size', 64));
const connsList = arg('conns', '1,64,512').split(',').map(Number);

let reference = existsSync(join(shared, 'echo-run.sh'));
if (!reference) console.error(`the reference instruments are missing (${shared}): no c_uring column; load from bench/loadgen.mjs`);
else if (!existsSync(join(tools, 'loadgen'))) {
  try {
    execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'inherit' });
  } catch (e) {
    reference = false;
    console.error(`building the reference instruments failed (${e.message.split('\n')[0]}): no c_uring column; load from bench/loadgen.mjs`);
  }
}

const node = process.execPath;
const servers = [
  { name: 'node_net', cmd: `${node} ${join(root, 'examples/node-net-echo.mjs')} --port` },
  { name: 'ringio_uring', cmd: `${node} ${join(root, 'examples/echo-server.mjs')} --driver uring --port` },
  { name: 'ringio_epoll', cmd: `${node} ${join(root, 'examples/echo-server.mjs')} --driver epoll --port` },
  // The echo example with one rented 16 KiB buffer per connection (its reads before pooled reads).
  { name: 'ringio_uring_rented', cmd: `${node} ${join(root, 'examples/echo-server.mjs')} --driver uring --reads rented --port` },
  ...(reference ? [{ name: 'c_uring', cmd: join(tools, 'echo_uring') }] : []),
];

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function once(cmd, conns) {
  if (!reference) return onceNode(cmd, conns);
  const out = execFileSync(join(shared, 'echo-run.sh'), [cmd, String(conns), String(size), String(secs), '1'], {
    encoding: 'utf8',
    env: { ...process.env, RINGIO_BENCH_TOOLS: tools },
  });
  return JSON.parse(out.trim().split('\n').pop());
}

/** echo-run.sh's measurement with bench/loadgen.mjs as the load generator (server on CPU 0, load on CPU 1). */
async function onceNode(cmd, conns) {
  const pin = (cpu, argv) => (hasTaskset ? ['taskset', '-c', String(cpu), ...argv] : argv);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const [bin, ...args] = pin(0, [...cmd.split(' '), String(port)]);
  const server = spawn(bin, args, { stdio: 'ignore' });
  try {
    await waitForPort(port, server, 'the echo server');
    const cpu = () => cpuSeconds(server.pid);
    const c0 = cpu();
    const t0 = performance.now();
    const [lb, ...la] = pin(1, [node, join(root, 'bench/loadgen.mjs'), '--port', String(port), '--conns', String(conns), '--size', String(size), '--secs', String(secs)]);
    const out = execFileSync(lb, la, { encoding: 'utf8', cwd: root });
    const wall = (performance.now() - t0) / 1000;
    const m = JSON.parse(out.trim().split('\n').pop());
    return { ...m, server_cpu: (cpu() - c0) / wall };
  } finally {
    server.kill('SIGTERM');
  }
}

const out = [];
for (const conns of connsList) {
  const runs = new Map(servers.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of servers) {
      // A measurement that fails (a random port already taken, a server slow to start on a busy
      // machine) is tried once more before the round goes without it.
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          const m = await once(s.cmd, conns);
          if (m.msgs_per_s > 0) {
            runs.get(s.name).push(m);
            break;
          }
          console.error(`${s.name} @${conns}: no messages echoed (attempt ${attempt})`);
        } catch (e) {
          console.error(`${s.name} @${conns}: ${e.message.split('\n')[0]} (attempt ${attempt})`);
        }
      }
    }
  }
  const med = (name, f) => median(runs.get(name).map(f));
  const cpu = (m) => (m.server_cpu / m.msgs_per_s) * 1e6;
  const baseMsgs = med('node_net', (m) => m.msgs_per_s);
  const cCpu = runs.has('c_uring') && runs.get('c_uring').length > 0 ? med('c_uring', cpu) : NaN;
  for (const s of servers) {
    if (runs.get(s.name).length === 0) continue;
    const msgs = med(s.name, (m) => m.msgs_per_s);
    out.push({
      bench: 'echo',
      server: s.name,
      conns,
      size,
      rounds: runs.get(s.name).length,
      msgs_per_s: Math.round(msgs),
      ratio_to_node_net: Number((msgs / baseMsgs).toFixed(3)),
      server_cpu_us_per_msg: Number(med(s.name, cpu).toFixed(2)),
      cpu_ratio_to_c_uring: Number.isNaN(cCpu) ? null : Number((med(s.name, cpu) / cCpu).toFixed(3)),
      loadgen: reference ? 'c' : 'node',
      p50_us: med(s.name, (m) => m.p50_us),
      p99_us: med(s.name, (m) => m.p99_us),
    });
  }
}
table(out.map(({ bench, size: _s, ...r }) => r));
emit(out);
