#!/usr/bin/env node
// Scenario: an HTTP reverse proxy in front of an nginx upstream (keep-alive): `hello` answers
// `return 200 "hello world\n"`, `64k` a 64 KiB file. Proxies: ringio-proxy (protocol = "http") on io_uring
// and on epoll, nginx as a reverse proxy (`proxy_http_version 1.1`, upstream `keepalive 128`), and the Node
// peers http-proxy-3 (keep-alive agent) and @fastify/http-proxy (bench/proxy-http-peer.mjs), one process
// or worker each, pinned to CPU 0; the upstream and wrk (-t1 -c64, keep-alive) run on CPU 1. Per proxy
// and case: requests/s, p99, and the proxy's CPU µs per request (utime+stime over the run, nginx's worker
// included); ratios to nginx and to the faster Node peer, by requests/s and by CPU per request (the
// cheaper peer's over this proxy's). Rounds are interleaved (every proxy once per round, each round
// starting one run later than the one before), figures are medians, the load average is printed with
// every round and with the table. The 'paired' columns take the same ratios round by round (this proxy's
// run over nginx's, or over the faster Node peer's, of the same round) and give their median and the
// number of rounds at or above #14's targets (0.8x nginx, 5x the faster Node peer): this host's speed
// changes over minutes, and the runs of one round, a few seconds apart, meet the same host more often
// than two medians of the whole run do.
// Case `https`: hello with TLS terminated at the proxy (ringio-proxy's `tls`, nginx's `listen ssl` with the
// same P-256 certificate, made with openssl), wrk over https with keep-alive; the Node peers sit it out.
// 'waited %': the share of the run the proxy's serving thread (ringio's loop thread, nginx's worker) spent
// runnable but not running (/proc/PID/schedstat): a round where it is high met other work on CPU 0, and
// its p99 is that work's, not the proxy's (bench/experiments/proxy-stall.mjs traces such rounds; docs/
// benchmarks.md, "Tail stalls in proxy-http").
// --boost: every proxy, the upstream and wrk lead sessions of their own at autogroup nice -20 (lib.mjs
// boostArgv), the same for every contender, so that other sessions' work on a shared machine does not
// take their CPUs (root or CAP_SYS_NICE).
// 'steal %': the share of both CPUs' time over the run that the hypervisor gave to other machines
// (/proc/stat's steal): every contender of a round is slowed by it alike, so a round with much of it
// measures the host (the rounds' lines show it, and the whole run's share is printed at the end).
// Usage: node bench/proxy-http.mjs [--rounds 5] [--secs 5] [--cases hello,64k,https] [--proxies a,b] [--boost]
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, boostArgv, cpuSeconds, cpuTicks, emit, freePort, has, interleave, median, nginxConf, nginxProxyConf, pairedRatio, parseWrk, ringioProxyConfig, schedSeconds, stealShare, stopProc, table, waitForPort } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', 5));
const secs = Number(arg('secs', 5));
const node = process.execPath;
const tmp = mkdtempSync(join(tmpdir(), 'ringio-proxy-http-bench-'));
const boost = process.argv.includes('--boost');
/** A command pinned to `cpu`, boosted with --boost. */
const pinnedArgv = (cpu, argv) => (boost ? boostArgv(['taskset', '-c', cpu, ...argv]) : ['taskset', '-c', cpu, ...argv]);

const missing = [];
const wantHttps = String(arg('cases', 'hello,64k,https')).split(',').includes('https');
for (const tool of ['taskset', 'nginx', 'wrk', ...(wantHttps ? ['openssl'] : [])]) if (!has(tool)) missing.push(tool);
if (missing.length) {
  console.error(`missing: ${missing.join(', ')} (apt-get install -y util-linux nginx-light wrk); nothing to measure without them`);
  process.exit(2);
}
const peers = [];
for (const [name, mod] of [['http_proxy_3', 'http-proxy-3'], ['fastify_http_proxy', '@fastify/http-proxy']]) {
  try {
    await import(mod);
    peers.push(name);
  } catch {
    console.error(`missing: ${mod} (npm install, it is a devDependency): ${name} is not measured`);
  }
}

function startProc(cmd, args, cpu) {
  const [c0, ...rest] = pinnedArgv(cpu, [cmd, ...args]);
  const child = spawn(c0, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.resume();
  return child;
}

const upPort = await freePort();
const big = join(tmp, '64k.bin');
writeFileSync(big, Buffer.alloc(64 * 1024, 'x'));
chmodSync(tmp, 0o755); // nginx's worker (nobody when run as root) reads the file
const upConf = nginxConf(
  tmp,
  'upstream',
  `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } location = /64k { default_type application/octet-stream; alias ${big}; } }`,
);
const upstream = startProc('nginx', ['-c', upConf.f, '-p', upConf.dir, '-e', '/dev/null'], '1');
await waitForPort(upPort, upstream, 'the nginx upstream');

// The certificate both proxies terminate TLS with (https case).
const cert = join(tmp, 'cert.pem');
const key = join(tmp, 'key.pem');
if (wantHttps) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
}

const ringioConfig = (port, driver, tls) =>
  ringioProxyConfig(tmp, { port, upPort, driver, extra: tls ? `tls = { cert = "${cert}", key = "${key}" }\n` : '' });

const peerScript = join(root, 'bench/proxy-http-peer.mjs');
const allProxies = [
  { name: 'ringio_uring', tls: true, start: (port, tls) => startProc(node, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', ringioConfig(port, 'uring', tls)], '0') },
  { name: 'ringio_epoll', tls: true, start: (port, tls) => startProc(node, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', ringioConfig(port, 'epoll', tls)], '0') },
  {
    name: 'nginx_proxy',
    stopSignal: 'SIGQUIT',
    tls: true,
    start: (port, tls) => {
      const { f, dir } = nginxProxyConf(tmp, upPort, port, tls ? ` ssl; ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3` : '');
      return startProc('nginx', ['-c', f, '-p', dir, '-e', '/dev/null'], '0');
    },
  },
  ...peers.map((name) => ({ name, start: (port) => startProc(node, [peerScript, name === 'http_proxy_3' ? 'http-proxy-3' : 'fastify', String(port), String(upPort)], '0') })),
];
const only = arg('proxies', '');
const proxies = only === '' ? allProxies : allProxies.filter((p) => only.split(',').includes(p.name));
const CASES = { hello: '/', '64k': '/64k', https: '/' };
const cases = String(arg('cases', 'hello,64k,https')).split(',').filter((c) => c in CASES);

/** nginx's worker: the master's child. */
function workerOf(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]) || undefined;
  } catch {
    return undefined;
  }
}

async function round(p, path, tls = false) {
  const port = await freePort();
  const child = p.start(port, tls);
  try {
    await waitForPort(port, child, p.name);
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`;
    // warm-up: pools filled, code optimized
    const [w0, ...warm] = pinnedArgv('1', ['wrk', '-t1', '-c64', '-d1s', url]);
    execFileSync(w0, warm, { encoding: 'utf8' });
    // The serving thread: ringio's loop thread is the process's main thread (threads = 1); nginx's is its worker.
    const server = p.name === 'nginx_proxy' ? (workerOf(child.pid) ?? child.pid) : child.pid;
    const c0 = cpuSeconds(child.pid, { children: true });
    const s0 = schedSeconds(server);
    const k0 = cpuTicks();
    const t0 = process.hrtime.bigint();
    const [w1, ...run] = pinnedArgv('1', ['wrk', '-t1', '-c64', `-d${secs}s`, '--latency', url]);
    const out = execFileSync(w1, run, { encoding: 'utf8' });
    const c1 = cpuSeconds(child.pid, { children: true });
    const s1 = schedSeconds(server);
    const k1 = cpuTicks();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const w = parseWrk(out);
    if (w.errors) throw new Error(`${p.name}: wrk reported errors: ${w.errors}`);
    if (!(w.rps > 0)) throw new Error(`${p.name}: no request completed`);
    return { rps: w.rps, p99: w.p99_ms, cpuUs: ((c1 - c0) / (w.rps * secs)) * 1e6, waited: (s1.wait - s0.wait) / wall, steal: stealShare(k0, k1), load: loadavg()[0] };
  } finally {
    await stopProc(child, p.stopSignal);
  }
}

try {
  const load0 = loadavg();
  const k0 = cpuTicks();
  console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}${boost ? ' (boosted: proxies, upstream and wrk at autogroup nice -20)' : ''}`);
  const runs = [];
  for (const c of cases) for (const p of proxies) if (c !== 'https' || p.tls) runs.push({ name: `${c} ${p.name}`, run: () => round(p, CASES[c], c === 'https') });
  const res = await interleave(rounds, runs, {
    describe: (m) => `${Math.round(m.rps)} req/s, p99 ${m.p99.toFixed(2)} ms, ${m.cpuUs.toFixed(1)} µs CPU/req, waited ${(m.waited * 100).toFixed(0)}%, steal ${(m.steal * 100).toFixed(0)}%, load ${m.load.toFixed(2)}`,
    // No proxy always runs right after the same one, so a burst of the machine's other work falls on
    // each alike.
    rotate: true,
  });
  const med = (name, f) => (res.get(name)?.length ? median(res.get(name).map(f)) : NaN);
  const rows = [];
  const paired = []; // per row: the paired ratios as numbers, for the JSON lines
  for (const c of cases) {
    const rps = (p) => med(`${c} ${p}`, (m) => m.rps);
    const nginxRps = rps('nginx_proxy');
    const peerRps = peers.map((p) => rps(p)).filter((x) => !Number.isNaN(x));
    const nodeBest = peerRps.length > 0 ? Math.max(...peerRps) : NaN;
    // The cheaper Node peer's CPU per request: what one CPU's worth of that proxy costs per request.
    const peerCpu = peers.map((p) => med(`${c} ${p}`, (m) => m.cpuUs)).filter((x) => !Number.isNaN(x));
    const nodeBestCpu = peerCpu.length > 0 ? Math.min(...peerCpu) : NaN;
    const peerNames = peers.filter((p) => res.get(`${c} ${p}`)?.length).map((p) => `${c} ${p}`);
    const fmtPaired = (pr, target) => (pr.rounds === 0 ? '-' : `${pr.median.toFixed(2)} (${pr.over(target)}/${pr.rounds})`);
    for (const p of proxies) {
      if (c === 'https' && !p.tls) continue;
      const name = `${c} ${p.name}`;
      const vsNginx = p.name === 'nginx_proxy' ? undefined : pairedRatio(res, name, [`${c} nginx_proxy`], (m) => m.rps);
      const vsNode = peerNames.length === 0 || peerNames.includes(name) ? undefined : pairedRatio(res, name, peerNames, (m) => m.rps);
      // 1/CPU per request, so the ratio is the cheapest peer's CPU over this proxy's, round by round.
      const cpuVsNode = vsNode === undefined ? undefined : pairedRatio(res, name, peerNames, (m) => 1 / m.cpuUs);
      const num = (pr) => (pr === undefined || pr.rounds === 0 ? undefined : Number(pr.median.toFixed(3)));
      paired.push({
        paired_vs_nginx: num(vsNginx),
        paired_vs_nginx_rounds: vsNginx === undefined ? undefined : `${vsNginx.over(0.8)}/${vsNginx.rounds}`,
        paired_vs_best_node: num(vsNode),
        paired_vs_best_node_rounds: vsNode === undefined ? undefined : `${vsNode.over(5)}/${vsNode.rounds}`,
        paired_cpu_vs_best_node: num(cpuVsNode),
      });
      rows.push({
        case: c,
        proxy: p.name,
        'req/s': Math.round(rps(p.name)),
        'p99 ms': med(name, (m) => m.p99).toFixed(2),
        'µs CPU/req': med(name, (m) => m.cpuUs).toFixed(1),
        'vs nginx': (rps(p.name) / nginxRps).toFixed(2),
        'vs best Node': (rps(p.name) / nodeBest).toFixed(2),
        'CPU vs nginx': (med(`${c} nginx_proxy`, (m) => m.cpuUs) / med(name, (m) => m.cpuUs)).toFixed(2),
        'CPU vs best Node': (nodeBestCpu / med(name, (m) => m.cpuUs)).toFixed(2),
        'paired vs nginx (>= 0.8)': vsNginx === undefined ? '-' : fmtPaired(vsNginx, 0.8),
        'paired vs best Node (>= 5)': vsNode === undefined ? '-' : fmtPaired(vsNode, 5),
        'paired CPU vs best Node': cpuVsNode === undefined ? '-' : fmtPaired(cpuVsNode, 5),
        'waited %': (med(name, (m) => m.waited) * 100).toFixed(0),
        'steal %': (med(name, (m) => m.steal) * 100).toFixed(0),
        load: med(name, (m) => m.load).toFixed(2),
      });
    }
  }
  const load1 = loadavg();
  const steal = stealShare(k0, cpuTicks());
  console.error(`\nHTTP reverse proxy, wrk -t1 -c64 (${secs} s, ${rounds} rounds, medians); proxy on CPU 0, wrk and the nginx upstream on CPU 1`);
  console.error("'paired ...': the ratio taken in each round (this proxy's run against the other's of the same round), its median, and (k/n) the rounds at or above the target in the heading");
  console.error("'CPU vs nginx': nginx's CPU per request over this proxy's (1.00 = as cheap as nginx); 'vs best Node': requests/s over the faster Node peer's; 'CPU vs best Node': the cheaper Node peer's CPU per request over this proxy's (requests one CPU serves, relative: the steadier figure when something else, such as CPU 1 with wrk and the upstream, limits a round's rate)");
  table(rows);
  console.error(`load average at end: ${load1.map((x) => x.toFixed(2)).join(' ')}; the hypervisor stole ${(steal * 100).toFixed(1)}% of both CPUs over the run`);
  emit(rows.map((r, i) => ({ bench: 'proxy-http', ...r, ...paired[i], boost, load_start: load0[0], load_end: load1[0], steal_run: Number(steal.toFixed(4)) })));
} finally {
  await stopProc(upstream, 'SIGQUIT');
  rmSync(tmp, { recursive: true, force: true });
}
