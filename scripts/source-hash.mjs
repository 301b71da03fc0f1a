#!/usr/bin/env node
// Prints the hash of the addon's sources. binding.gyp bakes it into the binary, and
// test/addon-prebuild.test.ts compares the committed prebuild's hash with the working tree's.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function sourceHash(root) {
  const files = readdirSync(join(root, 'addon'))
    .filter((f) => /\.(cc|h)$/.test(f))
    .sort()
    .map((f) => join('addon', f));
  files.push('binding.gyp');
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f + '\0');
    // Line endings are normalised so a checkout on another platform hashes the same.
    h.update(readFileSync(join(root, f), 'utf8').replace(/\r\n/g, '\n'));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 32);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(sourceHash(join(dirname(fileURLToPath(import.meta.url)), '..')) + '\n');
}
