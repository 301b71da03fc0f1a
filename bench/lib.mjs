// Shared helpers for the micro-benchmarks: interleaved rounds, medians, and the output format
// (a human table on stderr; one JSON object per case as the last stdout lines).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/**
 * Runs each case once per round, in interleaved order, and returns per-case arrays of results. With
 * `describe` (for measurements in child processes, which take seconds each and may fail): each result is
 * logged on stderr as `round r/n name: describe(result)`, and a run that throws is reported and left out
 * instead of ending the benchmark. A result that is an object gets its round's index as `round` (for
 * `pairedRatio`: a run that failed leaves a hole, so array positions don't tell rounds apart).
 */
export async function interleave(rounds, cases, { describe, rotate = false } = {}) {
  const results = new Map(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    // rotate: round r starts at case r mod n, so no case always runs right after the same one.
    const order = rotate ? [...cases.slice(r % cases.length), ...cases.slice(0, r % cases.length)] : cases;
    for (const c of order) {
      if (describe === undefined) {
        results.get(c.name).push(tagRound(await c.run(), r));
        continue;
      }
      try {
        const m = tagRound(await c.run(), r);
        results.get(c.name).push(m);
        console.error(`round ${r + 1}/${rounds} ${c.name}: ${describe(m)}`);
      } catch (e) {
        console.error(`round ${r + 1}/${rounds} ${c.name}: ${String(e?.message ?? e).split('\n')[0]}`);
      }
    }
  }
  return results;
}

function tagRound(m, r) {
  if (m !== null && typeof m === 'object') m.round = r;
  return m;
}

/**
 * The ratio of two cases measured in the same rounds, taken round by round: for every round that has a
 * result for `a` and one for each of `bs`, f(a) / max f(b) (or min, `{ pick: 'min' }`, for costs), and
 * their median. On a host whose speed changes over minutes (a shared machine's neighbours come and go),
 * the two runs of one round met the same host more often than the medians of the whole run did, so this
 * is the steadier ratio; `rounds` says how many rounds it took and `over(x)` in how many the ratio was
 * at least x.
 */
export function pairedRatio(results, a, bs, f, { pick = 'max' } = {}) {
  const byRound = (name) => new Map((results.get(name) ?? []).map((m) => [m.round, m]));
  const ra = byRound(a);
  const rbs = bs.map(byRound);
  const ratios = [];
  for (const [round, m] of ra) {
    const others = rbs.map((rb) => rb.get(round)).filter((x) => x !== undefined);
    if (others.length !== bs.length || others.length === 0) continue;
    const vs = others.map(f);
    ratios.push(f(m) / (pick === 'max' ? Math.max(...vs) : Math.min(...vs)));
  }
  return {
    median: ratios.length > 0 ? median(ratios) : NaN,
    rounds: ratios.length,
    ratios,
    over: (x) => ratios.filter((v) => v >= x).length,
  };
}

/**
 * Starts `cmd args` pinned to `cpu` (taskset), its stdout and stderr collected as they come into
 * `child.out` and `child.err`; `opts` go to spawn (env, detached).
 */
export function spawnPinned(cmd, args, cpu, opts = {}) {
  const child = spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  child.out = '';
  child.err = '';
  child.stdout.on('data', (d) => (child.out += d));
  child.stderr.on('data', (d) => (child.err += d));
  return child;
}

/**
 * `argv` run so that it leads a session of its own (so an autogroup of its own, on a kernel that schedules
 * by autogroup) whose nice is -20, the pid unchanged (setsid and sh exec). On a machine shared with other
 * sessions, plain nice does nothing across autogroups; this gives the measured processes their CPUs as on a
 * quiet machine. Root or CAP_SYS_NICE; without them the command runs unboosted, with a message.
 */
export function boostArgv(argv) {
  return ['setsid', 'sh', '-c', 'echo -20 > /proc/$$/autogroup || echo "--boost: cannot set the autogroup\'s nice" >&2; exec "$@"', 'sh', ...argv];
}

/** Resolves once `child` has exited (at once if it already has). */
export function exited(child) {
  return new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
}

/** Whether a command is on PATH. */
export function has(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function table(rows) {
  // Every row's columns, in the order first met; a row without one shows '-'.
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (r, c) => (r[c] === undefined ? '-' : String(r[c]));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
  const line = (vals) => vals.map((v, i) => String(v).padStart(width[i])).join('  ');
  process.stderr.write(line(cols) + '\n' + rows.map((r) => line(cols.map((c) => cell(r, c)))).join('\n') + '\n');
}

export function emit(objects) {
  for (const o of objects) process.stdout.write(JSON.stringify(o) + '\n');
}

/** Resolves once something accepts TCP on 127.0.0.1:port; throws after 10 s, or when `child` has exited. */
export async function waitForPort(port, child, what) {
  const { connect } = await import('node:net');
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true))).on('error', () => resolve(false));
    });
    if (up) return;
    if (i === 100 || child.exitCode !== null) throw new Error(`${what} did not listen on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** wrk's output (run with --latency) as { rps, p50_ms, p99_ms, errors } (errors: null when none). */
export function parseWrk(out) {
  const num = (re) => re.exec(out)?.[1];
  const ms = (v) => (v === undefined ? NaN : v.endsWith('us') ? parseFloat(v) / 1000 : v.endsWith('ms') ? parseFloat(v) : parseFloat(v) * 1000);
  const errors = /Socket errors: (.*)/.exec(out)?.[1] ?? null;
  const non2xx = Number(num(/Non-2xx or 3xx responses: (\d+)/) ?? 0);
  return {
    rps: parseFloat(num(/Requests\/sec:\s+([\d.]+)/)),
    p50_ms: ms(num(/^\s+50%\s+(\S+)/m)),
    p99_ms: ms(num(/^\s+99%\s+(\S+)/m)),
    errors: errors ?? (non2xx ? `${non2xx} non-2xx` : null),
  };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * CPU seconds (utime + stime) a process has used; with `children`, plus its child processes' (nginx's
 * master and worker); with `user`, utime alone (the process's own code: for a Node server, its JS).
 * A process that is gone counts 0. A server run under taskset is the same pid.
 */
export function cpuSeconds(pid, { children = false, user = false } = {}) {
  const ticks = (p) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(f[11]) + (user ? 0 : Number(f[12]));
    } catch {
      return 0;
    }
  };
  let total = ticks(pid);
  if (children) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += ticks(Number(c));
    } catch {
      // no children
    }
  }
  return total / 100;
}

/**
 * /proc/stat per CPU, in ticks (10 ms): { [cpu]: { busy, idle, steal } }. steal is the hypervisor's: time
 * this VM's vCPU was ready but did not run, which slows every contender of a round alike and is not the
 * code under test (a round with much of it is the host's, whatever its figures).
 */
export function cpuTicks() {
  const r = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)/.exec(line);
    if (!m) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2].split(' ').map(Number);
    r[m[1]] = { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
  }
  return r;
}

/** The share of the CPUs' time between two cpuTicks() readings that the hypervisor stole (0..1). */
export function stealShare(c0, c1) {
  let steal = 0;
  let all = 0;
  for (const cpu of Object.keys(c1)) {
    if (c0[cpu] === undefined) continue;
    const d = (k) => c1[cpu][k] - c0[cpu][k];
    steal += d('steal');
    all += d('busy') + d('idle') + d('steal');
  }
  return all > 0 ? steal / all : 0;
}

/**
 * The scheduler's account of a process's main thread (/proc/PID/schedstat): seconds on a CPU and seconds
 * runnable but waiting for one (its runqueue wait: time other work on its CPU took). { run: 0, wait: 0 }
 * for a process that is gone or a kernel without schedstats.
 */
export function schedSeconds(pid) {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { run: run / 1e9, wait: wait / 1e9 };
  } catch {
    return { run: 0, wait: 0 };
  }
}

/**
 * CPU seconds the scheduler counted for a process's threads other than its main one (each /proc/PID/task/TID/schedstat):
 * for a Node process, V8's platform workers (TurboFan compile jobs, concurrent marking, parallel scavenges) and
 * libuv's pool. Pinned to the main thread's CPU, their work is the main thread's runqueue wait. 0 for a process
 * that is gone or a kernel without schedstats.
 */
export function helperSeconds(pid) {
  let ns = 0;
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    if (tid === String(pid)) continue;
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e9;
}

/**
 * `count` connections to 127.0.0.1:`port`, each closed without a request once connected (after 5 ms);
 * resolves when all are closed (a connection the server leaves open is dropped after 5 s). The ab
 * cases' warm-up makes them so that a server's close path meets such a connection before V8 optimizes
 * it (bench/compat.mjs, IDLE_WARM).
 */
export function idleConnections(port, count) {
  const one = () =>
    new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => setTimeout(() => s.end(), 5));
      const timer = setTimeout(() => s.destroy(), 5000);
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      s.resume();
    });
  return Promise.all(Array.from({ length: count }, one));
}

/** Stops a child process with `signal` (SIGKILL after 5 s) and waits for its exit; nothing if it has exited. */
export async function stopProc(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

/**
 * A one-worker nginx config in a fresh directory under `tmp` (no logs; `body` goes in the http block).
 * `single`: master_process off, the one process serving (to measure it under valgrind).
 */
export function nginxConf(tmp, name, body, { single = false } = {}) {
  const dir = mkdtempSync(join(tmp, `${name}-`));
  const f = join(dir, 'nginx.conf');
  writeFileSync(f, `daemon off;\n${single ? 'master_process off;\n' : ''}worker_processes 1;\nerror_log /dev/null;\npid ${join(dir, 'nginx.pid')};\nevents { worker_connections 4096; }\nhttp { access_log off; ${body} }\n`);
  return { f, dir };
}

/**
 * nginx as the reverse proxy of the proxy benches, in front of 127.0.0.1:`upPort` (HTTP/1.1 to it, an
 * upstream keepalive cache of 128), listening on 127.0.0.1:`port`; `listenExtra` follows the address (TLS);
 * `opts` as nginxConf's.
 */
export function nginxProxyConf(tmp, upPort, port, listenExtra = '', opts = {}) {
  return nginxConf(
    tmp,
    'proxy',
    `upstream up { server 127.0.0.1:${upPort}; keepalive 128; } server { listen 127.0.0.1:${port}${listenExtra}; keepalive_requests 1000000; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
    opts,
  );
}

/**
 * ringio-proxy's config for the proxy benches, written to a file in `dir` (returned): one thread on
 * `driver`, one HTTP server on 127.0.0.1:`port` whose one route goes to 127.0.0.1:`upPort`; `extra` is
 * more of the server's table (a `tls = { ... }` line).
 */
export function ringioProxyConfig(dir, { port, upPort, driver, extra = '' }) {
  const f = join(dir, `ringio-${driver}-${port}.toml`);
  writeFileSync(
    f,
    `[runtime]\nthreads = 1\ndriver = "${driver}"\n[upgrade]\nsocket = "${join(dir, `up-${port}.sock`)}"\n[servers.bench]\nlisten = "127.0.0.1:${port}"\nprotocol = "http"\n${extra}[[servers.bench.routes]]\npath = "/"\nupstreams = [{ url = "http://127.0.0.1:${upPort}" }]\n`,
  );
  return f;
}
