#!/usr/bin/env node
// Scenario: where the kernel's share of a proxied request (or an echoed message) goes, ringio on io_uring
// against the anchors that do the same socket work with plain syscalls: nginx as an HTTP reverse proxy
// (the bench/proxy-http.mjs setup: an nginx upstream answering `return 200`, wrk -t1 -c64 on CPU 1, the
// proxy pinned to CPU 0) and, for issue #10, the 64-connection echo (examples/echo-server.mjs against the
// C io_uring echo server of ../shared/bench, its load generator on CPU 1).
//
// Each (target, build) is measured twice per round, interleaved with the others:
//  - a timing run with nothing attached: user and system CPU µs per request from /proc/<pid>/stat
//    (nginx's worker included);
//  - a profile run: `perf record -e cpu-clock -g` on the server plus `perf stat` of syscalls and io_uring
//    tracepoints (poll arms, task-work runs, SQEs). Every kernel sample is put in the first category that
//    one of its frames matches, leaf first: io_uring (io_*, tctx_task_work: io_uring's own machinery),
//    epoll (ep_*, do_epoll_*), net (the TCP/IP stack from sock_sendmsg/sock_recvmsg down, loopback and
//    softirq included: what both kinds of proxy share), syscall (entry/exit, __x64_sys_*, __sys_*:
//    the per-syscall cost), sched (wake-ups, context switches), other. Samples in perf's own tracepoint
//    code are left out. The category shares of the profile run times the system µs of the timing run
//    give µs per request per category.
// No hardware counters are needed (a VM without a PMU has none): cpu-clock samples.
// Usage: node bench/kernel-cost.mjs [--rounds 3] [--secs 4] [--targets proxy_uring,proxy_nginx,echo_uring,echo_c]
//        [--roots .,/path/to/other/checkout] [--no-profile] [--top 15] [--boost]
// --boost (root or CAP_SYS_NICE, a kernel with autogroup scheduling): each server, the upstream and the
// load generator lead their own session, with the session's autogroup at nice -20, as bench/latency.mjs
// does, so that on a machine shared with other work the measured processes get their CPUs.
// Targets: proxy_uring, proxy_epoll, proxy_nginx, echo_uring, echo_epoll, echo_c. --roots applies to the
// ringio targets (each a checkout with its packages and addon built); nginx and the C server run once a round.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, exited, freePort, has, median, nginxConf, spawnPinned, stopProc, table, waitForPort } from './lib.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', 3));
const secs = Number(arg('secs', 4));
const top = Number(arg('top', 15));
const targets = String(arg('targets', 'proxy_uring,proxy_nginx,echo_uring,echo_c')).split(',');
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const profile = !process.argv.includes('--no-profile');
const boost = process.argv.includes('--boost');
const shared = process.env.RINGIO_BENCH_SHARED || join(here, '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
const tmp = mkdtempSync(join(tmpdir(), 'ringio-kernel-cost-'));

const need = ['taskset', 'nginx', 'wrk', ...(profile ? ['perf'] : [])];
const missing = need.filter((t) => !has(t));
if (missing.length) {
  console.error(`missing: ${missing.join(', ')} (apt-get install -y util-linux nginx-light wrk linux-perf); nothing to measure without them`);
  process.exit(2);
}
const wantEcho = targets.some((t) => t.startsWith('echo_'));
if (wantEcho && !existsSync(join(tools, 'loadgen'))) {
  if (!existsSync(join(shared, 'build.sh'))) {
    console.error(`the echo targets need the reference load generator (${shared}/build.sh): absent`);
    process.exit(2);
  }
  execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'inherit' });
}

let boostWarned = false;
function run(cmd, args, cpu, opts = {}) {
  const child = spawnPinned(cmd, args, cpu, { detached: boost, ...opts });
  if (boost) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, '-20');
    } catch (e) {
      if (!boostWarned) console.error(`--boost: cannot set the autogroup's nice (${e.code ?? e.message}); running unboosted`);
      boostWarned = true;
    }
  }
  return child;
}

/** utime and stime (seconds) of a process and its direct children (nginx's worker). */
function times(pid) {
  const one = (p) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      return [Number(f[11]) / 100, Number(f[12]) / 100];
    } catch {
      return [0, 0];
    }
  };
  let [u, s] = one(pid);
  for (const c of children(pid)) {
    const [cu, cs] = one(c);
    u += cu;
    s += cs;
  }
  return { u, s };
}
function children(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// The nginx upstream the proxies forward to, on CPU 1 beside wrk.
let upstream = null;
let upPort = 0;
if (targets.some((t) => t.startsWith('proxy_'))) {
  chmodSync(tmp, 0o755);
  upPort = await freePort();
  const c = nginxConf(tmp, 'upstream', `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } }`);
  upstream = run('nginx', ['-c', c.f, '-p', c.dir, '-e', '/dev/null'], '1');
  await waitForPort(upPort, upstream, 'the nginx upstream');
}

function ringioProxy(root, driver, port) {
  const f = join(tmp, `p-${port}.toml`);
  writeFileSync(
    f,
    `[runtime]\nthreads = 1\ndriver = "${driver}"\n[upgrade]\nsocket = "${join(tmp, `up-${port}.sock`)}"\n[servers.bench]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n[[servers.bench.routes]]\npath = "/"\nupstreams = [{ url = "http://127.0.0.1:${upPort}" }]\n`,
  );
  return run(process.execPath, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', f], '0');
}

const KINDS = {
  proxy_uring: { load: 'wrk', start: (root, port) => ringioProxy(root, 'uring', port) },
  proxy_epoll: { load: 'wrk', start: (root, port) => ringioProxy(root, 'epoll', port) },
  proxy_nginx: {
    load: 'wrk',
    anchor: true,
    stop: 'SIGQUIT',
    start: (_root, port) => {
      const c = nginxConf(
        tmp,
        'proxy',
        `upstream up { server 127.0.0.1:${upPort}; keepalive 128; } server { listen 127.0.0.1:${port}; keepalive_requests 1000000; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      );
      return run('nginx', ['-c', c.f, '-p', c.dir, '-e', '/dev/null'], '0');
    },
  },
  echo_uring: { load: 'loadgen', start: (root, port) => run(process.execPath, [join(root, 'examples/echo-server.mjs'), '--driver', 'uring', '--port', String(port)], '0') },
  echo_epoll: { load: 'loadgen', start: (root, port) => run(process.execPath, [join(root, 'examples/echo-server.mjs'), '--driver', 'epoll', '--port', String(port)], '0') },
  echo_c: { load: 'loadgen', anchor: true, start: (_root, port) => run(join(tools, 'echo_uring'), [String(port)], '0') },
};
for (const t of targets) if (!KINDS[t]) throw new RangeError(`unknown target ${t} (one of ${Object.keys(KINDS).join(', ')})`);

/** Runs the load for `s` seconds; resolves to the number of requests (messages) it completed. */
async function load(kind, port, s) {
  if (kind === 'wrk') {
    const c = run('wrk', ['-t1', '-c64', `-d${s}s`, `http://127.0.0.1:${port}/`], '1');
    await exited(c);
    const m = /(\d+) requests in/.exec(c.out);
    if (c.exitCode !== 0 || !m) throw new Error(`wrk failed: ${c.err || c.out}`);
    if (/Socket errors|Non-2xx/.test(c.out)) throw new Error(`wrk saw errors: ${c.out}`);
    return Number(m[1]);
  }
  const c = run(join(tools, 'loadgen'), [String(port), '64', '64', String(s), '1'], '1');
  await exited(c);
  const m = JSON.parse(c.out.trim().split('\n').pop() || '{}');
  if (!(m.msgs_per_s > 0)) throw new Error(`loadgen failed: ${c.err || c.out}`);
  return m.msgs_per_s * s;
}

const CATEGORIES = [
  ['io_uring', /^(__)?io_|^io_uring|tctx_task_work|^__(x64|do)_sys_io_uring/],
  ['epoll', /^ep_|epoll/],
  ['net', /^(__)*(tcp|inet|sock|sk_|skb|ip_|ip4|ipv4|ip6|dev_|netif|net_|napi|loopback|process_backlog|release_sock|lock_sock|kfree_skb|alloc_skb|kmalloc_reserve|neigh_|validate_xmit|sch_direct|eth_|nf_|csum|build_skb|security_sock|bpf_|raw_v4|__sock|__sk_|__tcp|__inet)/],
  ['syscall', /^(entry_SYSCALL|do_syscall_64|syscall_|exit_to_user_mode|__x64_sys_|__sys_|___sys_|ksys_|sockfd_lookup|import_|__import_|copy_msghdr|rw_verify|vfs_|do_iter|fput|__fput|fdget|__fget|fget)/],
  ['sched', /^(schedule|__schedule|try_to_wake_up|ttwu|enqueue_|dequeue_|pick_next|finish_task_switch|update_curr|update_load|psi_|select_task_rq|__wake_up|wake_up|autoremove_wake|default_wake|prepare_to_wait|finish_wait|set_next_entity|put_prev|reweight|check_preempt|resched|__resched|raw_spin_rq)/],
];
const CAT_NAMES = [...CATEGORIES.map((c) => c[0]), 'other'];

function classify(frames) {
  for (const f of frames) for (const [name, re] of CATEGORIES) if (re.test(f)) return name;
  return 'other';
}

/** perf script output → kernel samples per category, leaf symbols (kernel), io_uring symbols. */
function parseProfile(file) {
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'comm,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  const cat = Object.fromEntries(CAT_NAMES.map((c) => [c, 0]));
  const leaf = new Map();
  const uring = new Map();
  let all = 0;
  let kernel = 0;
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.startsWith('\t'));
    if (lines.length === 0) continue;
    const frames = [];
    for (const l of lines) {
      if (!l.includes('[kernel.kallsyms]')) break;
      const m = /^\s*[0-9a-f]+\s+(\S+?)(\+0x[0-9a-f]+)?\s+\(/.exec(l);
      frames.push(m ? m[1] : '?');
    }
    if (frames.some((f) => f.startsWith('perf_') || f.startsWith('trace_') || f.startsWith('__traceiter'))) continue;
    all++;
    if (frames.length === 0) continue;
    kernel++;
    const c = classify(frames);
    cat[c]++;
    leaf.set(frames[0], (leaf.get(frames[0]) ?? 0) + 1);
    const u = frames.find((f) => CATEGORIES[0][1].test(f));
    if (c === 'io_uring' && u) uring.set(u, (uring.get(u) ?? 0) + 1);
  }
  return { all, kernel, cat, leaf, uring };
}

const COUNTED = ['raw_syscalls:sys_enter', 'net:net_dev_xmit', 'io_uring:io_uring_submit_req', 'io_uring:io_uring_poll_arm', 'io_uring:io_uring_task_work_run', 'io_uring:io_uring_task_add', 'io_uring:io_uring_file_get'];

async function once(target, root, withProfile) {
  const kind = KINDS[target];
  const port = await freePort();
  const child = kind.start(root, port);
  try {
    await waitForPort(port, child, target);
    await load(kind.load, port, 1); // warm-up: pools filled, code optimized
    const pids = [child.pid, ...children(child.pid)];
    // taskset execs the server, so child.pid is the server (nginx: the master; its worker is a child).
    const pidList = (kind.stop === 'SIGQUIT' ? children(child.pid) : [child.pid]).join(',');
    let rec = null;
    let stat = null;
    const data = join(tmp, `perf-${port}.data`);
    const statOut = join(tmp, `stat-${port}.txt`);
    if (withProfile) {
      rec = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '2999', '-g', '-p', pidList, '-o', data], { stdio: 'ignore' });
      stat = spawn('perf', ['stat', '-x', ',', '-o', statOut, ...COUNTED.flatMap((e) => ['-e', e]), '-p', pidList], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
    }
    const t0 = times(child.pid);
    const reqs = await load(kind.load, port, secs);
    const t1 = times(child.pid);
    const m = { reqs, rps: reqs / secs, userUs: ((t1.u - t0.u) / reqs) * 1e6, sysUs: ((t1.s - t0.s) / reqs) * 1e6, load: loadavg()[0] };
    if (withProfile) {
      rec.kill('SIGINT');
      stat.kill('SIGINT');
      await Promise.all([exited(rec), exited(stat)]);
      m.profile = parseProfile(data);
      m.counts = {};
      for (const line of readFileSync(statOut, 'utf8').split('\n')) {
        const f = line.split(',');
        const ev = COUNTED.find((e) => f[2] === e);
        if (ev) m.counts[ev.split(':')[1]] = Number(f[0]) / reqs;
      }
      rmSync(data, { force: true });
    }
    void pids;
    return m;
  } finally {
    await stopProc(child, kind.stop);
  }
}

try {
  const load0 = loadavg();
  console.error(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}${boost ? ' (boosted: autogroups at nice -20)' : ''}`);
  const cases = [];
  for (const t of targets) {
    for (const root of KINDS[t].anchor ? [roots[0]] : roots) {
      const name = KINDS[t].anchor || roots.length === 1 ? t : `${t} ${root}`;
      cases.push({ name, target: t, root });
    }
  }
  const timing = new Map(cases.map((c) => [c.name, []]));
  const prof = new Map(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      for (const withProfile of profile ? [false, true] : [false]) {
        try {
          const m = await once(c.target, c.root, withProfile);
          (withProfile ? prof : timing).get(c.name).push(m);
          const extra = withProfile ? `, kernel ${(m.profile.kernel / m.profile.all * 100).toFixed(0)}% of samples, io_uring ${((m.profile.cat.io_uring / m.profile.kernel) * 100).toFixed(0)}% of kernel` : '';
          console.error(`round ${r + 1}/${rounds} ${c.name}${withProfile ? ' (profiled)' : ''}: ${Math.round(m.rps)} req/s, user ${m.userUs.toFixed(2)} + sys ${m.sysUs.toFixed(2)} µs/req${extra}, load ${m.load.toFixed(2)}`);
        } catch (e) {
          console.error(`round ${r + 1}/${rounds} ${c.name}: ${String(e?.message ?? e).split('\n')[0]}`);
        }
      }
    }
  }
  const rows = [];
  const catRows = [];
  for (const c of cases) {
    const t = timing.get(c.name);
    if (!t.length) continue;
    const sysUs = median(t.map((m) => m.sysUs));
    rows.push({
      case: c.name,
      'req/s': Math.round(median(t.map((m) => m.rps))),
      'user µs': median(t.map((m) => m.userUs)).toFixed(2),
      'sys µs': sysUs.toFixed(2),
      'CPU µs': median(t.map((m) => m.userUs + m.sysUs)).toFixed(2),
      load: median(t.map((m) => m.load)).toFixed(2),
    });
    const p = prof.get(c.name);
    if (!p?.length) continue;
    const row = { case: c.name };
    for (const k of CAT_NAMES) row[k] = (median(p.map((m) => m.profile.cat[k] / Math.max(1, m.profile.kernel))) * sysUs).toFixed(2);
    for (const k of Object.keys(p[0].counts)) row[k.replace(/^io_uring_/, '')] = median(p.map((m) => m.counts[k] ?? 0)).toFixed(3);
    catRows.push(row);
    const sum = (key) => {
      const tot = new Map();
      let n = 0;
      for (const m of p) {
        n += m.profile.kernel;
        for (const [s, v] of m.profile[key]) tot.set(s, (tot.get(s) ?? 0) + v);
      }
      return [...tot].sort((a, b) => b[1] - a[1]).slice(0, top).map(([s, v]) => `${s} ${((v / n) * 100).toFixed(1)}%`);
    };
    console.error(`\n${c.name}: top kernel leaf symbols (share of kernel samples): ${sum('leaf').join(', ')}`);
    console.error(`${c.name}: io_uring category by first io_uring frame: ${sum('uring').join(', ')}`);
  }
  const load1 = loadavg();
  console.error(`\nCPU per request (message), ${rounds} rounds of ${secs} s, medians; server on CPU 0, load on CPU 1`);
  table(rows);
  if (catRows.length) {
    console.error('\nkernel µs per request by category (profile shares × the timing run\'s system µs), and events per request');
    table(catRows);
  }
  console.error(`load average at end: ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  emit([...rows.map((r) => ({ bench: 'kernel-cost', ...r })), ...catRows.map((r) => ({ bench: 'kernel-cost-categories', ...r })), { bench: 'kernel-cost-load', load_start: load0[0], load_end: load1[0] }]);
} finally {
  if (upstream) await stopProc(upstream, 'SIGQUIT');
  rmSync(tmp, { recursive: true, force: true });
}
