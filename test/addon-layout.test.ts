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

interface OpRow {
  opcode: number;
  name: string;
  required: boolean;
  epoll: boolean;
  pool: boolean;
  drainedWhenShort: boolean;
}

test('the native op table and IORING_OP in layout.ts list the same ops, with the same numbers', (t) => {
  const rows = (nodeGypBuild(root) as unknown as { ringio_ops(): OpRow[] }).ringio_ops();
  const fromNative = Object.fromEntries(rows.map((r) => [r.name, r.opcode]));
  t.deepEqual(fromNative, { ...layout.IORING_OP });
  // One row per opcode, in opcode order.
  const codes = rows.map((r) => r.opcode);
  t.deepEqual(codes, [...new Set(codes)].sort((a, b) => a - b));
  // What the runtime itself needs is required; every op but SEND_ZC (a plain SEND record there) runs on epoll.
  const required = rows.filter((r) => r.required).map((r) => r.name).sort();
  t.deepEqual(required, ['ASYNC_CANCEL', 'CLOSE', 'NOP', 'POLL_ADD', 'READ', 'READV', 'TIMEOUT', 'WRITE', 'WRITEV']);
  t.deepEqual(rows.filter((r) => !r.epoll).map((r) => r.name), ['SEND_ZC']);
  // The drained rule is for the byte-stream reads and writes; the pool is for what may block on a disk.
  t.deepEqual(rows.filter((r) => r.drainedWhenShort).map((r) => r.name).sort(), ['READ', 'RECV', 'SEND', 'WRITE']);
  for (const name of ['READ', 'WRITE', 'OPENAT', 'STATX', 'FSYNC', 'FTRUNCATE', 'UNLINKAT', 'RENAMEAT']) {
    t.true(rows.find((r) => r.name === name)!.pool, name);
  }
  for (const name of ['SEND', 'RECV', 'ACCEPT', 'CONNECT', 'POLL_ADD']) t.false(rows.find((r) => r.name === name)!.pool, name);
});

test("the runtime's view of the addon (addon.ts) has every entry point the addon exports", async (t) => {
  const raw = nodeGypBuild(root) as unknown as Record<string, unknown>;
  const names = Object.getOwnPropertyNames(raw).filter((n) => typeof raw[n] === 'function');
  t.true(names.length >= 30, names.join(' '));
  // Loaded by path: addon.ts is internal to the runtime package.
  const { native } = (await import(new URL('../../packages/runtime/dist/addon.js', import.meta.url).href)) as {
    native: Record<string, unknown>;
  };
  for (const n of names) t.is(typeof native[n], 'function', n);
  t.is((native.ringio_source_hash as () => string)(), (raw.ringio_source_hash as () => string)());
});
