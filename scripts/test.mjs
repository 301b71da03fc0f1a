#!/usr/bin/env node
// Runs the type tier once (scripts/check-type-tests.mjs: test/types; scripts/check-doc-blocks.mjs: the
// code blocks of README.md and docs/), then the ava suite once per driver (both, unless RINGIO_DRIVER
// names one), and ends with the line "N passed, N failed, N skipped" (skipped: tests that cannot run
// here, such as a kernel feature this machine lacks; never counted as passed). Exits non-zero when
// anything failed.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const avaCli = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const drivers = process.env.RINGIO_DRIVER ? [process.env.RINGIO_DRIVER] : ['uring', 'epoll'];
const extra = process.argv.slice(2);

let passed = 0;
let failed = 0;
let skipped = 0;

/** Runs a TAP-printing child, echoing its output, and counts its "# pass|fail|skip|todo N" lines. */
function runTap(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    const c = { pass: 0, fail: 0, skip: 0, todo: 0, seen: false };
    let rest = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      rest += chunk;
      const lines = rest.split('\n');
      rest = lines.pop();
      for (const line of lines) {
        const m = /^# (pass|fail|skip|todo) (\d+)/.exec(line);
        if (m) {
          c[m[1]] = Number(m[2]);
          c.seen = true;
        }
      }
    });
    child.on('close', (code) => {
      // A runner that died without a summary, or exited non-zero with no failure counted, is a failure.
      if (!c.seen || (code !== 0 && c.fail === 0)) c.fail += 1;
      resolve(c);
    });
  });
}

function add(counts) {
  passed += counts.pass;
  failed += counts.fail;
  skipped += counts.skip + counts.todo;
}

// The type tier does not depend on the driver: it runs once, before the drivers' runs. Skipped when
// arguments select ava tests (`npm test -- dist/test/net-*.test.js`).
if (extra.length === 0) {
  console.log('\n=== type tests (test/types) and doc blocks (README.md, docs/) ===');
  add(await runTap([join(root, 'scripts', 'check-type-tests.mjs')], process.env));
  add(await runTap([join(root, 'scripts', 'check-doc-blocks.mjs')], process.env));
}

for (const driver of drivers) {
  console.log(`\n=== ringio tests, RINGIO_DRIVER=${driver} ===`);
  add(await runTap([avaCli, '--tap', ...extra], { ...process.env, RINGIO_DRIVER: driver }));
}

console.log('');
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
