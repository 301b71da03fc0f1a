#!/usr/bin/env node
// The type-test tier: `tsc --noEmit -p test/types` over strict-mode programs that use the public API of
// every @ringio/* package the way users write it, against the built declarations (dist/*.d.ts; run
// `tsc -b` first). `// @ts-expect-error` lines state what must not compile: one that compiles anyway is
// an error (TS2578). Prints TAP, one entry per file of test/types (helpers start with _), and exits
// non-zero when one fails. One more entry checks the hover docs (scripts/lib/hover-docs.mjs).
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { undocumented } from './lib/hover-docs.mjs';
import { report, root, runTsc } from './lib/tsc.mjs';

const dir = join(root, 'test', 'types');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  .sort()
  .map((f) => join(dir, f));
const { byFile, other } = await runTsc(join(dir, 'tsconfig.json'));
const entries = files.map((f) => {
  const diags = byFile.get(f) ?? [];
  return {
    name: relative(root, f),
    ok: diags.length === 0,
    details: diags.map((d) => `${relative(root, f)}:${d.line}:${d.col}: ${d.text}`),
  };
});
const stray = [...byFile.keys()].filter((f) => !files.includes(f));
if (files.length === 0 || other.length > 0 || stray.length > 0) {
  entries.push({
    name: 'tsc -p test/types ran cleanly',
    ok: false,
    details: [
      ...(files.length === 0 ? ['no .ts files in test/types'] : []),
      ...other,
      ...stray.flatMap((f) => byFile.get(f).map((d) => `${relative(root, f)}:${d.line}:${d.col}: ${d.text}`)),
    ],
  });
}
// Hover docs: every exported symbol and public member of the packages' declarations has a doc comment.
const docs = undocumented();
entries.push({
  name: `hover docs: ${docs.total - docs.missing.length} of ${docs.total} exported symbols and members documented`,
  ok: docs.missing.length === 0,
  details: docs.missing.map((m) => `no doc comment: ${m}`),
});
process.exit(report('type tests: tsc --noEmit -p test/types', entries) > 0 ? 1 : 0);
