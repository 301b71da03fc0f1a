#!/usr/bin/env node
// A TCP echo load generator on ringio: CONNS connections to 127.0.0.1:PORT, each with DEPTH SIZE-byte
// messages in flight (default 1); after a 0.3 s warm-up it counts echoed messages and their round-trip latency
// (10 µs buckets) for SECS seconds. Prints one JSON line, including the CPU time it used per second
// of wall time (`cpu`), so a caller can tell when the generator, not the server, is the bottleneck.
// Usage: node bench/loadgen.mjs --port P [--conns 64] [--size 64] [--secs 2] [--depth 1] [--driver auto]
// It is the project's own stand-in for ../shared/bench's C loadgen, with the same output fields.
import { start } from '@ringio/runtime';
import { TcpStream } from '@ringio/net';
import { arg } from './lib.mjs';

const port = Number(arg('port', '7000'));
const conns = Number(arg('conns', 64));
const size = Number(arg('size', 64));
const secs = Number(arg('secs', 2));
const depth = Number(arg('depth', 1));
const driver = arg('driver', process.env.RINGIO_DRIVER || 'auto');

const BUCKET_US = 10;
const hist = new Uint32Array(100_000); // up to 1 s
let count = 0;

const result = await start(
  async () => {
    const streams = await Promise.all(Array.from({ length: conns }, () => TcpStream.connect({ host: '127.0.0.1', port })));
    const warmEnd = performance.now() + 300;
    const end = warmEnd + secs * 1000;
    let cpu0;
    const loop = async (s) => {
      // DEPTH messages go out at once; each echoed message is timed from its own send and replaced by
      // a new one, so DEPTH stay in flight.
      let out = Buffer.alloc(size * depth, 7);
      let back = Buffer.alloc(size);
      const sent = new Float64Array(depth);
      sent.fill(performance.now());
      [, out] = await s.writeAll(out);
      for (let i = 0; ; i = (i + 1) % depth) {
        [, back] = await s.readExact(back);
        const now = performance.now();
        if (sent[i] >= warmEnd) {
          count++;
          hist[Math.min(hist.length - 1, Math.floor(((now - sent[i]) * 1000) / BUCKET_US))]++;
        }
        if (now >= end) {
          // Collect what is still in flight before closing, so the server sees a clean end.
          for (let k = 1; k < depth; k++) [, back] = await s.readExact(back);
          return;
        }
        sent[i] = now;
        [, out] = await s.writeAll(out, { length: size });
      }
    };
    setTimeout(() => (cpu0 = process.cpuUsage()), 300);
    const t0 = performance.now();
    await Promise.all(streams.map(loop));
    const wall = (performance.now() - t0 - 300) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await Promise.all(streams.map((s) => s.close()));
    return { wall, cpu: (cpu.user + cpu.system) / 1e6 / wall };
  },
  { driver },
);

const pct = (q) => {
  let seen = 0;
  const target = q * count;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= target) return (i + 1) * BUCKET_US;
  }
  return hist.length * BUCKET_US;
};
console.log(
  JSON.stringify({
    msgs_per_s: Math.round(count / result.wall),
    p50_us: pct(0.5),
    p99_us: pct(0.99),
    p999_us: pct(0.999),
    cpu: Number(result.cpu.toFixed(3)),
    conns,
    size,
    depth,
  }),
);
