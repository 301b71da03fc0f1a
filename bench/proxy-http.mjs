#!/usr/bin/env node
// Scenario: an HTTP reverse proxy in front of an nginx upstream (`return 200 "hello world\n"`,
// keep-alive). Proxies: ringio-proxy (protocol = "http") on io_uring and on epoll, and nginx as a reverse
// proxy (`proxy_http_version 1.1`, upstream `keepalive 128`), one worker each, pinned to CPU 0; the
// upstream and wrk (-t1 -c64, keep-alive) run on CPU 1. Per proxy: requests/s, p99, and the proxy's CPU µs
// per request (utime+stime over the run, nginx's worker included). Rounds are interleaved, figures are
// medians, the load average is printed with them. Node proxies (http-proxy-3, @fastify/http-proxy) are
// not in this first version: the bench says so.
// Cases: `http`, and `https`: the same with TLS termination at the proxy (ringio-proxy's `tls`, nginx's
// `listen ssl` with the same P-256 certificate, made with openssl), wrk over https with keep-alive.
// Usage: node bench/proxy-http.mjs [--rounds 5] [--secs 5] [--cases http,https]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, emit, freePort, has, interleave, median, parseWrk, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 5));
const node = process.execPath;
const tmp = mkdtempSync(join(tmpdir(), 'ringio-proxy-http-bench-'));
const cases = arg('cases', 'http,https').split(',');

const missing = [];
for (const tool of ['taskset', 'nginx', 'wrk', ...(cases.includes('https') ? ['openssl'] : [])]) if (!has(tool)) missing.push(tool);
if (missing.length) {
  console.error(`missing: ${missing.join(', ')} (apt-get install -y util-linux nginx-light wrk); nothing to measure without them`);
  process.exit(2);
}
console.error('not measured yet: http-proxy-3 and @fastify/http-proxy (no devDependency for them in this version)');

function startProc(cmd, args, cpu) {
  const child = spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.resume();
  return child;
}

async function stopProc(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

function nginxConf(name, body) {
  const dir = mkdtempSync(join(tmp, `${name}-`));
  const f = join(dir, 'nginx.conf');
  writeFileSync(f, `daemon off;\nworker_processes 1;\nerror_log /dev/null;\npid ${join(dir, 'nginx.pid')};\nevents { worker_connections 4096; }\nhttp { access_log off; ${body} }\n`);
  return { f, dir };
}

const upPort = await freePort();
const upConf = nginxConf('upstream', `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } }`);
const upstream = startProc('nginx', ['-c', upConf.f, '-p', upConf.dir, '-e', '/dev/null'], '1');
await waitForPort(upPort, upstream, 'the nginx upstream');

// The certificate both proxies terminate TLS with (https case).
const cert = join(tmp, 'cert.pem');
const key = join(tmp, 'key.pem');
if (cases.includes('https')) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
}
let tls = false;

function ringioConfig(port, driver) {
  const f = join(tmp, `ringio-${driver}-${port}.toml`);
  writeFileSync(
    f,
    `[runtime]\nthreads = 1\ndriver = "${driver}"\n[upgrade]\nsocket = "${join(tmp, `up-${port}.sock`)}"\n[servers.bench]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n${tls ? `tls = { cert = "${cert}", key = "${key}" }\n` : ''}[[servers.bench.routes]]\npath = "/"\nupstreams = [{ url = "http://127.0.0.1:${upPort}" }]\n`,
  );
  return f;
}

const proxies = [
  { name: 'ringio_uring', start: (port) => startProc(node, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', ringioConfig(port, 'uring')], '0') },
  { name: 'ringio_epoll', start: (port) => startProc(node, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', ringioConfig(port, 'epoll')], '0') },
  {
    name: 'nginx_proxy',
    stopSignal: 'SIGQUIT',
    start: (port) => {
      const { f, dir } = nginxConf(
        'proxy',
        `upstream up { server 127.0.0.1:${upPort}; keepalive 128; } server { listen 127.0.0.1:${port}${tls ? ` ssl; ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3` : ''}; keepalive_requests 1000000; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      );
      return startProc('nginx', ['-c', f, '-p', dir, '-e', '/dev/null'], '0');
    },
  },
];

async function round(p) {
  const port = await freePort();
  const child = p.start(port);
  try {
    await waitForPort(port, child, p.name);
    // warm-up: pools filled, code optimized
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`;
    execFileSync('taskset', ['-c', '1', 'wrk', '-t1', '-c64', '-d1s', url], { encoding: 'utf8' });
    const c0 = cpuSeconds(child.pid, { children: true });
    const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', '-c64', `-d${secs}s`, '--latency', url], { encoding: 'utf8' });
    const c1 = cpuSeconds(child.pid, { children: true });
    const w = parseWrk(out);
    if (w.errors) throw new Error(`${p.name}: wrk reported errors: ${w.errors}`);
    return { rps: w.rps, p99: w.p99_ms, cpuUs: ((c1 - c0) / (w.rps * secs)) * 1e6, load: loadavg()[0] };
  } finally {
    await stopProc(child, p.stopSignal);
  }
}

try {
  for (const c of cases) {
    tls = c === 'https';
    const load0 = loadavg();
    console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}`);
    const res = await interleave(rounds, proxies.map((p) => ({ name: p.name, run: () => round(p) })), {
      describe: (m) => `${Math.round(m.rps)} req/s, p99 ${m.p99.toFixed(2)} ms, ${m.cpuUs.toFixed(1)} µs CPU/req, load ${m.load.toFixed(2)}`,
    });
    const med = (name, f) => (res.get(name)?.length ? median(res.get(name).map(f)) : NaN);
    const nginxRps = med('nginx_proxy', (m) => m.rps);
    const rows = proxies.map((p) => ({
      proxy: p.name,
      'req/s': Math.round(med(p.name, (m) => m.rps)),
      'p99 ms': med(p.name, (m) => m.p99).toFixed(2),
      'µs CPU/req': med(p.name, (m) => m.cpuUs).toFixed(1),
      'vs nginx': (med(p.name, (m) => m.rps) / nginxRps).toFixed(2),
    }));
    const load1 = loadavg();
    console.error(`\n${tls ? 'HTTPS (TLS terminated at the proxy)' : 'HTTP'} reverse proxy, wrk -t1 -c64 (${secs} s, ${rounds} rounds, medians); proxy on CPU 0, wrk and the nginx upstream on CPU 1`);
    table(rows);
    console.error(`load average at end: ${load1.map((x) => x.toFixed(2)).join(' ')}`);
    emit(rows.map((r) => ({ bench: 'proxy-http', case: c, ...r, load_start: load0[0], load_end: load1[0] })));
  }
} finally {
  await stopProc(upstream, 'SIGQUIT');
  rmSync(tmp, { recursive: true, force: true });
}
