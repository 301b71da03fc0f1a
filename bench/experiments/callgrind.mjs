// callgrind helpers shared by the instruction-count experiments (proxy-instructions.mjs,
// compat-instructions.mjs, http2-handoff-steady.mjs): callgrind_control, node's perf map (JIT code by name), and a dump's
// exclusive cost per function and per kind (JS by tier, V8 builtins, compiler, GC, addon, libc).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../lib.mjs';

export function control(pid, ...args) {
  execFileSync('callgrind_control', [...args, String(pid)], { stdio: 'ignore', timeout: 120_000 });
}

/** The perf map node wrote (--perf-basic-prof): sorted [start, end, name]; a later entry for the same start wins. */
export function perfMap(pid) {
  const byStart = new Map();
  let text = '';
  try {
    text = readFileSync(`/tmp/perf-${pid}.map`, 'latin1');
  } catch {
    // a server without JIT code (nginx): no map
  }
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) byStart.set(parseInt(m[1], 16), [parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]]);
  }
  return [...byStart.values()].sort((a, b) => a[0] - b[0]);
}

export function lookup(map, addr) {
  let lo = 0;
  let hi = map.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid][0] <= addr) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi >= 0 && addr < map[hi][1] ? map[hi][2] : undefined;
}

export const COMPILER = /v8::internal::(compiler|maglev|baseline|Compiler|OptimizingCompile|interpreter::BytecodeGenerator)|v8::internal::(Parser|Scanner)/;
export const GC = /v8::internal::(Scavenge|Heap|MarkCompact|MinorMarkCompact|Evacuat|PagedSpace|NewSpace|SemiSpace|Sweeper|ConcurrentMarking|MarkingVisitor|LocalAllocation|MemoryChunk|BodyDescriptorBase|PretenuringHandler)|heap::base::/;

/**
 * A callgrind dump (--dump-instr=yes) as { total, fns: Map<name, Ir>, kinds: Map<kind, Ir>, callers,
 * calls }: exclusive cost per function, JIT code named from the perf map; `callers`: callee name ->
 * Map(caller name -> inclusive Ir of those calls); `calls`: callee name -> number of calls into it (C++
 * callees named `fn [object]`). Positions are absolute (0x...), relative (+n, -n) or the same (*).
 */
export function parseDump(file, map, root) {
  const names = { ob: new Map(), fn: new Map() };
  const fns = new Map();
  const kinds = new Map();
  let ob = '';
  let fn = '';
  let cfn = '';
  let cob = '';
  let addr = 0;
  let skip = false;
  let callee = '';
  let total = 0;
  // callee name -> Map(caller name -> inclusive Ir of those calls)
  const callers = new Map();
  const calls = new Map();
  const short = (s) => s.replaceAll(`file://${root}/`, '').replaceAll(`${root}/`, '');
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    const c = line.charCodeAt(0);
    if (c === 48 || c === 43 || c === 45 || c === 42) {
      // 0x.., +n, -n, *: a cost line
      const sp = line.indexOf(' ');
      const pos = line.slice(0, sp);
      if (pos.startsWith('0x')) addr = parseInt(pos, 16);
      else if (c === 43) addr += parseInt(pos.slice(1), 10);
      else if (c === 45) addr -= parseInt(pos.slice(1), 10);
      if (skip) {
        skip = false;
        const incl = Number(line.split(' ')[2] ?? 0);
        const site = lookup(map, addr);
        const caller = site !== undefined ? short(site) : `${fn} [${ob.split('/').pop() || '???'}]`;
        let m = callers.get(callee);
        if (m === undefined) callers.set(callee, (m = new Map()));
        add(m, caller, incl);
        continue;
      }
      const parts = line.split(' ');
      const ir = Number(parts[2] ?? 0);
      if (!ir) continue;
      total += ir;
      const jit = lookup(map, addr);
      let name;
      let kind;
      if (jit !== undefined) {
        name = short(jit);
        kind = /^JS:\*/.test(jit) ? 'JS optimized (TurboFan)' : /^JS:\^/.test(jit) ? 'JS baseline (Sparkplug)' : /^JS:/.test(jit) ? 'JS interpreted' : /^BytecodeHandler:/.test(jit) ? 'bytecode handlers' : /^Builtin:/.test(jit) ? 'V8 builtins' : jit.split(':')[0];
      } else {
        const base = ob.split('/').pop() || '???';
        name = `${fn} [${base}]`;
        kind =
          base === 'ringio.node'
            ? 'addon'
            : /^lib(c|m|stdc\+\+|pthread|gcc_s)\b/.test(base)
              ? 'libc/libstdc++'
              : base !== 'node'
                ? base === '???' || base === ''
                  ? 'unknown code'
                  : base
                : COMPILER.test(fn)
                  ? 'V8 compiler (JIT warm-up, not per request)'
                  : GC.test(fn)
                    ? 'V8 GC'
                    : 'node/V8 C++ (runtime calls, ...)';
      }
      add(fns, name, ir);
      add(kinds, kind, ir);
      continue;
    }
    if (line.startsWith('calls=')) {
      // calls=<count> <target position>: the callee, by the perf map where it is JIT code or a builtin.
      const [count, target] = line.slice(6).split(' ');
      const t = target.startsWith('0x') ? parseInt(target, 16) : target.startsWith('+') ? addr + parseInt(target.slice(1), 10) : target.startsWith('-') ? addr - parseInt(target.slice(1), 10) : addr;
      const jit = lookup(map, t);
      callee = jit !== undefined ? short(jit) : `${cfn} [${(cob || ob).split('/').pop() || '???'}]`;
      add(calls, callee, Number(count));
      skip = true;
      continue;
    }
    const m = /^(ob|fn|cob|cfn|cfi|cfl|fl|fi|fe)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (m) {
      const table = m[1].endsWith('ob') ? names.ob : m[1].endsWith('fn') ? names.fn : undefined;
      if (table && m[3] !== undefined) table.set(m[2], m[3]);
      if (m[1] === 'ob') {
        ob = names.ob.get(m[2]) ?? '';
        cob = '';
      } else if (m[1] === 'fn') fn = names.fn.get(m[2]) ?? '';
      else if (m[1] === 'cfn') cfn = names.fn.get(m[2]) ?? '';
      else if (m[1] === 'cob') cob = names.ob.get(m[2]) ?? '';
    }
  }
  return { total, fns, kinds, callers, calls };
}

/**
 * Each function's median over several dumps (steadier than one window's: a GC or a compile moves a
 * window's total). `of` picks the map (default the functions; `(d) => d.kinds` for kinds) and `per(i)`
 * divides dump i's figures first (its requests, when windows served different numbers of them).
 */
export function fnMedians(dumps, { of = (d) => d.fns, per = () => 1 } = {}) {
  const names = new Set(dumps.flatMap((d) => [...of(d).keys()]));
  return new Map([...names].map((n) => [n, median(dumps.map((d, i) => (of(d).get(n) ?? 0) / per(i)))]));
}

/** Two servers' figures by name as [name, a, b], the largest differences first (a name one lacks counts 0). */
export function largestMoves(a, b) {
  return [...new Set([...a.keys(), ...b.keys()])].map((n) => [n, a.get(n) ?? 0, b.get(n) ?? 0]).sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]));
}

/**
 * After a run: with `keep`, copies the callgrind files of `dir` and node's perf map (which names the JIT
 * code in them: the addresses are this run's) there; removes the perf map in any case.
 */
export function keepDumps(dir, pid, keep) {
  if (keep) {
    mkdirSync(keep, { recursive: true });
    for (const f of readdirSync(dir)) if (f.startsWith('cg.')) execFileSync('cp', [join(dir, f), keep]);
    if (existsSync(`/tmp/perf-${pid}.map`)) execFileSync('cp', ['-f', `/tmp/perf-${pid}.map`, keep]);
  }
  rmSync(`/tmp/perf-${pid}.map`, { force: true });
}

/**
 * bench/compat.mjs's server of `kind` (`--serve`) for `impl` (node, or a ringio driver) from checkout
 * `root`, under callgrind with instrumentation off and one dump file per thread in `dir` (cg.PID.N-T);
 * resolves with the child once it listens on `port` (and, for ringio, on the driver asked for).
 */
export async function startCompatServer({ root, kind, impl, port, dir, nodeFlags = [] }) {
  const serve = ['--serve', kind, '--impl', impl === 'node' ? 'node' : 'ringio', '--port', String(port), ...(impl === 'node' ? [] : ['--driver', impl])];
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--dump-instr=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath, '--perf-basic-prof', ...nodeFlags, join(root, 'bench/compat.mjs'), ...serve],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: root },
  );
  let err = '';
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${impl} did not start: ${err.slice(-2000)}`)), 300_000);
    child.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      if (/ on 127\.0\.0\.1:\d+/.test(err)) {
        clearTimeout(timer);
        res();
      }
    });
    child.once('exit', (code) => rej(new Error(`${impl} exited (${code}): ${err.slice(-2000)}`)));
  });
  if (impl !== 'node' && !err.includes(`ringio ${impl}`)) throw new Error(`asked for ${impl}: ${err.trim()}`);
  return child;
}
