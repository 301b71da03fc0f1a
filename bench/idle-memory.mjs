#!/usr/bin/env node
// Scenario: memory per idle connection. Each server takes N connections (default 15,000); every
// connection sends one 64-byte message, gets its echo, and then stays open and silent. The figure is the
// server's RSS growth divided by N (VmRSS after the connections settled, minus VmRSS after a warm-up of
// 500 connections that were closed again). Settling takes --settle ms (default 45,000) after the warm-up
// and again after the N connections: the accept burst grows V8's young generation (to 16 MiB
// semi-spaces, ~2 KiB per connection at 15,000), and only V8's memory reducer shrinks it back, once the
// heap has been quiet for a while: 25-30 s after the connections were up on this machine (8 s after the
// last full GC, then a check that the allocation rate is low). A short settle (--settle 2000) measures
// that young generation along with the connections, for every Node server alike. Servers: ringio io_uring and epoll with pooled reads (the echo
// example's default), the same with one rented 16 KiB buffer per connection (--reads rented, the way
// before pooled reads), node:net, and the C io_uring echo server from ../shared/bench (64 KiB buffer
// per connection, only touched pages count) when /tmp/ringio-bench-tools/echo_uring exists.
// The clients run in a separate process (this script with --client), since the server needs N fds and
// so do they (the machine allows 20,000 per process). Rounds are interleaved; figures are medians.
// --node-flags "..." passes V8/Node flags to every Node server alike (e.g. --max-semi-space-size=1: the
// young generation a busy accept phase grows stays committed, a constant that shows up per connection).
// --only a,b runs only the named servers.
// Usage: node bench/idle-memory.mjs [--conns 15000] [--rounds 3] [--settle 45000] [--node-flags "..."] [--only ...]
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
const settle = Number(arg('settle', 45000));
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

async function measure(cmd, args) {
  const port = nextPort++;
  const srv = spawn(cmd, [...args, String(port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(port, srv, cmd);
    const endWarm = await clients(port, 500, true);
    await endWarm();
    await sleep(settle);
    const before = rssKiB(srv.pid);
    const end = await clients(port, conns, false);
    await sleep(settle);
    const after = rssKiB(srv.pid);
    await end();
    return { before, after, perConnKiB: ((after - before) / conns) };
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
    cases.map((k) => ({ name: k.name, run: () => measure(k.cmd, k.args) })),
    { describe: (m) => `${m.perConnKiB.toFixed(2)} KiB/conn (RSS ${m.before} -> ${m.after} KiB)` },
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
      node_flags: nodeFlags.join(' '),
    });
  }
  table(out.map(({ bench: _b, ...r }) => r));
  emit(out);
}

if (process.argv.includes('--client')) await client();
else await main();
