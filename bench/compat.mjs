#!/usr/bin/env node
// @ringio/compat against plain Node, four cases, per driver:
//   https:      node:http over ringio TLS (compat's listenSecure: the handshake and records in the addon,
//               toDuplex of the TlsStream) under wrk -t1 -c32, keep-alive GETs of 'hello https\n': req/s
//   https-nodetls: the same with node:tls over the Duplex (https.Server fed emit('connection'))
//   http2:      node:http2 (h2c) under h2load -c4 -m4, GETs of a 2 MiB body: MB/s
//   http2-handoff: the same with ringio accepting and handing each socket to libuv (compat's toNetSocket)
//   connect:    node:http under ab -c32 without keep-alive (a new connection per request): req/s
//   http-close: the same at ab -c10 and ab -c50 (one line per concurrency, with `concurrency`): req/s
// Servers: ringio (a TcpListener, toDuplex, server.emit('connection')) on io_uring and on epoll, and the
// same node server listening itself (the anchor). Each server runs in its own process pinned to CPU 0,
// the load generator on CPU 1 (when taskset exists). Rounds are interleaved server by server within each
// case, each round starting one server later than the one before; figures are medians; ratio_to_node is
// to plain Node's median of the same run; ratio_to_node_paired is the same ratio taken round by round
// (ringio's run over plain Node's of the same round) and its median, with rounds_at_node ("k/n": the
// rounds at or over 1.0), the steadier figure on a host whose speed changes during the run. The server's CPU time over the measurement per request (µs) or
// per MB (ms) is measured too, all threads: with perf, `perf stat -e task-clock -p PID` (exact;
// cpu_source "task-clock"), else /proc/<pid>/stat's 10 ms ticks (cpu_source "proc"; RINGIO_BENCH_CPU=proc
// forces it). cpu_ratio_to_node is the steadier figure on a busy machine (over 1: ringio spends more CPU
// per unit). So are, per unit, the server's runqueue wait (its main thread runnable while other work held
// its CPU, /proc/<pid>/schedstat) and the time it slept (neither running nor waiting): each round's line
// on stderr shows them, so a slow round that the machine starved is told from a slow server; the JSON
// carries the medians as wait_ringio / wait_node. So is the CPU of the server's other threads per unit
// (`helpers`: V8's compile and GC workers, libuv's pool; pinned with the main thread, their work is its
// runqueue wait), with medians helpers_ringio / helpers_node. So is the share of both CPUs the hypervisor
// took during the round (/proc/stat's steal: every server is slowed by it alike; a round with much of
// it measured the host), with medians steal_ringio / steal_node.
// The ab cases' warm-up includes connections closed without a request (see IDLE_WARM): ab leaves some at
// the end of a run, and the first ones a server meets deoptimize its stream close path.
// Output: a table on stderr; one JSON line per case (and concurrency) and driver on stdout, with case,
// driver, ratio_to_node, cpu_ratio_to_node and the load average (and, for the ab cases, idle_warm).
// --base DIR: also runs the ringio servers of another built checkout (DIR/bench/compat.mjs, e.g. the
// commit before a change), interleaved in the same rounds: their lines carry `root: "base"` and
// `ratio_to_this` (this checkout's median over the base's; over 1: this checkout is faster), and
// `cpu_ratio_to_this` (this checkout's CPU per unit over the base's; under 1: this checkout spends less),
// and `this_faster_rounds` ("k/n": the rounds in which this checkout's server beat the base's).
// --boost (root or CAP_SYS_NICE, a kernel with autogroup scheduling): every server and load generator
// leads its own session with the session's autogroup at nice -20 (as bench/kernel-cost.mjs --boost), so
// that on a machine shared with other work the CPU per request is measured with the CPUs mostly ours.
// --idle-warm N: the ab cases' warm-up closes N connections without a request (default 8; 0: none, the
// warm-up before this was found).
// --together: each ringio server runs head to head with plain Node's instead: both servers at once,
// pinned to CPU 0, each under its own load generator on CPU 1, over the same seconds, so both meet the
// same host (steal, a neighbour's burst, the kernel's TCP state on loopback), which in the rounds above
// moves a lone server's kernel time per MB by ±25% from round to round. Sharing CPU 0 fairly, a server
// that spends less CPU per unit serves more. Per round, ringio's figure over plain Node's of the same
// seconds; each round also runs plain Node against plain Node (the design's own noise: `aa_ratio`, its
// median, `aa_range` and `aa_cpu_ratio`) and each side goes first in turn. Lines carry `mode: "together"`; ratio_to_node
// is the median of the rounds' ratios and cpu_ratio_to_node the same of CPU per unit. The cases run by a
// duration (https, https-nodetls, http2, http2-handoff); ab runs a count, and two at once would share
// the ~28k ephemeral ports, so connect and http-close are left out of it.
// --handicap US (with --together): one more pair, plain Node against plain Node that busy-waits US µs
// in every request before answering (its line: driver "node", handicap_us): the design's sensitivity
// (docs/benchmarks.md, "Head to head: http2-handoff").
// --warm-runs N: the duration-based cases (wrk, h2load) warm each server up with N runs of 1 s, each on
// new connections (default 1; https also goes on until 20,000 requests). After one, V8 is still
// optimizing node's stream code again during the measured run (see warmUp).
// Usage: node bench/compat.mjs [--rounds 5] [--secs 3] [--cases https,https-nodetls,http2,http2-handoff,connect,http-close] [--drivers uring,epoll] [--base DIR] [--boost] [--idle-warm 8] [--warm-runs 1] [--together [--handicap US]]
// Needs wrk (https), h2load (http2: nghttp2-client), ab (connect: apache2-utils) and openssl (https).
// The server side of a measurement is this file too: node bench/compat.mjs --serve CASE --impl node|ringio --port P [--driver D] [--cert F --key F] [--spin-us US]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { arg, cpuSeconds, cpuTicks, emit, has, helperSeconds, idleConnections, interleave, median, pairedRatio, schedSeconds, stealShare, stopProc, table } from './lib.mjs';

const BIG = 2 * 1024 * 1024;

if (process.argv.includes('--serve')) {
  await serve(arg('serve'), arg('impl'), Number(arg('port')), arg('driver', 'auto'));
} else {
  await measure();
}

// ---- the servers ------------------------------------------------------------------------------------

async function serve(kind, impl, port, driver) {
  const http = await import('node:http');
  const https = await import('node:https');
  const http2 = await import('node:http2');
  // Both servers (plain Node's and ringio's) use node:http2's header-name constants as property keys
  // once, here, before loading anything else. node:http2 makes them as plain strings; the first use as a
  // key turns each into a ThinString pointing at the internalized name, and only a scavenge while it is
  // still young replaces the references to it. A process that allocates enough between loading
  // node:http2 and its first response (ringio's modules do; so does plain Node importing node:tls)
  // promotes them first, and then `headers[HTTP2_HEADER_DATE] = utcDate()` in node's processHeaders
  // misses its inline cache on every response, which keeps processHeaders and its callers from being
  // optimized (+2-8% instructions a request, varying process to process). Plain Node's own figure does
  // not move with this line; see docs/benchmarks.md, "node:http2's header constants".
  internalizeKeys(http2.constants);
  const hello = Buffer.from(`hello ${kind}\n`);
  const big = Buffer.alloc(BIG, 'x');
  // --spin-us (--handicap's server): busy-waits this long in every request, a known extra cost.
  const spinNs = BigInt(Math.round(Number(arg('spin-us', 0)) * 1e3));
  const spin = () => {
    if (spinNs === 0n) return;
    const until = process.hrtime.bigint() + spinNs;
    while (process.hrtime.bigint() < until);
  };
  const onRequest = (req, res) => {
    spin();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': hello.length });
    res.end(hello);
  };
  let server;
  const tlsOpts = kind === 'https' || kind === 'https-nodetls' ? { cert: readFileSync(arg('cert')), key: readFileSync(arg('key')) } : undefined;
  if (kind === 'https' && impl === 'ringio') server = http.createServer(onRequest);
  else if (kind === 'https' || kind === 'https-nodetls') server = https.createServer({ cert: readFileSync(arg('cert')), key: readFileSync(arg('key')) }, onRequest);
  else if (kind === 'connect' || kind === 'http-close') server = http.createServer(onRequest);
  else if (kind === 'http2' || kind === 'http2-handoff') {
    server = http2.createServer();
    server.on('stream', (stream) => {
      spin();
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': BIG });
      stream.end(big);
    });
  } else throw new Error(`unknown case ${kind}`);
  const ready = (what) => console.error(`${what} ${kind} on 127.0.0.1:${port}`);
  if (impl === 'node') {
    server.listen(port, '127.0.0.1', () => ready('node'));
    process.once('SIGTERM', () => process.exit(0));
    return;
  }
  const { start, stats } = await import('@ringio/runtime');
  const { TcpListener } = await import('@ringio/net');
  const { toDuplex, toNetSocket, listenSecure } = await import('@ringio/compat');
  await start(
    async () => {
      if (kind === 'https') {
        const secure = await listenSecure(server, { port, tls: tlsOpts });
        ready(`ringio ${stats().driver}`);
        await new Promise((r) => process.once('SIGTERM', r));
        await secure.close();
        return;
      }
      const listener = await TcpListener.bind({ host: '127.0.0.1', port });
      server.emit('listening');
      ready(`ringio ${stats().driver}`);
      process.once('SIGTERM', () => listener.close());
      // acceptEach: each connection is handed to node:http during the accept's completion, no promise per
      // connection (the `for await` loop made 1.5–2 per connection on epoll).
      if (kind === 'http2-handoff') await listener.acceptEach((stream) => server.emit('connection', toNetSocket(stream)));
      else await listener.acceptEach((stream) => server.emit('connection', toDuplex(stream)));
    },
    { driver },
  );
  process.exit(0);
}

/** Uses every string value of `constants` as a property key once (see serve()). */
function internalizeKeys(constants) {
  const keys = { __proto__: null };
  for (const v of Object.values(constants)) if (typeof v === 'string') keys[v] = 0;
}

// ---- the measurement ----------------------------------------------------------------------------------

async function measure() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const self = fileURLToPath(import.meta.url);
  const rounds = Number(arg('rounds', 5));
  const secs = Number(arg('secs', 3));
  const wanted = arg('cases', 'https,https-nodetls,http2,http2-handoff,connect,http-close').split(',');
  const drivers = arg('drivers', 'uring,epoll').split(',');
  const baseRoot = arg('base');
  const baseSelf = baseRoot === undefined ? undefined : join(baseRoot, 'bench', 'compat.mjs');
  if (baseSelf !== undefined) {
    try {
      readFileSync(baseSelf);
    } catch {
      console.error(`--base ${baseRoot}: no bench/compat.mjs there`);
      process.exit(1);
    }
  }
  const run = promisify(execFile);
  const togetherMode = process.argv.includes('--together');
  if (arg('handicap') !== undefined && !togetherMode) {
    console.error('--handicap goes with --together');
    process.exit(1);
  }
  if (arg('handicap') !== undefined && !(Number(arg('handicap')) > 0)) {
    console.error(`--handicap must be a number of µs over 0 (got ${arg('handicap')})`);
    process.exit(1);
  }

  let perfOk = has('perf') && process.env.RINGIO_BENCH_CPU !== 'proc';
  const tools = { https: ['wrk', 'openssl'], 'https-nodetls': ['wrk', 'openssl'], http2: ['h2load'], 'http2-handoff': ['h2load'], connect: ['ab'], 'http-close': ['ab'] };
  const pkg = { wrk: 'wrk', openssl: 'openssl', h2load: 'nghttp2-client', ab: 'apache2-utils' };
  const cases = [];
  for (const c of wanted) {
    const missing = (tools[c] ?? []).filter((t) => !has(t));
    if (tools[c] === undefined) console.error(`unknown case ${c}`);
    else if (missing.length > 0) console.error(`case ${c} skipped: needs ${missing.join(', ')} (apt-get install ${missing.map((m) => pkg[m]).join(' ')})`);
    else cases.push(c);
  }
  if (cases.length === 0) {
    console.error('nothing to measure');
    process.exit(1);
  }

  let certDir;
  const certArgs = [];
  if (cases.includes('https') || cases.includes('https-nodetls')) {
    certDir = mkdtempSync(join(tmpdir(), 'ringio-bench-cert-'));
    const cert = join(certDir, 'cert.pem');
    const key = join(certDir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    certArgs.push('--cert', cert, '--key', key);
  }

  const pinned = has('taskset');
  const boost = process.argv.includes('--boost');
  const pin = (cpu, cmd) => {
    let c = pinned ? ['taskset', '-c', String(cpu), ...cmd] : cmd;
    // --boost: its own session (so its own autogroup) at nice -20.
    if (boost) c = ['setsid', '-w', 'sh', '-c', 'echo -20 > /proc/$$/autogroup || echo "--boost: cannot set the autogroup\'s nice" >&2; exec "$@"', 'sh', ...c];
    return [c[0], c.slice(1)];
  };
  if (!pinned) console.error('taskset not found: servers and load generators are not pinned');

  const freePort = () =>
    new Promise((resolve, reject) => {
      const s = createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });

  async function startServer(kind, impl, driver, base = false, spinUs = 0) {
    const port = await freePort();
    const extra = [...(driver ? ['--driver', driver] : []), ...(kind.startsWith('https') ? certArgs : []), ...(spinUs > 0 ? ['--spin-us', String(spinUs)] : [])];
    const [cmd, args] = pin(0, [process.execPath, base ? baseSelf : self, '--serve', kind, '--impl', impl, '--port', String(port), ...extra]);
    const child = spawn(cmd, args, { cwd: base ? baseRoot : root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${impl} ${kind} did not start: ${err}`)), 10_000);
      child.stderr.setEncoding('utf8').on('data', (c) => {
        err += c;
        if (/ on 127\.0\.0\.1:\d+/.test(err)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`${impl} ${kind} exited (${code}): ${err}`)));
    });
    if (driver && !err.includes(`ringio ${driver}`)) throw new Error(`asked for ${driver}, got: ${err.trim()}`);
    return { child, port };
  }

  /** One load run: the figure (req/s or MB/s), the units served (requests or MB) and the errors the tool reported. */
  /**
   * ab's warm-up: 10,000 requests (h2load warms up for 1 s, wrk as WARM_WRK says). After 3,000 (about 0.15 s) V8 was
   * still compiling the servers' JS on its helper threads: 12% of the ringio server's samples over the
   * next 30,000 requests, 3% of plain Node's (docs/benchmarks.md, "New connections, branch ep1").
   */
  const WARM_AB = 10_000;
  /**
   * Connections the ab cases' warm-up opens and closes without a request, after PRE_WARM_AB requests and
   * before WARM_AB. ab leaves a few such connections at the end of a run (connects it started but did not
   * need, then closed at exit): against ringio's servers 0-12 a run of 6,000 (ab's connect calls, perf), against
   * plain Node's 0-2, since ab drains more responses per poll from a faster server. The first of them that a
   * server meets sends node:http and node:stream's close path objects of new shapes (a socket without
   * `_httpMessage`, a WritableState that never wrote): about 20 optimized functions deoptimize at once
   * ("wrong map") and V8 compiles them again on its workers, pinned to the server's CPU. At the end of
   * the warm-up that put 60-120 ms of compiling into the measured run of 6,000: helper threads 10-20 µs a
   * request, the main thread's runqueue wait 12-21 µs (1.8-3.6 without), and 0.55-0.9x the req/s
   * (docs/benchmarks.md, "Runqueue wait in the new-connection cases"). Met during the warm-up, after
   * PRE_WARM_AB (V8 has settled the objects' shapes by then), such a connection is in the type feedback
   * before the code is optimized, and no later one deoptimizes it; every server gets the same ones.
   */
  const IDLE_WARM = Number(arg('idle-warm', 8));
  const PRE_WARM_AB = 1_000;
  /**
   * wrk's warm-up (https) goes on, a second at a time for up to 5 s, until it served this many requests:
   * a round that other work starves (an unboosted server beside another's nice -20 one got 250-600 req/s)
   * would otherwise measure V8's unoptimized code (docs/benchmarks.md, "HTTPS under contention").
   */
  const WARM_WRK = 20_000;
  /** --warm-runs N: the duration-based cases' warm-up runs (1 s each, new connections each; default 1). */
  const WARM_RUNS = Number(arg('warm-runs', 1));
  if (!(Number.isInteger(WARM_RUNS) && WARM_RUNS >= 1)) {
    console.error(`--warm-runs must be a whole number of at least 1 (got ${arg('warm-runs')})`);
    process.exit(1);
  }

  /** `warm`: a warm-up run (ab: WARM_AB requests, or this many if a number). */
  async function load(kind, port, seconds, concurrency, warm = false) {
    if (kind.startsWith('https')) {
      const [cmd, args] = pin(1, ['wrk', '-t1', '-c32', `-d${seconds}s`, `https://127.0.0.1:${port}/`]);
      const { stdout } = await run(cmd, args);
      const errors = /Socket errors: (.*)/.exec(stdout)?.[1] ?? (/Non-2xx/.test(stdout) ? 'non-2xx' : null);
      const value = parseFloat(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
      return { value, unit: 'req/s', served: Number(/(\d+) requests in/.exec(stdout)?.[1]), errors };
    }
    if (kind.startsWith('http2')) {
      const [cmd, args] = pin(1, ['h2load', '-c4', '-m4', '-D', String(seconds), `http://127.0.0.1:${port}/`]);
      const { stdout } = await run(cmd, args, { maxBuffer: 1 << 24 });
      const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
      const bytes = Number(/traffic: .*?\((\d+)\) total/.exec(stdout)?.[1]);
      const errors = m && (Number(m[2]) > 0 || Number(m[3]) > 0) ? `${m[2]} failed, ${m[3]} errored` : null;
      if (!(bytes > 0)) throw new Error(`h2load measured nothing: ${stdout.split('\n').filter((l) => /^(requests|traffic|finished)|rror|fail/i.test(l)).join(' | ') || stdout.slice(-300)}`);
      return { value: bytes / 1e6 / seconds, unit: 'MB/s', served: bytes / 1e6, errors };
    }
    // ab runs a number of requests (secs * 3000, or WARM_AB): a run of one server stays under the
    // ~28k ephemeral ports, so no client port meets its own earlier connection's TIME_WAIT on the server.
    const n = typeof warm === 'number' ? warm : warm ? WARM_AB : Math.max(2000, seconds * 3000);
    const [cmd, args] = pin(1, ['ab', '-q', `-c${concurrency ?? 32}`, '-n', String(n), '-s', '10', `http://127.0.0.1:${port}/`]);
    const { stdout } = await run(cmd, args);
    const failed = Number(/Failed requests:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
    const value = parseFloat(/Requests per second:\s+([\d.]+)/.exec(stdout)?.[1]);
    return { value, unit: 'req/s', served: n, errors: failed ? `${failed} failed` : null };
  }

  /**
   * The server's CPU time over one measurement, all its threads. With perf (and permission to attach):
   * `perf stat -e task-clock -p PID`, exact to the microsecond. Otherwise /proc/PID/stat's utime + stime,
   * which count 10 ms ticks: about 45 ticks over a 3 s `ab` run of 9,000 requests, and on a busy machine
   * the tick lands on whichever task is running when it fires, so a short round can be off by 10+ µs per
   * request (docs/benchmarks.md, "New connections, branch acb"). `source` says which one measured.
   */
  async function cpuClock(pid) {
    if (perfOk) {
      const file = join(tmpdir(), `ringio-bench-task-clock-${pid}.txt`);
      const p = spawn('perf', ['stat', '-x,', '-e', 'task-clock', '-p', String(pid), '-o', file], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 200)); // perf attaches to every thread first
      if (p.exitCode === null) {
        return {
          source: 'task-clock',
          stop: async () => {
            const exited = new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
            p.kill('SIGINT');
            await exited;
            let ms = NaN;
            try {
              ms = parseFloat(/^([\d.]+),[^,]*,task-clock/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 'NaN');
              rmSync(file, { force: true });
            } catch {}
            if (!(ms > 0)) throw new Error(`perf stat -p ${pid} measured nothing (${file})`);
            return ms / 1e3;
          },
        };
      }
      perfOk = false;
      console.error('perf stat -p failed: server CPU from /proc ticks');
    }
    const cpu0 = cpuSeconds(pid);
    return { source: 'proc', stop: async () => cpuSeconds(pid) - cpu0 };
  }

  /**
   * The warm-up of a duration-based case: WARM_RUNS runs of a second of load, each on new connections
   * (https: and on until WARM_WRK requests, up to 5 runs). One run leaves V8 still tiering: each run's
   * closing connections deoptimize node's stream code ("wrong map") and the next run's optimize it again
   * (node:http2's server: some 60 functions optimized again in the second run, 30 in the third, none
   * after the fifth).
   */
  async function warmUp(kind, port, concurrency) {
    // ab's warm-up is a count (WARM_AB), kept at one: more would reuse client ports still in TIME_WAIT.
    const runs = kind === 'connect' || kind === 'http-close' ? 1 : WARM_RUNS;
    const tries = Math.max(runs, kind.startsWith('https') ? 5 : 1);
    for (let warmed = 0, s = 0; s < tries && (s < runs || warmed < WARM_WRK); s++) warmed += (await load(kind, port, 1, concurrency, true)).served;
  }

  /**
   * --together: plain Node's server and `other` ({ impl, driver, base, spinUs }) at once, both pinned to
   * CPU 0, each under its own load generator on CPU 1 over the same seconds. `flip` puts `other` first
   * wherever the two are handled in turn (started, clocked, loaded), so neither side always goes first.
   * Returns other's figure over plain Node's (`value`), the same of CPU per unit (`cpu`), both figures
   * and the hypervisor's steal over the run.
   */
  async function duel(kind, other, flip) {
    const sides = [{ impl: 'node' }, other];
    const order = flip ? [1, 0] : [0, 1];
    const srvs = [];
    try {
      for (const i of order) srvs[i] = await startServer(kind, sides[i].impl, sides[i].driver, sides[i].base, sides[i].spinUs);
      await Promise.all(order.map((i) => warmUp(kind, srvs[i].port)));
      const clocks = [];
      for (const i of order) clocks[i] = await cpuClock(srvs[i].child.pid);
      const ticks0 = cpuTicks();
      const ms = [];
      await Promise.all(order.map(async (i) => (ms[i] = await load(kind, srvs[i].port, secs))));
      const steal = stealShare(ticks0, cpuTicks());
      const cpu = [];
      for (const i of order) cpu[i] = (await clocks[i].stop()) / ms[i].served;
      for (const [i, m] of ms.entries()) {
        if (m.errors) console.error(`${i === 0 ? 'node' : other.name} ${kind} (together): the load generator reports ${m.errors}`);
        if (!(m.value > 0)) throw new Error('measured nothing');
      }
      return { value: ms[1].value / ms[0].value, cpu: cpu[1] / cpu[0], node: ms[0].value, other: ms[1].value, unit: ms[0].unit, steal, cpuSource: clocks[0].source };
    } finally {
      await Promise.all(srvs.filter((srv) => srv !== undefined).map((srv) => stopProc(srv.child)));
    }
  }

  /** --together's rounds for one case: one JSON line per driver (and base driver), in `out`. */
  async function together(kind) {
    const handicap = Number(arg('handicap', 0));
    const others = [
      { name: 'node', impl: 'node' },
      ...drivers.map((d) => ({ name: d, impl: 'ringio', driver: d })),
      ...(baseSelf === undefined ? [] : drivers.map((d) => ({ name: `${d}@base`, impl: 'ringio', driver: d, base: true }))),
      ...(handicap > 0 ? [{ name: `node+${handicap}us`, impl: 'node', spinUs: handicap }] : []),
    ];
    const flips = new Map(others.map((o) => [o.name, 0]));
    const runs = await interleave(
      rounds,
      others.map((o) => ({ name: o.name, run: () => duel(kind, o, flips.set(o.name, flips.get(o.name) + 1).get(o.name) % 2 === 0) })),
      {
        describe: (m) => `${kind} together: plain Node ${m.node.toFixed(1)} ${m.unit}, this ${m.other.toFixed(1)}: ratio ${m.value.toFixed(3)}, CPU per unit ${m.cpu.toFixed(3)}, steal ${(m.steal * 100).toFixed(0)}%`,
        rotate: true,
      },
    );
    const aa = runs.get('node').map((m) => m.value);
    for (const o of others.slice(1)) {
      const rs = runs.get(o.name);
      if (rs.length === 0) continue;
      const ratios = rs.map((m) => m.value);
      out.push({
        bench: 'compat',
        case: kind,
        mode: 'together',
        driver: o.driver ?? 'node',
        unit: rs[0].unit,
        ratio_to_node: Number(median(ratios).toFixed(3)),
        rounds_at_node: `${ratios.filter((x) => x >= 1).length}/${ratios.length}`,
        cpu_ratio_to_node: Number(median(rs.map((m) => m.cpu)).toFixed(3)),
        // Plain Node against plain Node in the same rounds: what the design calls a difference by itself.
        aa_ratio: aa.length > 0 ? Number(median(aa).toFixed(3)) : null,
        aa_range: aa.length > 0 ? `${Math.min(...aa).toFixed(3)}..${Math.max(...aa).toFixed(3)}` : null,
        aa_cpu_ratio: aa.length > 0 ? Number(median(runs.get('node').map((m) => m.cpu)).toFixed(3)) : null,
        steal: Number(median(rs.map((m) => m.steal)).toFixed(3)),
        cpu_source: rs[0].cpuSource,
        warm_runs: WARM_RUNS,
        rounds: rs.length,
        ...(o.base ? { root: 'base' } : {}),
        ...(o.spinUs ? { handicap_us: o.spinUs } : {}),
      });
    }
  }

  async function once(kind, impl, driver, concurrency, base = false) {
    const srv = await startServer(kind, impl, driver, base);
    try {
      // warm-up: JIT, TLS session setup, connection pools; for ab, connections closed without a request too
      if ((kind === 'connect' || kind === 'http-close') && IDLE_WARM > 0) {
        await load(kind, srv.port, 1, concurrency, PRE_WARM_AB);
        await idleConnections(srv.port, IDLE_WARM);
      }
      await warmUp(kind, srv.port, concurrency);
      const clock = await cpuClock(srv.child.pid);
      const sched0 = schedSeconds(srv.child.pid);
      const helpers0 = helperSeconds(srv.child.pid);
      const ticks0 = cpuTicks();
      const t0 = performance.now();
      const m = await load(kind, srv.port, secs, concurrency);
      const wall = (performance.now() - t0) / 1e3;
      const sched1 = schedSeconds(srv.child.pid);
      const helpers1 = helperSeconds(srv.child.pid);
      // The hypervisor's steal over the run, both CPUs: a round with much of it measured the host.
      m.steal = stealShare(ticks0, cpuTicks());
      // CPU per unit: µs per request, ms per MB.
      const per = (sec) => (sec * (m.unit === 'MB/s' ? 1e3 : 1e6)) / m.served;
      m.cpu = per(await clock.stop());
      m.cpuSource = clock.source;
      // Where the server's main thread spent the run, per unit: waiting for a CPU that other work held
      // (runqueue wait) and asleep (wall time neither on a CPU nor waiting for one: the load generator
      // had not sent yet). A slow round with a long wait or sleep was starved by the machine, not slow.
      m.wait = per(sched1.wait - sched0.wait);
      // The other threads' CPU: a round whose helpers ran long was compiling or collecting on the main thread's CPU.
      m.helpers = per(helpers1 - helpers0);
      m.asleep = per(Math.max(0, wall - (sched1.run - sched0.run) - (sched1.wait - sched0.wait)));
      if (m.errors) console.error(`${impl}${driver ? ` ${driver}` : ''} ${kind}: the load generator reports ${m.errors}`);
      if (!(m.value > 0)) throw new Error(`measured nothing`);
      return m;
    } finally {
      await stopProc(srv.child);
    }
  }

  const out = [];
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  try {
    const variants = cases.flatMap((kind) => (kind === 'http-close' ? [10, 50].map((c) => ({ kind, concurrency: c })) : [{ kind }]));
    for (const { kind, concurrency } of variants) {
      if (togetherMode) {
        if (kind === 'connect' || kind === 'http-close') {
          if (concurrency !== 50) console.error(`case ${kind} skipped: --together runs the cases measured over a duration (ab runs a count)`);
        } else await together(kind);
        continue;
      }
      const impls = [
        { name: 'node', run: () => once(kind, 'node', undefined, concurrency) },
        ...drivers.map((d) => ({ name: d, run: () => once(kind, 'ringio', d, concurrency) })),
        ...(baseSelf === undefined ? [] : drivers.map((d) => ({ name: `${d}@base`, run: () => once(kind, 'ringio', d, concurrency, true) }))),
      ];
      const what = `${kind}${concurrency ? ` -c${concurrency}` : ''}`;
      const runs = await interleave(rounds, impls, {
        describe: (m) => {
          const u = m.unit === 'MB/s' ? 'ms/MB' : 'µs/req';
          return `${what} ${m.value.toFixed(1)} ${m.unit}, server CPU ${m.cpu.toFixed(2)} ${u}, runqueue wait ${m.wait.toFixed(2)}, asleep ${m.asleep.toFixed(2)}, helpers ${m.helpers.toFixed(2)}, steal ${(m.steal * 100).toFixed(0)}%`;
        },
        // Each round starts one server later: no server always runs right after the same one (a busy
        // machine's bursts then fall on every server alike).
        rotate: true,
      });
      if (runs.get('node').length === 0) continue;
      const base = median(runs.get('node').map((m) => m.value));
      const baseCpu = median(runs.get('node').map((m) => m.cpu));
      for (const name of [...drivers, ...(baseSelf === undefined ? [] : drivers.map((d) => `${d}@base`))]) {
        const rs = runs.get(name);
        if (rs.length === 0) continue;
        const d = name.replace('@base', '');
        const v = median(rs.map((m) => m.value));
        const cpu = median(rs.map((m) => m.cpu));
        const mine = name.endsWith('@base') ? runs.get(d) : undefined;
        const paired = pairedRatio(runs, name, ['node'], (m) => m.value);
        out.push({
          bench: 'compat',
          case: kind,
          ...(concurrency ? { concurrency } : {}),
          driver: d,
          unit: rs[0].unit,
          ringio: Number(v.toFixed(1)),
          node: Number(base.toFixed(1)),
          ratio_to_node: Number((v / base).toFixed(3)),
          // The same ratio round by round (ringio's run over plain Node's of the same round), its median and
          // the rounds at or over 1.0: the steadier figure when the host's speed changes during the run.
          ratio_to_node_paired: Number(paired.median.toFixed(3)),
          rounds_at_node: `${paired.over(1)}/${paired.rounds}`,
          cpu_unit: rs[0].unit === 'MB/s' ? 'ms/MB' : 'µs/req',
          cpu_ringio: Number(cpu.toFixed(2)),
          cpu_node: Number(baseCpu.toFixed(2)),
          cpu_ratio_to_node: Number((cpu / baseCpu).toFixed(3)),
          wait_ringio: Number(median(rs.map((m) => m.wait)).toFixed(2)),
          wait_node: Number(median(runs.get('node').map((m) => m.wait)).toFixed(2)),
          helpers_ringio: Number(median(rs.map((m) => m.helpers)).toFixed(2)),
          helpers_node: Number(median(runs.get('node').map((m) => m.helpers)).toFixed(2)),
          // The share of both CPUs the hypervisor took during ringio's rounds (median), and during plain Node's.
          steal_ringio: Number(median(rs.map((m) => m.steal)).toFixed(3)),
          steal_node: Number(median(runs.get('node').map((m) => m.steal)).toFixed(3)),
          cpu_source: rs[0].cpuSource,
          // The ab cases' warm-up: connections closed without a request (--idle-warm; 0 before ep9); the others' runs.
          ...(kind === 'connect' || kind === 'http-close' ? { idle_warm: IDLE_WARM } : { warm_runs: WARM_RUNS }),
          rounds: rs.length,
          ...(mine === undefined
            ? {}
            : mine.length === 0
              ? { root: 'base' }
              : {
                  root: 'base',
                  ratio_to_this: Number((median(mine.map((m) => m.value)) / v).toFixed(3)),
                  cpu_ratio_to_this: Number((median(mine.map((m) => m.cpu)) / cpu).toFixed(3)),
                  // Rounds in which this checkout's server beat the base's (same round, so the same machine).
                  this_faster_rounds: (({ rounds, ratios }) => `${ratios.filter((x) => x > 1).length}/${rounds}`)(pairedRatio(runs, d, [name], (m) => m.value)),
                }),
        });
      }
    }
  } finally {
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  }
  const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  for (const o of out) o.loadavg = `${load0} -> ${load1}`;
  if (out.length > 0) {
    table(out.map(({ bench, loadavg, concurrency, cpu_unit, root, ...r }) => ({ ...r, case: r.case + (concurrency ? ` -c${concurrency}` : ''), driver: r.driver + (root ? '@base' : ''), ...(cpu_unit ? { cpu: cpu_unit } : {}) })));
  }
  console.error(`load average: ${load0} (start) -> ${load1} (end)`);
  emit(out);
}
