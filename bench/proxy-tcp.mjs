#!/usr/bin/env node
// Scenario: an L4 TCP proxy in front of an echo server. Proxies: ringio-proxy on io_uring, ringio-proxy
// on epoll, nginx's stream proxy (one worker) and a node:net pipe proxy (`c.pipe(u).pipe(c)`). Each
// proxy runs pinned to CPU 0; the load generator and the upstream run on CPU 1.
//   1. echo load: the reference load generator (/work/shared/bench loadgen when present, else
//      bench/loadgen.mjs), 64 connections, 64-byte messages, one in flight each: msgs/s and the proxy's
//      CPU µs per message (utime+stime of the proxy, nginx's worker included).
//   2. bulk: 1 GiB sent through the proxy to a sink upstream, timed to the sink's last byte: MB/s.
// Rounds are interleaved proxy by proxy; figures are medians. The load average is printed with them.
// Usage: node bench/proxy-tcp.mjs [--rounds 5] [--secs 3] [--bulk-mib 1024] [--skip-bulk]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, emit, has, interleave, median, stopProc, table } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 3));
const bulkMiB = Number(arg('bulk-mib', 1024));
const skipBulk = process.argv.includes('--skip-bulk');
const skipEcho = process.argv.includes('--skip-echo');
const only = arg('only', '') ? arg('only', '').split(',') : null;
// Extra server keys for ringio-proxy, e.g. --ringio-extra 'splice = "never"' (TOML lines, \n-separated).
const ringioExtra = arg('ringio-extra', '').replace(/\\n/g, '\n');
const node = process.execPath;
const tmp = mkdtempSync(join(tmpdir(), 'ringio-proxy-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// --- instruments ---------------------------------------------------------------------------------
let loadgen;
if (existsSync(join(shared, 'build.sh'))) {
  if (!existsSync(join(tools, 'loadgen'))) execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'inherit' });
  loadgen = (port) => ['taskset', ['-c', '1', join(tools, 'loadgen'), String(port), '64', '64', String(secs), '1']];
} else {
  console.error('note: /work/shared/bench is missing; using bench/loadgen.mjs');
  loadgen = (port) => ['taskset', ['-c', '1', node, join(root, 'bench/loadgen.mjs'), '--port', String(port), '--conns', '64', '--size', '64', '--secs', String(secs)]];
}
const missing = [];
if (!has('taskset')) missing.push('taskset (util-linux)');
const nginx = has('nginx') && existsSync('/usr/lib/nginx/modules/ngx_stream_module.so');
if (!nginx) missing.push('nginx with the stream module (apt-get install -y nginx-light libnginx-mod-stream)');
if (missing.length) console.error(`missing, left out: ${missing.join('; ')}`);

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port, ms = 15000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

function startProc(cmd, args, opts = {}) {
  const child = spawn('taskset', ['-c', opts.cpu ?? '0', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  child.stderrText = () => err;
  return child;
}

// --- upstreams -------------------------------------------------------------------------------------
const echoPort = await freePort();
const echo = existsSync(join(tools, 'echo_uring'))
  ? startProc(join(tools, 'echo_uring'), [String(echoPort)], { cpu: '1' })
  : startProc(node, [join(root, 'examples/node-net-echo.mjs'), '--port', String(echoPort)], { cpu: '1' });
const sinkPort = await freePort();
const sinkSrc = `
const net = require('net');
net.createServer({ allowHalfOpen: true }, (s) => { let n = 0; s.on('data', (d) => { n += d.length; }); s.on('end', () => s.end(String(n))); s.on('error', () => {}); })
  .listen(${sinkPort}, '127.0.0.1');`;
const sink = startProc(node, ['-e', sinkSrc], { cpu: '1' });
await waitPort(echoPort);
await waitPort(sinkPort);

// --- proxies -----------------------------------------------------------------------------------------
const nodePipe = `
const net = require('net');
const [port, up] = process.argv.slice(1).map(Number);
net.createServer({ allowHalfOpen: true }, (c) => {
  const u = net.connect({ port: up, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.pipe(u).pipe(c);
}).listen(port, '127.0.0.1');`;

function ringioConfig(port, up, driver) {
  const f = join(tmp, `ringio-${driver}-${port}.toml`);
  writeFileSync(f, `[runtime]\nthreads = 1\ndriver = "${driver}"\n[upgrade]\nsocket = "${join(tmp, `up-${port}.sock`)}"\n[servers.bench]\nlisten = "127.0.0.1:${port}"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:${up}" }]\n${ringioExtra}\n`);
  return f;
}

function nginxConfig(port, up) {
  const dir = mkdtempSync(join(tmp, 'nginx-'));
  const f = join(dir, 'nginx.conf');
  writeFileSync(
    f,
    `load_module /usr/lib/nginx/modules/ngx_stream_module.so;\ndaemon off;\nworker_processes 1;\nerror_log /dev/null;\npid ${join(dir, 'nginx.pid')};\nevents { worker_connections 4096; }\nstream { server { listen 127.0.0.1:${port}; proxy_pass 127.0.0.1:${up}; proxy_half_close on; } }\n`,
  );
  return { f, dir };
}

const allProxies = [
  { name: 'ringio_uring', start: (port, up) => startProc(node, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', ringioConfig(port, up, 'uring')]) },
  { name: 'ringio_epoll', start: (port, up) => startProc(node, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', ringioConfig(port, up, 'epoll')]) },
  ...(nginx
    ? [
        {
          name: 'nginx_stream',
          start: (port, up) => {
            const { f, dir } = nginxConfig(port, up);
            return startProc('nginx', ['-c', f, '-p', dir, '-e', '/dev/null']);
          },
          stopSignal: 'SIGQUIT',
        },
      ]
    : []),
  { name: 'node_net_pipe', start: (port, up) => startProc(node, ['-e', nodePipe, String(port), String(up)]) },
];

const proxies = only ? allProxies.filter((p) => only.includes(p.name)) : allProxies;

async function echoRound(p) {
  const port = await freePort();
  const child = p.start(port, echoPort);
  try {
    await waitPort(port);
    const c0 = cpuSeconds(child.pid, { children: true });
    const [cmd, args] = loadgen(port);
    const out = execFileSync(cmd, args, { encoding: 'utf8' });
    const c1 = cpuSeconds(child.pid, { children: true });
    const m = JSON.parse(out.trim().split('\n').pop());
    return { msgs: m.msgs_per_s, p99: m.p99_us ?? m.p99, cpuUsPerMsg: ((c1 - c0) / (m.msgs_per_s * secs)) * 1e6, load: loadavg()[0] };
  } finally {
    await stopProc(child, p.stopSignal);
  }
}

/** Sends bulkMiB MiB through the proxy to the sink; resolves MB/s (to the sink's count reply). */
async function bulkRound(p) {
  const port = await freePort();
  const child = p.start(port, sinkPort);
  try {
    await waitPort(port);
    const chunk = Buffer.alloc(1 << 20, 7);
    const total = bulkMiB * chunk.length;
    const t0 = performance.now();
    const c0 = cpuSeconds(child.pid, { children: true });
    const reply = await new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < bulkMiB) {
          sent++;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      s.on('connect', pump);
    });
    const ms = performance.now() - t0;
    const c1 = cpuSeconds(child.pid, { children: true });
    if (Number(reply) !== total) throw new Error(`the sink got ${reply} bytes, expected ${total}`);
    return { mbps: total / 1e6 / (ms / 1000), cpuSecs: c1 - c0, load: loadavg()[0] };
  } finally {
    await stopProc(child, p.stopSignal);
  }
}

try {
  const load0 = loadavg();
  console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  const echoRes = skipEcho ? new Map() : await interleave(rounds, proxies.map((p) => ({ name: p.name, run: () => echoRound(p) })), {
    describe: (m) => `${Math.round(m.msgs)} msgs/s, ${m.cpuUsPerMsg.toFixed(1)} µs CPU/msg, load ${m.load.toFixed(2)}`,
  });
  const bulkRes = skipBulk
    ? new Map()
    : await interleave(Math.max(1, Math.ceil(rounds / 2)), proxies.map((p) => ({ name: p.name, run: () => bulkRound(p) })), {
        describe: (m) => `${Math.round(m.mbps)} MB/s, ${m.cpuSecs.toFixed(2)} CPU s, load ${m.load.toFixed(2)}`,
      });
  const med = (map, name, f) => (map.get(name)?.length ? median(map.get(name).map(f)) : NaN);
  const base = (name) => med(echoRes, name, (m) => m.msgs);
  const rows = proxies.map((p) => {
    const msgs = base(p.name);
    return {
      proxy: p.name,
      'msgs/s': Math.round(msgs),
      'µs CPU/msg': med(echoRes, p.name, (m) => m.cpuUsPerMsg).toFixed(1),
      'vs nginx': nginx ? (msgs / base('nginx_stream')).toFixed(2) : 'n/a',
      'vs node:net': (msgs / base('node_net_pipe')).toFixed(2),
      'bulk MB/s': skipBulk ? 'skipped' : Math.round(med(bulkRes, p.name, (m) => m.mbps)),
      'bulk CPU s': skipBulk ? '' : med(bulkRes, p.name, (m) => m.cpuSecs).toFixed(2),
    };
  });
  const load1 = loadavg();
  console.error(`\nL4 proxy, 64 connections × 64-byte echo (${secs} s, ${rounds} rounds, medians) and ${bulkMiB} MiB bulk; proxy on CPU 0`);
  table(rows);
  console.error(`load average at end: ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  emit(rows.map((r) => ({ bench: 'proxy-tcp', ...r, load_start: load0[0], load_end: load1[0] })));
} finally {
  await stopProc(echo, 'SIGKILL');
  await stopProc(sink, 'SIGKILL');
}
