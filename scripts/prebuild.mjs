#!/usr/bin/env node
// Rebuilds prebuilds/linux-x64/ from addon/ with prebuildify (Node-API, so one binary serves every
// Node >= 20), linked against liburing.a so users need neither a compiler nor liburing. Run it whenever
// addon/ or binding.gyp changes; test/addon-prebuild.test.ts fails while the prebuild is stale.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = join(root, 'node_modules', 'prebuildify', 'bin.js');
const env = { ...process.env };
// Build against the headers of the running Node, never a download.
const headers = join(dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(join(headers, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = headers;

rmSync(join(root, 'prebuilds', 'linux-x64'), { recursive: true, force: true });
execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '--target', process.version], {
  cwd: root,
  env,
  stdio: 'inherit',
});
const dir = join(root, 'prebuilds', 'linux-x64');
const files = readdirSync(dir);
console.log('prebuilt:', files.map((f) => join('prebuilds', 'linux-x64', f)).join(', '));
const ldd = execFileSync('ldd', [join(dir, files[0])], { encoding: 'utf8' });
if (/liburing/.test(ldd)) throw new Error('the prebuild links liburing dynamically:\n' + ldd);
console.log('ldd: no liburing (static)');
