#!/usr/bin/env node
// Scenarios for @ringio/http (the native HTTP/1.1 layer), each anchor measured in the same run:
//   server  hello, 4 KiB and 64 KiB bodies under wrk -t1 -c64, and hello with 16-deep pipelining under
//           h2load --h1 -m16 -c64: ringio's examples/http-hello.mjs on io_uring and on epoll, beside
//           nginx (one worker, `return 200 "hello world\n"`, the bodies as cached files) and node:http.
//           The server is pinned to CPU 0, the load generator to CPU 1.
//           The hello scenario also prices the WHATWG fetch handler (ringio_fetch_uring).
//   close   (--cases close; needs ab) hello under ab -c50 without keep-alive: a new connection per
//           request, so the accept path and a connection's setup and close are what is measured. Its
//           warm-up closes 8 connections without a request after 1,000 requests (see bench/compat.mjs).
//           --base DIR adds the ringio servers of another built checkout (ringio_uring@base, ...).
//   client  requests/s of keep-alive GETs against nginx (pinned to CPU 1) from one process on CPU 0 with
//           64 requests in flight: ringio's HttpClient (io_uring, epoll) beside undici's Pool.request
//           and Pool.dispatch (64 connections each), with the client process's CPU per request.
// Rounds are interleaved, figures are medians; server CPU per request comes from /proc/<pid>/stat over
// the measured interval, and the load average is printed with the figures (the machine is shared).
// Usage: node bench/http-native.mjs [--rounds 3] [--secs 4] [--only server|client] [--cases hello,4k,64k,pipeline,close] [--base DIR]
// Needs wrk, h2load (nghttp2-client) and nginx (apt-get install -y wrk nghttp2-client nginx-light).
// (Internal roles: --role node-server --port P --size N; --role client --impl ringio|undici-request|undici-dispatch --url U --secs S)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, emit, freePort, has, idleConnections, interleave, median, parseWrk, table } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const role = arg('role', undefined);

if (role === 'node-server') {
  const body = Buffer.alloc(Number(arg('size', '12')), 'x');
  if (body.length === 12) body.write('hello world\n');
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.listen(Number(arg('port', '0')), '127.0.0.1', () => console.error(`node:http on 127.0.0.1:${server.address().port}`));
  process.once('SIGTERM', () => process.exit(0));
} else if (role === 'client') {
  await clientRole();
} else {
  await mainRole();
}

async function clientRole() {
  const impl = arg('impl');
  const url = arg('url');
  const secs = Number(arg('secs', '4'));
  const inflight = 64;
  const warm = 1;
  let count = 0;
  let counting = false;
  const until = () => performance.now() < deadline;
  let deadline = performance.now() + (warm + secs) * 1000;
  setTimeout(() => {
    counting = true;
  }, warm * 1000);
  let t0 = 0;
  let cpu0;
  const tick = () => {
    if (counting) {
      if (t0 === 0) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
      count++;
    }
  };
  if (impl === 'ringio') {
    const { start } = await import('@ringio/runtime');
    const { HttpClient } = await import('@ringio/http');
    await start(async () => {
      const c = new HttpClient({ maxConnections: inflight });
      const worker = async () => {
        while (until()) {
          const r = await c.request(url);
          await r.bytes();
          tick();
        }
      };
      await Promise.all(Array.from({ length: inflight }, worker));
      await c.close();
    }, { driver: arg('driver', 'uring') });
  } else {
    const { Pool } = await import('undici');
    const pool = new Pool(new URL(url).origin, { connections: inflight, pipelining: 1 });
    const path = new URL(url).pathname;
    if (impl === 'undici-request') {
      const worker = async () => {
        while (until()) {
          const r = await pool.request({ path, method: 'GET' });
          await r.body.arrayBuffer();
          tick();
        }
      };
      await Promise.all(Array.from({ length: inflight }, worker));
    } else {
      // Pool.dispatch with a minimal handler: the floor of what undici's client costs.
      const one = () =>
        new Promise((resolve, reject) => {
          pool.dispatch({ path, method: 'GET' }, {
            onConnect() {},
            onHeaders() {
              return true;
            },
            onData() {
              return true;
            },
            onComplete() {
              resolve();
            },
            onError: reject,
          });
        });
      const worker = async () => {
        while (until()) {
          await one();
          tick();
        }
      };
      await Promise.all(Array.from({ length: inflight }, worker));
    }
    await pool.close();
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ rps: count / elapsed, cpu_us_per_req: (cpu.user + cpu.system) / count }) + '\n');
}

async function mainRole() {
  const rounds = Number(arg('rounds', 3));
  const secs = Number(arg('secs', 4));
  const only = arg('only', undefined);
  const cases = arg('cases', 'hello,4k,64k,pipeline').split(',');
  const baseRoot = arg('base', undefined);
  const missing = ['wrk', 'h2load', 'nginx', ...(cases.includes('close') ? ['ab'] : [])].filter((c) => !has(c));
  if (missing.length) {
    console.error(`bench/http-native.mjs needs ${missing.join(', ')} (Debian: apt-get install -y wrk nghttp2-client nginx-light). Nothing was measured (ab: apache2-utils).`);
    process.exit(1);
  }
  const pinned = has('taskset');
  const pin = (cpu, cmd) => (pinned ? ['taskset', ['-c', String(cpu), ...cmd]] : [cmd[0], cmd.slice(1)]);
  if (!pinned) console.error('taskset not found: servers and load generators are not pinned');
  const node = process.execPath;
  const dir = mkdtempSync(join(tmpdir(), 'ringio-bench-http-'));
  process.once('SIGINT', () => process.exit(130));
  // No server outlives the bench (an error or Ctrl-C between start and stop).
  const children = new Set();
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const sizes = { hello: 12, '4k': 4096, '64k': 65536, pipeline: 12, close: 12 };
  for (const [name, n] of Object.entries(sizes)) {
    writeFileSync(join(dir, `${name}.txt`), n === 12 ? 'hello world\n' : Buffer.alloc(n, 'x'));
  }

  async function waitPort(port, child, what) {
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode})`);
      const up = await new Promise((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(true));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
      });
      if (up) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${what} did not start`);
  }

  function nginxConf(port) {
    const conf = join(dir, `nginx-${port}.conf`);
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; master_process off; pid ${dir}/nginx-${port}.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; open_file_cache max=16; default_type text/plain;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  server { listen 127.0.0.1:${port}; root ${dir};
    location = / { return 200 "hello world\\n"; }
    location = /4k { try_files /4k.txt =404; }
    location = /64k { try_files /64k.txt =404; } } }\n`,
    );
    return conf;
  }

  async function startServer(kind, size, cpu) {
    const port = await freePort();
    let cmd;
    if (kind === 'nginx') cmd = ['nginx', '-c', nginxConf(port), '-p', dir];
    else if (kind === 'node_http') cmd = [node, fileURLToPath(import.meta.url), '--role', 'node-server', '--port', String(port), '--size', String(size)];
    else cmd = [node, join(kind.endsWith('@base') ? baseRoot : root, 'examples/http-hello.mjs'), '--port', String(port), '--driver', kind.replace('@base', '').split('_').pop(), ...(size !== 12 ? ['--size', String(size)] : []), ...(kind.includes('fetch') ? ['--fetch'] : [])];
    const [c, a] = pin(cpu, cmd);
    const child = spawn(c, a, { stdio: ['ignore', 'ignore', 'ignore'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    await waitPort(port, child, kind);
    return { child, port };
  }

  async function stop(child) {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  }

  /** `count`: for close, this many requests instead of the seconds' worth. */
  function load(kind, port, path, seconds, count) {
    const url = `http://127.0.0.1:${port}${path}`;
    if (kind === 'pipeline') {
      const n = String(Math.max(20000, Math.round(seconds * 150_000)));
      const [c, a] = pin(1, ['h2load', '--h1', '-c64', '-m16', '-t1', '-n', n, url]);
      const out = execFileSync(c, a, { encoding: 'utf8' });
      const rps = parseFloat(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1]);
      const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0);
      return { rps, errors: failed ? `${failed} failed` : null, p50_ms: NaN, p99_ms: NaN };
    }
    if (kind === 'close') {
      // A number of requests, not a time: one ab run stays under the ~28k ephemeral ports (TIME_WAIT).
      const n = String(count ?? Math.max(3000, Math.round(seconds * 3000)));
      const [c, a] = pin(1, ['ab', '-q', '-c50', '-n', n, '-s', '10', url]);
      const out = execFileSync(c, a, { encoding: 'utf8' });
      const failed = Number(/Failed requests:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const pct = (p) => parseFloat(new RegExp(`^\\s+${p}%\\s+(\\d+)`, 'm').exec(out)?.[1]);
      return { rps: parseFloat(/Requests per second:\s+([\d.]+)/.exec(out)?.[1]), errors: failed ? `${failed} failed` : null, p50_ms: pct(50), p99_ms: pct(99) };
    }
    const [c, a] = pin(1, ['wrk', '-t1', '-c64', `-d${seconds}s`, '--latency', url]);
    return parseWrk(execFileSync(c, a, { encoding: 'utf8' }));
  }

  async function serverOnce(kind, scenario) {
    const size = sizes[scenario];
    const path = kind === 'nginx' && (scenario === '4k' || scenario === '64k') ? `/${scenario}` : '/';
    const srv = await startServer(kind, size, 0);
    try {
      if (scenario === 'close') {
        // As bench/compat.mjs's ab cases (IDLE_WARM): connections closed without a request, met before V8
        // optimizes the close path, so that the ones ab leaves at the end of the warm-up deoptimize nothing.
        load(scenario, srv.port, path, 1, 1000);
        await idleConnections(srv.port, 8);
      }
      load(scenario, srv.port, path, 1); // warm-up: JIT, connections
      const c0 = cpuSeconds(srv.child.pid);
      const t0 = performance.now();
      const m = load(scenario, srv.port, path, secs);
      const elapsed = (performance.now() - t0) / 1000;
      const c1 = cpuSeconds(srv.child.pid);
      if (m.errors) console.error(`${kind} ${scenario}: ${m.errors}`);
      if (!(m.rps > 0)) throw new Error('no requests measured');
      return { ...m, cpu_us_per_req: ((c1 - c0) / (m.rps * elapsed)) * 1e6 };
    } finally {
      await stop(srv.child);
    }
  }

  async function clientOnce(impl) {
    const ngx = await startServer('nginx', 12, 1);
    try {
      const [c, a] = pin(0, [node, fileURLToPath(import.meta.url), '--role', 'client', '--impl', impl.split('_')[0], '--driver', impl.split('_')[1] ?? 'uring', '--url', `http://127.0.0.1:${ngx.port}/`, '--secs', String(secs)]);
      const out = execFileSync(c, a, { encoding: 'utf8', cwd: root });
      return JSON.parse(out.trim().split('\n').pop());
    } finally {
      await stop(ngx.child);
    }
  }

  const results = [];
  const load0 = loadavg();
  if (only !== 'client') {
    for (const scenario of cases) {
      // The fetch handler is priced on the hello scenario only.
      const kinds = [
        'nginx',
        'node_http',
        'ringio_uring',
        'ringio_epoll',
        ...(scenario === 'hello' ? ['ringio_fetch_uring'] : []),
        ...(baseRoot !== undefined ? ['ringio_uring@base', 'ringio_epoll@base'] : []),
      ];
      const runs = await interleave(rounds, kinds.map((k) => ({ name: k, run: () => serverOnce(k, scenario) })), {
        describe: (m) => `${scenario} ${Math.round(m.rps)} req/s, ${m.cpu_us_per_req.toFixed(1)} us/req`,
      });
      const med = (k, f) => median(runs.get(k).map(f));
      const nginx = med('nginx', (m) => m.rps);
      const nodeHttp = med('node_http', (m) => m.rps);
      const nginxCpu = med('nginx', (m) => m.cpu_us_per_req);
      for (const k of kinds) {
        if (runs.get(k).length === 0) continue;
        const rps = med(k, (m) => m.rps);
        const cpu = med(k, (m) => m.cpu_us_per_req);
        results.push({
          bench: 'http-native',
          scenario,
          server: k,
          rounds: runs.get(k).length,
          req_per_s: Math.round(rps),
          ratio_to_nginx: Number((rps / nginx).toFixed(3)),
          ratio_to_node_http: Number((rps / nodeHttp).toFixed(3)),
          server_cpu_us_per_req: Number(cpu.toFixed(2)),
          cpu_ratio_to_nginx: Number((cpu / nginxCpu).toFixed(2)),
          p50_ms: Number(med(k, (m) => m.p50_ms).toFixed(2)),
          p99_ms: Number(med(k, (m) => m.p99_ms).toFixed(2)),
        });
      }
    }
  }
  if (only !== 'server') {
    const impls = ['ringio_uring', 'ringio_epoll', 'undici-request', 'undici-dispatch'];
    const runs = await interleave(rounds, impls.map((i) => ({ name: i, run: () => clientOnce(i) })), {
      describe: (m) => `client ${Math.round(m.rps)} req/s, ${m.cpu_us_per_req.toFixed(1)} us/req`,
    });
    const base = median(runs.get('undici-request').map((m) => m.rps));
    const baseCpu = median(runs.get('undici-request').map((m) => m.cpu_us_per_req));
    for (const i of impls) {
      if (runs.get(i).length === 0) continue;
      const rps = median(runs.get(i).map((m) => m.rps));
      const cpu = median(runs.get(i).map((m) => m.cpu_us_per_req));
      results.push({
        bench: 'http-native',
        scenario: 'client',
        client: i,
        rounds: runs.get(i).length,
        req_per_s: Math.round(rps),
        ratio_to_undici_request: Number((rps / base).toFixed(3)),
        client_cpu_us_per_req: Number(cpu.toFixed(2)),
        cpu_ratio_to_undici_request: Number((cpu / baseCpu).toFixed(3)),
      });
    }
  }
  const load1 = loadavg();
  for (const r of results) r.loadavg = `${load0[0].toFixed(2)} -> ${load1[0].toFixed(2)}`;
  const servers = results.filter((r) => r.server);
  if (servers.length) table(servers.map(({ bench, loadavg: l, ...r }) => r));
  const clients = results.filter((r) => r.client);
  if (clients.length) table(clients.map(({ bench, loadavg: l, ...r }) => r));
  console.error(`load average (1 min) ${load0[0].toFixed(2)} at the start, ${load1[0].toFixed(2)} at the end`);
  emit(results);
}
