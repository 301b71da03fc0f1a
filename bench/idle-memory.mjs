#!/usr/bin/env node
// Scenario: memory per idle connection. Each server takes N connections (default 15,000); every
// connection sends one 64-byte message, gets its echo, and then stays open and silent. The figure is the
// server's RSS growth divided by N (VmRSS after the connections settled, minus VmRSS after a warm-up of
// 500 connections that were closed again, settled the same way).
// Settling: the accept burst grows V8's young generation (to 16 MiB semi-spaces, ~2 KiB per connection
// at 15,000) and only V8's memory reducer shrinks it back, once the heap has been quiet for a while:
// 20-60 s later on this machine, varying from run to run. So each phase (after the warm-up, after the N
// connections) waits --settle ms (default 2,000) and then, for the Node servers (run with --trace-gc),
// until the memory reducer's GC ("Mark-Compact (reduce)") has run in that phase, at most --reducer-max
// ms (default 90,000); the `reduced` column says in which phases it ran (before/after, per round).
// --reducer no measures after the fixed settle alone, so the grown young generation counts too.
// Servers: ringio io_uring and epoll with pooled reads (the echo example's default), the same with one
// rented 16 KiB buffer per connection (--reads rented, the way before pooled reads), node:net, and the C
// io_uring echo server from ../shared/bench (64 KiB buffer per connection, only touched pages count)
// when /tmp/ringio-bench-tools/echo_uring exists.
// The clients run in a separate process (this script with --client), since the server needs N fds and
// so do they (the machine allows 20,000 per process). Rounds are interleaved; figures are medians.
// --node-flags "..." passes V8/Node flags to every Node server alike (e.g. --max-semi-space-size=1 keeps
// the young generation small from the start).
// --only a,b runs only the named servers.
// Usage: node bench/idle-memory.mjs [--conns 15000] [--rounds 3] [--settle 2000] [--reducer wait|no]
//        [--reducer-max 90000] [--node-flags "..."] [--only ...]
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { arg, emit, interleave, median, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const conns = Number(arg('conns', 15000));
const rounds = Number(arg('rounds', 3));
const settle = Number(arg('settle', 2000));
const reducer = arg('reducer', 'wait');
if (reducer !== 'wait' && reducer !== 'no') throw new TypeError(`--reducer must be wait or no, got ${reducer}`);
const reducerMax = Number(arg('reducer-max', 90000));
const nodeFlags = arg('node-flags', '').split(' ').filter(Boolean);
const only = arg('only', '').split(',').filter(Boolean);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


/** Client mode: open `count` connections to `port`, one echo each, keep them; 'ready' on stdout; exit on stdin end. */
async function client() {
  const port = Number(arg('port', 0));
  const count = Number(arg('count', 0));
  const close = process.argv.includes('--close');
  const socks = [];
  const msg = Buffer.alloc(64, 97);
  const one = () =>
    new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(msg));
      s.setNoDelay(true);
      let got = 0;
      s.on('data', (d) => {
        got += d.length;
        if (got >= msg.length) {
          s.removeAllListeners('data');
          s.pause(); // idle from here: no reads, nothing buffered
          resolve(s);
        }
      });
      s.once('error', reject);
    });
  for (let i = 0; i < count; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, count - i) }, one));
    socks.push(...batch);
  }
  if (close) for (const s of socks) s.destroy();
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Runs the client side in a child process; resolves with a function that ends it. */
async function clients(port, count, close) {
  const args = [fileURLToPath(import.meta.url), '--client', '--port', String(port), '--count', String(count)];
  if (close) args.push('--close');
  const c = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    c.stdout.on('data', (d) => d.toString().includes('ready') && resolve());
    c.once('exit', (code) => reject(new Error(`the client process exited with ${code}`)));
  });
  return async () => {
    c.stdin.end();
    if (c.exitCode === null) await new Promise((r) => c.once('exit', r));
  };
}

let nextPort = 31000 + Math.floor(Math.random() * 1000);

async function measure(cmd, args, isNode) {
  const port = nextPort++;
  const traced = isNode && reducer === 'wait';
  const srv = spawn(cmd, [...(traced ? ['--trace-gc'] : []), ...args, String(port)], {
    stdio: ['ignore', traced ? 'pipe' : 'ignore', 'inherit'],
  });
  // Memory-reducer GCs seen on the server's --trace-gc output so far.
  let reductions = 0;
  if (traced) {
    let tail = '';
    srv.stdout.setEncoding('utf8');
    srv.stdout.on('data', (d) => {
      const lines = (tail + d).split('\n');
      tail = lines.pop();
      for (const l of lines) if (l.includes('Mark-Compact (reduce)')) reductions++;
    });
  }
  /** The fixed settle, then (traced) until a reducer GC ran in this phase, and 1 s more; true if one ran. */
  const settlePhase = async (seenAtStart) => {
    await sleep(settle);
    if (!traced) return false;
    const deadline = Date.now() + reducerMax;
    while (reductions === seenAtStart && Date.now() < deadline) await sleep(250);
    if (reductions === seenAtStart) return false;
    await sleep(1000);
    return true;
  };
  try {
    await waitForPort(port, srv, cmd);
    // A phase starts once its clients are all connected (and echoed): a reducer GC during the accept
    // burst itself does not count, since the burst grows the young generation again after it.
    const endWarm = await clients(port, 500, true);
    await endWarm();
    const reducedBefore = await settlePhase(reductions);
    const before = rssKiB(srv.pid);
    const end = await clients(port, conns, false);
    const reducedAfter = await settlePhase(reductions);
    const after = rssKiB(srv.pid);
    await end();
    const reduced = traced ? `${reducedBefore ? 'y' : 'n'}/${reducedAfter ? 'y' : 'n'}` : '-';
    return { before, after, perConnKiB: (after - before) / conns, reduced };
  } finally {
    srv.kill('SIGKILL');
    if (srv.exitCode === null) await new Promise((r) => srv.once('exit', r));
  }
}

async function main() {
  const node = process.execPath;
  const echo = join(root, 'examples/echo-server.mjs');
  let cases = [
    { name: 'ringio_uring', cmd: node, args: [...nodeFlags, echo, '--driver', 'uring', '--port'] },
    { name: 'ringio_epoll', cmd: node, args: [...nodeFlags, echo, '--driver', 'epoll', '--port'] },
    { name: 'ringio_uring_rented', cmd: node, args: [...nodeFlags, echo, '--driver', 'uring', '--reads', 'rented', '--port'] },
    { name: 'ringio_epoll_rented', cmd: node, args: [...nodeFlags, echo, '--driver', 'epoll', '--reads', 'rented', '--port'] },
    { name: 'node_net', cmd: node, args: [...nodeFlags, join(root, 'examples/node-net-echo.mjs'), '--port'] },
  ];
  const c = join(tools, 'echo_uring');
  if (existsSync(c)) cases.push({ name: 'c_uring', cmd: c, args: [] });
  else console.error(`missing ${c} (build ../shared/bench with its build.sh into ${tools}): no c_uring row`);
  if (only.length > 0) cases = cases.filter((k) => only.includes(k.name));
  const load0 = loadavg()[0];
  const res = await interleave(
    rounds,
    cases.map((k) => ({ name: k.name, run: () => measure(k.cmd, k.args, k.cmd === node) })),
    { describe: (m) => `${m.perConnKiB.toFixed(2)} KiB/conn (RSS ${m.before} -> ${m.after} KiB, reduced ${m.reduced})` },
  );
  const load1 = loadavg()[0];
  const out = [];
  for (const k of cases) {
    const ms = res.get(k.name);
    if (ms.length === 0) continue;
    out.push({
      bench: 'idle-memory',
      server: k.name,
      conns,
      kib_per_conn: Number(median(ms.map((m) => m.perConnKiB)).toFixed(2)),
      rss_before_mib: Number((median(ms.map((m) => m.before)) / 1024).toFixed(1)),
      rss_after_mib: Number((median(ms.map((m) => m.after)) / 1024).toFixed(1)),
      rounds: ms.length,
      load: `${load0.toFixed(1)}-${load1.toFixed(1)}`,
      settle_s: settle / 1000,
      reduced: ms.map((m) => m.reduced).join(' '),
      node_flags: nodeFlags.join(' '),
    });
  }
  table(out.map(({ bench: _b, ...r }) => r));
  emit(out);
}

if (process.argv.includes('--client')) await client();
else await main();
