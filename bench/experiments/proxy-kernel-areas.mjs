#!/usr/bin/env node
// Experiment (issue #14, eighth session): CPU 0's whole time per proxied request, by kernel area, for
// ringio-proxy (io_uring, epoll) and nginx as the proxy, in the bench/proxy-http.mjs setup (an nginx
// upstream and wrk -t1 -c64 on CPU 1, the proxy pinned to CPU 0). `perf record -e cpu-clock -c 100000
// -a -C 0 -g` (one sample per 100 µs of CPU 0, whatever runs there: the proxy, softirqs, IPIs, idle)
// runs wrk itself, so its window is wrk's run and µs per request = samples × 100 µs / wrk's requests.
// Samples of other processes (other work on a shared machine) are listed apart ("[not proxy]",
// "user (other)"). Each sample goes to the innermost area one of its kernel frames names
// (leaf first), so the loopback receive that a send runs in its softirq is counted as "rx softirq", not
// as "tcp send", and a wake-up inside it as "wakeup/IPI". A second, separate run counts per request:
// syscalls (perf stat raw_syscalls:sys_enter on the proxy), context switches (/proc/<pid>/task/*/status),
// sends queued to io-wq (io_uring:io_uring_queue_async_work), poll arms and task-work runs.
// Usage: node bench/experiments/proxy-kernel-areas.mjs [--roots .] [--targets uring,epoll,nginx] [--rounds 2] [--secs 3]
//        [--env 'RINGIO_URING_SETUP=defer;...'] (environment for the ringio proxies)
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, exited, freePort, has, median, nginxConf, nginxProxyConf, ringioProxyConfig, spawnPinned, stopProc, table, waitForPort } from '../lib.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '../..');
const roots = String(arg('roots', here)).split(',').map((r) => resolve(r));
const targets = String(arg('targets', 'uring,epoll,nginx')).split(',');
const rounds = Number(arg('rounds', 2));
const secs = Number(arg('secs', 3));
const env = String(arg('env', ''));
for (const t of ['taskset', 'nginx', 'wrk', 'perf']) if (!has(t)) {
  console.error(`missing: ${t}`);
  process.exit(2);
}
const tmp = mkdtempSync(join(tmpdir(), 'ringio-areas-'));
chmodSync(tmp, 0o755);

function run(cmd, args, cpu, extraEnv = {}) {
  return spawnPinned(cmd, args, cpu, { env: { ...process.env, ...extraEnv } });
}
const upPort = await freePort();
const upc = nginxConf(tmp, 'up', `server { listen 127.0.0.1:${upPort}; keepalive_requests 1000000; location / { default_type text/plain; return 200 "hello world\\n"; } }`);
const upstream = run('nginx', ['-c', upc.f, '-p', upc.dir, '-e', '/dev/null'], '1');
await waitForPort(upPort, upstream, 'upstream');

function start(target, root, port) {
  if (target === 'nginx') {
    const c = nginxProxyConf(tmp, upPort, port);
    const p = run('nginx', ['-c', c.f, '-p', c.dir, '-e', '/dev/null'], '0');
    p.stopSignal = 'SIGQUIT';
    return p;
  }
  const f = ringioProxyConfig(tmp, { port, upPort, driver: target });
  const extra = Object.fromEntries(env.split(';').filter(Boolean).map((kv) => kv.split('=')));
  return run(process.execPath, [join(root, 'packages/proxy/bin/ringio-proxy.js'), '--config', f], '0', extra);
}
function kids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
function ctx(pids) {
  let v = 0;
  let n = 0;
  for (const pid of pids) for (const t of readdirSync(`/proc/${pid}/task`)) {
    const s = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
    v += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(s)[1]);
    n += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(s)[1]);
  }
  return { v, n };
}
function wrkCount(out) {
  const m = /(\d+) requests in/.exec(out);
  if (!m || /Socket errors|Non-2xx/.test(out)) throw new Error(`wrk: ${out}`);
  return Number(m[1]);
}
function wrk(port, s) {
  const c = run('wrk', ['-t1', '-c64', `-d${s}s`, `http://127.0.0.1:${port}/`], '1');
  return exited(c).then(() => {
    const m = /Requests\/sec:\s+([\d.]+)/.exec(c.out);
    if (!m || /Socket errors|Non-2xx/.test(c.out)) throw new Error(`wrk: ${c.out}${c.err}`);
    return Number(m[1]);
  });
}

// Areas, innermost first: the first frame (leaf upward) that matches one decides.
const AREAS = [
  ['wakeup/IPI', /^(try_to_wake_up|ttwu_|__wake_up|wake_up|sock_def_readable|sk_wake_async|ep_poll_callback|io_poll_wake|io_req_local_work_add|__io_req_task_work_add|io_req_normal_work_add|task_work_add|native_send_call_func|__smp_call_single_queue|smp_call_function|send_call_function|x2apic_send|default_send_IPI|__default_send_IPI|sched_ttwu_pending|generic_smp_call_function|__sysvec_call_function|sysvec_call_function|__flush_smp_call_function|kick_process|signal_wake_up|set_notify_signal)/],
  ['rx softirq', /^(net_rx_action|__napi_poll|process_backlog|__netif_receive_skb|netif_receive|ip_rcv|ip_local_deliver|ip_protocol_deliver|tcp_v4_rcv|tcp_v4_do_rcv|tcp_rcv_established|tcp_data_queue|tcp_ack|tcp_event_data_recv|tcp_queue_rcv|tcp_add_backlog|__release_sock|sk_backlog_rcv|do_softirq|__do_softirq|handle_softirqs|__local_bh_enable_ip|netif_rx|__netif_rx|enqueue_to_backlog)/],
  ['tcp send', /^(tcp_sendmsg|tcp_push|__tcp_push|tcp_write_xmit|__tcp_transmit_skb|tcp_transmit_skb|ip_queue_xmit|__ip_queue_xmit|ip_finish_output|ip_output|ip_local_out|__dev_queue_xmit|dev_hard_start_xmit|loopback_xmit|tcp_stream_alloc_skb|tcp_send_ack|__tcp_send_ack|tcp_send_mss|tcp_current_mss|sk_stream_alloc|tcp_skb_entail|sock_sendmsg|__sock_sendmsg|____sys_sendmsg|__sys_sendto|sock_write_iter|tcp_rate_|tcp_event_new_data_sent|tcp_chrono|tcp_schedule_loss_probe)/],
  ['tcp recv/copy', /^(tcp_recvmsg|tcp_rcv_space_adjust|tcp_cleanup_rbuf|skb_copy_datagram|__skb_datagram_iter|sock_recvmsg|inet_recvmsg|sock_read_iter|__sys_recvfrom|skb_attempt_defer_free|__kfree_skb|tcp_eat_recv_skb|skb_release|sk_mem_reclaim)/],
  ['io_uring poll', /^(io_arm_poll|io_arm_apoll|__io_arm_poll|io_poll_|__io_poll|io_apoll|io_async_queue_proc|__io_queue_proc|io_poll_add_hash|io_pollfree)/],
  ['io_uring task_work', /^(tctx_task_work|io_handle_tw_list|io_fallback_tw|__io_run_local_work|io_run_task_work|io_req_task_|io_queue_iowq|io_wq_)/],
  ['io_uring completion', /^(__io_submit_flush_completions|io_submit_flush|io_req_complete|io_fill_cqe|io_cqe_|__io_cqring|io_cqring_|io_commit_cqring|io_free_batch|io_req_post_cqe|io_post_aux|io_cq_)/],
  ['io_uring submit', /^(io_submit_sqes|io_issue_sqe|io_init_req|io_queue_sqe|io_send|io_recv|io_sendmsg|io_recvmsg|io_prep_|io_alloc_req|__io_alloc_req|io_file_get|io_sq_|io_uring_enter|__x64_sys_io_uring_enter|__do_sys_io_uring_enter|io_uring_add_tctx|io_netmsg|io_msg_alloc|io_cache_|io_req_|io_)/],
  ['epoll', /^(ep_|do_epoll|__x64_sys_epoll|__do_sys_epoll|epoll)/],
  ['fd lookup', /^(fget|__fget|fdget|__fdget|fput|__fput|sockfd_lookup|fput_many)/],
  ['sched', /^(schedule|__schedule|pick_next|finish_task_switch|__switch_to|switch_mm|enqueue_|dequeue_|update_curr|update_load|psi_|select_task_rq|set_next_entity|put_prev|check_preempt|resched|raw_spin_rq|newidle_balance|sched_balance|load_balance|context_switch|prepare_task_switch)/],
  ['idle', /^(do_idle|cpu_idle|default_idle|arch_cpu_idle|cpuidle|native_safe_halt|pv_native_safe_halt|cpu_startup_entry|poll_idle|acpi_idle|mwait)/],
  ['irq/timer', /^(asm_sysvec|sysvec_|__sysvec|irq_exit|hrtimer|__hrtimer|tick_|update_process_times|scheduler_tick|sched_tick|timekeeping|clockevents|lapic|asm_common_interrupt|common_interrupt|handle_irq)/],
  ['syscall entry', /^(entry_SYSCALL|do_syscall_64|syscall_exit|exit_to_user_mode|syscall_enter|__x64_sys_|__sys_|___sys_|ksys_|x64_sys_call|import_|copy_msghdr|__import|rw_verify|vfs_|arch_exit_to_user|syscall_trace)/],
];
function areaOf(frames) {
  for (const f of frames) for (const [a, re] of AREAS) if (re.test(f)) return a;
  return 'other kernel';
}

/** Starts the proxy, warms it up (1 s of wrk), runs `fn(port, pids)` and stops it. */
async function withProxy(target, root, fn) {
  const port = await freePort();
  const p = start(target, root, port);
  try {
    await waitForPort(port, p, target);
    await wrk(port, 1);
    return await fn(port, target === 'nginx' ? kids(p.pid) : [p.pid]);
  } finally {
    await stopProc(p, p.stopSignal);
  }
}
/** wrk for --secs under `cmd` (perf), which then sees exactly wrk's run: wrk's count is the window's requests. */
async function underWrk(cmd, port) {
  const c = run(cmd[0], [...cmd.slice(1), '--', 'taskset', '-c', '1', 'wrk', '-t1', '-c64', `-d${secs}s`, `http://127.0.0.1:${port}/`], '1');
  await exited(c);
  return wrkCount(c.out);
}

const profile = (target, root) =>
  withProxy(target, root, async (port, pids) => {
    const data = join(tmp, `perf-${port}.data`);
    const reqs = await underWrk(['perf', 'record', '-q', '-e', 'cpu-clock', '-c', '100000', '-a', '-C', '0', '-g', '-o', data], port);
    const rps = reqs / secs;
    const text = execFileSync('perf', ['script', '-i', data, '-F', 'comm,pid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
    rmSync(data, { force: true });
    const areas = new Map();
    const leaves = new Map();
    let total = 0;
    const pidSet = new Set(pids);
    for (const block of text.split('\n\n')) {
      const lines = block.split('\n');
      const head = lines.find((l) => l && !l.startsWith('\t'));
      const frames = lines.filter((l) => l.startsWith('\t'));
      if (!head || frames.length === 0) continue;
      total++;
      const hm = /^\s*(.*?)\s+(\d+)\s*$/.exec(head);
      const pid = hm ? Number(hm[2]) : -1;
      const kf = [];
      for (const l of frames) {
        if (!l.includes('kernel.kallsyms')) break;
        const m = /^\s*[0-9a-f]+\s+(\S+?)(\+0x[0-9a-f]+)?\s+\(/.exec(l);
        kf.push(m ? m[1] : '?');
      }
      let a;
      if (kf.length === 0) a = pidSet.has(pid) ? 'user (proxy)' : 'user (other)';
      else {
        a = areaOf(kf);
        if (!pidSet.has(pid) && pid !== 0 && a !== 'idle') a = `${a} [not proxy]`;
        leaves.set(kf[0], (leaves.get(kf[0]) ?? 0) + 1);
      }
      areas.set(a, (areas.get(a) ?? 0) + 1);
    }
    const us = (n) => (n * 100) / reqs;
    return { rps, total: us(total), areas: new Map([...areas].map(([k, v]) => [k, us(v)])), leaves: new Map([...leaves].map(([k, v]) => [k, us(v)])), load: loadavg()[0] };
  });

const COUNTED = ['raw_syscalls:sys_enter', 'io_uring:io_uring_queue_async_work', 'io_uring:io_uring_poll_arm', 'io_uring:io_uring_task_work_run', 'io_uring:io_uring_submit_req', 'net:net_dev_xmit', 'sched:sched_wakeup', 'irq:softirq_entry'];
const counts = (target, root) =>
  withProxy(target, root, async (port, pids) => {
    const out = join(tmp, `stat-${port}.txt`);
    const c0 = ctx(pids);
    const reqs = await underWrk(['perf', 'stat', '-x', ',', '-o', out, ...COUNTED.flatMap((e) => ['-e', e]), '-p', pids.join(',')], port);
    const c1 = ctx(pids);
    const rps = reqs / secs;
    const r = { rps, vcsw: (c1.v - c0.v) / reqs, ivcsw: (c1.n - c0.n) / reqs };
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      const f = line.split(',');
      if (COUNTED.includes(f[2])) r[f[2].split(':')[1]] = Number(f[0]) / reqs;
    }
    return r;
  });

try {
  console.error(`load at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const cases = [];
  for (const t of targets) for (const root of t === 'nginx' ? [roots[0]] : roots) cases.push({ name: t === 'nginx' || roots.length === 1 ? t : `${t} ${root}`, t, root });
  const prof = new Map(cases.map((c) => [c.name, []]));
  const cnt = new Map(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) for (const c of cases) {
    const m = await profile(c.t, c.root);
    prof.get(c.name).push(m);
    console.error(`round ${r + 1} ${c.name}: ${Math.round(m.rps)} req/s, CPU 0 ${m.total.toFixed(2)} µs/req, load ${m.load.toFixed(2)}`);
    const k = await counts(c.t, c.root);
    cnt.get(c.name).push(k);
    console.error(`round ${r + 1} ${c.name} counts: ${JSON.stringify(Object.fromEntries(Object.entries(k).map(([a, b]) => [a, +b.toFixed(3)])))}`);
  }
  const allAreas = new Set();
  for (const ms of prof.values()) for (const m of ms) for (const a of m.areas.keys()) allAreas.add(a);
  const rows = [...allAreas].sort().map((a) => {
    const row = { area: a };
    for (const c of cases) row[c.name] = median(prof.get(c.name).map((m) => m.areas.get(a) ?? 0)).toFixed(2);
    return row;
  });
  const tot = { area: 'TOTAL CPU 0' };
  for (const c of cases) tot[c.name] = median(prof.get(c.name).map((m) => m.total)).toFixed(2);
  rows.push(tot);
  const rps = { area: 'req/s' };
  for (const c of cases) rps[c.name] = Math.round(median(prof.get(c.name).map((m) => m.rps)));
  rows.push(rps);
  console.error('\nCPU 0 µs per request by area (medians)');
  table(rows);
  const keys = new Set();
  for (const ms of cnt.values()) for (const m of ms) for (const k of Object.keys(m)) keys.add(k);
  const crows = [...keys].map((k) => {
    const row = { per_request: k };
    for (const c of cases) row[c.name] = median(cnt.get(c.name).map((m) => m[k] ?? 0)).toFixed(3);
    return row;
  });
  console.error('\nper request (separate runs)');
  table(crows);
  for (const c of cases) {
    const agg = new Map();
    for (const m of prof.get(c.name)) for (const [k, v] of m.leaves) agg.set(k, (agg.get(k) ?? 0) + v / prof.get(c.name).length);
    console.error(`\n${c.name} top kernel leaves µs/req: ${[...agg].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  }
  // The leaf symbols whose µs per request differ most between the first case and nginx.
  const avg = new Map(cases.map((c) => {
    const agg = new Map();
    for (const m of prof.get(c.name)) for (const [k, v] of m.leaves) agg.set(k, (agg.get(k) ?? 0) + v / prof.get(c.name).length);
    return [c.name, agg];
  }));
  if (avg.has('nginx') && cases.length > 1) {
    const a = avg.get(cases[0].name);
    const n = avg.get('nginx');
    const syms = new Set([...a.keys(), ...n.keys()]);
    const d = [...syms].map((k) => [k, (a.get(k) ?? 0) - (n.get(k) ?? 0)]).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1])).slice(0, 30);
    console.error(`\nleaf µs/req, ${cases[0].name} minus nginx: ${d.map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${v.toFixed(2)}`).join(', ')}`);
  }
  console.error(`load at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  await stopProc(upstream, 'SIGQUIT');
  rmSync(tmp, { recursive: true, force: true });
}
