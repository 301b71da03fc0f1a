#!/usr/bin/env node
// Type-checks every TypeScript and JavaScript code block in README.md and docs/ (every *.md, so pages
// added later are covered) that imports a @ringio/* package, the way a user would paste it: each block
// becomes a module of its own, type-checked in strict mode against the built packages (dist/*.d.ts;
// run `tsc -b` first). JS blocks are checked too (checkJs). Blocks that import no @ringio/* package
// (signatures, fragments such as a read loop) are not checked.
//
// A deliberately partial block (one that uses names it does not define) is marked on the line before
// its fence with <!-- typecheck: partial -->: it is reported as skipped, not checked.
//
// Usage: node scripts/check-doc-blocks.mjs [file.md ...]   (default: README.md, docs/**/*.md)
// Prints TAP (one entry per block, named file:line) and exits non-zero when a block fails.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { report, root, runTsc } from './lib/tsc.mjs';

const LANGS = { js: 'mjs', javascript: 'mjs', mjs: 'mjs', ts: 'ts', typescript: 'ts', mts: 'ts' };
const MARKER = /<!--\s*typecheck:\s*(partial|skip)\b[^>]*-->/;
const IMPORTS_RINGIO = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]@ringio\//;

function markdownFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  if (existsSync(join(root, 'README.md'))) out.push(join(root, 'README.md'));
  if (existsSync(join(root, 'docs'))) walk(join(root, 'docs'));
  const pkgs = join(root, 'packages');
  if (existsSync(pkgs)) {
    for (const p of readdirSync(pkgs)) if (existsSync(join(pkgs, p, 'README.md'))) out.push(join(pkgs, p, 'README.md'));
  }
  return out.sort();
}

/** The fenced code blocks of a Markdown text: { lang, line (1-based, of the first code line), code, marker }. */
export function codeBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j];
      if (l.trimStart().startsWith(fence[0].repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === '') k--;
    const m = k >= 0 ? MARKER.exec(lines[k]) : null;
    blocks.push({ lang: lang.toLowerCase(), line: i + 2, code: body.join('\n'), marker: m ? m[1] : undefined });
    i = j;
  }
  return blocks;
}

const args = process.argv.slice(2);
const files = args.length > 0 ? args.map((f) => resolve(f)) : markdownFiles();
const outDir = join(root, 'dist', 'doc-blocks');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const entries = [];
for (const file of files) {
  const rel = relative(root, file);
  for (const b of codeBlocks(readFileSync(file, 'utf8'))) {
    const ext = LANGS[b.lang];
    if (ext === undefined || !IMPORTS_RINGIO.test(b.code)) continue;
    const name = `${rel}:${b.line - 1} (${b.lang})`;
    if (b.marker !== undefined) {
      entries.push({ name, skip: `marked ${b.marker}` });
      continue;
    }
    const out = join(outDir, `${rel.replace(/[^\w.-]+/g, '_')}-L${b.line}.${ext}`);
    writeFileSync(out, b.code + '\n');
    entries.push({ name, out, rel, line: b.line, ok: true, details: [] });
  }
}

const checked = entries.filter((e) => e.out !== undefined);
// TS blocks: strict. JS blocks: strict too, except the two checks a JS program cannot answer without
// JSDoc annotations (implicit any parameters, `unknown` catch variables); everything else (an `unknown`
// ctx.shared, a missing method, a wrong argument) is reported for JS as for TS.
const projects = [
  { name: 'tsconfig.ts.json', include: ['*.ts'], options: {} },
  { name: 'tsconfig.js.json', include: ['*.mjs'], options: { noImplicitAny: false, useUnknownInCatchVariables: false } },
];
const runs = [];
for (const p of projects) {
  const ext = p.include[0].slice(1);
  if (!checked.some((e) => e.out.endsWith(ext))) continue;
  writeFileSync(
    join(outDir, p.name),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'ESNext.Disposable'],
        types: ['node'],
        strict: true,
        allowJs: true,
        checkJs: true,
        noEmit: true,
        skipLibCheck: true,
        esModuleInterop: true,
        // Every block is its own module: names may repeat across blocks.
        moduleDetection: 'force',
        ...p.options,
      },
      include: p.include,
    }),
  );
  runs.push(runTsc(join(outDir, p.name)));
}
const byFile = new Map();
const other = [];
for (const r of await Promise.all(runs)) {
  for (const [f, d] of r.byFile) byFile.set(f, d);
  other.push(...r.other);
}
for (const e of checked) {
  const diags = byFile.get(e.out) ?? [];
  if (diags.length > 0) {
    e.ok = false;
    e.details = diags.map((d) => `${e.rel}:${e.line + d.line - 1}:${d.col}: ${d.text}`);
  }
}
const stray = [...byFile.keys()].filter((f) => !checked.some((e) => e.out === f));
if (other.length > 0 || stray.length > 0) {
  entries.push({
    name: 'tsc ran cleanly',
    ok: false,
    details: [...other, ...stray.flatMap((f) => byFile.get(f).map((d) => `${relative(root, f)}:${d.line}: ${d.text}`))],
  });
}

const failed = report('doc blocks: TypeScript and JavaScript blocks that import @ringio/*', entries);
process.exit(failed > 0 ? 1 : 0);
