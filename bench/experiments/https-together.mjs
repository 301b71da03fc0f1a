#!/usr/bin/env node
// The A/B of two checkouts' compat https servers that a busy machine cannot tilt: both servers run at the
// same time on CPU 0, each under its own wrk -t1 -c32 (keep-alive) on CPU 1 over the same seconds, so
// both meet the same other work (docs/benchmarks.md, "HTTPS under contention, branch tls4"). A server
// that waited for a later loop turn per request, or slept where the other ran, would get less of the
// CPU and serve fewer requests; one that spends less CPU a request serves more. Per round: each one's
// req/s, CPU per request (utime + stime) and wrk's p50/p99; at the end the median of A's req/s over
// B's and the rounds A won. The servers are https-contention.mjs --serve; `node` for A or B is plain
// node:https (the same server listening itself).
//   node bench/experiments/https-together.mjs A,B [rounds 6] [hogs 0]   (env: D=uring|epoll the driver, WARM=1 the warm-up s)
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
const run = promisify(execFile);
const [a, b] = process.argv[2].split(',');
const rounds = Number(process.argv[3] ?? 6);
const hogs = Number(process.argv[4] ?? 0);
const dir = mkdtempSync('/tmp/simul-');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
const hp = [];
for (let i = 0; i < hogs; i++) hp.push(spawn('taskset', ['-c', '0', process.execPath, '-e', 'for(;;){}'], { stdio: 'ignore' }));
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const wins = [];
let port = 21000 + Math.floor(Math.random() * 5000);
const live = new Set(hp);
try {
for (let r = 0; r < rounds; r++) {
  const roots = r % 2 ? [b, a] : [a, b];
  const srvs = roots.map((root) => {
    const p = port++;
    const c = spawn('taskset', ['-c', '0', process.execPath, new URL('https-contention.mjs', import.meta.url).pathname, '--serve', '--root', root === 'node' ? process.cwd() : root, '--impl', root === 'node' ? 'node' : 'ringio', '--port', String(p), '--driver', process.env.D ?? 'uring', '--cert', `${dir}/c.pem`, '--key', `${dir}/k.pem`], { stdio: ['ignore', 'ignore', 'pipe'] });
    const ready = new Promise((res, rej) => {
      let err = '';
      c.stderr.setEncoding('utf8').on('data', (d) => { err += d; if (/on 127/.test(err)) res(); });
      c.on('exit', (code) => rej(new Error(`server exited ${code}: ${err}`)));
    });
    live.add(c);
    c.on('exit', () => live.delete(c));
    ready.catch(() => {}); // Promise.all below reports the first failure
    return { root, p, c, ready };
  });
  await Promise.all(srvs.map((s) => s.ready));
  const wrk = (p, s) => run('taskset', ['-c', '1', 'wrk', '-t1', '-c32', `-d${s}s`, '--latency', `https://127.0.0.1:${p}/`]);
  await Promise.all(srvs.map((s) => wrk(s.p, Number(process.env.WARM ?? 1))));
  const c0 = srvs.map((s) => cpu(s.c.pid));
  const outs = await Promise.all(srvs.map((s) => wrk(s.p, 3)));
  const res = srvs.map((s, i) => {
    const o = outs[i].stdout;
    const n = Number(/(\d+) requests in/.exec(o)[1]);
    return { root: s.root, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(o)[1]), cpu: ((cpu(s.c.pid) - c0[i]) * 1e6) / n, p50: /50%\s+(\S+)/.exec(o)[1], p99: /99%\s+(\S+)/.exec(o)[1] };
  });
  for (const s of srvs) s.c.kill();
  const ra = res.find((x) => x.root === a), rb = res.find((x) => x.root === b);
  wins.push(ra.rps / rb.rps);
  console.log(`round ${r + 1} load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}: A ${ra.rps.toFixed(0)} req/s ${ra.cpu.toFixed(2)} us/req p50 ${ra.p50} p99 ${ra.p99} | B ${rb.rps.toFixed(0)} ${rb.cpu.toFixed(2)} p50 ${rb.p50} p99 ${rb.p99} | A/B ${(ra.rps / rb.rps).toFixed(3)}`);
  await new Promise((res) => setTimeout(res, 300));
}
} finally {
  // Servers and hogs go with the run, also when a round fails.
  for (const c of live) c.kill();
  rmSync(dir, { recursive: true, force: true });
}
const s = [...wins].sort((x, y) => x - y);
console.log(`A=${a} B=${b} hogs ${hogs}: A/B req/s median ${s[s.length >> 1].toFixed(3)}, A faster in ${wins.filter((x) => x > 1).length}/${wins.length}`);
