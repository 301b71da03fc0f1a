#!/usr/bin/env node
// The prebuild's trip into @ringio/runtime's tarball. The addon is built at the top level (binding.gyp,
// addon/, prebuilds/); `npm pack` of packages/runtime runs `copy` first (prepack), which refuses a
// prebuild that does not match the addon sources, and `clean` after (postpack). In the repository the
// runtime loads the addon from the top level; installed from its tarball, from its own prebuilds/.
// Usage: node scripts/pack-prebuild.mjs copy|clean
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceHash } from './source-hash.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'prebuilds');
const to = join(root, 'packages', 'runtime', 'prebuilds');
const action = process.argv[2];

if (action === 'clean') {
  rmSync(to, { recursive: true, force: true });
} else if (action === 'copy') {
  const builds = existsSync(from)
    ? readdirSync(from, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.node'))
    : [];
  if (builds.length === 0) fail(`no prebuild under ${from}: run \`npm run prebuild\` (liburing-dev and a compiler needed)`);
  const require = createRequire(import.meta.url);
  const want = sourceHash(root);
  for (const f of builds) {
    const got = require(join(from, f)).ringio_source_hash();
    if (got !== want) fail(`prebuilds/${f} is stale (source hash ${got}, addon/ is ${want}): run \`npm run prebuild\``);
  }
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('.tsbuildinfo') });
  console.error(`packages/runtime/prebuilds: ${builds.join(', ')}`);
} else {
  fail('usage: node scripts/pack-prebuild.mjs copy|clean');
}

function fail(msg) {
  console.error('pack-prebuild: ' + msg);
  process.exit(1);
}
