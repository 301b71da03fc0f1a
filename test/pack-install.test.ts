// Every package under packages/ as a user gets it: packed with `npm pack --workspaces`, installed from
// the tarballs alone into an empty project outside the repository (offline: the registry is a dead
// loopback address, third-party dependencies come as tarballs packed from this repository's
// node_modules; no compiler on PATH), then imported there, and each package's smoke check
// (test/pack-smoke/<dir>.mjs) run against the installed copy. New packages are picked up by listing
// packages/; a package adds its smoke check by adding the file.
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const smokeDir = join(root, 'test', 'pack-smoke');

interface Manifest {
  name: string;
  version: string;
  description?: string;
  keywords?: string[];
  repository?: { type?: string; url?: string; directory?: string };
  engines?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  types?: string;
  exports?: Record<string, string | Record<string, string>>;
  files?: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  private?: boolean;
}

/** packages/<dir> folders with a package.json, read now so that one test per package can be declared. */
const packages = readdirSync(join(root, 'packages'))
  .filter((dir) => existsSync(join(root, 'packages', dir, 'package.json')))
  .sort()
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest }));
const smokes = existsSync(smokeDir) ? readdirSync(smokeDir).filter((f) => f.endsWith('.mjs')).map((f) => f.slice(0, -4)) : [];
const workspaceNames = new Set(packages.map((p) => p.manifest.name));

/** `npm` as node + npm-cli.js, so that it runs with a PATH that holds nothing but node and sh. */
function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.js$/.test(fromEnv)) return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = join(dir, 'npm');
    if (existsSync(p)) return realpathSync(p);
  }
  throw new Error('npm not found on PATH');
}

/** The environment without npm's per-run variables (npm_config_*, npm_package_*, …). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

interface Packed {
  dir: string;
  manifest: Manifest;
  tarball: string;
  files: string[];
}

const state: {
  work: string;
  project: string;
  bin: string;
  packed: Packed[];
  thirdParty: string[];
  installLog: string;
} = { work: '', project: '', bin: '', packed: [], thirdParty: [], installLog: '' };

test.before(async () => {
  state.work = mkdtempSync(join(tmpdir(), 'ringio-pack-'));
  const tarballs = join(state.work, 'tarballs');
  mkdirSync(tarballs);
  const npm = npmCli();
  const env = cleanEnv({});

  // 1. The workspace packages (runtime's prepack copies the prebuild in, postpack removes it).
  const { stdout } = await run(process.execPath, [npm, 'pack', '--workspaces', '--json', '--pack-destination', tarballs], {
    cwd: root,
    env,
    maxBuffer: 64 << 20,
  });
  const report = JSON.parse(stdout.slice(stdout.indexOf('['))) as { name: string; filename: string; files: { path: string }[] }[];
  for (const p of packages) {
    const r = report.find((x) => x.name === p.manifest.name);
    if (!r) throw new Error(`npm pack made no tarball for ${p.manifest.name}`);
    state.packed.push({ ...p, tarball: join(tarballs, r.filename), files: r.files.map((f) => f.path).sort() });
  }

  // 2. Their third-party runtime dependencies, packed from this repository's node_modules (and theirs).
  const seen = new Set<string>();
  const pending: [string, string][] = [];
  for (const p of state.packed) for (const d of Object.keys(p.manifest.dependencies ?? {})) if (!workspaceNames.has(d)) pending.push([d, root]);
  while (pending.length > 0) {
    const [name, from] = pending.pop()!;
    const dir = [from, root].find((d) => existsSync(join(d, 'node_modules', name, 'package.json')));
    if (dir === undefined) throw new Error(`${name} is not installed under ${root}/node_modules`);
    const pkgDir = realpathSync(join(dir, 'node_modules', name));
    const m = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Manifest;
    if (seen.has(`${m.name}@${m.version}`)) continue;
    seen.add(`${m.name}@${m.version}`);
    const out = await run(process.execPath, [npm, 'pack', pkgDir, '--ignore-scripts', '--json', '--pack-destination', tarballs], { cwd: state.work, env });
    const [info] = JSON.parse(out.stdout.slice(out.stdout.indexOf('['))) as { filename: string }[];
    state.thirdParty.push(join(tarballs, info!.filename));
    for (const d of Object.keys(m.dependencies ?? {})) pending.push([d, pkgDir]);
  }

  // 3. An empty project, a PATH with only node and sh (no compiler, no make, no python), npm offline
  //    against a registry that does not exist and an empty cache: the tarballs are all there is.
  state.project = join(state.work, 'project');
  state.bin = join(state.work, 'bin');
  mkdirSync(state.project);
  mkdirSync(state.bin);
  symlinkSync(process.execPath, join(state.bin, 'node'));
  symlinkSync('/bin/sh', join(state.bin, 'sh'));
  writeFileSync(join(state.project, 'package.json'), JSON.stringify({ name: 'ringio-pack-smoke', private: true, type: 'module' }));
  writeFileSync(join(state.work, 'npmrc'), '');
  const install = await run(
    process.execPath,
    [
      npm,
      'install',
      '--offline',
      '--registry=http://127.0.0.1:9/',
      '--fetch-retries=0',
      `--cache=${join(state.work, 'cache')}`,
      `--userconfig=${join(state.work, 'npmrc')}`,
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      ...state.packed.map((p) => p.tarball),
      ...state.thirdParty,
    ],
    { cwd: state.project, env: cleanEnv({ PATH: state.bin }), maxBuffer: 64 << 20 },
  );
  state.installLog = install.stdout + install.stderr;
});

test.after.always(() => {
  if (state.work) rmSync(state.work, { recursive: true, force: true });
});

/** Every (subpath, condition, file) in an exports map, plus `main` and `types`. */
function exportedFiles(m: Manifest): { subpath: string; condition: string; file: string }[] {
  const out: { subpath: string; condition: string; file: string }[] = [];
  for (const [subpath, target] of Object.entries(m.exports ?? {})) {
    if (typeof target === 'string') out.push({ subpath, condition: 'default', file: target });
    else for (const [condition, file] of Object.entries(target)) out.push({ subpath, condition, file });
  }
  return out;
}

test('every package carries the metadata a user expects', (t) => {
  t.true(packages.length >= 4, `packages found: ${packages.map((p) => p.dir).join(', ')}`);
  for (const { dir, manifest: m } of packages) {
    const at = `packages/${dir}/package.json`;
    t.falsy(m.private, `${at}: private`);
    t.truthy(m.description, `${at}: description`);
    t.true((m.keywords ?? []).length >= 3, `${at}: keywords`);
    t.regex(m.repository?.url ?? '', /^git\+https:\/\/.+\.git$/, `${at}: repository.url`);
    t.is(m.repository?.directory, `packages/${dir}`, `${at}: repository.directory`);
    t.truthy(m.engines?.node, `${at}: engines.node`);
    t.deepEqual(m.os, ['linux'], `${at}: os`);
    t.true((m.cpu ?? []).length > 0, `${at}: cpu`);
    t.truthy(m.types, `${at}: types`);
    t.true(Object.keys(m.exports ?? {}).length > 0, `${at}: exports`);
    for (const [subpath, target] of Object.entries(m.exports ?? {})) {
      t.true(typeof target === 'object' && typeof target.types === 'string', `${at}: exports["${subpath}"] has no types condition`);
      if (typeof target === 'object') t.is(Object.keys(target)[0], 'types', `${at}: exports["${subpath}"]: types must come first`);
    }
    // The README: what it is, an example, and a link to a docs page that exists.
    const readmePath = join(root, 'packages', dir, 'README.md');
    t.true(existsSync(readmePath), `packages/${dir}/README.md is missing`);
    if (!existsSync(readmePath)) continue;
    const readme = readFileSync(readmePath, 'utf8');
    t.true(readme.startsWith(`# ${m.name}`), `packages/${dir}/README.md starts with "# ${m.name}"`);
    t.regex(readme, /```(js|ts)\n[\s\S]*?from '@ringio\/[\s\S]*?```/, `packages/${dir}/README.md has no example`);
    const links = [...readme.matchAll(/\]\((https:\/\/github\.com\/[^/]+\/[^/]+\/blob\/main\/(docs\/[^)#]+))/g)];
    t.true(links.length > 0, `packages/${dir}/README.md links no docs page`);
    for (const [, , path] of links) t.true(existsSync(join(root, path!)), `packages/${dir}/README.md links ${path}, which does not exist`);
  }
});

test('the tarballs ship what is needed and nothing else', (t) => {
  const rootPrebuilds = readdirSync(join(root, 'prebuilds'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.node'));
  for (const p of state.packed) {
    const at = `${p.manifest.name} tarball`;
    t.true(p.files.includes('package.json') && p.files.includes('README.md'), `${at}: package.json and README.md`);
    for (const e of exportedFiles(p.manifest)) t.true(p.files.includes(e.file.replace(/^\.\//, '')), `${at}: exports["${e.subpath}"].${e.condition} ${e.file} missing`);
    // A package's programs (its `bin` entries) ship too.
    const bins = new Set(Object.values((p.manifest as { bin?: Record<string, string> }).bin ?? {}).map((b) => b.replace(/^\.\//, '')));
    const stray = p.files.filter(
      (f) => !bins.has(f) && !/^(package\.json|README\.md|LICENSE(\.\w+)?|dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|src\/.+\.ts|prebuilds\/[^/]+\/[^/]+\.node)$/.test(f),
    );
    t.deepEqual(stray, [], `${at}: unexpected files`);
    t.deepEqual(p.files.filter((f) => /(^|\/)(test|tests|__tests__)\/|\.test\.|tsbuildinfo/.test(f)), [], `${at}: tests or build state`);
    // Only this package's own sources (not another package's, not the addon's).
    const own = readdirSync(join(root, 'packages', p.dir, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `src/${f}`)
      .sort();
    t.deepEqual(p.files.filter((f) => f.startsWith('src/')), own, `${at}: src/ is not this package's sources`);
    const natives = p.files.filter((f) => f.endsWith('.node'));
    if (p.manifest.name === '@ringio/runtime') {
      t.deepEqual(natives, rootPrebuilds.map((f) => `prebuilds/${f}`).sort(), `${at}: carries the top-level prebuilds`);
    } else {
      t.deepEqual(natives, [], `${at}: native binaries belong to @ringio/runtime`);
    }
  }
});

/** Bare specifiers imported by the .js (runtime) and .d.ts (types) files under `dir`. */
function importsUnder(dir: string): { js: Set<string>; dts: Set<string> } {
  const js = new Set<string>();
  const dts = new Set<string>();
  const builtins = new Set(builtinModules);
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const isDts = f.endsWith('.d.ts');
    if (!isDts && !f.endsWith('.js')) continue;
    const text = readFileSync(join(dir, f), 'utf8');
    const found = text.matchAll(
      /^(?:import|export)\s[^\n]*?\bfrom\s*['"]([^'"\n]+)['"]|^import\s*['"]([^'"\n]+)['"]|\b(?:import|require)\(\s*['"]([^'"\n]+)['"]\s*\)/gm,
    );
    for (const m of found) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      (isDts ? dts : js).add(name);
    }
  }
  return { js, dts };
}

test('every package declares the dependencies it uses, and only those', (t) => {
  for (const p of state.packed) {
    const installed = join(state.project, 'node_modules', ...p.manifest.name.split('/'));
    const { js, dts } = importsUnder(join(installed, 'dist'));
    const declared = new Set([...Object.keys(p.manifest.dependencies ?? {}), ...Object.keys(p.manifest.peerDependencies ?? {})]);
    for (const name of [...js, ...dts]) if (name !== p.manifest.name) t.true(declared.has(name), `${p.manifest.name} imports ${name} without declaring it`);
    for (const name of declared) t.true(js.has(name) || dts.has(name), `${p.manifest.name} declares ${name} but never imports it`);
    for (const [name, range] of Object.entries(p.manifest.dependencies ?? {})) {
      const other = packages.find((q) => q.manifest.name === name);
      if (other) t.is(range, other.manifest.version, `${p.manifest.name} depends on ${name}@${range}; the workspace has ${other.manifest.version}`);
    }
  }
});

test('installed from the tarballs alone, every export of every package imports', async (t) => {
  for (const p of state.packed) {
    const installed = join(state.project, 'node_modules', ...p.manifest.name.split('/'));
    t.true(existsSync(join(installed, 'package.json')), `${p.manifest.name} is not installed`);
    // A copy inside the project, not a link back into the repository.
    t.true(relative(root, realpathSync(installed)).startsWith('../'), `${p.manifest.name} resolves into the repository`);
    for (const e of exportedFiles(p.manifest)) t.true(existsSync(join(installed, e.file)), `${p.manifest.name}: ${e.file} missing after install`);
  }
  const specs = state.packed.flatMap((p) => Object.keys(p.manifest.exports ?? {}).map((s) => (s === '.' ? p.manifest.name : p.manifest.name + s.slice(1))));
  const program = `for (const s of ${JSON.stringify(specs)}) { const m = await import(s); if (Object.keys(m).length === 0) throw new Error(s + ' exports nothing'); console.log('imported', s); }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', program], {
    cwd: state.project,
    env: cleanEnv({ PATH: state.bin }),
    timeout: 60_000,
  });
  t.is(stdout.trim().split('\n').length, specs.length, stdout);
});

test('installed from the tarballs alone, every export has types that TypeScript resolves (NodeNext)', async (t) => {
  const specs = state.packed.flatMap((p) => Object.keys(p.manifest.exports ?? {}).map((s) => (s === '.' ? p.manifest.name : p.manifest.name + s.slice(1))));
  const dir = join(state.work, 'types-check');
  mkdirSync(dir);
  // The project's node_modules, reached the way a user's TypeScript reaches it; only @types/node (for the
  // node: imports of the declarations) and the compiler come from this repository.
  symlinkSync(join(state.project, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['check.ts'],
    }),
  );
  // Under strict, an import whose package has no types is an error (TS7016), as is a types path that is missing.
  writeFileSync(
    join(dir, 'check.ts'),
    specs.map((s, i) => `import * as m${i} from '${s}';`).join('\n') + `\nexport const all: object[] = [${specs.map((_, i) => `m${i}`).join(', ')}];\n`,
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir, timeout: 120_000 }).then(
    () => '',
    (e: { stdout?: string; message: string }) => e.stdout || e.message,
  );
  t.is(result, '', result);
});

for (const name of smokes) {
  test(`smoke check of the installed ${name} package (test/pack-smoke/${name}.mjs)`, async (t) => {
    t.true(packages.some((p) => p.dir === name), `test/pack-smoke/${name}.mjs names no package under packages/`);
    const file = join(state.project, `smoke-${name}.mjs`);
    copyFileSync(join(smokeDir, `${name}.mjs`), file);
    const env: Record<string, string> = { PATH: state.bin };
    const { stdout, stderr } = await run(process.execPath, [file], { cwd: state.project, env: cleanEnv(env), timeout: 60_000 });
    t.regex(stdout, new RegExp(`^ok ${name}\\b`, 'm'), stdout + stderr);
    t.log(stdout.trim());
  });
}

test('packages without a smoke check are listed (they are only imported)', (t) => {
  const without = packages.filter((p) => !smokes.includes(p.dir)).map((p) => p.dir);
  if (without.length > 0) t.log(`no test/pack-smoke/<dir>.mjs for: ${without.join(', ')}`);
  // The four first packages must keep theirs.
  for (const dir of ['runtime', 'net', 'fs', 'compat']) t.true(smokes.includes(dir), `test/pack-smoke/${dir}.mjs is missing`);
});
