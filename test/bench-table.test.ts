/**
 * bench/lib.mjs's table, which every benchmark prints its results with: rows of different kinds (the
 * compat bench's ab cases carry `idle_warm`, its duration cases `warm_runs`) share one header of every
 * row's columns, and a row without a column shows '-', not "undefined".
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const lib = (await import(`${root}bench/lib.mjs`)) as { table(rows: Record<string, unknown>[]): void };

/** What table(rows) writes to stderr. */
function capture(rows: Record<string, unknown>[]): string {
  const write = process.stderr.write;
  let out = '';
  process.stderr.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    lib.table(rows);
  } finally {
    process.stderr.write = write;
  }
  return out;
}

/** table(rows)'s lines with the padding collapsed. */
function printed(rows: Record<string, unknown>[]): string[] {
  return capture(rows).trimEnd().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
}

test('bench table: the header has every row\'s columns in the order first met, and a missing cell shows -', (t) => {
  const lines = printed([
    { case: 'http2-handoff', ratio: 1.01, warm_runs: 1 },
    { case: 'connect', ratio: 1.96, idle_warm: 8 },
  ]);
  t.deepEqual(lines, ['case ratio warm_runs idle_warm', 'http2-handoff 1.01 1 -', 'connect 1.96 - 8']);
});

test('bench table: columns are as wide as their widest cell, right-aligned', (t) => {
  t.deepEqual(capture([{ a: 'long value', b: 1 }, { a: 'x', b: 22 }]).split('\n').slice(0, 3), ['         a   b', 'long value   1', '         x  22']);
});
