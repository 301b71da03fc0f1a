/**
 * The API docs list what the packages export, and nothing else: for every docs/api/<page>.md whose title
 * names a package `@ringio/<pkg>` that exists as packages/<pkg> (pages for packages not written yet, and
 * packages without a page yet, are left alone), every name packages/<pkg>/src/index.ts exports (values
 * and types, read with the TypeScript compiler) appears in that package's pages as code, and every name a
 * code example in docs/api or the README imports from `@ringio/<pkg>` is a real export.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
const apiDir = join(root, 'docs', 'api');

/** Every name each module exports (values and types), as the compiler sees them: one program for all. */
function exportsOf(indexFiles: string[]): Map<string, Set<string>> {
  const program = ts.createProgram(indexFiles, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const out = new Map<string, Set<string>>();
  for (const f of indexFiles) {
    const sf = program.getSourceFile(f);
    if (sf === undefined) throw new Error(`cannot read ${f}`);
    const sym = checker.getSymbolAtLocation(sf);
    out.set(f, new Set(sym === undefined ? [] : checker.getExportsOfModule(sym).map((x) => x.getName())));
  }
  return out;
}

/** The package a page documents, from its title "# `@ringio/<pkg>` ...". */
function packageOf(page: string): string | undefined {
  const first = readFileSync(join(apiDir, page), 'utf8').split('\n', 1)[0]!;
  return /^#\s+`@ringio\/([a-z0-9-]+)`/.exec(first)?.[1];
}

/** Names imported from `@ringio/<pkg>` by the import statements in the markdown's code blocks. */
function importsIn(md: string): { pkg: string; name: string }[] {
  const out: { pkg: string; name: string }[] = [];
  for (const block of md.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    for (const m of block[1]!.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'@ringio\/([a-z0-9-]+)'/g)) {
      for (const part of m[1]!.split(',')) {
        const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!.trim();
        if (name !== '') out.push({ pkg: m[2]!, name });
      }
    }
  }
  return out;
}

const pages = existsSync(apiDir) ? readdirSync(apiDir).filter((f) => f.endsWith('.md')) : [];
const byPackage = new Map<string, string[]>();
for (const page of pages) {
  const pkg = packageOf(page);
  if (pkg === undefined) continue;
  byPackage.set(pkg, [...(byPackage.get(pkg) ?? []), page]);
}
const indexOf = (pkg: string): string => join(root, 'packages', pkg, 'src', 'index.ts');
const documented = [...byPackage].filter(([pkg]) => existsSync(indexOf(pkg)));
const allPackages = existsSync(join(root, 'packages')) ? readdirSync(join(root, 'packages')).filter((p) => existsSync(indexOf(p))) : [];
const allExports = exportsOf(allPackages.map(indexOf));
const exportsFor = (pkg: string): Set<string> => allExports.get(indexOf(pkg)) ?? new Set();

test('the docs/api pages name their packages, and the packages the tests know about have pages', (t) => {
  t.true(documented.length >= 4, `pages with a package: ${documented.map(([p, pg]) => `${p}: ${pg.join(', ')}`).join('; ')}`);
  for (const pkg of ['runtime', 'net', 'fs', 'compat']) t.true(byPackage.has(pkg), `docs/api has a page for @ringio/${pkg}`);
});

for (const [pkg, pgs] of documented) {
  test(`every export of @ringio/${pkg} is documented in ${pgs.join(' + ')}`, (t) => {
    const text = pgs.map((p) => readFileSync(join(apiDir, p), 'utf8')).join('\n');
    const spans = [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).join('\n');
    const blocks = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n');
    const code = spans + '\n' + blocks;
    const exported = exportsFor(pkg);
    t.true(exported.size > 0, `packages/${pkg}/src/index.ts exports something`);
    const missing = [...exported].filter((name) => !new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/\$/g, '\\$')}([^A-Za-z0-9_$]|$)`, 'm').test(code));
    t.log(`${exported.size} exports`);
    t.deepEqual(missing, [], `exported by packages/${pkg}/src/index.ts but not in ${pgs.join(', ')}`);
  });
}

test('every name the docs import from a @ringio package is exported by it', (t) => {
  const sources = [...pages.map((p) => join(apiDir, p)), join(root, 'README.md')];
  let checked = 0;
  const wrong: string[] = [];
  for (const file of sources) {
    for (const { pkg, name } of importsIn(readFileSync(file, 'utf8'))) {
      if (!existsSync(indexOf(pkg))) continue; // a package not written yet
      checked++;
      if (!exportsFor(pkg).has(name)) wrong.push(`${file.slice(root.length)}: ${name} from @ringio/${pkg}`);
    }
  }
  t.true(checked > 20, `${checked} imported names checked`);
  t.deepEqual(wrong, [], 'imported in the docs but not exported');
});
