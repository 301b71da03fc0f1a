#!/usr/bin/env node
// Experiment (issue #14, invariant 5): where a proxied round's tail stalls come from. The
// bench/proxy-http.mjs setup (an nginx upstream and wrk -t1 -c64 on CPU 1, the proxy pinned to CPU 0, a
// fresh proxy per run warmed up by 1 s of wrk), many short runs, ringio-proxy (io_uring, epoll) and nginx
// as the proxy interleaved round by round. Every run records:
//  - wrk's requests/s, p50, p99 and max;
//  - per CPU over the run (/proc/stat): busy, idle and steal (the hypervisor's: time this VM's vCPU did
//    not run), and how much of CPU 0's busy time was not the proxy (another process on the proxy's CPU);
//  - the proxy's I/O thread (its busiest thread: ringio's loop thread, nginx's worker) from schedstat:
//    ran, waited runnable, voluntary switches; and its other threads' CPU (V8's compiler and GC helpers,
//    pinned to the same CPU: their time is the I/O thread's run queue wait).
//  - the upstream's counters (nginx stub_status): connections it accepted during the run (the proxy's pool
//    opening new ones, as it does when one was closed) and requests beyond wrk's count (retries; wrk leaves
//    out the up to 64 in flight at its end).
// Unless --no-trace, the run is also recorded by `perf record -C 0,1 -k CLOCK_MONOTONIC` (sched_switch,
// sched_waking, io_uring_task_add, inet_sock_set_state, and the proxy's epoll_wait / epoll_pwait /
// io_uring_enter entries and exits), perf started beside wrk, unboosted, writing to tmpfs, and every sleep
// of the I/O thread within wrk's run is accounted for: when it went to sleep, when the kernel first queued
// it work (io_uring: the task work of a completion, `io_uring_task_add` on its ring; epoll and nginx: the
// wake-up itself, which the readiness callback makes), when it was woken (`sched_waking`; one recorded
// while it was still on its way to sleep counts), and when it ran. Counted per run:
//  - late_wakes: sleeps during which its ring got task work more than 1 ms before the thread was woken
//    (the kernel had its work and it slept on: what invariant 5 forbids); wake_lag_us: p50 / p99 / max of
//    task_add -> waking over the sleeps that had any;
//  - long_sleeps (> 5 ms, under a 64-connection load), with what CPU 1 (wrk and the upstream) and CPU 0
//    did meanwhile (ms by process; `idle` is an idle CPU, `perf` the tracer);
//  - run_lag_us: waking -> running (p99, max); waits_cpu0_ms: every runnable wait of the I/O thread and
//    what held CPU 0 meanwhile (`proxy-other-thread`: its own process's other threads); long_waits:
//    those over 1 ms;
//  - both_idle: stretches > 1 ms in which both CPUs were idle at once (nobody had the work: a lost wake-up
//    anywhere on the path, or a TCP timer);
//  - holes: stretches > 5 ms in which neither CPU recorded any scheduler event (both kept running one
//    task each, or the VM did not run: steal says which), with what ran.
// --threshold (ms, default 10): a run whose p99 is above it is a stalled run and gets its accounting
// printed in full; the table at the end compares stalled and clean runs by contender.
// Usage: node bench/experiments/proxy-stall.mjs [--rounds 8] [--secs 3] [--targets uring,epoll,nginx]
//        [--threshold 10] [--no-trace] [--boost] [--gc] [--profile] [--dump] [--raw] [--pin-helpers]
//        [--node-args '--single-threaded-gc'] [--env 'RINGIO_URING_SETUP=defer'] [--root DIR]
// --boost: the proxy, the upstream and wrk each lead a session at autogroup nice -20 (perf does not).
// --gc: the ringio proxies run with --trace-gc; their collections during the run are counted.
// --dump: every run's accounting (not only stalled ones), the long sleeps one by one, the sleeps by the
// syscall they were in and its result; --raw: the trace lines around the first late wake.
// --pin-helpers: the experiment's pinning change. V8's and libuv's helper threads of a ringio proxy are
// moved off the proxy's CPU (to CPU 1) once it listens; nginx has none, so both get the same treatment.
import { execFileSync } from 'node:child_process';
import { get } from 'node:http';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, boostArgv, cpuTicks, exited, freePort, has, median, nginxConf, nginxProxyConf, parseWrk, ringioProxyConfig, spawnPinned, stopProc, table, waitForPort } from '../lib.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '../..');
const root = resolve(String(arg('root', here)));
const targets = String(arg('targets', 'uring,epoll,nginx')).split(',');
const rounds = Number(arg('rounds', 8));
const secs = Number(arg('secs', 3));
const threshold = Number(arg('threshold', 10));
const trace = !process.argv.includes('--no-trace');
const pinHelpers = process.argv.includes('--pin-helpers');
const boost = process.argv.includes('--boost');
const gc = process.argv.includes('--gc');
// --profile: also cpu-clock samples (every 100 µs, with call chains) on both CPUs, and for each long sleep
// what CPU 1 was doing (its samples' leaf functions; fewer samples than the sleep's length allows means
// the vCPU did not run: the hypervisor's steal).
const profile = process.argv.includes('--profile');
// --node-args '...': V8 / Node flags for the ringio proxies (e.g. --single-threaded-gc).
const nodeArgs = String(arg('node-args', '')).split(' ').filter(Boolean);
// --env 'K=V;K2=V2': environment for the ringio proxies (RINGIO_URING_SETUP=defer brings back the
// DEFER_TASKRUN ring whose wake-ups come a tick late: the late-wake count's check on itself).
const proxyEnv = Object.fromEntries(String(arg('env', '')).split(';').filter(Boolean).map((kv) => kv.split('=')));
/** `cmd args` pinned to `cpu`; with --boost in a session (so an autogroup) of its own at nice -20. */
function pinned(cmd, args, cpu, env = {}) {
  const opts = { env: { ...process.env, ...env } };
  if (!boost) return spawnPinned(cmd, args, cpu, opts);
  const [c, ...rest] = boostArgv([cmd, ...args]);
  return spawnPinned(c, rest, cpu, opts);
}
for (const t of ['taskset', 'nginx', 'wrk', ...(trace ? ['perf'] : [])]) if (!has(t)) {
  console.error(`missing: ${t}`);
  process.exit(2);
}
const tmp = mkdtempSync(join(tmpdir(), 'ringio-stall-'));
chmodSync(tmp, 0o755);

const upPort = await freePort();
const upc = nginxConf(tmp, 'up', `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } location = /up-status { stub_status; } }`);
const upstream = pinned('nginx', ['-c', upc.f, '-p', upc.dir, '-e', '/dev/null'], '1');
await waitForPort(upPort, upstream, 'upstream');

/** The upstream's counters (nginx stub_status): connections accepted and requests served so far. */
async function upStatus() {
  // A connection of its own each time (no agent): the first one is in the count before, the second in
  // the count after.
  const body = await new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: upPort, path: '/up-status', agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  const m = /\s(\d+)\s+(\d+)\s+(\d+)\s/.exec(body);
  return { accepts: Number(m[1]), requests: Number(m[3]) };
}

/** Established TCP connections to the upstream's port (/proc/net/tcp): the proxy's pool. */
function upstreamConns() {
  const hex = `:${upPort.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[2]?.endsWith(hex) && f[3] === '01';
  }).length;
}

function start(target, port) {
  if (target === 'nginx') {
    const c = nginxProxyConf(tmp, upPort, port);
    const p = pinned('nginx', ['-c', c.f, '-p', c.dir, '-e', '/dev/null'], '0');
    p.stopSignal = 'SIGQUIT';
    return p;
  }
  const f = ringioProxyConfig(tmp, { port, upPort, driver: target });
  return pinned(process.execPath, [...nodeArgs, ...(gc ? ['--trace-gc'] : []), join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', f], '0', proxyEnv);
}

const kids = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
/** Every thread of `pids` and their children: tid -> { pid, run ns, wait ns, vcsw, nvcsw }. */
function threads(pids) {
  const out = new Map();
  for (const pid of [...pids, ...pids.flatMap(kids)]) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
        const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
        out.set(Number(t), { pid, run, wait, v: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1]), n: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1]) });
      } catch {
        // gone
      }
    }
  }
  return out;
}
const q = (xs, p) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
};

/** The scheduler trace of one run, accounted for the I/O thread `io` (see the header). */
function analyse(text, io, own, peers, uring, startUs) {
  const ev = [];
  let sample = null;
  for (const line of text.split('\n')) {
    if (sample && /^\s+[0-9a-f]+ /.test(line)) {
      // a frame of a cpu-clock sample's call chain: the first is its leaf
      if (sample.leaf === undefined) sample.leaf = line.trim().split(/\s+/)[1];
      else if (sample.frames.length < 6) sample.frames.push(line.trim().split(/\s+/)[1]);
      continue;
    }
    const m = /^\s*(.+?)\s+(-?\d+)\/(-?\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(?:\d+\s+)?(\S+?):?\s+(.*)$/.exec(line);
    sample = null;
    if (!m) continue;
    if (m[6] === 'cpu-clock') {
      sample = { comm: m[1], cpu: Number(m[4]), t: Number(m[5]) * 1e6, frames: [] };
      (ev.samples ??= []).push(sample);
      continue;
    }
    ev.push({ line, comm: m[1], pid: Number(m[2]), tid: Number(m[3]), cpu: Number(m[4]), t: Number(m[5]) * 1e6, name: m[6], f: m[7] });
  }
  if (ev.length === 0) return null;
  // The proxy's ring: the one whose task work most often comes last before a wake-up of the I/O thread
  // (within 50 ms: a ring whose wake-ups come late must still be found).
  const vote = new Map();
  let lastAdd = null;
  for (const e of ev) {
    if (e.name === 'io_uring:io_uring_task_add') lastAdd = e;
    else if (e.name === 'sched:sched_waking' && lastAdd && / pid=(\d+) /.exec(e.f)?.[1] === String(io) && e.t - lastAdd.t < 50000) {
      const ring = /ring (\S+),/.exec(lastAdd.f)?.[1];
      vote.set(ring, (vote.get(ring) ?? 0) + 1);
    }
  }
  // (Only for an io_uring proxy: other processes on the machine may have rings of their own.)
  const ring = uring ? [...vote].sort((a, b) => b[1] - a[1])[0]?.[0] : undefined;
  // The window: from wrk's first wake-up of the I/O thread (after startUs, when wrk was started) for the
  // run's length less 100 ms (wrk stops sending at its end and reports).
  const firstWake = ev.find((e) => e.t >= startUs && e.name === 'sched:sched_waking' && e.comm === 'wrk' && / pid=(\d+) /.exec(e.f)?.[1] === String(io));
  const t0 = firstWake ? firstWake.t : startUs;
  const t1 = Math.min(ev[ev.length - 1].t, t0 + secs * 1e6 - 100e3);
  // Per CPU: who ran when (from sched_switch), as [from, to, key].
  const running = { 0: [], 1: [] };
  const cur = { 0: null, 1: null };
  const keyOf = (pid, comm) => (pid === 0 ? 'idle' : pid === io ? 'proxy-io' : own.has(pid) ? 'proxy-other-thread' : peers.get(pid) ?? `other:${comm}`);
  const sleeps = [];
  const waits = [];
  let state = 'unknown'; // of the I/O thread: run | sleep (switched out asleep) | woken | runnable (preempted)
  let from = t0;
  let firstAdd = null;
  let waking = null;
  let prevState = null;
  let waker = null;
  let lastSys = null;
  let earlyWaking = null;
  const holes = [];
  let prevT = t0;
  for (const e of ev) {
    if (e.t - prevT > 5000 && prevT >= t0 && e.t <= t1) holes.push([prevT, e.t]);
    prevT = e.t;
    if (e.name === 'sched:sched_switch') {
      const m = /prev_comm=(.*) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)/.exec(e.f);
      if (!m) continue;
      const c = e.cpu in running ? e.cpu : null;
      if (c !== null) {
        if (cur[c]) running[c].push([cur[c][0], e.t, cur[c][1]]);
        cur[c] = [e.t, keyOf(Number(m[5]), m[4])];
      }
      if (Number(m[2]) === io) {
        state = m[3].startsWith('R') ? 'runnable' : 'sleep';
        from = e.t;
        firstAdd = null;
        waking = null;
        prevState = m[3];
        waker = null;
        // Woken while it was still on its way to sleep (the waking is recorded before the switch that
        // reports it asleep): it is runnable from that waking on.
        if (state === 'sleep' && earlyWaking !== null) {
          state = 'woken';
          waking = earlyWaking[0];
          waker = earlyWaking[1];
        }
      }
      if (Number(m[5]) === io) {
        if (state === 'sleep' || state === 'woken') sleeps.push({ from, add: firstAdd, waking, run: e.t, prevState, sys: lastSys, waker, ret: null });
        else if (state === 'runnable') waits.push({ from, run: e.t });
        state = 'run';
        earlyWaking = null;
      }
    } else if (e.name === 'sched:sched_waking') {
      if (state === 'run' && / pid=(\d+) /.exec(e.f)?.[1] === String(io)) earlyWaking = [e.t, `${e.comm}/${e.tid}@${e.cpu}`];
      if (state === 'sleep' && / pid=(\d+) /.exec(e.f)?.[1] === String(io)) {
        waking = e.t;
        waker = `${e.comm}/${e.tid}@${e.cpu}`;
        state = 'woken';
      }
    } else if (e.name.startsWith('syscalls:sys_enter') && e.tid === io) {
      lastSys = `${e.name.slice(19)}(${e.f})`;
    } else if (e.name.startsWith('syscalls:sys_exit') && e.tid === io) {
      const last = sleeps[sleeps.length - 1];
      if (last && last.ret === null && last.sys !== null) last.ret = e.f;
      lastSys = null;
    } else if (e.name === 'io_uring:io_uring_task_add') {
      if ((state === 'sleep' || state === 'woken') && firstAdd === null && /ring (\S+),/.exec(e.f)?.[1] === ring) firstAdd = e.t;
    }
  }
  for (const c of [0, 1]) if (cur[c]) running[c].push([cur[c][0], ev[ev.length - 1].t, cur[c][1]]);
  const inWindow = (x) => x.from >= t0 && x.from <= t1;
  sleeps.splice(0, sleeps.length, ...sleeps.filter(inWindow));
  waits.splice(0, waits.length, ...waits.filter(inWindow));
  /** ms by key on `cpu` within [a, b]. */
  const during = (cpu, a, b, acc = new Map()) => {
    for (const [x, y, k] of running[cpu]) {
      const lo = Math.max(x, a);
      const hi = Math.min(y, b);
      if (hi > lo) acc.set(k, (acc.get(k) ?? 0) + (hi - lo) / 1e3);
    }
    return acc;
  };
  const fmt = (acc) => Object.fromEntries([...acc].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => [k, +v.toFixed(1)]));
  // Work queued while it slept, then the wake (or, had no waking been recorded, the run) that followed.
  const woke = (s) => s.waking ?? s.run;
  const withWork = sleeps.filter((s) => s.add !== null && s.add <= woke(s));
  const lateWakes = withWork.filter((s) => woke(s) - s.add > 1000);
  const wakeLag = withWork.map((s) => woke(s) - s.add);
  const runLag = sleeps.filter((s) => s.waking !== null).map((s) => s.run - Math.max(s.waking, s.from));
  const long = sleeps.filter((s) => (s.waking ?? s.run) - s.from > 5000);
  const cpu1 = new Map();
  const cpu0 = new Map();
  for (const s of long) {
    during(1, s.from, s.waking ?? s.run, cpu1);
    during(0, s.from, s.waking ?? s.run, cpu0);
  }
  const longWaits = waits.filter((w) => w.run - w.from > 1000);
  const held = new Map();
  for (const w of longWaits) during(0, w.from, w.run, held);
  const whole = (cpu) => fmt(during(cpu, t0, t1));
  // Every runnable wait of the I/O thread (preempted, or woken and not yet running), and who held CPU 0.
  const allWaits = new Map();
  for (const w of waits) during(0, w.from, w.run, allWaits);
  for (const s of sleeps) if (s.waking !== null) during(0, Math.max(s.waking, s.from), s.run, allWaits);
  // Both CPUs idle at once under the load: nobody had the work (a lost wake-up anywhere on the path, or
  // a TCP timer such as a delayed ACK); stretches over 1 ms, with their total.
  const idleOf = (c) => running[c].filter(([x, y, k]) => k === 'idle' && y > t0 && x < t1);
  const bothIdle = [];
  const idle1 = idleOf(1);
  for (const [x0, y0] of idleOf(0)) {
    for (const [x1, y1] of idle1) {
      const lo = Math.max(x0, x1, t0);
      const hi = Math.min(y0, y1, t1);
      if (hi - lo > 1000) bothIdle.push(hi - lo);
    }
  }
  const holeHeld = { 0: new Map(), 1: new Map() };
  for (const [x, y] of holes) for (const c of [0, 1]) during(c, x, y, holeHeld[c]);
  if (process.argv.includes('--dump')) {
    for (const s of lateWakes.slice(0, 12)) console.error(`    late: slept ${((s.add - s.from) / 1e3).toFixed(2)} ms before work, woken ${((woke(s) - s.add) / 1e3).toFixed(2)} ms after it by ${s.waker}, ran ${((s.run - woke(s)) / 1e3).toFixed(2)} ms later; state ${s.prevState} in ${s.sys} -> ${s.ret}; CPU0 meanwhile ${JSON.stringify(fmt(during(0, s.add, woke(s))))}`);
    const socks = ev.filter((e) => e.name === 'sock:inet_sock_set_state');
    const sockCount = new Map();
    for (const e of socks) {
      const m = /sport=(\d+) dport=(\d+).*oldstate=(\S+) newstate=(\S+)/.exec(e.f);
      if (!m) continue;
      const k = `${e.comm}: ${m[3]}->${m[4]}`;
      sockCount.set(k, (sockCount.get(k) ?? 0) + 1);
    }
    console.error(`    TCP state changes: ${JSON.stringify(Object.fromEntries(sockCount))}`);
    for (const s of long) {
      console.error(`    long sleep at ${((s.from - t0) / 1e3).toFixed(1)} ms (trace ${((t1 - t0) / 1e3).toFixed(0)} ms), ${((woke(s) - s.from) / 1e3).toFixed(1)} ms, woken by ${s.waker}, work ${s.add === null ? 'none' : `${((s.add - s.from) / 1e3).toFixed(2)} ms in`}; CPU 1 ${JSON.stringify(fmt(during(1, s.from, woke(s))))}`);
      if (!ev.samples) continue;
      const inWin = ev.samples.filter((x) => x.cpu === 1 && x.t >= s.from && x.t <= woke(s));
      const leaves = new Map();
      for (const x of inWin) {
        const k = `${x.comm}:${x.leaf}<${x.frames.slice(0, 3).join('<')}`;
        leaves.set(k, (leaves.get(k) ?? 0) + 1);
      }
      console.error(`      CPU 1 samples ${inWin.length} of ${Math.round((woke(s) - s.from) / 100)} possible: ${[...leaves].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${v} ${k}`).join(' | ')}`);
    }
    const first = lateWakes[0];
    if (first && process.argv.includes('--raw')) {
      let adds = 0;
      for (const e of ev) {
        if (e.t < first.from - 200 || e.t > first.run + 50) continue;
        if (e.name === 'io_uring:io_uring_task_add' && (!e.f.includes(ring) || ++adds > 3)) continue;
        if (e.cpu !== 0 && e.name === 'sched:sched_switch' && !e.f.includes(`pid=${io} `)) continue;
        console.error(`      ${((e.t - first.from) / 1e3).toFixed(3)} ${e.line.trim().slice(0, 220)}`);
      }
    }
    const sys = new Map();
    for (const s of sleeps) {
      const k = `${(s.sys ?? 'none').replace(/\(.*/, '')} ${s.prevState} -> ${(s.ret ?? '').replace(/0x[0-9a-f]+/, (x) => (x === '0xfffffffffffffffc' ? 'EINTR' : Number(x) > 0 ? 'n>0' : x))}`;
      sys.set(k, (sys.get(k) ?? 0) + 1);
    }
    console.error(`    sleeps by syscall: ${JSON.stringify(Object.fromEntries(sys))}`);
  }
  return {
    ring: ring ?? null,
    sleeps: sleeps.length,
    late_wakes: lateWakes.length,
    late_wake_ms: +(lateWakes.reduce((a, s) => a + (woke(s) - s.add), 0) / 1e3).toFixed(2),
    unwoken: sleeps.filter((s) => s.waking === null).length,
    wake_lag_us: sleeps.length && wakeLag.length ? { p50: +q(wakeLag, 0.5).toFixed(1), p99: +q(wakeLag, 0.99).toFixed(1), max: +q(wakeLag, 1).toFixed(1), n: wakeLag.length } : null,
    run_lag_us: runLag.length ? { p50: +q(runLag, 0.5).toFixed(1), p99: +q(runLag, 0.99).toFixed(1), max: +q(runLag, 1).toFixed(1) } : null,
    long_sleeps: long.length,
    long_sleep_ms: +(long.reduce((a, s) => a + ((s.waking ?? s.run) - s.from), 0) / 1e3).toFixed(1),
    long_sleeps_cpu1_ms: fmt(cpu1),
    long_sleeps_cpu0_ms: fmt(cpu0),
    long_waits: longWaits.length,
    long_wait_ms: +(longWaits.reduce((a, w) => a + (w.run - w.from), 0) / 1e3).toFixed(1),
    long_waits_cpu0_ms: fmt(held),
    waits_cpu0_ms: fmt(allWaits),
    both_idle: bothIdle.length,
    both_idle_ms: +(bothIdle.reduce((a, x) => a + x, 0) / 1e3).toFixed(1),
    holes: holes.length,
    holes_cpu0_ms: fmt(holeHeld[0]),
    holes_cpu1_ms: fmt(holeHeld[1]),
    hole_ms: +(holes.reduce((a, [x, y]) => a + (y - x), 0) / 1e3).toFixed(1),
    cpu0_ms: whole(0),
    cpu1_ms: whole(1),
  };
}

/** The wait syscalls of the proxy's threads, filtered to them (perf --filter after each event). */
function sysEvents(roots) {
  const tids = [];
  for (const pid of [...roots, ...roots.flatMap(kids)]) for (const t of readdirSync(`/proc/${pid}/task`)) tids.push(t);
  const filter = tids.map((t) => `common_pid == ${t}`).join(' || ');
  return ['epoll_pwait', 'epoll_wait', 'epoll_pwait2', 'io_uring_enter'].flatMap((n) => ['-e', `syscalls:sys_enter_${n}`, '--filter', filter, '-e', `syscalls:sys_exit_${n}`, '--filter', filter]);
}

async function once(target) {
  const port = await freePort();
  const p = start(target, port);
  try {
    await waitForPort(port, p, target);
    const url = `http://127.0.0.1:${port}/`;
    const w0 = pinned('wrk', ['-t1', '-c64', '-d1s', url], '1');
    await exited(w0);
    const roots = [p.pid];
    if (pinHelpers && target !== 'nginx') {
      // Every thread but the loop thread (the process's main thread: threads = 1 serves on it) to CPU 1.
      for (const t of readdirSync(`/proc/${p.pid}/task`)) if (Number(t) !== p.pid) execFileSync('taskset', ['-p', '-c', '1', t], { stdio: 'ignore' });
    }
    // On tmpfs: a trace written to a disk file system cost perf 5-7 ms of CPU per write-out (ext4's
    // delayed allocation), on CPU 1 as often as not, where wrk and the upstream then waited.
    const perfData = join(existsSync('/dev/shm') ? '/dev/shm' : tmp, `ringio-stall-${process.pid}-${port}.data`);
    // perf runs beside wrk, not as its parent: it is not boosted, so the trace it writes (on CPU 1 as often
    // as not) competes with the other sessions' work rather than with wrk and the upstream.
    let perf;
    if (trace) {
      perf = spawnPinned('perf', ['record', '-q', '-m', '16M', '-e', 'sched:sched_switch,sched:sched_waking,io_uring:io_uring_task_add,sock:inet_sock_set_state', ...sysEvents(roots), ...(profile ? ['-e', 'cpu-clock', '-c', '100000', '-g'] : []), '-C', '0,1', '-k', 'CLOCK_MONOTONIC', '-o', perfData], '0,1');
      await new Promise((r) => setTimeout(r, 300));
    }
    const pool0 = upstreamConns();
    const up0 = await upStatus();
    const th0 = threads(roots);
    const c0 = cpuTicks();
    const tw0 = process.hrtime.bigint();
    const gc0 = p.out.length;
    const w = pinned('wrk', ['-t1', '-c64', `-d${secs}s`, '--latency', url], '1');
    await exited(w);
    const span = Number(process.hrtime.bigint() - tw0);
    const c1 = cpuTicks();
    const th1 = threads(roots);
    if (perf) {
      perf.kill('SIGINT');
      await exited(perf);
    }
    // --gc: the proxy's collections during the run (--trace-gc lines): count and pause ms, by kind.
    const gcs = {};
    for (const g of p.out.slice(gc0).matchAll(/ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^,]*MB, ([\d.]+) \/ [\d.]+ ms/g)) {
      const k = g[1];
      gcs[k] = gcs[k] ?? { n: 0, ms: 0, max: 0 };
      gcs[k].n++;
      gcs[k].ms = +(gcs[k].ms + Number(g[2])).toFixed(2);
      gcs[k].max = Math.max(gcs[k].max, Number(g[2]));
    }
    const up1 = await upStatus();
    const r = parseWrk(w.out);
    if (r.errors) throw new Error(`wrk: ${r.errors}`);
    const maxMs = (() => {
      const m = /Latency\s+\S+\s+\S+\s+(\S+)/.exec(w.out);
      return m ? parseWrk(`    50% ${m[1]}\n`).p50_ms : NaN;
    })();
    // The I/O thread: the busiest over the run.
    let io = 0;
    let best = -1;
    let ownOther = 0;
    let ownTotal = 0;
    const own = new Set();
    for (const [tid, a] of th1) {
      const b = th0.get(tid) ?? { run: 0, wait: 0, v: 0, n: 0 };
      own.add(tid);
      ownTotal += a.run - b.run;
      if (a.run - b.run > best) {
        best = a.run - b.run;
        io = tid;
      }
    }
    const a = th1.get(io);
    const b = th0.get(io) ?? { run: 0, wait: 0, v: 0, n: 0 };
    ownOther = ownTotal - best;
    const ticks = (cpu) => ({ busy: c1[cpu].busy - c0[cpu].busy, idle: c1[cpu].idle - c0[cpu].idle, steal: c1[cpu].steal - c0[cpu].steal });
    const k0 = ticks(0);
    const k1 = ticks(1);
    const m = {
      rps: r.rps,
      p50: r.p50_ms,
      p99: r.p99_ms,
      max: maxMs,
      io_run: (a.run - b.run) / span,
      io_wait: (a.wait - b.wait) / span,
      io_vcsw: a.v - b.v,
      io_nvcsw: a.n - b.n,
      helpers: ownOther / span,
      cpu0: k0,
      cpu1: k1,
      // CPU 0's busy time that was not the proxy's (another process on its CPU), as a share of the run.
      cpu0_other: Math.max(0, (k0.busy * 1e7 - ownTotal) / span),
      load: loadavg()[0],
      gcs,
      // The upstream during the run: connections it accepted (the proxy's pool opening new ones: none
      // is needed after the warm-up unless one was closed), and requests it served beyond wrk's (the
      // status request itself is one; retries would be more).
      up_accepts: up1.accepts - up0.accepts - 1,
      // Connections to the upstream when the run started (after the warm-up) and when it ended.
      pool: [pool0, upstreamConns()],
      up_extra: up1.requests - up0.requests - 1 - Number(/(\d+) requests in/.exec(w.out)?.[1] ?? 0),
    };
    if (trace) {
      const peers = new Map();
      peers.set(w.pid, 'wrk'); // taskset exec'd wrk: the same pid
      peers.set(perf.pid, 'perf');
      for (const k of kids(upstream.pid)) peers.set(k, 'upstream');
      const text = execFileSync('perf', ['script', '-i', perfData, '-F', `comm,pid,tid,cpu,time,event,trace${profile ? ',ip,sym' : ''}`], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
      // Events the kernel could not hand to perf (its buffer was full): a trace with any is incomplete.
      const stats = execFileSync('perf', ['report', '-i', perfData, '--stats'], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'ignore'] });
      m.lost = Number(/LOST events:\s+(\d+)/.exec(stats)?.[1] ?? 0) + Number(/LOST_SAMPLES events:\s+(\d+)/.exec(stats)?.[1] ?? 0);
      rmSync(perfData, { force: true });
      // wrk's pid: the process named wrk in the trace.
      for (const mm of text.matchAll(/next_comm=wrk next_pid=(\d+)/g)) peers.set(Number(mm[1]), 'wrk');
      m.trace = analyse(text, io, own, peers, target === 'uring', Number(tw0) / 1e3);
    }
    return m;
  } finally {
    await stopProc(p, p.stopSignal);
  }
}

try {
  const load0 = loadavg();
  console.error(`load at start ${load0.map((x) => x.toFixed(2)).join(' ')}; ${trace ? 'traced' : 'not traced'}${boost ? ', boosted (autogroup nice -20: proxy, upstream, wrk)' : ''}${pinHelpers ? ', helper threads off CPU 0' : ''}`);
  const res = new Map(targets.map((t) => [t, []]));
  for (let r = 0; r < rounds; r++) {
    const order = [...targets.slice(r % targets.length), ...targets.slice(0, r % targets.length)];
    for (const t of order) {
      let m;
      try {
        m = await once(t);
      } catch (e) {
        console.error(`round ${r + 1} ${t}: ${e.message.split('\n')[0]}`);
        continue;
      }
      res.get(t).push(m);
      const stalled = m.p99 > threshold;
      const tr = m.trace;
      console.error(
        `round ${r + 1} ${t}: ${Math.round(m.rps)} req/s p99 ${m.p99.toFixed(2)} max ${m.max.toFixed(1)} ms; io thread ran ${(m.io_run * 100).toFixed(0)}% waited ${(m.io_wait * 100).toFixed(0)}% vcsw ${m.io_vcsw}; helpers ${(m.helpers * 100).toFixed(1)}%; CPU0 other ${(m.cpu0_other * 100).toFixed(0)}% steal ${m.cpu0.steal}+${m.cpu1.steal} ticks; CPU1 idle ${m.cpu1.idle} ticks; upstream conns ${m.pool[0]} -> ${m.pool[1]}, +${m.up_accepts} accepted, ${m.up_extra} requests beyond wrk's;${gc ? ` gc ${JSON.stringify(m.gcs)};` : ''} load ${m.load.toFixed(2)}` +
          (tr ? `; lost ${m.lost}; sleeps ${tr.sleeps} late ${tr.late_wakes} long ${tr.long_sleeps} (${tr.long_sleep_ms} ms) waits>1ms ${tr.long_waits} (${tr.long_wait_ms} ms) holes ${tr.holes} (${tr.hole_ms} ms) both idle ${tr.both_idle} (${tr.both_idle_ms} ms)` : '') +
          (stalled ? '  << STALL' : ''),
      );
      if (tr && (stalled || process.argv.includes('--dump'))) console.error(`  ${JSON.stringify(tr)}`);
    }
  }
  const rows = [];
  for (const [t, ms] of res) {
    for (const [kind, sel] of [['clean', ms.filter((m) => m.p99 <= threshold)], ['stalled', ms.filter((m) => m.p99 > threshold)]]) {
      if (sel.length === 0) continue;
      const med = (f) => median(sel.map(f));
      const sum = (f) => sel.reduce((a, m) => a + f(m), 0);
      rows.push({
        proxy: t,
        runs: `${kind} ${sel.length}/${ms.length}`,
        'req/s': Math.round(med((m) => m.rps)),
        'p99 ms': med((m) => m.p99).toFixed(2),
        'io ran %': (med((m) => m.io_run) * 100).toFixed(0),
        'io waited %': (med((m) => m.io_wait) * 100).toFixed(0),
        'helpers %': (med((m) => m.helpers) * 100).toFixed(1),
        'CPU0 other %': (med((m) => m.cpu0_other) * 100).toFixed(0),
        'steal ticks': med((m) => m.cpu0.steal + m.cpu1.steal),
        'CPU1 idle ticks': med((m) => m.cpu1.idle),
        ...(trace
          ? {
              'late wakes': sum((m) => m.trace?.late_wakes ?? 0),
              'wake lag p99 us': med((m) => m.trace?.wake_lag_us?.p99 ?? 0).toFixed(1),
              'run lag p99 us': med((m) => m.trace?.run_lag_us?.p99 ?? 0).toFixed(1),
              'long sleeps': sum((m) => m.trace?.long_sleeps ?? 0),
              'long waits': sum((m) => m.trace?.long_waits ?? 0),
              holes: sum((m) => m.trace?.holes ?? 0),
              'both idle > 1 ms': sum((m) => m.trace?.both_idle ?? 0),
            }
          : {}),
        load: med((m) => m.load).toFixed(2),
      });
    }
  }
  table(rows);
  console.error(`load at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  await stopProc(upstream, 'SIGQUIT');
  rmSync(tmp, { recursive: true, force: true });
}
