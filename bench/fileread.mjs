#!/usr/bin/env node
// Scenario: reads from a 256 MiB file in the page cache, one CPU. Random 4 KiB reads at queue depth
// 1, 64 and 256, and sequential 1 MiB reads. Columns: ringio File.readAt (io_uring, where the reads of
// one run of JS share one batch op, a lane; epoll: its file thread pool), ringio File.readMany (one
// batch of QD reads in flight; both drivers), fs/promises
// FileHandle.read, fs.readSync (the synchronous anchor), and for random reads the C reference
// (../shared/bench/fileread_uring). Each measurement runs in its own process pinned to CPU 0; rounds are
// interleaved; figures are medians, with the load average before and after each case.
// Usage: node bench/fileread.mjs [--rounds 5] [--secs 2] [--warm 0.5] [--file /tmp/ringio-fileread.bin]
//        [--case rand4k:64[,rand4k:16,…]] (these cases only, any QD)
//        [--impls ringio_uring,ringio_many_uring,ringio_epoll,ringio_many_epoll,fs_promises,readSync,c_uring] (a subset)
//        [--deadline timer|clock]
// Two rates per measurement: ops/s over wall time, and ops per CPU second of the measuring process (what
// one dedicated CPU would do: on a shared machine the wall rate also measures how much of CPU 0 the other
// tenants took). A Node child measures --secs seconds after a warm-up (start-up and JIT) of at least
// --warm seconds of wall time and --warm seconds of its own CPU time; the C reference has no warm-up and
// is measured whole (its CPU time from the shell's `times`).
// --deadline: how the asynchronous loops know their time is up. 'timer' (the default): a timer sets a
// flag and each loop tests it, as the C reference reads its clock once per batch. 'clock': each read
// first calls performance.now(), the method behind the figures before the buffer registry; on this VM a
// performance.now() costs 100-230 ns, 5-10% of a ringio read, and nothing that the bench sets out to
// measure. fs.readSync always reads the clock, once per 64 reads.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { open as fspOpen } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { loadavg } from 'node:os';
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
// The child warms up (start-up, imports, JIT), then measures `secs` seconds: the warm-up is left out of
// both the rate and the CPU time.
const warmSecs = Number(arg('warm', 0.5));
const buffers = arg('buffers', 'aligned');
if (buffers !== 'aligned' && buffers !== 'alloc') throw new Error('--buffers must be aligned or alloc');
async function child(impl, mode, qd) {
  const blocks = SIZE / 4096;
  const bs = mode === 'seq' ? 1 << 20 : 4096;
  const t0 = performance.now();
  const state = { ops: 0, mark: null };
  const markNow = () => {
    if (state.mark === null) state.mark = { ops: state.ops, t: performance.now(), cpu: process.cpuUsage() };
  };
  // Warm-up ends once both `warm` seconds of wall time and `warm` seconds of this process's CPU time
  // have passed: on a busy machine the child may get a few percent of CPU 0, and a wall-clock warm-up
  // alone would then measure code V8 had not optimized yet.
  const warmCpu = warmSecs * 1e6;
  const cpuNow = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  let stop = false;
  let end = Infinity;
  const warmed = () => performance.now() >= t0 + warmSecs * 1000 && cpuNow() >= warmCpu;
  if (deadline === 'timer') {
    const check = () => {
      if (!warmed()) return void setTimeout(check, 20);
      markNow();
      setTimeout(() => (stop = true), secs * 1000);
    };
    setTimeout(check, warmSecs * 1000);
  }
  const running =
    deadline === 'timer'
      ? () => !stop
      : () => {
          const now = performance.now();
          if (state.mark === null && warmed()) {
            markNow();
            end = now + secs * 1000;
          }
          return now < end;
        };
  const pos = (i) => (mode === 'seq' ? (i * bs) % SIZE : Math.floor(Math.random() * blocks) * 4096);
  if (impl === 'readSync') {
    const fd = openSync(file, 'r');
    const buf = Buffer.allocUnsafe(bs);
    for (let now = performance.now(); now < end; now = performance.now()) {
      if (state.mark === null && warmed()) {
        markNow();
        end = now + secs * 1000;
      }
      for (let k = 0; k < 64; k++) readSync(fd, buf, 0, bs, pos(state.ops++));
    }
    closeSync(fd);
    return state;
  }
  if (impl === 'fs_promises') {
    const fh = await fspOpen(file, 'r');
    let next = 0;
    await Promise.all(
      Array.from({ length: qd }, async () => {
        const buf = Buffer.allocUnsafe(bs);
        while (running()) {
          await fh.read(buf, 0, bs, pos(next++));
          state.ops++;
        }
      }),
    );
    await fh.close();
    return state;
  }
  const { start } = await import('@ringio/runtime');
  const { File, allocAligned } = await import('@ringio/fs');
  // --buffers aligned (the default): each loop's buffer is a page-aligned 4 KiB slice of one region, as
  // the C reference's are; 'alloc': Buffer.allocUnsafe per buffer (malloc'd, not page-aligned).
  const slab = buffers === 'aligned' ? allocAligned(qd * bs) : null;
  const newBuf = (k) => (slab === null ? Buffer.allocUnsafe(bs) : slab.subarray(k * bs, (k + 1) * bs));
  const driver = impl.endsWith('_epoll') ? 'epoll' : 'uring';
  if (impl.startsWith('ringio_many')) {
    // File.readMany: one batch of `qd` reads in flight at a time, fresh positions for each batch.
    return start(
      async () => {
        const f = await File.open(file);
        const bufs = Array.from({ length: qd }, (_, k) => newBuf(k));
        const positions = new Array(qd).fill(0);
        let next = 0;
        while (running()) {
          for (let k = 0; k < qd; k++) positions[k] = pos(next++);
          await f.readMany(bufs, positions);
          state.ops += qd;
        }
        await f.close();
        return state;
      },
      { driver },
    );
  }
  // File.readAt: `qd` loops, each with one read in flight.
  return start(
    async () => {
      const f = await File.open(file);
      let next = 0;
      await Promise.all(
        Array.from({ length: qd }, async (_, k) => {
          let buf = newBuf(k);
          while (running()) {
            [, buf] = await f.readAt(buf, pos(next++));
            state.ops++;
          }
        }),
      );
      await f.close();
      return state;
    },
    { driver },
  );
}

if (process.argv[2] === '--child') {
  const [, , , impl, mode, qd] = process.argv;
  const state = await child(impl, mode, Number(qd));
  const m = state.mark ?? { ops: 0, t: performance.timeOrigin, cpu: { user: 0, system: 0 } };
  const s = (performance.now() - m.t) / 1000;
  const c = process.cpuUsage(m.cpu);
  const ops = state.ops - m.ops;
  // cpu_s: this process's CPU time over the same window. On a shared machine ops / cpu_s is what one
  // dedicated CPU would do; ops_per_s also depends on how much of CPU 0 the other tenants took.
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

/** One measurement: { ops_per_s, ops_per_cpu_s } (the C reference's CPU time comes from the shell's `times`). */
function run(impl, mode, qd) {
  warm();
  if (impl === 'c_uring') {
    const script = `${pin ? 'taskset -c 0 ' : ''}"$0" "$1" "$2" "$3"; times`;
    const out = execFileSync('sh', ['-c', script, cref, file, String(qd), String(secs)], { encoding: 'utf8' }).trim().split('\n');
    const rate = JSON.parse(out[0]).ops_per_s;
    // `times`: the shell's user and system time, then its children's ("0m1.230000s 0m0.450000s").
    const [u, sy] = out[out.length - 1].split(/\s+/).map((t) => {
      const m = /^(\d+)m([\d.]+)s$/.exec(t);
      return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
    });
    return { ops_per_s: rate, ops_per_cpu_s: (rate * secs) / (u + sy) };
  }
  const cmd = [process.execPath, fileURLToPath(import.meta.url), '--child', impl, mode, String(qd), '--secs', String(secs), '--warm', String(warmSecs), '--file', file, '--deadline', deadline, '--buffers', buffers];
  const [bin, ...args] = pin ? ['taskset', '-c', '0', ...cmd] : cmd;
  const out = execFileSync(bin, args, { encoding: 'utf8', cwd: join(here, '..') });
  const r = JSON.parse(out.trim().split('\n').pop());
  return { ops_per_s: r.ops_per_s, ops_per_cpu_s: r.ops / r.cpu_s };
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
const allImpls = ['ringio_uring', 'ringio_many_uring', 'ringio_epoll', 'ringio_many_epoll', 'fs_promises', 'readSync', ...(cref ? ['c_uring'] : [])];
const pick = arg('impls', null);
const impls = pick === null ? allImpls : allImpls.filter((i) => pick.split(',').includes(i));
if (pick !== null && pick.split(',').includes('c_uring') && !cref) console.error('no C reference: build /work/shared/bench (build.sh) or set RINGIO_BENCH_TOOLS');
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const out = [];
for (const [mode, qd] of cases) {
  const res = Object.fromEntries(impls.map((i) => [i, []]));
  const loadBefore = load();
  for (let r = 0; r < rounds; r++) {
    for (const impl of impls) {
      if (impl === 'c_uring' && mode !== 'rand4k') continue;
      const m = run(impl, mode === 'seq1m' ? 'seq' : 'rand', qd);
      res[impl].push(m);
      console.error(`${mode} qd${qd} round ${r + 1}/${rounds} ${impl}: ${Math.round(m.ops_per_s)} ops/s, ${Math.round(m.ops_per_cpu_s)} per CPU s (load ${load()})`);
    }
  }
  const loadAfter = load();
  const med = (impl, k) => (res[impl]?.length > 0 ? median(res[impl].map((m) => m[k])) : null);
  const ratio = (v, a) => (a ? Number((v / a).toFixed(3)) : null);
  for (const impl of impls) {
    if (res[impl].length === 0) continue;
    const v = med(impl, 'ops_per_s');
    const vc = med(impl, 'ops_per_cpu_s');
    out.push({
      bench: 'fileread',
      case: `${mode} qd${qd}`,
      impl,
      rounds,
      deadline,
      ops_per_s: Math.round(v),
      ops_per_cpu_s: Math.round(vc),
      mib_per_s: Math.round((v * (mode === 'seq1m' ? 1 << 20 : 4096)) / 2 ** 20),
      ratio_to_c: ratio(v, med('c_uring', 'ops_per_s')),
      ratio_to_c_cpu: ratio(vc, med('c_uring', 'ops_per_cpu_s')),
      ratio_to_readsync: ratio(v, med('readSync', 'ops_per_s')),
      ratio_to_fs_promises: ratio(v, med('fs_promises', 'ops_per_s')),
      load: `${loadBefore} -> ${loadAfter}`,
    });
  }
}
table(out.map(({ bench, rounds: _r, deadline: _d, ...r }) => r));
emit(out);
