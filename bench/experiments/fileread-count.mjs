// A fixed number of random 4 KiB reads at queue depth 64 (File.readAt loops, or File.readMany batches of
// 64) from /tmp/ringio-fileread.bin (bench/fileread.mjs makes it), for counting user-space instructions
// per read: run it under callgrind for two counts and divide the difference by the difference in reads,
// so start-up cancels out (the positions come from a fixed LCG, so both runs do the same work first):
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.N node bench/experiments/fileread-count.mjs at|many N [uring|epoll]
// Add --perf-basic-prof after `node` to name the JIT code: /tmp/perf-<pid>.map maps its addresses.
import { start } from '@ringio/runtime';
import { File, allocAligned } from '@ringio/fs';
const [impl, total] = [process.argv[2], Number(process.argv[3])];
const file = '/tmp/ringio-fileread.bin';
const blocks = (256 * 1024 * 1024) / 4096;
const qd = 64;
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
await start(async () => {
  const f = await File.open(file);
  const slab = allocAligned(qd * 4096);
  const bufs = Array.from({ length: qd }, (_, k) => slab.subarray(k * 4096, (k + 1) * 4096));
  if (impl === 'many') {
    const positions = new Array(qd).fill(0);
    for (let done = 0; done < total; done += qd) {
      for (let k = 0; k < qd; k++) positions[k] = (rnd() % blocks) * 4096;
      await f.readMany(bufs, positions);
    }
  } else {
    let left = total;
    await Promise.all(bufs.map(async (b) => {
      let buf = b;
      while (left-- > 0) [, buf] = await f.readAt(buf, (rnd() % blocks) * 4096);
    }));
  }
  await f.close();
}, { driver: process.argv[4] ?? 'uring' });
