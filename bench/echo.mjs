#!/usr/bin/env node
// Scenario: TCP echo of 64-byte messages at 1, 64 and 512 connections (one message in flight each).
// Servers: ringio on io_uring, ringio on epoll, node:net, and the C io_uring reference server, measured
// with the reference load generator in ../shared/bench (echo-run.sh pins the server to CPU 0 and the
// load generator to CPU 1). Rounds are interleaved server by server; figures are medians.
// Usage: node bench/echo.mjs [--rounds 5] [--secs 3] [--conns 1,64,512] [--size 64]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, median, table } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 3));
const size = Number(arg('size', 64));
const connsList = arg('conns', '1,64,512').split(',').map(Number);

if (!existsSync(join(shared, 'echo-run.sh'))) {
  console.error(`the reference instruments are missing: ${shared}`);
  process.exit(1);
}
if (!existsSync(join(tools, 'loadgen'))) execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'inherit' });

const node = process.execPath;
const servers = [
  { name: 'node_net', cmd: `${node} ${join(root, 'examples/node-net-echo.mjs')} --port` },
  { name: 'ringio_uring', cmd: `${node} ${join(root, 'examples/echo-server.mjs')} --driver uring --port` },
  { name: 'ringio_epoll', cmd: `${node} ${join(root, 'examples/echo-server.mjs')} --driver epoll --port` },
  { name: 'c_uring', cmd: join(tools, 'echo_uring') },
];

function once(cmd, conns) {
  const out = execFileSync(join(shared, 'echo-run.sh'), [cmd, String(conns), String(size), String(secs), '1'], {
    encoding: 'utf8',
    env: { ...process.env, RINGIO_BENCH_TOOLS: tools },
  });
  return JSON.parse(out.trim().split('\n').pop());
}

const out = [];
for (const conns of connsList) {
  const runs = new Map(servers.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of servers) {
      try {
        const m = once(s.cmd, conns);
        if (m.msgs_per_s > 0) runs.get(s.name).push(m);
      } catch (e) {
        console.error(`${s.name} @${conns}: ${e.message.split('\n')[0]}`);
      }
    }
  }
  const med = (name, f) => median(runs.get(name).map(f));
  const cpu = (m) => (m.server_cpu / m.msgs_per_s) * 1e6;
  const baseMsgs = med('node_net', (m) => m.msgs_per_s);
  const cCpu = med('c_uring', cpu);
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
      cpu_ratio_to_c_uring: Number((med(s.name, cpu) / cCpu).toFixed(3)),
      p50_us: med(s.name, (m) => m.p50_us),
      p99_us: med(s.name, (m) => m.p99_us),
    });
  }
}
table(out.map(({ bench, size: _s, ...r }) => r));
emit(out);
