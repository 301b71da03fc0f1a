#!/usr/bin/env node
// Scenario for docs/design/driver.md: a fixed amount of work for strace -c to count syscalls against.
// `nop`: 1,000,000 NOPs, 64 in flight. `pingpong`: 20,000 one-byte round trips over two pipes, where
// every read parks in the kernel and the loop must wake for it.
// Usage: [RINGIO_FLUSH=tick|turn] node bench/loop-integration.mjs nop|pingpong [--driver uring|epoll]
import { close, nop, pipe, read, spawn, start, stats, write } from '@ringio/runtime';
import { arg } from './lib.mjs';

const scenario = process.argv[2] ?? 'nop';
const driver = arg('driver', 'uring');

const r = await start(
  async () => {
    const t0 = performance.now();
    let units;
    if (scenario === 'nop') {
      units = 1_000_000;
      let done = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (done < units) {
            done++;
            await nop();
          }
        }),
      );
    } else {
      units = 20_000;
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
      for (let i = 0; i < units; i++) {
        await write(w1, b);
        await read(r2, b);
      }
      await close(w1);
      await echo;
      await Promise.all([close(r1), close(r2), close(w2)]);
    }
    const secs = (performance.now() - t0) / 1000;
    const s = stats();
    return { scenario, driver: s.driver, flush: process.env.RINGIO_FLUSH || 'tick', units, per_s: Math.round(units / secs), enters: s.enters, wakeups: s.wakeups };
  },
  { driver },
);
console.log(JSON.stringify(r));
