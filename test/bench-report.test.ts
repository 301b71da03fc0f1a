// bench/report.mjs --render on made-up results in a temp folder: it writes the generated section between
// its markers without touching the hand-written text around it (inserting it the first time, replacing
// it after), draws every chart as SVG naming its run, marks skipped scenarios, and sets the README's
// headline block. No benchmark runs here (they live in bench/, never in tests).
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

const runInfo = (date: string) => ({
  mode: 'quick',
  date,
  kernel: '6.1.99-test',
  cpu: 'Test CPU 9000',
  cpus: 2,
  node: 'v20.0.0',
  commit: 'abc1234',
  load_start: 7.5,
  load_mean: 8.25,
  load_max: 9,
  seconds: 12,
});

function results(msgs: number) {
  const echo = [];
  for (const conns of [1, 16, 64])
    for (const [server, k] of [['node_net', 1], ['ringio_uring', 1.5], ['ringio_epoll', 1.2], ['c_uring', 2]] as const)
      echo.push({ bench: 'echo', server, conns, size: 64, rounds: 1, msgs_per_s: Math.round(msgs * k * conns ** 0.5), ratio_to_node_net: k, server_cpu_us_per_msg: 10 / k, cpu_ratio_to_c_uring: 2 / k, loadgen: 'c', p50_us: 100, p99_us: conns === 64 ? 39990 : 900 });
  const fileread = [];
  for (const qd of [1, 16, 64])
    for (const [impl, k] of [['ringio_uring', 3], ['fs_promises', 1], ['c_uring', 4]] as const)
      fileread.push({ bench: 'fileread', case: `rand4k qd${qd}`, impl, rounds: 1, deadline: 'timer', ops_per_s: 1000 * k * qd, mib_per_s: 4 * k * qd, ratio_to_fs_promises: k, ratio_to_c: k / 4 });
  return {
    scenarios: {
      echo: { run: runInfo('2026-01-02T03:04:05.000Z'), rows: echo },
      http: { run: runInfo('2026-01-02T03:05:00.000Z'), skipped: 'wrk is not installed (apt-get install wrk)', rows: [] },
      fileread: { run: runInfo('2026-01-02T03:06:00.000Z'), rows: fileread },
    },
  };
}

test('bench:report --render writes the tables and SVG charts between its markers, keeps the hand-written text, and names each run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringio-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const doc = join(dir, 'benchmarks.md');
  const readme = join(dir, 'README.md');
  const data = join(dir, 'charts', 'report.json');
  writeFileSync(doc, '# Benchmarks\n\nHand-written intro.\n\n## `node bench/nop.mjs`\n\nHand-written nop figures.\n');
  writeFileSync(readme, '# x\n\n<!-- bench:headline begin -->\nold\n<!-- bench:headline end -->\n\nafter\n');
  const args = [join(root, 'bench', 'report.mjs'), '--render', '--data', data, '--doc', doc, '--charts', join(dir, 'charts'), '--readme', readme];

  mkdirSync(join(dir, 'charts'));
  writeFileSync(data, JSON.stringify(results(1000)));
  await run(process.execPath, args, { cwd: dir, timeout: 60_000 });
  const first = readFileSync(doc, 'utf8');
  t.true(first.startsWith('# Benchmarks\n\nHand-written intro.\n'), first.slice(0, 200));
  t.true(first.includes('## `node bench/nop.mjs`\n\nHand-written nop figures.'));
  t.true(first.indexOf('<!-- bench:report begin -->') < first.indexOf('## `node bench/nop.mjs`'), 'the section goes before the first hand-written scenario');
  t.regex(first, /Run: quick run, 2026-01-02 03:04 UTC, commit abc1234; Linux 6\.1\.99-test, Test CPU 9000 ×2, Node v20\.0\.0; load average 7\.5 at start, 8\.25 mean, 9 max \(above 2 CPUs/);
  t.regex(first, /\| ringio \(io_uring\) \| 16 \| 6,000 \| 1\.50× \|/);
  t.regex(first, /≥ 40,000/);
  t.regex(first, /\*\*Skipped:\*\* wrk is not installed \(apt-get install wrk\)\./);
  t.regex(first, /!\[TCP echo throughput \(64 B messages\)\]\(charts\/echo-throughput\.svg\)/);

  for (const f of ['echo-throughput.svg', 'echo-p99.svg', 'fileread-qd.svg']) {
    const svg = readFileSync(join(dir, 'charts', f), 'utf8');
    t.true(svg.startsWith('<svg'), f);
    t.true(svg.includes('Test CPU 9000'), `${f} names the CPU of its run`);
    t.true(svg.includes('load average 7.5 at start'), `${f} names the load of its run`);
    t.true(svg.includes('ringio (io_uring)'), `${f} has the ringio series`);
  }
  t.false(existsSync(join(dir, 'charts', 'http-rps.svg')), 'a skipped scenario draws no chart');
  const head = readFileSync(readme, 'utf8');
  t.regex(head, /<!-- bench:headline begin -->\n!\[TCP echo throughput \(64 B messages\)\]\(charts\/echo-throughput\.svg\)\n/);
  t.false(head.includes('\nold\n'));
  t.true(head.endsWith('<!-- bench:headline end -->\n\nafter\n'));

  // A second render replaces the section (once), with the new figures.
  writeFileSync(data, JSON.stringify(results(2000)));
  await run(process.execPath, args, { cwd: dir, timeout: 60_000 });
  const second = readFileSync(doc, 'utf8');
  t.is(second.split('<!-- bench:report begin -->').length, 2);
  t.regex(second, /\| ringio \(io_uring\) \| 16 \| 12,000 \| 1\.50× \|/);
  t.false(second.includes('| 6,000 |'));
  t.true(second.startsWith('# Benchmarks\n\nHand-written intro.\n'));
  t.true(second.includes('Hand-written nop figures.'));
});

test('bench:report refuses unknown arguments and scenario ids', async (t) => {
  const report = join(root, 'bench', 'report.mjs');
  for (const args of [['--bogus'], ['--only', 'nope', '--render']]) {
    const err = await run(process.execPath, [report, ...args], { cwd: root, timeout: 30_000 }).then(
      () => null,
      (e: { code?: number; stderr?: string }) => e,
    );
    t.is(err?.code, 2, args.join(' '));
    t.regex(err?.stderr ?? '', /usage: node bench\/report\.mjs/);
  }
});
