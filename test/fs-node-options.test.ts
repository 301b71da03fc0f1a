/**
 * @ringio/fs takes the options node:fs/promises users write: encodings (string or option), flags strings
 * ('r', 'w', 'a', 'wx', 'r+', ...), mode, flush, and rejects what it does not know with a TypeError
 * instead of ignoring it.
 */
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { File, readFile, writeFile } from '@ringio/fs';
import { rejectionOf, rtTest, run, tempDir, type AnyErr } from './helpers.js';

const { tmp } = tempDir('ringio-fs-opts-');

rtTest("readFile(p, 'utf8') and { encoding } resolve strings; without an encoding, a Buffer", async (t) => {
  await run(async () => {
    const p = tmp('enc');
    writeFileSync(p, 'héllo');
    t.is(await readFile(p, 'utf8'), 'héllo');
    t.is(await readFile(p, { encoding: 'utf8' }), 'héllo');
    t.is(await readFile(p, { encoding: 'base64' }), Buffer.from('héllo').toString('base64'));
    t.is(await readFile(p, 'latin1'), Buffer.from('héllo').toString('latin1'));
    const b = await readFile(p, { encoding: null });
    t.true(Buffer.isBuffer(b));
    t.true(Buffer.isBuffer(await readFile(p, null)));
    t.is((await readFile(p, { flag: 'r' })).toString(), 'héllo');
    t.is(await readFile(p, { flag: 'a+', encoding: 'utf8' }), 'héllo');
  });
});

rtTest('writeFile honours encoding, flag (w, a, wx), mode and flush', async (t) => {
  await run(async () => {
    const p = tmp('w');
    await writeFile(p, 'aGk=', 'base64');
    t.is(readFileSync(p, 'utf8'), 'hi');
    await writeFile(p, '6869', { encoding: 'hex' });
    t.is(readFileSync(p, 'utf8'), 'hi');
    await writeFile(p, '!', { flag: 'a' });
    await writeFile(p, new Uint16Array([0x4141]), { flag: 'a' });
    t.is(readFileSync(p, 'utf8'), 'hi!AA');
    const err = await rejectionOf(t, writeFile(p, 'x', { flag: 'wx' }));
    t.is((err as AnyErr).code, 'EEXIST');
    t.is(readFileSync(p, 'utf8'), 'hi!AA', 'wx left the file alone');
    const q = tmp('mode');
    await writeFile(q, 'x', { mode: 0o600, flush: true });
    t.is(statSync(q).mode & 0o777, 0o600);
  });
});

rtTest("File.open takes node's flags strings and a mode", async (t) => {
  await run(async () => {
    const p = tmp('open');
    {
      await using f = await File.open(p, 'w', 0o640);
      await f.writeAllAt(Buffer.from('abc'), 0);
    }
    t.is(statSync(p).mode & 0o777, 0o640);
    {
      await using f = await File.open(p, 'r');
      const [n, buf] = await f.readAt(Buffer.alloc(8), 0);
      t.is(buf.toString('utf8', 0, n), 'abc');
      // Opened read-only: a write is the kernel's EBADF.
      t.is(((await rejectionOf(t, f.writeAt(Buffer.from('x'), 0))) as AnyErr).code, 'EBADF');
    }
    {
      await using f = await File.open(p, 'r+');
      await f.writeAt(Buffer.from('X'), 1);
    }
    t.is(readFileSync(p, 'utf8'), 'aXc');
    {
      await using f = await File.open(p, 'a');
      await f.write(Buffer.from('d'));
    }
    t.is(readFileSync(p, 'utf8'), 'aXcd');
    t.is(((await rejectionOf(t, File.open(p, 'wx'))) as AnyErr).code, 'EEXIST');
  });
});

rtTest('unknown options, encodings and flags are TypeErrors, never silently ignored', async (t) => {
  await run(async () => {
    const p = tmp('bad');
    writeFileSync(p, 'keep');
    const any = (v: unknown) => v as never;
    for (const [what, call] of [
      ['readFile encoding typo', () => readFile(p, any({ encodng: 'utf8' }))],
      ['readFile bad encoding', () => readFile(p, any('utf-9'))],
      ['readFile bad flag', () => readFile(p, any({ flag: 'rw' }))],
      ['readFile numeric flag', () => readFile(p, any({ flag: 0 }))],
      ["readFile flag 'w' (would truncate, cannot read)", () => readFile(p, any({ flag: 'w' }))],
      ['writeFile unknown option', () => writeFile(p, 'x', any({ mod: 0o600 }))],
      ['writeFile bad encoding', () => writeFile(p, 'x', any({ encoding: 'nope' }))],
      ["writeFile flag 'r'", () => writeFile(p, 'x', { flag: 'r' })],
      ['writeFile flush not boolean', () => writeFile(p, 'x', any({ flush: 'yes' }))],
      ['open unknown option', () => File.open(p, any({ reed: true }))],
      ['open bad flags', () => File.open(p, any('rw'))],
      ['open numeric flags', () => File.open(p, any(2))],
      ['open mode with options', () => File.open(p, {}, 0o600)],
    ] as const) {
      await t.throwsAsync(call() as Promise<unknown>, { instanceOf: TypeError }, what);
    }
    t.is(readFileSync(p, 'utf8'), 'keep', 'nothing was truncated or written');
  });
});

rtTest("mkdir(p, mode) as node:fs takes it; stat's bigint and unknown options are refused", async (t) => {
  await run(async () => {
    const { mkdir, stat, lstat } = await import('@ringio/fs');
    const d = tmp('dir');
    await mkdir(d, 0o750);
    t.is(statSync(d).mode & 0o777, 0o750);
    const any = (v: unknown) => v as never;
    await t.throwsAsync(mkdir(tmp('x'), any({ recursve: true })), { instanceOf: TypeError });
    await t.throwsAsync(stat(d, any({ bigint: true })), { instanceOf: TypeError });
    await t.throwsAsync(lstat(d, any({ bignt: false })), { instanceOf: TypeError });
    t.true((await stat(d, { bigint: false })).isDirectory());
  });
});
