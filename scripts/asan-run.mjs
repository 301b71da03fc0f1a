#!/usr/bin/env node
// Runs test files against the sanitizer build of the addon (npm run build:asan first): node itself is
// not instrumented, so libasan and libubsan are preloaded (LD_PRELOAD) and leak detection, which would
// report node's own allocations at exit, is off (detect_leaks=0). Every process of the run, fixtures
// and workers included, writes its sanitizer reports to files in one folder; any report fails the run.
//
// Usage: node scripts/asan-run.mjs [--driver uring|epoll|both] [test files under dist/test...]
// Default files: the native-heavy tests (teardown, GC, worker exit, cancellation, the fuzz short run)
// and the TLS tests (the addon's sessions under TlsStream, @ringio/http, compat and the proxy).
// curl runs without the preload (it hangs with libasan in it: see UNPRELOADED).
// Ends with "N passed, N failed, N skipped, N sanitizer reports".
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  options: { driver: { type: 'string', default: process.env.RINGIO_DRIVER || 'both' } },
  allowPositionals: true,
});
const DEFAULT_FILES = [
  'dist/test/runtime-driver.test.js', // driver setup and teardown, exits with work in flight
  'dist/test/runtime-ops.test.js', // ops, cancellation, close with ops in flight
  'dist/test/runtime-worker.test.js', // runtimes in workers, terminate() with ops in flight
  'dist/test/gc-pipe-reads.test.js', // buffers moved and collected while the kernel holds them
  'dist/test/gc-net-reads.test.js',
  'dist/test/threads-blocking.test.js', // spawnBlocking workers aborted and terminated
  'dist/test/fuzz-ops.test.js', // the fuzz short run
  // TLS (addon/tls.cc: sessions over memory BIOs, handshakes, records, contexts and SNI), under each user:
  'dist/test/net-tls.test.js', // TlsStream: handshake failures, close mid-read, a worker exiting with sessions open
  'dist/test/net-tls-chunks.test.js',
  'dist/test/net-tls-records.test.js', // records split and partial, reads of 1 byte through 64 KiB
  'dist/test/http-tls.test.js',
  'dist/test/compat-secure.test.js', // listenSecure
  'dist/test/compat-tls.test.js',
  'dist/test/compat-h2-https.test.js', // listenSecure under h2load: 3,000 requests on 16 TLS connections
  'dist/test/proxy-tls.test.js', // the proxy's TLS listener and https:// upstreams, in a child process
];
const files = positionals.length > 0 ? positionals : DEFAULT_FILES;
// Tests whose assertions are time bounds (wall-clock limits, a Node timer racing a runtime timer): the
// sanitizers slow native code several times over, so they prove nothing here and fail on a busy
// machine. They run, unsanitized, in npm test.
const TIMED = [
  'stats() fields have the right types, and counters follow the work done',
  'the process exits by itself once start() has resolved',
  'a pending runtime sleep keeps the process alive until it fires',
  'an idle runtime uses no CPU',
  'a 300 ms CPU job leaves sleep(10) on the runtime thread within 30 ms',
];
const exclude = TIMED.flatMap((title) => ['--match', `!${title}`]);
const drivers = values.driver === 'both' ? ['uring', 'epoll'] : [values.driver];

const addon = join(root, 'build-asan', 'build', 'Release', 'ringio.node');
if (!existsSync(addon)) {
  console.error(`no sanitizer build at ${addon}: run npm run build:asan`);
  process.exit(2);
}
const lib = (name) => execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
const preload = [lib('libasan.so'), lib('libubsan.so')];
for (const p of preload) {
  if (!existsSync(p)) {
    console.error(`${p} not found (install gcc's sanitizer runtimes: apt-get install libgcc-$(gcc -dumpversion)-dev)`);
    process.exit(2);
  }
}
const logs = mkdtempSync(join(tmpdir(), 'ringio-asan-'));
// Tools the tests run that hang with libasan preloaded: curl (7.88, glibc 2.36) blocks for ever in its
// main()'s setlocale() on glibc's setlocale lock (`LD_PRELOAD=libasan.so curl --version` alone never
// returns), so a test that runs curl never ends. They are not ringio's code: a shim folder first on PATH
// runs each without the preload.
const UNPRELOADED = ['curl'];
const shims = join(logs, 'bin');
mkdirSync(shims);
for (const tool of UNPRELOADED) {
  let real;
  try {
    real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
  } catch {
    continue; // not installed: the tests that need it skip
  }
  writeFileSync(join(shims, tool), `#!/bin/sh\nunset LD_PRELOAD\nexec '${real}' "$@"\n`);
  chmodSync(join(shims, tool), 0o755);
}
const env = {
  ...process.env,
  PATH: `${shims}:${process.env.PATH}`,
  RINGIO_ADDON: addon,
  LD_PRELOAD: preload.join(' '),
  ASAN_OPTIONS: `detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=${join(logs, 'asan')}`,
  UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${join(logs, 'ubsan')}`,
};

// Preflight: the sanitizer build is the one that loads, and it is instrumented.
const probe = execFileSync(
  process.execPath,
  ['--input-type=module', '-e', "await import('@ringio/runtime'); const fs = await import('node:fs'); process.stdout.write(fs.readFileSync('/proc/self/maps', 'utf8'));"],
  { cwd: root, env, encoding: 'utf8' },
);
if (!probe.includes(addon)) throw new Error(`the sanitizer build did not load (RINGIO_ADDON=${addon})`);
if (!/libasan/.test(probe)) throw new Error('libasan is not mapped: LD_PRELOAD did not take');
const image = readFileSync(addon, 'latin1');
if (!image.includes('__asan_report_') || !image.includes('__ubsan_handle_')) throw new Error(`${addon} is not instrumented`);
// The shims take: each tool answers within seconds under the run's environment (a hang here would be
// a test file that registers nothing and ends at ava's timeout).
for (const tool of readdirSync(shims)) {
  execFileSync(tool, ['--version'], { env, stdio: 'ignore', timeout: 10_000 });
}
console.log(`sanitizer build loaded: ${addon} (LD_PRELOAD=${env.LD_PRELOAD})`);

let passed = 0;
let failed = 0;
let skipped = 0;
for (const driver of drivers) {
  const out = await new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'scripts', 'test.mjs'), ...exclude, ...files], {
      cwd: root,
      env: { ...env, RINGIO_DRIVER: driver },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (c) => {
      process.stdout.write(c);
      text += c;
    });
    child.on('close', () => resolve(text));
  });
  const m = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?/m.exec(out.split('\n').reverse().join('\n'));
  if (m === null) failed++;
  else {
    passed += Number(m[1]);
    failed += Number(m[2]);
    skipped += Number(m[3] ?? 0);
  }
}

const reports = readdirSync(logs).filter((f) => f !== 'bin' && readFileSync(join(logs, f), 'utf8').trim() !== '');
for (const f of reports) {
  console.log(`\n--- sanitizer report ${f} ---\n${readFileSync(join(logs, f), 'utf8')}`);
}
rmSync(logs, { recursive: true, force: true });
console.log('');
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped, ${reports.length} sanitizer reports`);
process.exit(failed > 0 || reports.length > 0 ? 1 : 0);
