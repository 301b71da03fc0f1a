#!/usr/bin/env node
// Runs the ava suite once per driver (both, unless RINGIO_DRIVER names one) and ends with the line
// "N passed, N failed, N skipped" (skipped: tests that cannot run here, such as a kernel
// feature this machine lacks; never counted as passed). Exits non-zero when anything failed.
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

for (const driver of drivers) {
  console.log(`\n=== ringio tests, RINGIO_DRIVER=${driver} ===`);
  const counts = await new Promise((resolve) => {
    const child = spawn(process.execPath, [avaCli, '--tap', ...extra], {
      cwd: root,
      env: { ...process.env, RINGIO_DRIVER: driver },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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
  passed += counts.pass;
  failed += counts.fail;
  skipped += counts.skip + counts.todo;
}

console.log('');
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
