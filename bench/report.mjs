#!/usr/bin/env node
// `npm run bench:report`: runs the scenarios of bench/report-scenarios.mjs, one after another, and
// writes their tables into docs/benchmarks.md (the section between the bench:report markers; the
// hand-written text around it stays), their charts as SVG into docs/charts/ (vega-lite, rendered in
// Node), the raw results into docs/charts/report.json, and the headline chart's caption into README.md.
// Every figure names its run: date, kernel, CPU model, Node, mode, and the load average during it.
//
// Usage: node bench/report.mjs [--quick] [--only echo,http] [--render]
//   --quick   short runs (1 round, short measurements: a few minutes); without it, the full mode that
//             makes the published figures (5 interleaved rounds each)
//   --only    run these scenarios; the others keep their last results from report.json
//   --render  run nothing: redraw tables and charts from docs/charts/report.json
//   --data F, --doc F, --charts DIR, --readme F: other places than docs/charts/report.json,
//             docs/benchmarks.md, docs/charts/ and README.md (test/bench-report.test.ts uses them)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { has } from './lib.mjs';
import { HEADLINE, LABELS, SCENARIOS } from './report-scenarios.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? fallback : (argv[i + 1] ?? usage(`--${name} needs a value`));
};
const chartsDir = resolve(opt('charts', join(root, 'docs', 'charts')));
const dataFile = resolve(opt('data', join(chartsDir, 'report.json')));
const docFile = resolve(opt('doc', join(root, 'docs', 'benchmarks.md')));
const readmeFile = resolve(opt('readme', join(root, 'README.md')));
const BEGIN = '<!-- bench:report begin -->';
const END = '<!-- bench:report end -->';
const HEAD_BEGIN = '<!-- bench:headline begin -->';
const HEAD_END = '<!-- bench:headline end -->';

const known = new Set(['--quick', '--only', '--render', '--data', '--doc', '--charts', '--readme']);
for (let i = 0; i < argv.length; i++) {
  if (!known.has(argv[i])) usage(`unknown argument ${argv[i]}`);
  if (!['--quick', '--render'].includes(argv[i])) i++;
}
const mode = argv.includes('--quick') ? 'quick' : 'full';
const renderOnly = argv.includes('--render');
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? usage('--only needs a list of scenario ids')).split(',') : null;
for (const id of only ?? []) if (!SCENARIOS.some((s) => s.id === id)) usage(`--only: no scenario ${id} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);

function usage(msg) {
  console.error(`bench/report.mjs: ${msg}\nusage: node bench/report.mjs [--quick] [--only id,id] [--render] [--data F] [--doc F] [--charts DIR] [--readme F]`);
  process.exit(2);
}


// ---- running ------------------------------------------------------------------------------------

function machine() {
  const c = cpus();
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'addon', 'bench', 'examples'], { cwd: root, encoding: 'utf8' }).trim();
    if (dirty) commit += '+changes';
  } catch {
    /* not a git checkout */
  }
  return { kernel: release(), cpu: c[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown', cpus: c.length, node: process.version, commit };
}

async function runScenario(s) {
  const run = { mode, date: new Date().toISOString(), ...machine(), load_start: round2(loadavg()[0]) };
  const missing = (s.requires ?? []).filter((r) => !has(r.cmd));
  if (missing.length > 0) {
    const reason = missing.map((r) => `${r.cmd} is not installed (${r.hint})`).join('; ');
    console.error(`\n=== ${s.id}: skipped: ${reason}`);
    return { run, skipped: reason, rows: [] };
  }
  const args = s.args[mode];
  console.error(`\n=== ${s.id}: node ${s.script} ${args.join(' ')}`);
  const loads = [loadavg()[0]];
  const sampler = setInterval(() => loads.push(loadavg()[0]), 2000);
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, s.script), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c) => {
      err += c;
      process.stderr.write(c);
    });
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  clearInterval(sampler);
  loads.push(loadavg()[0]);
  run.seconds = Math.round((performance.now() - t0) / 1000);
  run.load_max = round2(Math.max(...loads));
  run.load_mean = round2(loads.reduce((a, b) => a + b, 0) / loads.length);
  const rows = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  if (code !== 0 || rows.length === 0) {
    const tail = stderr.trim().split('\n').slice(-3).join(' / ');
    console.error(`=== ${s.id}: failed (exit ${code}): ${tail}`);
    return { run, failed: `exit ${code}: ${tail}`, rows };
  }
  return { run, rows };
}

function round2(x) {
  return Math.round(x * 100) / 100;
}

// ---- rendering ----------------------------------------------------------------------------------

const label = (v) => LABELS[v] ?? String(v);

/** The run, in three short lines (chart subtitles); joined, one line (markdown). */
function runLines(run) {
  const when = run.date.replace('T', ' ').slice(0, 16) + ' UTC';
  const busy = run.load_max > run.cpus ? ` (above ${run.cpus} CPUs: shared, busy; read the ratios)` : '';
  return [
    `${run.mode} run, ${when}${run.commit ? `, commit ${run.commit}` : ''}`,
    `Linux ${run.kernel}, ${run.cpu} ×${run.cpus}, Node ${run.node}`,
    `load average ${run.load_start} at start, ${run.load_mean} mean, ${run.load_max} max${busy}`,
  ];
}

const runLine = (run) => runLines(run).join('; ');

function fmt(v, kind) {
  if (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v))) return '—';
  switch (kind) {
    case 'int':
      return Math.round(v).toLocaleString('en-US');
    case 'ratio':
      return Number(v).toFixed(Math.abs(v) < 10 ? 2 : 1) + '×';
    case 'fixed1':
      return Number(v).toFixed(1);
    case 'fixed2':
      return Number(v).toFixed(2);
    default:
      return typeof v === 'string' ? label(v) : String(v);
  }
}

function markdownTable(s, rows) {
  const columns = s.columns ?? Object.keys(rows[0] ?? {}).map((field) => ({ field, title: field }));
  const head = `| ${columns.map((c) => c.title).join(' | ')} |`;
  const sep = `|${columns.map((c) => (c.fmt && c.fmt !== 'text' ? '---:' : '---')).join('|')}|`;
  const body = rows.map((r) => `| ${columns.map((c) => fmt(r[c.field], c.fmt)).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}

async function chartSvg(chart, rows, run) {
  const values = rows.filter(chart.filter ?? (() => true)).map((r) => ({ ...r, series: label(r[chart.series]) }));
  const order = [...new Set(values.map((v) => v.series))];
  const axisX = chart.x.log ? { values: [...new Set(values.map((v) => v[chart.x.field]))].sort((a, b) => a - b) } : { labelAngle: 0 };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 560,
    height: 280,
    background: 'white',
    padding: 12,
    title: { text: chart.title, subtitle: runLines(run), anchor: 'start', fontSize: 15, subtitleFontSize: 10, subtitleColor: '#555' },
    data: { values },
    config: { font: 'Helvetica, Arial, sans-serif', legend: { orient: 'right', labelLimit: 200 } },
  };
  const color = { field: 'series', type: 'nominal', title: null, sort: order, scale: { scheme: 'tableau10' } };
  if (chart.kind === 'bar') {
    const x = { field: 'series', type: 'nominal', title: chart.x.title, sort: order, axis: { labelAngle: 0 } };
    const y = { field: chart.y.field, type: 'quantitative', title: chart.y.title };
    spec.layer = [
      { mark: { type: 'bar' }, encoding: { x, y, color: { ...color, legend: null } } },
      { mark: { type: 'text', dy: -6, fontSize: 11 }, encoding: { x, y, text: { field: chart.y.field, type: 'quantitative', format: ',.0f' } } },
    ];
  } else {
    spec.mark = { type: 'line', point: { size: 50 }, strokeWidth: 2 };
    spec.encoding = {
      x: { field: chart.x.field, type: 'quantitative', title: chart.x.title, scale: chart.x.log ? { type: 'log', base: 2 } : {}, axis: axisX },
      y: { field: chart.y.field, type: 'quantitative', title: chart.y.title, scale: chart.y.log ? { type: 'log' } : { zero: true } },
      color,
    };
  }
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

function replaceBetween(text, begin, end, body, fallbackInsert) {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) return text.slice(0, a) + begin + '\n' + body + '\n' + text.slice(b);
  return fallbackInsert(`${begin}\n${body}\n${end}`);
}

async function render(data) {
  mkdirSync(chartsDir, { recursive: true });
  const md = [
    '<!-- Generated by `npm run bench:report` (bench/report.mjs; scenarios in bench/report-scenarios.mjs). Edits between the markers are overwritten. -->',
    '## Report: charts and tables from `npm run bench:report`',
    '',
    '`npm run bench:report -- --quick` runs every scenario below in a few minutes (one round, short',
    'measurements: indicative only); `npm run bench:report` (full mode: five interleaved rounds, longer',
    'measurements) makes the published figures. Both rewrite this section and the SVG charts in',
    `[${relative(root, chartsDir)}/](${relative(dirname(docFile), chartsDir)}/) (raw results: [${relative(chartsDir, dataFile)}](${relative(dirname(docFile), dataFile)})). Each figure and table names its`,
    'run. A load average above the CPU count means other work shared the machine: the absolute figures are',
    'then low and noisy, and the ratios to the anchor measured in the same run are what to read.',
  ];
  let headline = null;
  for (const s of SCENARIOS) {
    const res = data.scenarios[s.id];
    md.push('', `### ${s.title}`, '');
    if (!res) {
      md.push(`Not run yet: \`node bench/report.mjs --only ${s.id}\`.`);
      continue;
    }
    md.push(`Run: ${runLine(res.run)}.`, '', `\`node ${s.script} ${s.args[res.run.mode].join(' ')}\``);
    if (s.about) md.push('', s.about);
    if (res.skipped) {
      md.push('', `**Skipped:** ${res.skipped}.`);
      continue;
    }
    if (res.failed) md.push('', `**The run failed** (${res.failed}); the rows below are what it measured before that.`);
    const rows = res.rows.map(s.prepare ?? ((r) => r));
    if (rows.length === 0) continue;
    for (const chart of s.charts ?? []) {
      writeFileSync(join(chartsDir, chart.file), await chartSvg(chart, rows, res.run));
      md.push('', `![${chart.title}](${relative(dirname(docFile), join(chartsDir, chart.file))})`);
      if (chart.file === HEADLINE) headline = { chart, run: res.run };
    }
    md.push('', markdownTable(s, rows));
    const notes = s.notes ? s.notes(res.rows) : [];
    if (notes.length > 0) md.push('', ...notes.map((n) => `- ${n}`));
  }
  const doc = readFileSync(docFile, 'utf8');
  writeFileSync(
    docFile,
    replaceBetween(doc, BEGIN, END, md.join('\n'), (block) => {
      const at = doc.indexOf('\n## ');
      return at < 0 ? doc + '\n' + block + '\n' : doc.slice(0, at + 1) + block + '\n\n' + doc.slice(at + 1);
    }),
  );
  if (headline) {
    const readme = readFileSync(readmeFile, 'utf8');
    const body = [
      `![${headline.chart.title}](${relative(dirname(readmeFile), join(chartsDir, headline.chart.file))})`,
      '',
      `${headline.chart.title}: ${runLine(headline.run)}. All figures, their runs and`,
      `how to reproduce them: [${relative(dirname(readmeFile), docFile)}](${relative(dirname(readmeFile), docFile)}) (\`npm run bench:report\`).`,
    ].join('\n');
    if (readme.includes(HEAD_BEGIN)) writeFileSync(readmeFile, replaceBetween(readme, HEAD_BEGIN, HEAD_END, body, (b) => b));
    else console.error(`README.md has no ${HEAD_BEGIN} marker: the headline chart is not linked from it`);
  }
  console.error(`\nwrote ${relative(root, docFile)}, ${relative(root, chartsDir)}/*.svg, ${relative(root, dataFile)}`);
}

// ---- main -------------------------------------------------------------------------------------

const saved = existsSync(dataFile) ? JSON.parse(readFileSync(dataFile, 'utf8')) : { scenarios: {} };

if (!renderOnly) {
  for (const s of SCENARIOS) {
    if (only && !only.includes(s.id)) continue;
    saved.scenarios[s.id] = await runScenario(s);
    mkdirSync(chartsDir, { recursive: true });
    writeFileSync(dataFile, JSON.stringify(saved, null, 1) + '\n'); // after each: a later failure keeps it
  }
}
await render(saved);
