#!/usr/bin/env node
// Where the slow round trips of one connection at depth 1 come from (issue #10's 1x1 p999). The client
// (bench/experiments/tail-trace.c, CPU 1) stamps every message's send and receive; the server (this file
// with --serve, CPU 0: examples/echo-server.mjs's default loop, readLeases + send) stamps every
// message as its handler runs and records every GC (PerformanceObserver), all on CLOCK_MONOTONIC.
// Each round trip splits into inbound (send -> handler: the kernel, the wake, libuv, the dispatch) and
// outbound (handler -> receive: the flush, the submit, the kernel). Prints, per 100k messages, the
// round trips over 30/50/100 us and what each overlaps: a GC (scavenge or other), or an inbound or
// outbound excess over the median.
// Usage: node bench/experiments/tail-trace.mjs [--secs 5] [--rounds 1] [--servers uring,epoll,c] [--boost]
//        [--node-args '...'] [--env 'K=V K2=V2'] [--sched] [--own] [--dump] [--heap-sample] [--conns 256]
// --servers: uring / epoll run this file's server; c the C io_uring echo server (no server stamps).
// --sched: also records the scheduler (`perf record -e sched:sched_switch,sched:sched_wakeup`, on
//   CLOCK_MONOTONIC): a slow round trip during which the server's main thread or the client waited over
//   5 us for a CPU held by another process counts as `interference`; by another thread of the server
//   (V8's compiler and GC helpers: the whole process is pinned to CPU 0) as `own_thread`; with the CPU
//   idle (its exit from a sleep state) as `idle_wake`. `untouched_rtt_us`: percentiles of the round
//   trips no other process delayed. --own lists the server's own slow round trips; --dump the slowest 40.
// --heap-sample: V8's sampling heap profiler in the server (collected objects included): the top
//   allocation sites in bytes per message.
// --conns N (> 1): the C load generator of ../shared/bench instead (N connections, depth 1), and the
//   server's batches from its stamps: handlers < 3 us apart ran in one dispatch; batch sizes, spans (first
//   to last handler) and the gaps between batches (the submit, the kernel's sends, the wait), scavenges
//   per 100k messages and their pause.
// Run another checkout's copy of this file to measure that checkout (it imports the packages beside it).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { arg, freePort, waitForPort } from '../lib.mjs';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';

if (process.argv.includes('--serve')) {
  const port = Number(arg('port', 0));
  const out = arg('out', '/tmp/tail-trace-server.json');
  const { start, stats } = await import('@ringio/runtime');
  const { TcpListener } = await import('@ringio/net');
  // ms on CLOCK_MONOTONIC = performance.now() + offset.
  // The pair read closest together after a warm-up (the first performance.now() takes ~0.7 ms).
  let offset = 0;
  let best = Infinity;
  for (let i = 0; i < 50; i++) {
    const p1 = performance.now();
    const h = Number(process.hrtime.bigint()) / 1e6;
    const p2 = performance.now();
    if (i > 5 && p2 - p1 < best) {
      best = p2 - p1;
      offset = h - (p1 + p2) / 2;
    }
  }
  const stamps = new Float64Array(4_000_000);
  let n = 0;
  const gcs = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime + offset, e.duration, e.detail?.kind ?? e.kind]);
  }).observe({ entryTypes: ['gc'] });
  // --heap-sample: V8's sampling heap profiler over everything allocated (collected objects included),
  // written beside the stamps as the top allocation sites by bytes.
  let session;
  if (process.argv.includes('--heap-sample')) {
    const { Session } = await import('node:inspector');
    session = new Session();
    session.connect();
    session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  }
  const dumpHeap = () =>
    new Promise((resolve) => {
      if (!session) return resolve(null);
      session.post('HeapProfiler.stopSampling', (err, { profile }) => {
        const sites = new Map();
        const walk = (node, stack) => {
          const f = node.callFrame;
          const here = `${f.functionName || '(anon)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
          const st = [here, ...stack].slice(0, 3).join(' < ');
          if (node.selfSize) sites.set(st, (sites.get(st) ?? 0) + node.selfSize);
          for (const c of node.children) walk(c, [here, ...stack]);
        };
        walk(profile.head, []);
        resolve([...sites].sort((a, b) => b[1] - a[1]).slice(0, 25));
      });
    });
  await start(
    async ({ signal }) => {
      const listener = await TcpListener.bind({ host: '127.0.0.1', port });
      const stop = async () => {
        const heap = await dumpHeap();
        writeFileSync(out, JSON.stringify({ offset, stamps: Array.from(stamps.subarray(0, n)), gcs, stats: stats(), heap }));
        listener.close();
      };
      process.once('SIGTERM', stop);
      signal.addEventListener('abort', stop);
      console.log('listening');
      for await (const [stream] of listener) {
        stream
          .readLeases(
            (lease) => {
              if (n < stamps.length) stamps[n++] = performance.now();
              if (!stream.send(lease)) return stream.flush();
            },
            // As examples/echo-server.mjs (a checkout from before the option ignores it).
            { recycle: true },
          )
          .then(() => stream.close(), () => stream.close())
          .catch(() => {});
      }
    },
    { driver: arg('driver', 'uring') },
  );
  process.exit(0);
}

const secs = Number(arg('secs', 5));
const rounds = Number(arg('rounds', 1));
// uring / epoll: this file's server (stamped); c: the C io_uring echo server of ../shared/bench (not stamped).
const servers = arg('servers', 'uring').split(',');
const boost = process.argv.includes('--boost');
const nodeArgs = arg('node-args', '').split(' ').filter(Boolean);
const extraEnv = Object.fromEntries(arg('env', '').split(' ').filter(Boolean).map((kv) => kv.split('=')));
const client = join(tools, 'tail-trace');
if (!existsSync(client)) execFileSync('gcc', ['-O2', '-o', client, join(root, 'bench/experiments/tail-trace.c')], { stdio: 'inherit' });
const boosted = (child) => {
  if (boost) try { writeFileSync(`/proc/${child.pid}/autogroup`, '-20'); } catch {}
};

const conns = Number(arg('conns', 1));
const rows = [];
for (let r = 0; r < rounds; r++) for (const driver of servers) {
  const port = await freePort();
  const srvOut = `/tmp/tail-trace-srv-${process.pid}.json`;
  const cliOut = `/tmp/tail-trace-cli-${process.pid}.bin`;
  const load0 = loadavg()[0];
  const stamped = driver !== 'c';
  const cmd = stamped
    ? [process.execPath, ...nodeArgs, here, '--serve', '--port', String(port), '--out', srvOut, '--driver', driver, ...(process.argv.includes('--heap-sample') ? ['--heap-sample'] : [])]
    : [join(tools, 'echo_uring'), String(port)];
  const srv = spawn('taskset', ['-c', '0', ...cmd], {
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: boost,
    env: { ...process.env, ...extraEnv },
  });
  boosted(srv);
  await waitForPort(port, srv, 'server');
  const sched = process.argv.includes('--sched');
  const perfOut = `/tmp/tail-trace-perf-${process.pid}.data`;
  let perf;
  if (sched) {
    perf = spawn('perf', ['record', '-q', '-e', 'sched:sched_switch,sched:sched_wakeup', '-C', '0,1', '-k', 'CLOCK_MONOTONIC', '-o', perfOut], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  }
  let cliPid = 0;
  const res = await new Promise((resolve, reject) => {
    const argv = conns > 1 ? [join(tools, 'loadgen'), String(port), String(conns), '64', String(secs), '1'] : [client, String(port), String(secs), cliOut];
    const c = spawn('taskset', ['-c', '1', ...argv], { stdio: ['ignore', 'pipe', 'inherit'], detached: boost });
    boosted(c);
    cliPid = c.pid;
    let o = '';
    c.stdout.on('data', (d) => (o += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(o.trim().split('\n').pop())) : reject(new Error(`client exited ${code}`))));
  });
  if (sched) {
    await new Promise((r) => {
      perf.on('exit', r);
      perf.kill('SIGINT');
    });
  }
  let threads = new Set([srv.pid]);
  const waits = [];
  if (sched) {
    try {
      threads = new Set(execFileSync('ls', [`/proc/${srv.pid}/task`]).toString().trim().split(/\s+/).map(Number));
    } catch {}
    const txt = execFileSync('perf', ['script', '-i', perfOut, '-F', 'time,trace'], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    // Waits of the server's main thread and of the client: from a wake-up (or a preemption) to the
    // switch that gives them a CPU, with whoever held that CPU meanwhile.
    const watched = new Set([srv.pid, cliPid]);
    const since = new Map();
    for (const line of txt.split('\n')) {
      const t = /^\s*([\d.]+):/.exec(line);
      if (!t) continue;
      const at = Number(t[1]) * 1e6;
      let m = /comm=.* pid=(\d+) prio/.exec(line);
      if (m && !line.includes('==>')) {
        const pid = Number(m[1]);
        if (watched.has(pid) && !since.has(pid)) since.set(pid, at);
        continue;
      }
      m = /prev_comm=(.*) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)/.exec(line);
      if (!m) continue;
      const prev = Number(m[2]);
      const next = Number(m[5]);
      if (watched.has(prev) && m[3].startsWith('R')) since.set(prev, at);
      if (watched.has(next) && since.has(next)) {
        const from = since.get(next);
        since.delete(next);
        const kind = prev === 0 ? 'idle' : threads.has(prev) ? 'own' : 'other';
        if (at - from > 5) waits.push([from, at, kind, m[1]]);
      }
    }
    waits.sort((a, b) => a[0] - b[0]);
  }
  await new Promise((resolve) => {
    srv.on('exit', resolve);
    srv.kill('SIGTERM');
  });
  const s = stamped ? JSON.parse(readFileSync(srvOut, 'utf8')) : { stamps: [], gcs: [], offset: 0 };
  if (s.stats?.recvPool) console.error('recvPool', JSON.stringify(s.stats.recvPool));
  if (conns > 1) {
    // Many connections (the C load generator): the server's batches, from its handler stamps. Handlers
    // less than 3 us apart ran in one dispatch; a batch's span is its first to its last handler.
    const st = s.stamps;
    const gcs = s.gcs.map(([t, d, k]) => [t, d, k]);
    const sizes = [], spans = [], gaps = [];
    let b0 = 0;
    for (let i = 1; i <= st.length; i++) {
      if (i === st.length || (st[i] - st[i - 1]) * 1e3 > 3) {
        sizes.push(i - b0);
        spans.push((st[i - 1] - st[b0]) * 1e3);
        if (i < st.length) gaps.push((st[i] - st[i - 1]) * 1e3);
        b0 = i;
      }
    }
    const srt = (a) => Float64Array.from(a).sort();
    const q = (a, p) => +a[Math.min(a.length - 1, Math.floor(a.length * p))].toFixed(1);
    const ss = srt(sizes), sp = srt(spans), gp = srt(gaps);
    const scav = gcs.filter((g) => g[2] === 1);
    // Messages whose handler ran within a scavenge's pause or up to 1 ms after it.
    if (s.heap) for (const [site, b] of s.heap) console.error(`${((b / st.length) | 0).toString().padStart(6)} B/msg  ${site}`);
    console.log(JSON.stringify({
      driver, conns, ...res, load: [+load0.toFixed(2), +loadavg()[0].toFixed(2)], env: extraEnv,
      handled: st.length,
      scavenges_per_100k: +((scav.length / st.length) * 1e5).toFixed(1),
      scavenge_ms: scav.length ? q(srt(scav.map((g) => g[1])), 0.5) : null,
      other_gcs: gcs.filter((g) => g[2] !== 1).map((g) => ({ kind: g[2], ms: +g[1].toFixed(2), at_ms: +(g[0] - s.offset - st[0]).toFixed(1) })),
      big_gaps_ms: gaps.map((g, i) => [g, i]).filter(([g]) => g > 2000).slice(0, 12).map(([g]) => +(g / 1e3).toFixed(2)),
      batch_size: { p50: q(ss, 0.5), p90: q(ss, 0.9), p99: q(ss, 0.99), max: ss[ss.length - 1] },
      batch_span_us: { p50: q(sp, 0.5), p90: q(sp, 0.9), p99: q(sp, 0.99), max: q(sp, 1) },
      gap_us: { p50: q(gp, 0.5), p90: q(gp, 0.9), p99: q(gp, 0.99), p999: q(gp, 0.999), max: q(gp, 1) },
    }));
    continue;
  }
  if (s.heap) for (const [site, b] of s.heap.slice(0, 12)) console.error(`${((b / s.stamps.length) | 0).toString().padStart(6)} B/msg  ${site}`);
  const b = readFileSync(cliOut);
  const ts = new BigInt64Array(b.buffer, b.byteOffset, b.length / 8);
  const N = res.msgs;
  const t0 = new Float64Array(N), t1 = new Float64Array(N), hs = new Float64Array(N);
  let bad = 0;
  for (let i = 0; i < N; i++) {
    t0[i] = Number(ts[2 * i]) / 1e3; // us
    t1[i] = Number(ts[2 * i + 1]) / 1e3;
    hs[i] = stamped ? (s.stamps[res.skipped + i] + s.offset) * 1e3 : (t0[i] + t1[i]) / 2;
    if (!(hs[i] >= t0[i] - 1 && hs[i] <= t1[i] + 1)) bad++;
  }
  const sorted = (a) => Float64Array.from(a).sort();
  const rtt = t1.map((v, i) => v - t0[i]);
  const inb = hs.map((v, i) => v - t0[i]);
  const outb = t1.map((v, i) => v - hs[i]);
  const q = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))];
  const rs = sorted(rtt), is = sorted(inb), os = sorted(outb);
  const medIn = q(is, 0.5), medOut = q(os, 0.5);
  const gcs = s.gcs.map(([st, d, k]) => [st * 1e3, (st + d) * 1e3, k]); // us
  const per = (x) => ((x / N) * 1e5).toFixed(1);
  const classes = {};
  const culprits = {};
  // Per round trip: the server or the client waited > 2 us for its CPU, held by another process (bit 1),
  // by another thread of the server (bit 2), or idle (bit 4: the CPU's exit from a sleep state).
  const who = new Uint8Array(N);
  if (sched) {
    let wi = 0;
    for (let i = 0; i < N; i++) {
      while (wi < waits.length && waits[wi][1] < t0[i]) wi++;
      for (let k = wi; k < waits.length && waits[k][0] <= t1[i]; k++) {
        if (waits[k][1] < t0[i]) continue;
        const [, , kind, comm] = waits[k];
        who[i] |= kind === 'other' ? 1 : kind === 'own' ? 2 : 4;
        if (rtt[i] > 50) culprits[`${kind}:${comm}`] = (culprits[`${kind}:${comm}`] ?? 0) + 1;
      }
    }
  }
  for (const thr of [30, 50, 100]) {
    const c = { total: 0, scavenge: 0, othergc: 0, interference: 0, own_thread: 0, idle_wake: 0, inbound: 0, outbound: 0 };
    let gi = 0;
    for (let i = 0; i < N; i++) {
      if (rtt[i] <= thr) continue;
      c.total++;
      while (gi < gcs.length && gcs[gi][1] < t0[i]) gi++;
      const g = gi < gcs.length && gcs[gi][0] <= t1[i] ? gcs[gi] : null;
      if (g) c[g[2] === 1 ? 'scavenge' : 'othergc']++;
      else if (who[i] & 1) c.interference++;
      else if (who[i] & 2) c.own_thread++;
      else if (who[i] & 4) c.idle_wake++;
      else if (!stamped) c.inbound++;
      else if (inb[i] - medIn >= outb[i] - medOut) c.inbound++;
      else c.outbound++;
    }
    if (!stamped) {
      c.unexplained = c.inbound;
      delete c.inbound;
      delete c.outbound;
    }
    classes[`over${thr}`] = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(per(v))]));
  }
  // The round trips no other process touched: their percentiles are the server's own (load-independent, mostly).
  const clean = sorted(rtt.filter((_, i) => !(who[i] & 1)));
  const scav = gcs.filter((g) => g[2] === 1 && g[0] >= t0[0] && g[0] <= t1[N - 1]);
  const row = {
    driver,
    msgs: N,
    misaligned: bad,
    msgs_per_s: Math.round(N / secs),
    rtt_us: { p50: +q(rs, 0.5).toFixed(1), p99: +q(rs, 0.99).toFixed(1), p999: +q(rs, 0.999).toFixed(1) },
    ...(sched ? { untouched: clean.length / N, untouched_rtt_us: { p50: +q(clean, 0.5).toFixed(1), p99: +q(clean, 0.99).toFixed(1), p999: +q(clean, 0.999).toFixed(1), p9999: +q(clean, 0.9999).toFixed(1) } } : {}),
    inbound_us: { p50: +medIn.toFixed(1), p999: +q(is, 0.999).toFixed(1) },
    outbound_us: { p50: +medOut.toFixed(1), p999: +q(os, 0.999).toFixed(1) },
    per_100k: classes,
    scavenges_per_100k: Number(per(scav.length)),
    scavenge_ms_median: scav.length ? +(sorted(scav.map((g) => (g[1] - g[0]) / 1e3))[scav.length >> 1]).toFixed(3) : null,
    gcs_other: gcs.filter((g) => g[2] !== 1 && g[0] >= t0[0] && g[0] <= t1[N - 1]).map((g) => [g[2], +((g[1] - g[0]) / 1e3).toFixed(2)]),
    culprits_over50: Object.fromEntries(Object.entries(culprits).sort((a, b) => b[1] - a[1]).slice(0, 8)),
    load: [+load0.toFixed(2), +loadavg()[0].toFixed(2)],
    env: extraEnv,
  };
  console.log(JSON.stringify(row));
  if (process.argv.includes('--own')) {
    // The server's own slow round trips (> 30 us, no GC, no wait for a CPU): when they came, and their split.
    let gi2 = 0;
    for (let i = 0; i < N; i++) {
      if (rtt[i] <= 30 || who[i] & 1) continue;
      while (gi2 < gcs.length && gcs[gi2][1] < t0[i]) gi2++;
      const gc = gi2 < gcs.length && gcs[gi2][0] <= t1[i];
      console.error(`own #${i} t=${((t0[i] - t0[0]) / 1e3).toFixed(3)}ms rtt ${rtt[i].toFixed(1)} in ${inb[i].toFixed(1)} out ${outb[i].toFixed(1)}${gc ? ' GC' : ''}${who[i] & 2 ? ' own-thread' : ''}${who[i] & 4 ? ' idle-wake' : ''}`);
    }
  }
  if (process.argv.includes('--dump')) {
    // The slowest 40 round trips with their split, and the GCs near them.
    const idx = [...rtt.keys()].sort((a, b) => rtt[b] - rtt[a]).slice(0, 40).sort((a, b) => a - b);
    for (const i of idx) console.error(`#${i} t=${((t0[i] - t0[0]) / 1e3).toFixed(3)}ms rtt ${rtt[i].toFixed(1)} in ${inb[i].toFixed(1)} out ${outb[i].toFixed(1)} prev-gap ${(i ? t0[i] - t1[i - 1] : 0).toFixed(1)}`);
  }
}
