import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, 'prebuilds', 'linux-x64');

function prebuildFile(): string {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  if (files.length !== 1) throw new Error(`expected one prebuild in ${dir}, found ${files.length}`);
  return join(dir, files[0]!);
}

test('the committed prebuild was built from the current addon sources', async (t) => {
  const { sourceHash } = (await import(join(root, 'scripts', 'source-hash.mjs'))) as { sourceHash(r: string): string };
  const prebuild = require(prebuildFile()) as { ringio_source_hash(): string };
  t.is(
    prebuild.ringio_source_hash(),
    sourceHash(root),
    'prebuilds/linux-x64 is stale: run `npm run prebuild` after changing addon/ or binding.gyp',
  );
});

test('the prebuild links liburing statically', (t) => {
  const ldd = execFileSync('ldd', [prebuildFile()], { encoding: 'utf8' });
  t.notRegex(ldd, /liburing/);
  t.regex(ldd, /libc\.so/);
});
