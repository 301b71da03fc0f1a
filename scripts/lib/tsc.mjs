// Runs the TypeScript compiler on a project and returns its diagnostics by file, for the type-test tier
// (scripts/check-type-tests.mjs) and the doc-block checker (scripts/check-doc-blocks.mjs).
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tscCli = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * `tsc --noEmit -p project`. Resolves { code, byFile: Map<absolute path, {line, col, text}[]>, other:
 * string[] } where `other` holds output that names no file (a broken tsconfig, a crash).
 */
export function runTsc(project) {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [tscCli, '--noEmit', '--pretty', 'false', '-p', project], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', fail);
    child.on('close', (code) => {
      const byFile = new Map();
      const other = [];
      let last;
      for (const line of out.split('\n')) {
        const m = /^(.+?)\((\d+),(\d+)\): (error|warning) (TS\d+: .*)$/.exec(line);
        if (m) {
          const file = resolve(root, m[1]);
          if (!byFile.has(file)) byFile.set(file, []);
          last = { line: Number(m[2]), col: Number(m[3]), text: m[5] };
          byFile.get(file).push(last);
        } else if (/^\s+\S/.test(line) && last) {
          last.text += '\n' + line; // continuation of a multi-line message
        } else if (line.trim() !== '') {
          other.push(line);
          last = undefined;
        }
      }
      done({ code, byFile, other });
    });
  });
}

/** TAP-style report lines, in the shape ava's --tap prints, so scripts/test.mjs counts them the same way. */
export function report(title, entries) {
  let pass = 0;
  let fail = 0;
  let skip = 0;
  console.log(`TAP version 13\n# ${title}`);
  entries.forEach((e, i) => {
    if (e.skip) skip++;
    else if (e.ok) pass++;
    else fail++;
    console.log(`${e.ok || e.skip ? 'ok' : 'not ok'} ${i + 1} - ${e.name}${e.skip ? ` # SKIP ${e.skip}` : ''}`);
    if (!e.ok && !e.skip) for (const d of e.details) console.log('    ' + d.replace(/\n/g, '\n    '));
  });
  console.log(`\n1..${entries.length}\n# tests ${entries.length}\n# pass ${pass}\n# skip ${skip}\n# fail ${fail}`);
  return fail;
}
