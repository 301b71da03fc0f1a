#!/usr/bin/env node
// ringio demo: shows which driver this machine gets and why, then live figures from the runtime.
// Usage: npm run demo [-- --seconds N] [-- --driver uring|epoll|auto]
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
