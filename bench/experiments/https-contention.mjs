#!/usr/bin/env node
// HTTPS under contention (docs/benchmarks.md, "HTTPS under contention, branch tls4"): compat's https
// server (node:http over listenSecure) of one or more built checkouts, and optionally plain node:https,
// under wrk -t1 -c32 keep-alive, server on CPU 0 and wrk on CPU 1, with `--hogs N` CPU-bound processes on
// CPU 0 beside the server (started before and killed after the rounds). Rounds rotate the order. Per
// request, medians over the rounds: req/s, wrk's p50/p99 (µs), the server's CPU (utime + stime, µs), its
// voluntary and involuntary context switches, its main thread's time on a CPU, its runqueue wait and
// the rest of the wall time (idle: asleep in the loop's wait), and from runtime.stats() the io_uring
// enters, ops submitted (SQEs), completions and loop wakeups, and completions per wakeup. With two or
// more checkouts, the first one's req/s over each other's in the same round.
//   node bench/experiments/https-contention.mjs --roots A,B [--hogs 1] [--rounds 4] [--secs 3] [--driver uring] [--node]
// Server side: node https-contention.mjs --serve --root R --impl ringio|node --port P --driver D --cert F --key F
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i < 0 ? d : process.argv[i + 1];
};

if (process.argv.includes('--serve')) {
  const root = resolve(arg('root'));
  const req = createRequire(join(root, 'package.json'));
  const http = await import('node:http');
  const https = await import('node:https');
  const hello = Buffer.from('hello https\n');
  const onRequest = (q, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': hello.length });
    res.end(hello);
  };
  const tls = { cert: readFileSync(arg('cert')), key: readFileSync(arg('key')) };
  const port = Number(arg('port'));
  if (arg('impl') === 'node') {
    const server = https.createServer(tls, onRequest);
    process.on('SIGUSR2', () => console.error(`STATS ${JSON.stringify({})}`));
    server.listen(port, '127.0.0.1', () => console.error(`node on 127.0.0.1:${port}`));
    process.once('SIGTERM', () => process.exit(0));
  } else {
    const server = http.createServer(onRequest);
    const { start, stats } = await import(req.resolve('@ringio/runtime'));
    const { listenSecure } = await import(req.resolve('@ringio/compat'));
    await start(
      async () => {
        const secure = await listenSecure(server, { port, tls });
        process.on('SIGUSR2', () => {
          const s = stats();
          console.error(`STATS ${JSON.stringify({ enters: s.enters, completions: s.completions, submitted: s.submitted, wakeups: s.wakeups })}`);
        });
        console.error(`ringio ${stats().driver} on 127.0.0.1:${port}`);
        await new Promise((r) => process.once('SIGTERM', r));
        await secure.close();
      },
      { driver: arg('driver') },
    );
    process.exit(0);
  }
} else {
  const roots = arg('roots').split(',');
  const hogs = Number(arg('hogs', 0));
  const rounds = Number(arg('rounds', 4));
  const secs = Number(arg('secs', 3));
  const driver = arg('driver', 'uring');
  const withNode = process.argv.includes('--node');
  const run = promisify(execFile);
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const cert = join(dir, 'c.pem');
  const key = join(dir, 'k.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  const freePort = () =>
    new Promise((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => res(port));
      });
    });
  const procStat = (pid) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      cpu: (Number(f[11]) + Number(f[12])) / 100,
      vol: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)[1]),
      invol: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)[1]),
    };
  };
  const sched = (pid) => {
    // /proc/pid/schedstat: time on cpu (ns), time waiting on a runqueue (ns), timeslices
    const [on, wait, n] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return { on, wait, n };
  };
  const hogProcs = [];
  for (let i = 0; i < hogs; i++) hogProcs.push(spawn('taskset', ['-c', '0', process.execPath, '-e', 'for(;;){}'], { stdio: 'ignore' }));
  const results = new Map();
  async function once(name, root, impl) {
    const port = await freePort();
    const child = spawn('taskset', ['-c', '0', process.execPath, process.argv[1], '--serve', '--root', root, '--impl', impl, '--port', String(port), '--driver', driver, '--cert', cert, '--key', key], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    const waiters = [];
    child.stderr.setEncoding('utf8').on('data', (c) => {
      err += c;
      for (const w of waiters.splice(0)) w();
    });
    const until = async (re) => {
      for (;;) {
        const m = re.exec(err);
        if (m) return m;
        await new Promise((r) => waiters.push(r));
      }
    };
    await until(/on 127\.0\.0\.1/);
    const wrk = async (s) => (await run('taskset', ['-c', '1', 'wrk', '-t1', '-c32', `-d${s}s`, '--latency', `https://127.0.0.1:${port}/`])).stdout;
    await wrk(1);
    const snap = async () => {
      const k = (err.match(/STATS/g) ?? []).length;
      child.kill('SIGUSR2');
      for (;;) {
        const all = [...err.matchAll(/STATS (.*)\n/g)];
        if (all.length > k) return JSON.parse(all[k][1]);
        await new Promise((r) => waiters.push(r));
      }
    };
    const s0 = await snap();
    const p0 = procStat(child.pid);
    const q0 = sched(child.pid);
    const out = await wrk(secs);
    const p1 = procStat(child.pid);
    const q1 = sched(child.pid);
    const s1 = await snap();
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    const n = Number(/(\d+) requests in/.exec(out)[1]);
    const lat = (p) => {
      const m = new RegExp(`${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
      return m ? Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6) : NaN;
    };
    const r = {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]),
      p50: lat(50),
      p99: lat(99),
      cpu: ((p1.cpu - p0.cpu) * 1e6) / n,
      vol: (p1.vol - p0.vol) / n,
      invol: (p1.invol - p0.invol) / n,
      runqWait: (q1.wait - q0.wait) / 1e3 / n,
      onCpu: (q1.on - q0.on) / 1e3 / n,
      slices: (q1.n - q0.n) / n,
    };
    r.idle = 1e6 / r.rps - r.onCpu - r.runqWait;
    for (const k of ['enters', 'completions', 'submitted', 'wakeups']) if (s0[k] !== undefined) r[k] = (s1[k] - s0[k]) / n;
    if (r.wakeups) r.cplPerWake = (s1.completions - s0.completions) / (s1.wakeups - s0.wakeups);
    const la = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    console.error(`${name} load ${la} ${Object.entries(r).map(([k, v]) => `${k}=${v.toFixed(k === 'rps' ? 0 : 3)}`).join(' ')}`);
    if (!results.has(name)) results.set(name, []);
    results.get(name).push(r);
  }
  const l0 = readFileSync('/proc/loadavg', 'utf8').trim();
  try {
    for (let i = 0; i < rounds; i++) {
      const order = roots.map((r, j) => [`r${j}`, r]);
      if (withNode) order.unshift(['node', roots[0]]);
      // rotate the order each round so no build always follows the same one
      for (let k = 0; k < i % order.length; k++) order.push(order.shift());
      for (const [name, root] of order) await once(name, root, name === 'node' ? 'node' : 'ringio');
    }
  } finally {
    for (const h of hogProcs) h.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  console.error(`load ${l0} -> ${readFileSync('/proc/loadavg', 'utf8').trim()}; hogs ${hogs}; driver ${driver}`);
  for (const [name, rs] of results) {
    const keys = Object.keys(rs[0]);
    if (name !== 'r0' && results.has('r0') && name.startsWith('r')) {
      const a = results.get('r0');
      const ratios = rs.map((r, i) => (a[i] ? a[i].rps / r.rps : NaN)).filter((x) => x > 0);
      console.log(`r0/${name} paired req/s ratios: ${ratios.map((x) => x.toFixed(2)).join(' ')} median ${med(ratios).toFixed(3)}; r0 faster in ${ratios.filter((x) => x > 1).length}/${ratios.length}`);
    }
    console.log(`${name} ${name.startsWith('r') ? roots[Number(name.slice(1))] : ''} ${keys.map((k) => `${k}=${med(rs.map((r) => r[k])).toFixed(k === 'rps' ? 0 : 3)}`).join(' ')}`);
  }
}
