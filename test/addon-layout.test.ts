import test from 'ava';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as layout from '@ringio/runtime/layout';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../..', import.meta.url));
const nodeGypBuild = require('node-gyp-build') as (dir: string) => { ringio_layout(): Record<string, number> };

test('the addon and layout.ts agree on every record constant', (t) => {
  const native = nodeGypBuild(root).ringio_layout();
  const names = Object.keys(native);
  t.true(names.length > 30);
  for (const name of names) {
    t.is((layout as unknown as Record<string, number>)[name], native[name], name);
  }
});
