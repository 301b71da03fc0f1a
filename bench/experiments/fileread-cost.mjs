// What one QD 64 random 4 KiB read from the page cache costs the process, in figures that depend less on
// the machine's load than a rate does: user-space CPU ns per read (the JS, V8 and the addon: the part
// ringio adds over the C reference, whose user time per read is ~0), kernel CPU ns per read, and bytes
// the JS heap allocates per read. Runs blocks of a fixed number of reads after a warm-up and prints the
// median of each figure over the blocks (one JSON line on stdout).
//
// Bytes per read: every block starts right after a full GC with a young generation large enough that no
// scavenge can run during it (the flags below); heapUsed after minus before, over the block's reads.
// A block in which a GC ran anyway (a gc performance entry) is not counted for bytes.
//
//   node --expose-gc --min-semi-space-size=128 --max-semi-space-size=128 \
//     bench/experiments/fileread-cost.mjs [at|many] [uring|epoll] [--blocks 9] [--reads 100000]
// (taskset -c 0 in front to pin it; bench/fileread.mjs makes /tmp/ringio-fileread.bin.)
import { PerformanceObserver } from 'node:perf_hooks';
import { start } from '@ringio/runtime';
import { File, allocAligned } from '@ringio/fs';

const impl = process.argv[2] ?? 'at';
const driver = process.argv[3] ?? 'uring';
const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const blocks = opt('blocks', 9);
const reads = opt('reads', 100000);
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc (see the header)');
const file = '/tmp/ringio-fileread.bin';
const nblocks = (256 * 1024 * 1024) / 4096;
const qd = 64;
let gcs = 0;
new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ['gc'] });
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

const out = await start(
  async () => {
    const f = await File.open(file);
    const slab = allocAligned(qd * 4096);
    const bufs = Array.from({ length: qd }, (_, k) => slab.subarray(k * 4096, (k + 1) * 4096));
    const pos = () => Math.floor(Math.random() * nblocks) * 4096;
    const positions = new Array(qd).fill(0);
    async function block(total) {
      if (impl === 'many') {
        for (let done = 0; done < total; done += qd) {
          for (let k = 0; k < qd; k++) positions[k] = pos();
          await f.readMany(bufs, positions);
        }
        return;
      }
      let left = total;
      await Promise.all(
        bufs.map(async (b) => {
          let buf = b;
          while (left-- > 0) [, buf] = await f.readAt(buf, pos());
        }),
      );
    }
    await block(reads * 2); // warm-up: start-up and JIT
    const user = [];
    const sys = [];
    const bytes = [];
    for (let i = 0; i < blocks; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 50)); // let the gc entry arrive before counting
      const g0 = gcs;
      const h0 = process.memoryUsage().heapUsed;
      const c0 = process.cpuUsage();
      await block(reads);
      const c = process.cpuUsage(c0);
      const h1 = process.memoryUsage().heapUsed;
      await new Promise((r) => setTimeout(r, 50));
      user.push((c.user * 1000) / reads);
      sys.push((c.system * 1000) / reads);
      if (gcs === g0) bytes.push((h1 - h0) / reads);
    }
    await f.close();
    return {
      impl,
      driver,
      reads_per_block: reads,
      blocks,
      user_ns_per_read: Math.round(median(user)),
      sys_ns_per_read: Math.round(median(sys)),
      bytes_per_read: bytes.length > 0 ? Math.round(median(bytes)) : null,
      blocks_without_gc: bytes.length,
    };
  },
  { driver },
);
console.log(JSON.stringify(out));
