#!/usr/bin/env node
// Scenario: what one proxied request costs ringio-proxy (protocol = "http"), in figures that depend less
// on the machine's load than requests/s: promises created, JS heap bytes allocated, ops submitted,
// io_uring_enter (epoll_wait) calls and completions, per request, and CPU µs per request. Same setup as
// bench/proxy-http.mjs: an nginx upstream (keep-alive, `return 200 "hello world\n"` or 64 KiB) and wrk
// -t1 -c64 on CPU 1, the proxy (threads = 1) pinned to CPU 0.
//
// How: the proxy runs with `--import bench/proxy-cost-hook.mjs` (its runtime's counters on SIGUSR2) and
// `--trace-gc-nvp` (every scavenge line says how many bytes were allocated since the last one). After a
// 1 s warm-up the bench reads the counters, runs wrk for --secs, reads them again, and divides by the
// requests wrk counted. Promises are counted in separate runs with an async_hooks init hook (it slows
// the proxy, so those runs give no time); bytes are the scavenges' sum (error: one young generation at
// most). Builds can be compared in the same run: --roots /path/a,/path/b (each a checkout with its
// packages built). Rounds are interleaved; figures are medians.
// --cpu 0,1 lets the proxy run on both CPUs (on a busy machine a pinned proxy may get so little CPU that
// per-tick work, not per-request work, dominates the counts).
// On a shared machine CPU per request varies between rounds by up to 2× (other work takes the CPUs and
// batches get smaller); the table gives the medians and the least user µs per request of each build.
// Usage: node bench/proxy-http-cost.mjs [--rounds 3] [--secs 4] [--drivers uring,epoll] [--cases hello,64k] [--roots .] [--cpu 0] [--promises 0]
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, emit, freePort, has, interleave, median, nginxConf, spawnPinned, stopProc, table, waitForPort } from './lib.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', 3));
const secs = Number(arg('secs', 4));
const drivers = String(arg('drivers', 'uring,epoll')).split(',');
const cases = String(arg('cases', 'hello')).split(',');
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const proxyCpu = String(arg('cpu', '0'));
// --promises 0: no promise-counting runs (half the time; the promises column is then empty).
const countPromises = String(arg('promises', '1')) !== '0';
const hook = join(here, 'bench/proxy-cost-hook.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'ringio-proxy-cost-'));

for (const tool of ['taskset', 'nginx', 'wrk']) {
  if (!has(tool)) {
    console.error(`missing: ${tool} (apt-get install -y util-linux nginx-light wrk); nothing to measure without it`);
    process.exit(2);
  }
}

function run(cmd, args, cpu, env) {
  return spawnPinned(cmd, args, cpu, { env: { ...process.env, ...env } });
}

function wrk(url, seconds) {
  return new Promise((res, rej) => {
    const c = run('wrk', ['-t1', '-c64', `-d${seconds}s`, url], '1', {});
    c.on('exit', (code) => {
      const m = /(\d+) requests in/.exec(c.out);
      if (code !== 0 || !m) return rej(new Error(`wrk failed: ${c.err || c.out}`));
      if (/Socket errors|Non-2xx/.test(c.out)) return rej(new Error(`wrk saw errors: ${c.out}`));
      res(Number(m[1]));
    });
  });
}

const upPort = await freePort();
const big = join(tmp, '64k.bin');
writeFileSync(big, Buffer.alloc(64 * 1024, 'x'));
chmodSync(tmp, 0o755);
const up = nginxConf(
  tmp,
  'up',
  `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } location = /64k { default_type application/octet-stream; alias ${big}; } }`,
);
const upstream = run('nginx', ['-c', up.f, '-p', up.dir, '-e', '/dev/null'], '1', {});
await waitForPort(upPort, upstream, 'the nginx upstream');

async function snapshot(child) {
  const mark = child.err.length;
  child.kill('SIGUSR2');
  for (let i = 0; i < 200; i++) {
    const m = /COST (\{.*\})\n/.exec(child.err.slice(mark));
    if (m) return { ...JSON.parse(m[1]), gcMark: child.out.length };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the proxy did not answer SIGUSR2');
}

async function once(root, driver, path, promises) {
  const port = await freePort();
  const conf = join(tmp, `p-${port}.toml`);
  writeFileSync(
    conf,
    `[runtime]\nthreads = 1\ndriver = "${driver}"\n[upgrade]\nsocket = "${join(tmp, `up-${port}.sock`)}"\n[servers.bench]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n[[servers.bench.routes]]\npath = "/"\nupstreams = [{ url = "http://127.0.0.1:${upPort}" }]\n`,
  );
  const child = run(process.execPath, ['--trace-gc-nvp', '--import', pathToFileURL(hook).href, join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', conf], proxyCpu, {
    RINGIO_COST_PROMISES: promises ? '1' : '0',
    RINGIO_COST_RUNTIME: pathToFileURL(join(root, 'packages/runtime/dist/index.js')).href,
  });
  try {
    await waitForPort(port, child, 'ringio-proxy');
    const url = `http://127.0.0.1:${port}${path}`;
    await wrk(url, 1);
    const a = await snapshot(child);
    const reqs = await wrk(url, secs);
    const b = await snapshot(child);
    if (a.error || b.error) throw new Error(`the hook could not read the runtime's stats: ${a.error ?? b.error}`);
    const gcs = [...child.out.slice(a.gcMark, b.gcMark).matchAll(/gc=s .*?allocated=(\d+)/g)].map((m) => Number(m[1]));
    return {
      reqs,
      rps: reqs / secs,
      promises: (b.promises - a.promises) / reqs,
      bytes: gcs.length >= 3 ? gcs.reduce((s, x) => s + x, 0) / reqs : NaN,
      ops: (b.submitted - a.submitted) / reqs,
      enters: (b.enters - a.enters) / reqs,
      completions: (b.completions - a.completions) / reqs,
      cpuUs: (b.cpuUs - a.cpuUs) / reqs,
      userUs: (b.userUs - a.userUs) / reqs,
      sysUs: (b.sysUs - a.sysUs) / reqs,
      load: loadavg()[0],
    };
  } finally {
    await stopProc(child);
  }
}

const PATHS = { hello: '/', '64k': '/64k' };
try {
  const load0 = loadavg();
  console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  const runs = [];
  const label = (root) => (roots.length > 1 ? `${root} ` : '');
  for (const c of cases) for (const root of roots) for (const d of drivers) {
    runs.push({ name: `${c} ${label(root)}${d}`, run: () => once(root, d, PATHS[c], false) });
    if (countPromises) runs.push({ name: `${c} ${label(root)}${d} promises`, run: () => once(root, d, PATHS[c], true) });
  }
  const res = await interleave(rounds, runs, {
    describe: (m) => `${Math.round(m.rps)} req/s, ${m.cpuUs.toFixed(1)} µs CPU/req (${m.userUs.toFixed(1)} user, ${m.sysUs.toFixed(1)} sys), ${m.promises.toFixed(2)} promises/req, ${Math.round(m.bytes)} B/req, ${m.ops.toFixed(2)} ops/req, ${m.enters.toFixed(3)} enters/req, load ${m.load.toFixed(2)}`,
  });
  const rows = [];
  for (const c of cases) for (const root of roots) for (const d of drivers) {
    const t = res.get(`${c} ${label(root)}${d}`);
    const p = res.get(`${c} ${label(root)}${d} promises`);
    if (!t?.length || (countPromises && !p?.length)) continue;
    const med = (xs, f) => median(xs.map(f));
    rows.push({
      case: c,
      ...(roots.length > 1 ? { build: root } : {}),
      driver: d,
      'req/s': Math.round(med(t, (m) => m.rps)),
      'µs CPU/req': med(t, (m) => m.cpuUs).toFixed(1),
      'µs user': med(t, (m) => m.userUs).toFixed(1),
      'µs sys': med(t, (m) => m.sysUs).toFixed(1),
      'promises/req': countPromises ? med(p, (m) => m.promises).toFixed(2) : '-',
      'µs user (min)': Math.min(...t.map((m) => m.userUs)).toFixed(1),
      'B/req': Math.round(med(t, (m) => m.bytes)),
      'ops/req': med(t, (m) => m.ops).toFixed(2),
      'enters/req': med(t, (m) => m.enters).toFixed(3),
      load: med(t, (m) => m.load).toFixed(2),
    });
  }
  const load1 = loadavg();
  console.error(`\nringio-proxy cost per request, wrk -t1 -c64 (${secs} s, ${rounds} rounds, medians); proxy on CPU ${proxyCpu}, wrk and the nginx upstream on CPU 1`);
  table(rows);
  console.error(`load average at end: ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  emit(rows.map((r) => ({ bench: 'proxy-http-cost', ...r, load_start: load0[0], load_end: load1[0] })));
} finally {
  await stopProc(upstream, 'SIGQUIT');
  rmSync(tmp, { recursive: true, force: true });
}
