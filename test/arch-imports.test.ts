/**
 * The import graph of every package under packages/ (docs/design/layers.md): no import circles, and
 * imports point only down, between packages (runtime → net / fs → compat → http → service → proxy) and
 * between the layers inside @ringio/runtime (base → driver → ops → core → runtime.ts → context.ts →
 * time / fd / threads → start.ts → entry points). Reads the sources with the TypeScript parser, so
 * `import type` counts too: a type that points up is a layer crossed all the same.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const packagesDir = join(root, 'packages');

/**
 * Package layers, low to high. A package imports only packages of a lower layer. compat sits beside net
 * (it wraps net's streams) and below http. A new package must be given a layer here.
 */
const PACKAGE_LAYER: Record<string, number> = {
  runtime: 0,
  net: 1,
  fs: 1,
  compat: 2,
  http: 3,
  service: 4,
  proxy: 5,
};

/**
 * Layers inside @ringio/runtime, low to high (paths relative to src/, first match wins). A file imports
 * only files of its own layer or lower ones; circles are caught separately.
 */
const RUNTIME_LAYERS: [RegExp, number, string][] = [
  [/^(errors|addon|validate|live-list)\.ts$/, 0, 'base'],
  [/^(driver\/.*|op)\.ts$/, 1, 'driver'],
  [/^ops\/.*\.ts$/, 2, 'ops'],
  [/^(executor|task|timers|sys|recv-pool|tls-native|threads\/(doorbell|cell|codec|wire|module-spec))\.ts$/, 3, 'core'],
  [/^runtime\.ts$/, 4, 'runtime'],
  [/^context\.ts$/, 5, 'context'],
  [/^(time|fd|fd-handle|threads\/.*)\.ts$/, 6, 'services over the runtime'],
  [/^start\.ts$/, 7, 'start'],
  [/^(index|thread-entry|blocking-entry)\.ts$/, 8, 'entry points'],
];

interface Edge {
  from: string; // repo-relative file
  spec: string;
  to?: string; // repo-relative file, for relative imports
  pkg?: string; // target package folder name, for @ringio/* imports
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Package folder names by npm name (@ringio/net -> net). */
function packageNames(): Map<string, string> {
  const m = new Map<string, string>();
  for (const dir of readdirSync(packagesDir)) {
    const pj = join(packagesDir, dir, 'package.json');
    if (!existsSync(pj)) continue;
    m.set((JSON.parse(readFileSync(pj, 'utf8')) as { name: string }).name, dir);
  }
  return m;
}

function importsOf(file: string, names: Map<string, string>): Edge[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const from = relative(root, file);
  const edges: Edge[] = [];
  const add = (spec: string, typeOnly: boolean): void => {
    const e: Edge = { from, spec, typeOnly };
    if (spec.startsWith('.')) {
      let target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (!target.endsWith('.ts')) target = join(target, 'index.ts');
      e.to = relative(root, target);
    } else {
      const m = /^(@[^/]+\/[^/]+|[^@/][^/]*)/.exec(spec);
      const pkg = m ? names.get(m[1]!) : undefined;
      if (pkg === undefined) return; // node: builtins and third-party packages
      e.pkg = pkg;
    }
    edges.push(e);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      // `import { type A, type B }` is as type-only as `import type { A, B }`.
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((el) => el.isTypeOnly)));
      add(node.moduleSpecifier.text, allTypes);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.isTypeOnly);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0]!)
    ) {
      add(node.arguments[0].text, false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

function graph(): { files: string[]; edges: Edge[]; packages: string[] } {
  const names = packageNames();
  const packages = [...names.values()].sort();
  const files: string[] = [];
  const edges: Edge[] = [];
  for (const pkg of packages) {
    const src = join(packagesDir, pkg, 'src');
    if (!existsSync(src)) continue;
    for (const f of tsFiles(src)) {
      files.push(relative(root, f));
      edges.push(...importsOf(f, names));
    }
  }
  return { files, edges, packages };
}

/** One circle per strongly connected component, as a path a → b → ... → a (Tarjan, then a shortest path). */
function circles(nodes: string[], next: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      const self = (next.get(v) ?? []).includes(v);
      if (scc.length > 1 || self) out.push(pathIn(new Set(scc), v, next));
    }
  };
  for (const n of nodes) if (!idx.has(n)) strong(n);
  return out;
}

/** A shortest circle through `start` inside one strongly connected component. */
function pathIn(scc: Set<string>, start: string, next: Map<string, string[]>): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of next.get(v) ?? []) {
      if (!scc.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = prev.get(x)!) path.splice(1, 0, x);
        path.push(start);
        return path;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

function runtimeLayer(file: string): [number, string] | undefined {
  const rel = file.replace(/^packages\/runtime\/src\//, '');
  for (const [re, layer, name] of RUNTIME_LAYERS) if (re.test(rel)) return [layer, name];
  return undefined;
}

const g = graph();

test('the walk sees every package and the imports inside them', (t) => {
  t.true(g.packages.includes('runtime') && g.packages.includes('net') && g.packages.includes('fs'));
  t.true(g.files.length > 50, `${g.files.length} files`);
  // Sanity: edges of each kind were found (a parser that saw nothing would pass everything below).
  t.true(g.edges.some((e) => e.pkg === 'runtime' && e.from.startsWith('packages/net/')));
  t.true(g.edges.some((e) => e.to === 'packages/runtime/src/errors.ts'));
  t.true(g.edges.some((e) => e.typeOnly));
});

test('every package has a layer, and packages import only packages below them', (t) => {
  for (const p of g.packages) t.not(PACKAGE_LAYER[p], undefined, `packages/${p} has no layer in test/arch-imports.test.ts`);
  const bad: string[] = [];
  for (const e of g.edges) {
    if (e.pkg === undefined) continue;
    const own = e.from.split('/')[1]!;
    if (e.pkg === own) {
      bad.push(`${e.from} imports its own package by name (${e.spec}): use a relative import`);
    } else if (!(PACKAGE_LAYER[e.pkg]! < PACKAGE_LAYER[own]!)) {
      bad.push(`${e.from} (layer ${PACKAGE_LAYER[own]}) imports ${e.spec} (layer ${PACKAGE_LAYER[e.pkg]})`);
    }
  }
  t.deepEqual(bad, []);
});

test('no relative import leaves its package', (t) => {
  const bad = g.edges.filter((e) => e.to !== undefined && e.to.split('/')[1] !== e.from.split('/')[1]);
  t.deepEqual(
    bad.map((e) => `${e.from} -> ${e.spec}`),
    [],
  );
});

test('no import circles, between packages or between files', (t) => {
  const next = new Map<string, string[]>();
  const link = (a: string, b: string): void => {
    const l = next.get(a) ?? [];
    if (!l.includes(b)) l.push(b);
    next.set(a, l);
  };
  for (const e of g.edges) {
    if (e.to !== undefined) link(e.from, e.to);
    // A package import is an edge to that package's entry, so circles across packages show too.
    if (e.pkg !== undefined) link(e.from, `packages/${e.pkg}/src/index.ts`);
  }
  const found = circles(g.files, next);
  t.deepEqual(
    found.map((c) => c.join(' -> ')),
    [],
  );
});

test('inside @ringio/runtime, imports point only down the layers', (t) => {
  const bad: string[] = [];
  for (const f of g.files) {
    if (f.startsWith('packages/runtime/src/') && runtimeLayer(f) === undefined) {
      bad.push(`${f} has no layer in RUNTIME_LAYERS (test/arch-imports.test.ts)`);
    }
  }
  for (const e of g.edges) {
    if (e.to === undefined || !e.from.startsWith('packages/runtime/src/')) continue;
    const a = runtimeLayer(e.from);
    const b = runtimeLayer(e.to);
    if (a === undefined || b === undefined) continue;
    if (b[0] > a[0]) bad.push(`${e.from} (${a[1]}) imports ${e.spec} (${b[1]}), a layer above it`);
  }
  t.deepEqual(bad, []);
});

test('the driver imports no op, and only addon.ts loads the native addon', (t) => {
  const bad: string[] = [];
  for (const e of g.edges) {
    if (e.from.startsWith('packages/runtime/src/driver/') && e.to?.startsWith('packages/runtime/src/ops/')) {
      bad.push(`${e.from} imports ${e.spec}`);
    }
  }
  for (const f of g.files) {
    if (f === 'packages/runtime/src/addon.ts') continue;
    if (/node-gyp-build|\.node['"]/.test(readFileSync(join(root, f), 'utf8'))) bad.push(`${f} loads the addon itself`);
  }
  t.deepEqual(bad, []);
});

test('the checker catches a circle and an upward import', (t) => {
  // The same functions over a made-up graph, so a checker that stopped finding anything would fail.
  const next = new Map<string, string[]>([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  t.deepEqual(circles(['a', 'b', 'c', 'd'], next), [['a', 'b', 'c', 'a']]);
  t.deepEqual(runtimeLayer('packages/runtime/src/driver/driver.ts'), [1, 'driver']);
  t.true(runtimeLayer('packages/runtime/src/start.ts')![0] > runtimeLayer('packages/runtime/src/threads/group.ts')![0]);
  t.is(runtimeLayer('packages/runtime/src/new-root-file.ts'), undefined);
});
