#!/usr/bin/env node
// Are a Node echo server's slow round trips its scavenges? One connection at depth 1 (64 B), driven by
// bench/experiments/tail-count.c, server pinned to CPU 0 and client to CPU 1 (as bench/latency.mjs
// does). For each server: round trips over 100 and 200 us per 100k messages (the client's census), and
// for the Node servers scavenges per 100k messages during the load (--trace-gc-nvp) and bytes allocated
// per message. The C io_uring server is the machine's own noise. Rounds interleaved, medians.
// The *_awaited servers run examples/echo-server.mjs with --reads pooled --writes awaited (await
// readLease and await writeAll per message: the example's loop before send() and readLeases()).
// Usage: node bench/experiments/tail-vs-gc.mjs [--rounds 3] [--secs 4] [--servers a,b] [--boost]
//        [--echo-args '--writes queued']
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, freePort, median, table, waitForPort } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 3));
const secs = Number(arg('secs', 4));
const boost = process.argv.includes('--boost');
const echoArgs = arg('echo-args', '').split(' ').filter(Boolean);
const counter = join(tools, 'tail-count');
if (!existsSync(counter)) execFileSync('gcc', ['-O2', '-o', counter, join(root, 'bench/experiments/tail-count.c')], { stdio: 'inherit' });
const node = [process.execPath, '--trace-gc-nvp'];
const all = [
  { name: 'ringio_uring', cmd: [...node, join(root, 'examples/echo-server.mjs'), ...echoArgs, '--driver', 'uring', '--port'] },
  { name: 'ringio_epoll', cmd: [...node, join(root, 'examples/echo-server.mjs'), ...echoArgs, '--driver', 'epoll', '--port'] },
  { name: 'ringio_uring_awaited', cmd: [...node, join(root, 'examples/echo-server.mjs'), '--reads', 'pooled', '--writes', 'awaited', '--driver', 'uring', '--port'] },
  { name: 'ringio_epoll_awaited', cmd: [...node, join(root, 'examples/echo-server.mjs'), '--reads', 'pooled', '--writes', 'awaited', '--driver', 'epoll', '--port'] },
  { name: 'node_net', cmd: [...node, join(root, 'examples/node-net-echo.mjs'), '--port'] },
  { name: 'c_uring', cmd: [join(tools, 'echo_uring')] },
];
const only = arg('servers', null);
const servers = only ? all.filter((s) => only.split(',').includes(s.name)) : all;

function boosted(child) {
  if (!boost) return;
  try {
    writeFileSync(`/proc/${child.pid}/autogroup`, '-20');
  } catch {}
}

async function once(s) {
  const port = await freePort();
  const child = spawn('taskset', ['-c', '0', ...s.cmd, String(port)], { stdio: ['ignore', 'pipe', 'ignore'], detached: boost });
  boosted(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  try {
    await waitForPort(port, child, s.name);
    const mark = out.length;
    const res = await new Promise((resolve, reject) => {
      const c = spawn('taskset', ['-c', '1', counter, String(port), String(secs)], { stdio: ['ignore', 'pipe', 'inherit'], detached: boost });
      boosted(c);
      let o = '';
      c.stdout.on('data', (d) => (o += d));
      c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(o.trim())) : reject(new Error(`tail-count exited ${code}`))));
    });
    const gcs = [...out.slice(mark).matchAll(/pause=([\d.]+) .*?gc=s .*?allocated=(\d+)/g)];
    const per = (x) => (x / res.msgs) * 1e5;
    return {
      ...res,
      over100_per_100k: per(res.over100),
      over200_per_100k: per(res.over200),
      scavenges_per_100k: s.name === 'c_uring' ? null : per(gcs.length),
      bytes_per_msg: s.name === 'c_uring' ? null : gcs.reduce((a, m) => a + Number(m[2]), 0) / res.msgs,
    };
  } finally {
    child.kill('SIGKILL');
  }
}

const load = loadavg()[0].toFixed(2);
const runs = new Map(servers.map((s) => [s.name, []]));
for (let r = 0; r < rounds; r++) {
  for (const s of servers) {
    try {
      const m = await once(s);
      runs.get(s.name).push(m);
      console.error(`round ${r + 1} ${s.name}: ${m.msgs_per_s}/s p50 ${m.p50_us} p99 ${m.p99_us} p999 ${m.p999_us} >100us ${m.over100_per_100k.toFixed(1)}/100k >200us ${m.over200_per_100k.toFixed(1)}/100k scav ${m.scavenges_per_100k?.toFixed(1)}/100k ${m.bytes_per_msg?.toFixed(0)} B/msg (load ${loadavg()[0].toFixed(2)})`);
    } catch (e) {
      console.error(`round ${r + 1} ${s.name}: ${e.message}`);
    }
  }
}
const rows = servers.filter((s) => runs.get(s.name).length).map((s) => {
  const ms = runs.get(s.name);
  const med = (f) => median(ms.map(f));
  return {
    bench: 'tail-vs-gc',
    server: s.name,
    msgs_per_s: Math.round(med((m) => m.msgs_per_s)),
    p50_us: med((m) => m.p50_us),
    p99_us: med((m) => m.p99_us),
    p999_us: med((m) => m.p999_us),
    over100_per_100k: Number(med((m) => m.over100_per_100k).toFixed(1)),
    over200_per_100k: Number(med((m) => m.over200_per_100k).toFixed(1)),
    scavenges_per_100k: s.name === 'c_uring' ? null : Number(med((m) => m.scavenges_per_100k).toFixed(1)),
    bytes_per_msg: s.name === 'c_uring' ? null : Math.round(med((m) => m.bytes_per_msg)),
    rounds: ms.length,
    load,
    boost,
  };
});
table(rows);
emit(rows);
