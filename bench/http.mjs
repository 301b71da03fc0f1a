#!/usr/bin/env node
// Scenario: HTTP/1.1 keep-alive GETs of 'hello world\n' under wrk -t1 -c64. Servers: node:http over
// ringio sockets (examples/http-server.mjs, toDuplex) on io_uring and on epoll, and plain node:http
// (examples/node-http-server.mjs), the anchor. Each server runs in its own process pinned to CPU 0, wrk
// pinned to CPU 1 (when taskset exists). Rounds are interleaved server by server; figures are medians,
// and the ratio is to node:http's median of the same run. Server CPU per request comes from
// /proc/<pid>/stat over the measured interval. With nginx installed, nginx (one process: master_process
// off, one worker's work, access log off, `return 200`) is measured too, as the native-server reference.
// Usage: node bench/http.mjs [--rounds 5] [--secs 5] [--conns 64]
// Needs wrk (Debian/Ubuntu: apt-get install wrk); nginx is optional (apt-get install nginx-light).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, emit, freePort, has, interleave, median, parseWrk, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 5));
const conns = Number(arg('conns', 64));

if (!has('wrk')) {
  console.error('bench/http.mjs needs wrk, which is not installed (Debian/Ubuntu: apt-get install wrk). Nothing was measured.');
  process.exit(1);
}
const pinned = has('taskset');
const pin = (cpu, cmd) => (pinned ? ['taskset', ['-c', String(cpu), ...cmd]] : [cmd[0], cmd.slice(1)]);
if (!pinned) console.error('taskset not found: server and wrk are not pinned');

const node = process.execPath;
const servers = [
  { name: 'node_http', args: [join(root, 'examples/node-http-server.mjs')] },
  { name: 'ringio_uring', args: [join(root, 'examples/http-server.mjs'), '--driver', 'uring'] },
  { name: 'ringio_epoll', args: [join(root, 'examples/http-server.mjs'), '--driver', 'epoll'] },
];
const nginx = ['nginx', '/usr/sbin/nginx'].find((c) => has(c));
if (nginx) servers.push({ name: 'nginx', nginx });
else console.error('nginx not found: no nginx column (Debian/Ubuntu: apt-get install nginx-light)');

/** A one-process nginx answering 'hello world\n' on PORT, everything it writes kept in a temp folder. */
function nginxConfig(dir, port) {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port} reuseport;
    location / { default_type text/plain; return 200 "hello world\n"; }
  }
}
`;
}

/** Starts a server on a free port and resolves once it has printed its listening line. */
async function startServer(s) {
  const port = await freePort();
  if (s.nginx) return startNginx(s, port);
  const [cmd, args] = pin(0, [node, ...s.args, '--port', String(port)]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${s.name} did not start: ${err}`)), 10_000);
    child.stderr.setEncoding('utf8').on('data', (c) => {
      err += c;
      if (/ on 127\.0\.0\.1:\d+/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`${s.name} exited (${code}): ${err}`)));
  });
  return { child, port, stderr: () => err };
}

async function startNginx(s, port) {
  const dir = mkdtempSync(join(tmpdir(), 'ringio-bench-nginx-'));
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port));
  const [cmd, args] = pin(0, [s.nginx, '-p', dir, '-c', join(dir, 'nginx.conf')]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c) => (err += c));
  child.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  try {
    await waitForPort(port, child, 'nginx');
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}: ${err || readFileSync(join(dir, 'error.log'), 'utf8')}`);
  }
  return { child, port, stderr: () => err };
}

function wrk(port, seconds) {
  const [cmd, args] = pin(1, ['wrk', '-t1', `-c${conns}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`]);
  return parseWrk(execFileSync(cmd, args, { encoding: 'utf8' }));
}

async function once(s) {
  const srv = await startServer(s);
  try {
    wrk(srv.port, 1); // warm-up: JIT, connection setup
    const c0 = cpuSeconds(srv.child.pid);
    const m = wrk(srv.port, secs);
    const c1 = cpuSeconds(srv.child.pid);
    if (m.errors) console.error(`${s.name}: wrk reports ${m.errors}`);
    if (!(m.rps > 0)) throw new Error(`wrk measured no requests`);
    return { ...m, cpu_us_per_req: ((c1 - c0) / (m.rps * secs)) * 1e6 };
  } finally {
    srv.child.kill('SIGTERM');
    await new Promise((r) => (srv.child.exitCode !== null ? r() : srv.child.once('exit', r)));
  }
}

const runs = await interleave(
  rounds,
  servers.map((s) => ({ name: s.name, run: () => once(s) })),
  { describe: (m) => `${Math.round(m.rps)} req/s` },
);

const med = (name, f) => median(runs.get(name).map(f));
const base = med('node_http', (m) => m.rps);
const out = [];
for (const s of servers) {
  if (runs.get(s.name).length === 0) continue;
  const rps = med(s.name, (m) => m.rps);
  out.push({
    bench: 'http',
    server: s.name,
    conns,
    rounds: runs.get(s.name).length,
    req_per_s: Math.round(rps),
    ratio_to_node_http: Number((rps / base).toFixed(3)),
    server_cpu_us_per_req: Number(med(s.name, (m) => m.cpu_us_per_req).toFixed(2)),
    p50_ms: Number(med(s.name, (m) => m.p50_ms).toFixed(2)),
    p99_ms: Number(med(s.name, (m) => m.p99_ms).toFixed(2)),
  });
}
table(out.map(({ bench, ...r }) => r));
emit(out);
