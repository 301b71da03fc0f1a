#!/usr/bin/env node
// Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ (git-ignored),
// leaving build/ and prebuilds/ alone. The gyp file there is made from binding.gyp each time, so the two
// never drift: same sources, defines and libraries, plus the sanitizer flags.
//
// Use it with scripts/asan-run.mjs (or by hand): RINGIO_ADDON=build-asan/build/Release/ringio.node,
// LD_PRELOAD=<libasan.so> <libubsan.so>, ASAN_OPTIONS=detect_leaks=0 (node itself is not leak-clean).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build-asan');
mkdirSync(out, { recursive: true });

const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8'));
const sanitize = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-fno-sanitize-recover=undefined', '-g'];
for (const t of gyp.targets) {
  t.sources = t.sources.map((s) => `../${s}`);
  t.defines = t.defines.map((d) => d.replace('node scripts/source-hash.mjs', 'node ../scripts/source-hash.mjs'));
  // -O1 keeps stack traces readable and the build quick; the sanitizers need the frame pointer.
  t.cflags_cc = t.cflags_cc.filter((f) => !/^-O/.test(f)).concat('-O1', ...sanitize);
  t.cflags = (t.cflags ?? []).concat(sanitize);
  t.ldflags = (t.ldflags ?? []).concat('-fsanitize=address,undefined');
}
writeFileSync(join(out, 'binding.gyp'), JSON.stringify(gyp, null, 2) + '\n');

const env = { ...process.env };
const headers = join(dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(join(headers, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = headers;
const nodeGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
execFileSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: out, env, stdio: 'inherit' });
console.log('built:', join('build-asan', 'build', 'Release', 'ringio.node'));
