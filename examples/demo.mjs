#!/usr/bin/env node
// ringio demo: shows which driver this machine gets and why, then live figures from the runtime.
// Usage: npm run demo [-- --seconds N] [-- --driver uring|epoll|auto]
import { spawn as spawnChild, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { nop, pipe, read, write, close, sleep, spawn, start, stats } from '@ringio/runtime';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const seconds = Number(arg('seconds', 2));
const driver = arg('driver', process.env.RINGIO_DRIVER || 'auto');
const fmt = (n) => Math.round(n).toLocaleString('en-US');

await start(
  async () => {
    const s = stats();
    console.log(`ringio on Linux ${s.kernel}`);
    console.log(`driver:   ${s.driver}${s.fallbackReason ? `  (fell back: ${s.fallbackReason})` : ''}`);
    console.log(`entries:  ${s.entries}`);
    console.log(`features: ${s.features.join(' ')}`);
    console.log('');

    // 1. NOP round trips, 64 in flight: the cost of the runtime itself.
    let ops = 0;
    let stop = false;
    const e0 = stats().enters;
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (!stop) {
          await nop();
          if (++ops % 4096 === 0 && performance.now() > until) stop = true;
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const enters = stats().enters - e0;
    console.log(`nop round trips:   ${fmt(ops / secs)} ops/s, ${(enters * 1000 / ops).toFixed(1)} kernel enters per 1000 ops`);

    // 2. A pipe ping-pong through the driver: 1 byte each way.
    const [r1, w1] = pipe();
    const [r2, w2] = pipe();
    const echo = spawn(async () => {
      const b = Buffer.alloc(1);
      for (;;) {
        const [n] = await read(r1, b);
        if (n === 0) return;
        await write(w2, b);
      }
    });
    const b = Buffer.alloc(1);
    let trips = 0;
    const p0 = performance.now();
    while (performance.now() - p0 < Math.min(1000, seconds * 500)) {
      await write(w1, b);
      await read(r2, b);
      trips++;
    }
    const pSecs = (performance.now() - p0) / 1000;
    await close(w1);
    await echo;
    await Promise.all([close(r1), close(r2), close(w2)]);
    console.log(`pipe ping-pong:    ${fmt(trips / pSecs)} round trips/s (${(pSecs * 1e6 / trips).toFixed(1)} µs each)`);

    // 3. Timers on the driver: 10,000 concurrent sleeps of 50..99 ms, and how late they fire.
    const lateness = [];
    await Promise.all(
      Array.from({ length: 10000 }, async (_, i) => {
        const ms = 50 + (i % 50);
        const t = performance.now();
        await sleep(ms);
        lateness.push(performance.now() - t - ms);
      }),
    );
    lateness.sort((a, b) => a - b);
    const pct = (q) => lateness[Math.min(lateness.length - 1, Math.floor(q * lateness.length))].toFixed(2);
    console.log(`10k sleeps:        lateness p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms `);

    // 4. Tasks: spawn + join, one after another.
    const n = 200000;
    const s0 = performance.now();
    for (let i = 0; i < n; i++) await spawn(async () => i);
    console.log(`spawn + join:      ${fmt(n / ((performance.now() - s0) / 1000))} tasks/s`);

    const f = stats();
    console.log('');
    console.log(`totals: ${fmt(f.submitted)} ops submitted, ${fmt(f.completions)} completions, ${fmt(f.enters)} enters, ${fmt(f.wakeups)} loop wakeups`);
  },
  { driver },
);

// 5. Echo servers side by side: ringio's and node:net's, each driven by bench/loadgen.mjs (64
// connections, 64-byte messages). With two or more CPUs the server runs on CPU 0 and the generator on
// CPU 1, as the project's benchmarks do. bench/echo.mjs is the careful version of this.
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

// The C load generator from ../shared/bench when it can be built here (developer machines and CI);
// otherwise bench/loadgen.mjs, which runs on ringio itself and can saturate its CPU first.
function cLoadgen() {
  const dir = here('../../shared/bench');
  const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
  if (spawnSync('test', ['-x', `${tools}/loadgen`]).status === 0) return `${tools}/loadgen`;
  if (spawnSync('test', ['-x', `${dir}/build.sh`]).status !== 0) return null;
  return spawnSync(`${dir}/build.sh`, [tools], { stdio: 'ignore' }).status === 0 ? `${tools}/loadgen` : null;
}
const cgen = cLoadgen();
const pin = availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pinned = (cpu, args) => (pin ? ['taskset', ['-c', String(cpu), process.execPath, ...args]] : [process.execPath, args]);

async function measureServer(name, script, extra, tries = 3) {
  try {
    return await measureOnce(name, script, extra);
  } catch (e) {
    if (tries <= 1) throw e;
    return measureServer(name, script, extra, tries - 1); // most likely the random port was taken
  }
}

async function measureOnce(name, script, extra) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const [cmd, args] = pinned(0, [here(script), '--port', String(port), ...extra]);
  const server = spawnChild(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let ready = '';
  await new Promise((resolve, reject) => {
    server.stderr.on('data', (d) => {
      ready += d;
      if (/echo on/.test(ready)) resolve();
    });
    server.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${ready}`)));
  });
  const [lcmd, largs] = cgen
    ? pin
      ? ['taskset', ['-c', '1', cgen, String(port), '64', '64', String(seconds), '1']]
      : [cgen, [String(port), '64', '64', String(seconds), '1']]
    : pinned(1, [here('../bench/loadgen.mjs'), '--port', String(port), '--conns', '64', '--secs', String(seconds)]);
  const cpu0 = cgen ? process.cpuUsage() : undefined;
  const gen = spawnSync(lcmd, largs, { encoding: 'utf8' });
  void cpu0;
  server.kill('SIGTERM');
  const line = (gen.stdout || '').trim().split('\n').pop();
  if (gen.status !== 0 || !line) throw new Error(`load generator failed: ${gen.stderr}`);
  return JSON.parse(line);
}

console.log('');
console.log(
  `echo servers, 64 connections, 64-byte messages, ${seconds} s each${pin ? ' (server on CPU 0, load on CPU 1)' : ''}, ` +
    `load from ${cgen ? 'the C load generator (../shared/bench)' : 'bench/loadgen.mjs'}:`,
);
const results = [];
for (const [name, script, extra] of [
  [`ringio (${driver === 'auto' ? 'auto' : driver})`, './echo-server.mjs', ['--driver', driver]],
  ['node:net', './node-net-echo.mjs', []],
]) {
  const r = await measureServer(name, script, extra);
  results.push([name, r]);
  console.log(`  ${name.padEnd(16)} ${fmt(r.msgs_per_s).padStart(9)} msgs/s   p50 ${r.p50_us} µs   p99 ${r.p99_us} µs`);
}
const [[, a], [, b]] = results;
console.log(`  ringio / node:net: ${(a.msgs_per_s / b.msgs_per_s).toFixed(2)}x`);
const busiest = cgen ? 0 : Math.max(a.cpu, b.cpu);
if (cgen) {
  console.log('  the C load generator handles several times these rates: it was not the bottleneck.');
} else if (busiest >= 0.9) {
  console.log(`  note: the load generator used ${(busiest * 100).toFixed(0)}% of its CPU, so it may be the bottleneck;`);
  console.log('  bench/echo.mjs measures with the C load generator from ../shared/bench instead.');
} else {
  console.log(`  the load generator used at most ${(busiest * 100).toFixed(0)}% of its CPU: it was not the bottleneck.`);
}

