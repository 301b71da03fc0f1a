#!/usr/bin/env node
// Scenario: bytes the JS heap allocates per echoed message, and young-generation collections
// (scavenges) per 100k messages: 1 connection (--conns 1,64,256: each count in turn), depth 1, 64-byte
// messages, against examples/echo-server.mjs (its default loop, readLeases + send; --server-args picks
// another; --server another checkout's copy) on each driver. A scavenge pauses the loop for 0.1-0.2 ms, so
// how often one lands on a message sets the p999 of bench/latency.mjs's 1x1 case (docs/design/net.md).
//
// How: the server runs with --trace-gc-nvp; every scavenge line says how many bytes were allocated since
// the previous one (the young generation's size, 3.4 MB here) and when it ran. bytes/message = what the
// scavenges after the load's first steady one allocated / the messages echoed between the first and the
// last (the load generator's mean rate times that span), so neither end of the load is counted partly;
// the load's first SETTLE_MS (the connections being set up) is left out. A server that allocates too
// little for two scavenges in the rest gets an upper bound instead (flagged bytes_bound): a young
// generation per scavenge plus one, over those messages; a longer run (--secs) or a smaller young
// generation (--node-args '--max-semi-space-size=1', which changes how often, not what, it allocates)
// measures it. Scavenges per 100k messages are counted over the whole load. No hook in the server.
// Rounds are interleaved (driver by driver); figures are medians.
//
// Instrument: the C load generator of ../shared/bench (built into /tmp/ringio-bench-tools).
// Usage: node bench/echo-alloc.mjs [--rounds 3] [--secs 4] [--conns 1] [--drivers uring,epoll] [--server examples/echo-server.mjs]
//                                  [--server-args '--reads pooled'] [--node-args '--min-semi-space-size=16']
// Output: a table on stderr, one JSON line per (connection count, driver) on stdout.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, freePort, interleave, median, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 3));
const secs = Number(arg('secs', 4));
const drivers = arg('drivers', 'uring,epoll').split(',');
/** The start of the load left out of bytes/message: the connections' set-up allocates too. */
const SETTLE_MS = 500;
const connCounts = arg('conns', '1').split(',').map(Number);
const server = resolve(root, arg('server', 'examples/echo-server.mjs'));
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

async function once(driver, conns) {
  const port = await freePort();
  const spawned = performance.now();
  const child = spawn(process.execPath, ['--trace-gc-nvp', ...nodeArgs, server, ...serverArgs, '--port', String(port), '--driver', driver], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', () => {});
  try {
    await waitForPort(port, child, `echo server (${driver})`);
    const mark = out.length; // start-up's collections come before this
    // On the server's GC clock (ms since its start, which is a little after `spawned`): from here on
    // the connections are set up and echoing.
    const steady = performance.now() - spawned + SETTLE_MS;
    // Not execFileSync: the server's trace must be read while the load runs.
    const lg = await new Promise((resolve, reject) => {
      const c = spawn(join(tools, 'loadgen'), [String(port), String(conns), '64', String(secs), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      c.stdout.on('data', (d) => (s += d));
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`loadgen exited with ${code}`))));
    });
    const r = JSON.parse(lg.trim().split('\n').pop());
    const parse = (text) =>
      [...text.matchAll(/\s([\d.]+) ms: pause=([\d.]+) .*?gc=s .*?allocated=(\d+)/g)].map((m) => ({ t: Number(m[1]), pause: Number(m[2]), a: Number(m[3]) }));
    const gcs = parse(out.slice(mark));
    const msgs = r.msgs_per_s * secs;
    const steadyGcs = gcs.filter((g) => g.t >= steady);
    const base = { msgs_per_s: r.msgs_per_s, scavenges_per_100k: (gcs.length / msgs) * 1e5, pause_ms: gcs.length > 0 ? median(gcs.map((g) => g.pause)) : 0 };
    if (steadyGcs.length < 2) {
      // Too few to measure between: the steady part allocated less than a young generation (the most
      // one scavenge of the whole run found allocated, start-up included) plus what one found, so
      // bytes/message is at most that over its messages: an upper bound, flagged.
      const young = Math.max(...parse(out).map((g) => g.a), 0);
      const steadyMsgs = r.msgs_per_s * (secs - SETTLE_MS / 1000);
      return { ...base, bytes_per_msg: (young * (steadyGcs.length + 1)) / steadyMsgs, bound: true };
    }
    // Between the first and the last scavenge of the load: what the later ones say was allocated since
    // the one before, over the messages echoed in that span (at the load's mean rate).
    const bytes = steadyGcs.slice(1).reduce((s, g) => s + g.a, 0);
    const spanMsgs = (r.msgs_per_s * (steadyGcs[steadyGcs.length - 1].t - steadyGcs[0].t)) / 1000;
    return { ...base, bytes_per_msg: bytes / spanMsgs, bound: false };
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
  }
}

const load = loadavg()[0].toFixed(2);
const rows = [];
for (const conns of connCounts) {
  const results = await interleave(
    rounds,
    drivers.map((d) => ({ name: d, run: () => once(d, conns) })),
    { describe: (m) => `${conns} conns: ${m.bound ? '< ' : ''}${m.bytes_per_msg.toFixed(0)} B/msg, ${m.scavenges_per_100k.toFixed(1)} scavenges/100k msgs, ${m.msgs_per_s} msgs/s` },
  );
  for (const d of drivers) {
    const ms = results.get(d);
    rows.push({
      bench: 'echo-alloc',
      driver: d,
      conns,
      bytes_per_msg: Math.round(median(ms.map((m) => m.bytes_per_msg))),
      // The median is an upper bound (rounds with too few scavenges to measure between: see once()).
      bytes_bound: ms.some((m) => m.bound),
      scavenges_per_100k: Number(median(ms.map((m) => m.scavenges_per_100k)).toFixed(1)),
      scavenge_pause_ms: Number(median(ms.map((m) => m.pause_ms)).toFixed(2)),
      msgs_per_s: Math.round(median(ms.map((m) => m.msgs_per_s))),
      rounds: ms.length,
      node_args: nodeArgs.join(' '),
      load,
    });
  }
}
table(rows);
emit(rows);
