#!/usr/bin/env node
// Scenario: reads from a 256 MiB file in the page cache, one CPU. Random 4 KiB reads at queue depth
// 1, 64 and 256, and sequential 1 MiB reads. Columns: ringio (io_uring), ringio (epoll: its file
// thread pool), fs/promises FileHandle.read, fs.readSync, and for random reads the C reference
// (../shared/bench/fileread_uring). Each measurement runs in its own process pinned to CPU 0; rounds are
// interleaved; figures are medians.
// Usage: node bench/fileread.mjs [--rounds 5] [--secs 2] [--file /tmp/ringio-fileread.bin]
//        [--case rand4k:64[,rand4k:16,…]] (these cases only, any QD) [--impls ringio_uring,fs_promises,c_uring] (a subset)
//        [--deadline timer|clock]
// --deadline: how the asynchronous loops know their time is up. 'timer' (the default): a timer sets a
// flag and each loop tests it, as the C reference reads its clock once per batch. 'clock': each read
// first calls performance.now(), the method behind the figures before the buffer registry; on this VM a
// performance.now() costs 100-230 ns, 5-10% of a ringio read, and nothing that the bench sets out to
// measure. fs.readSync always reads the clock, once per 64 reads.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { open as fspOpen } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, emit, median, table } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SIZE = 256 * 1024 * 1024;
const file = arg('file', '/tmp/ringio-fileread.bin');
const secs = Number(arg('secs', 2));
const rounds = Number(arg('rounds', 5));
const deadline = arg('deadline', 'timer');
if (deadline !== 'timer' && deadline !== 'clock') throw new Error('--deadline must be timer or clock');

// ---- child: one measurement ---------------------------------------------------------------------
async function child(impl, mode, qd) {
  const blocks = SIZE / 4096;
  const bs = mode === 'seq' ? 1 << 20 : 4096;
  const until = performance.now() + secs * 1000;
  let stop = false;
  if (deadline === 'timer') setTimeout(() => (stop = true), secs * 1000);
  const running = deadline === 'timer' ? () => !stop : () => performance.now() < until;
  let ops = 0;
  const pos = (i) => (mode === 'seq' ? (i * bs) % SIZE : Math.floor(Math.random() * blocks) * 4096);
  if (impl === 'readSync') {
    const fd = openSync(file, 'r');
    const buf = Buffer.allocUnsafe(bs);
    while (performance.now() < until) {
      for (let k = 0; k < 64; k++) readSync(fd, buf, 0, bs, pos(ops++));
    }
    closeSync(fd);
    return ops;
  }
  if (impl === 'fs_promises') {
    const fh = await fspOpen(file, 'r');
    let next = 0;
    await Promise.all(
      Array.from({ length: qd }, async () => {
        const buf = Buffer.allocUnsafe(bs);
        while (running()) {
          await fh.read(buf, 0, bs, pos(next++));
          ops++;
        }
      }),
    );
    await fh.close();
    return ops;
  }
  const { start } = await import('@ringio/runtime');
  const { File } = await import('@ringio/fs');
  return start(
    async () => {
      const f = await File.open(file);
      let next = 0;
      await Promise.all(
        Array.from({ length: qd }, async () => {
          let buf = Buffer.allocUnsafe(bs);
          while (running()) {
            [, buf] = await f.readAt(buf, pos(next++));
            ops++;
          }
        }),
      );
      await f.close();
      return ops;
    },
    { driver: impl === 'ringio_uring' ? 'uring' : 'epoll' },
  );
}

if (process.argv[2] === '--child') {
  const [, , , impl, mode, qd] = process.argv;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const ops = await child(impl, mode, Number(qd));
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  // cpu_s: this process's CPU time over the same span (on a shared machine, ops / cpu_s is what one
  // dedicated CPU would do; ops_per_s also depends on how much of CPU 0 others took).
  console.log(JSON.stringify({ ops_per_s: ops / s, ops, cpu_s: (c.user + c.system) / 1e6 }));
  process.exit(0);
}

// ---- parent --------------------------------------------------------------------------------------
if (!existsSync(file) || statSync(file).size !== SIZE) {
  console.error(`creating ${file} (256 MiB)`);
  const fd = openSync(file, 'w');
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < 256; i++) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
}
// Pull the file into the page cache, before every measurement: the host reclaims page-cache pages that
// go unused for a few seconds (DAMON; measured: 12 MiB of this file gone 20 s after a full read), and a
// random read that misses the cache costs a disk read, which wrecks a run.
const warmBuf = Buffer.allocUnsafe(1 << 20);
function warm() {
  const fd = openSync(file, 'r');
  while (readSync(fd, warmBuf) > 0);
  closeSync(fd);
}
const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const shared = join(here, '..', '..', 'shared', 'bench');
const tools = process.env.RINGIO_BENCH_TOOLS || '/tmp/ringio-bench-tools';
let cref = null;
if (existsSync(join(tools, 'fileread_uring'))) cref = join(tools, 'fileread_uring');
else if (existsSync(join(shared, 'build.sh'))) {
  try {
    execFileSync(join(shared, 'build.sh'), [tools], { stdio: 'ignore' });
    cref = join(tools, 'fileread_uring');
  } catch {
    cref = null;
  }
}

function run(impl, mode, qd) {
  warm();
  const cmd =
    impl === 'c_uring'
      ? [cref, file, String(qd), String(secs)]
      : [process.execPath, fileURLToPath(import.meta.url), '--child', impl, mode, String(qd), '--secs', String(secs), '--file', file, '--deadline', deadline];
  const [bin, ...args] = pin ? ['taskset', '-c', '0', ...cmd] : cmd;
  const out = execFileSync(bin, args, { encoding: 'utf8', cwd: join(here, '..') });
  return JSON.parse(out.trim().split('\n').pop()).ops_per_s;
}

const only = arg('case', null);
const cases =
  only === null
    ? [
        ['rand4k', 1],
        ['rand4k', 64],
        ['rand4k', 256],
        ['seq1m', 1],
      ]
    : only.split(',').map((c) => {
        const m = /^(rand4k|seq1m):(\d+)$/.exec(c);
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 4096) throw new Error(`--case: ${c} is not rand4k:QD or seq1m:QD (QD 1 to 4096)`);
        return [m[1], Number(m[2])];
      });
const allImpls = ['ringio_uring', 'ringio_epoll', 'fs_promises', 'readSync', ...(cref ? ['c_uring'] : [])];
const pick = arg('impls', null);
const impls = pick === null ? allImpls : allImpls.filter((i) => pick.split(',').includes(i));
const out = [];
for (const [mode, qd] of cases) {
  const res = Object.fromEntries(impls.map((i) => [i, []]));
  for (let r = 0; r < rounds; r++) {
    for (const impl of impls) {
      if (impl === 'c_uring' && mode !== 'rand4k') continue;
      res[impl].push(run(impl, mode === 'seq1m' ? 'seq' : 'rand', qd));
    }
  }
  const fsp = res.fs_promises.length > 0 ? median(res.fs_promises) : NaN;
  const c = cref && mode === 'rand4k' && res.c_uring?.length > 0 ? median(res.c_uring) : null;
  for (const impl of impls) {
    if (res[impl].length === 0) continue;
    const v = median(res[impl]);
    out.push({
      bench: 'fileread',
      case: `${mode} qd${qd}`,
      impl,
      rounds,
      deadline,
      ops_per_s: Math.round(v),
      mib_per_s: Math.round((v * (mode === 'seq1m' ? 1 << 20 : 4096)) / 2 ** 20),
      ratio_to_fs_promises: Number((v / fsp).toFixed(2)),
      ratio_to_c: c ? Number((v / c).toFixed(3)) : null,
    });
  }
}
table(out.map(({ bench, rounds: _r, deadline: _d, ...r }) => r));
emit(out);
