#!/usr/bin/env node
// Scenario: bytes the JS heap allocates per echoed message, and young-generation collections
// (scavenges) per 100k messages: 1 connection, depth 1, 64-byte messages, against
// examples/echo-server.mjs (its default loop, readLeases + send; --server-args picks another) on each driver. A scavenge pauses the loop for 0.1-0.2 ms, so
// how often one lands on a message sets the p999 of bench/latency.mjs's 1x1 case (docs/design/net.md).
//
// How: the server runs with --trace-gc-nvp; every scavenge line says how many bytes were allocated since
// the previous one (the young generation's size, 3.4 MB here). bytes/message = the sum over the
// scavenges during the load / the messages the load generator counted; the part of the young
// generation filled before the load and the part left at its end make the error one young generation at
// most (about 1.5 % of a 4 s run). Scavenges per 100k messages are counted over the same span. No hook
// in the server. Rounds are interleaved (driver by driver); figures are medians.
//
// Instrument: the C load generator of ../shared/bench (built into /tmp/ringio-bench-tools).
// Usage: node bench/echo-alloc.mjs [--rounds 3] [--secs 4] [--drivers uring,epoll] [--server examples/echo-server.mjs]
//                                  [--server-args '--reads pooled'] [--node-args '--min-semi-space-size=16']
// Output: a table on stderr, one JSON line per driver on stdout.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, freePort, interleave, median, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 3));
const secs = Number(arg('secs', 4));
const drivers = arg('drivers', 'uring,epoll').split(',');
const server = join(root, arg('server', 'examples/echo-server.mjs'));
// Extra arguments for the server, space-separated (e.g. '--writes awaited').
const serverArgs = arg('server-args', '').split(' ').filter(Boolean);
// Extra node flags for the server, space-separated (e.g. '--min-semi-space-size=16': fewer, not
// longer, scavenges).
const nodeArgs = arg('node-args', '').split(' ').filter(Boolean);

if (!existsSync(join(tools, 'loadgen'))) {
  if (!existsSync(join(shared, 'build.sh'))) {
    console.error(`the C load generator is missing: build it with ${join(shared, 'build.sh')} ${tools}`);
    process.exit(1);
  }
  execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'inherit' });
}

async function once(driver) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--trace-gc-nvp', ...nodeArgs, server, ...serverArgs, '--port', String(port), '--driver', driver], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', () => {});
  try {
    await waitForPort(port, child, `echo server (${driver})`);
    const mark = out.length; // start-up's collections come before this
    // Not execFileSync: the server's trace must be read while the load runs.
    const lg = await new Promise((resolve, reject) => {
      const c = spawn(join(tools, 'loadgen'), [String(port), '1', '64', String(secs), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      c.stdout.on('data', (d) => (s += d));
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`loadgen exited with ${code}`))));
    });
    const r = JSON.parse(lg.trim().split('\n').pop());
    const gcs = [...out.slice(mark).matchAll(/\s([\d.]+) ms: pause=([\d.]+) .*?gc=s .*?allocated=(\d+)/g)].map((m) => ({
      t: Number(m[1]),
      pause: Number(m[2]),
      a: Number(m[3]),
    }));
    const msgs = r.msgs_per_s * secs;
    if (gcs.length < 3) throw new Error(`only ${gcs.length} scavenges: run longer (--secs)`);
    const bytes = gcs.reduce((s, g) => s + g.a, 0);
    return { msgs_per_s: r.msgs_per_s, bytes_per_msg: bytes / msgs, scavenges_per_100k: (gcs.length / msgs) * 1e5, pause_ms: median(gcs.map((g) => g.pause)) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
  }
}

const load = loadavg()[0].toFixed(2);
const results = await interleave(
  rounds,
  drivers.map((d) => ({ name: d, run: () => once(d) })),
  { describe: (m) => `${m.bytes_per_msg.toFixed(0)} B/msg, ${m.scavenges_per_100k.toFixed(1)} scavenges/100k msgs, ${m.msgs_per_s} msgs/s` },
);
const rows = drivers.map((d) => {
  const ms = results.get(d);
  return {
    bench: 'echo-alloc',
    driver: d,
    bytes_per_msg: Math.round(median(ms.map((m) => m.bytes_per_msg))),
    scavenges_per_100k: Number(median(ms.map((m) => m.scavenges_per_100k)).toFixed(1)),
    scavenge_pause_ms: median(ms.map((m) => m.pause_ms)),
    msgs_per_s: Math.round(median(ms.map((m) => m.msgs_per_s))),
    rounds: ms.length,
    node_args: nodeArgs.join(' '),
    load,
  };
});
table(rows);
emit(rows);
