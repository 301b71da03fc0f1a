/**
 * @ringio/fs whole-file and path functions on the driver under test: readFile/writeFile (64 MiB, strings,
 * empty files, /proc files whose stat size is 0), the errno errors (ENOENT, EISDIR, EEXIST, ENOTDIR,
 * ENOTEMPTY, and EACCES as an unprivileged user in a child process) with their .path, mkdir (recursive,
 * idempotent, returning the first directory created like node:fs), rename, symlink + lstat, rmdir and
 * unlink.
 */
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { File, lstat, mkdir, readFile, rename, rmdir, stat, symlink, unlink, writeFile } from '@ringio/fs';
import { stats } from '@ringio/runtime';
import { DRIVER, fdCount, randomBytes, rejectionOf, rtTest, run, sha256, tempDir, type AnyErr } from './helpers.js';

const MiB = 1024 * 1024;

/** This file's temp dir, and tmp(name): a fresh path in it. */
const { dir, tmp } = tempDir('ringio-fs-paths-');

/** Expects p to reject with an errno error `code` from `syscall`, whose .path is `path`. */
async function expectErrno(t: ExecutionContext, p: PromiseLike<unknown>, code: string, path: string, syscall: string | undefined, what: string): Promise<AnyErr> {
  const err = await rejectionOf(t, p);
  t.is(err.code, code, `${what}: code`);
  t.is(err.path, path, `${what}: .path`);
  if (syscall !== undefined) {
    t.is(err.syscall, syscall, `${what}: .syscall`);
    t.is(typeof err.errno, 'number', `${what}: .errno`);
    t.true(err.errno! < 0, `${what}: .errno is negative, like node:fs`);
  }
  return err;
}

// ---------------------------------------------------------------------------------------------------
// readFile / writeFile

rtTest('writeFile/readFile round trip 64 MiB of random data (sha256), and agree with node:fs both ways', async (t) => {
  t.timeout(60_000);
  const p = tmp('big');
  const q = tmp('big-node');
  const data = cryptoRandomBytes(64 * MiB);
  const want = sha256(data);
  await run(async () => {
    await writeFile(p, data);
    t.is(statSync(p).size, data.length);
    t.is(sha256(readFileSync(p)), want, 'node:fs reads what writeFile wrote');
    const back = await readFile(p);
    t.true(Buffer.isBuffer(back));
    t.is(back.length, data.length);
    t.is(sha256(back), want, 'readFile returns what writeFile wrote');

    writeFileSync(q, data);
    const viaRingio = await readFile(q);
    t.is(viaRingio.length, data.length);
    t.is(sha256(viaRingio), want, 'readFile returns what node:fs wrote');
  }, 50_000);
  rmSync(p);
  rmSync(q);
});

rtTest('writeFile: strings as UTF-8, Uint8Arrays, empty data; it truncates; mode applies on create', async (t) => {
  const p = tmp('text');
  const text = 'héllo, wörld: 日本語 🎉\n'.repeat(1000);
  await run(async () => {
    await writeFile(p, text);
    t.is(readFileSync(p, 'utf8'), text);
    sameBuf(t, await readFile(p), Buffer.from(text, 'utf8'), 'readFile of the string');
    // Shorter data truncates what was there.
    await writeFile(p, 'short');
    t.is(readFileSync(p, 'utf8'), 'short');
    const u8 = new Uint8Array([1, 2, 3, 250]);
    await writeFile(p, u8);
    sameBuf(t, readFileSync(p), Buffer.from(u8), 'a plain Uint8Array');
    await writeFile(p, '');
    t.is(statSync(p).size, 0, 'an empty string empties the file');
    await writeFile(p, new Uint8Array(0));
    t.is(statSync(p).size, 0);

    const m = tmp('mode');
    await writeFile(m, 'x', { mode: 0o640 });
    t.is(statSync(m).mode & 0o777, 0o640 & ~process.umask(), 'mode (less the umask) on create');
    // Buffer and URL paths.
    const viaUrl = tmp('url file');
    await writeFile(pathToFileURL(viaUrl), 'via URL');
    t.is(readFileSync(viaUrl, 'utf8'), 'via URL');
    sameBuf(t, await readFile(Buffer.from(viaUrl)), Buffer.from('via URL'), 'readFile(Buffer path)');
    sameBuf(t, await readFile(pathToFileURL(viaUrl)), Buffer.from('via URL'), 'readFile(URL with a %20)');
    // Bad data and paths.
    await t.throwsAsync(writeFile(p, 5 as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(writeFile(p, { length: 1 } as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(writeFile(7 as unknown as string, 'x'), { instanceOf: TypeError });
    await t.throwsAsync(readFile(7 as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(readFile(''), { instanceOf: TypeError });
  });
});

function sameBuf(t: ExecutionContext, got: Uint8Array, want: Uint8Array, what: string): void {
  t.is(got.length, want.length, `${what}: length`);
  t.true(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want), `${what}: bytes`);
}

rtTest('readFile of an empty file, of /proc/self/status (stat size 0, yet content) and of /proc/kallsyms (MiBs, size 0)', async (t) => {
  const e = tmp('empty');
  writeFileSync(e, '');
  await run(async () => {
    const empty = await readFile(e);
    t.true(Buffer.isBuffer(empty));
    t.is(empty.length, 0);

    t.is((await stat('/proc/self/status')).size, 0, '/proc reports size 0');
    const status = (await readFile('/proc/self/status')).toString('utf8');
    t.true(status.startsWith('Name:\t'), 'starts with the Name: line');
    t.true(status.includes(`\nPid:\t${process.pid}\n`), 'has our pid');
    t.true(status.endsWith('\n'), 'ends with a newline: the whole file');
    const nodeLines = readFileSync('/proc/self/status', 'utf8').split('\n');
    t.is(status.split('\n').length, nodeLines.length, 'as many lines as node:fs reads');
    const stable = (s: string[]): string[] => s.filter((l) => /^(Name|Umask|Tgid|Pid|PPid|Uid|Gid|Seccomp|Cpus_allowed_list):/.test(l));
    t.deepEqual(stable(status.split('\n')), stable(nodeLines), 'the stable lines match node:fs');

    // Far past readFile's first 64 KiB buffer: every growth step.
    let kallsyms: Buffer | undefined;
    try {
      kallsyms = readFileSync('/proc/kallsyms');
    } catch {
      t.log('/proc/kallsyms unreadable: that part skipped');
    }
    if (kallsyms !== undefined) {
      const got = await readFile('/proc/kallsyms');
      t.true(kallsyms.length > 65536, `/proc/kallsyms is ${kallsyms.length} bytes`);
      t.is(got.length, kallsyms.length);
      t.is(sha256(got), sha256(kallsyms), 'readFile(/proc/kallsyms) equals node:fs');
    }
    t.is(stats().opsInFlight, 0);
  });
});

// ---------------------------------------------------------------------------------------------------
// errors

rtTest('ENOENT: open, readFile, stat, lstat, unlink, rmdir, rename, mkdir of missing paths; each error has .path', async (t) => {
  const missing = join(tmp('missing-dir'), 'nope');
  const parent = tmp('missing-parent');
  await run(async () => {
    await stat(dir); // the first file op starts the epoll driver's file pool (and its eventfd)
    const fds0 = fdCount();
    await expectErrno(t, File.open(missing), 'ENOENT', missing, 'open', 'open');
    await expectErrno(t, File.open(missing, { write: true }), 'ENOENT', missing, 'open', 'open for writing without create');
    await expectErrno(t, File.create(missing), 'ENOENT', missing, 'open', 'create in a missing directory');
    await expectErrno(t, readFile(missing), 'ENOENT', missing, 'open', 'readFile');
    await expectErrno(t, writeFile(missing, 'x'), 'ENOENT', missing, 'open', 'writeFile in a missing directory');
    await expectErrno(t, stat(missing), 'ENOENT', missing, 'stat', 'stat');
    await expectErrno(t, lstat(missing), 'ENOENT', missing, 'stat', 'lstat');
    await expectErrno(t, unlink(missing), 'ENOENT', missing, 'unlink', 'unlink');
    await expectErrno(t, rmdir(missing), 'ENOENT', missing, 'rmdir', 'rmdir');
    const to = tmp('rename-target');
    const re = await expectErrno(t, rename(missing, to), 'ENOENT', missing, 'rename', 'rename');
    t.is(re.dest, to, 'rename: .dest');
    await expectErrno(t, mkdir(join(parent, 'child')), 'ENOENT', join(parent, 'child'), 'mkdir', 'mkdir in a missing parent');
    // symlink errors name the target in .path and the link in .dest, as node:fs does.
    const se = await expectErrno(t, symlink('target', join(parent, 'link')), 'ENOENT', 'target', 'symlink', 'symlink in a missing parent');
    t.is(se.dest, join(parent, 'link'), 'symlink: .dest');
    t.is(fdCount(), fds0, 'failed opens leak no fd');
    t.false(existsSync(to));
  });
});

rtTest('EISDIR, EEXIST, ENOTDIR, ENOTEMPTY where they arise naturally; each error has .path', async (t) => {
  const d = tmp('errs');
  mkdirSync(d);
  const f = join(d, 'file');
  writeFileSync(f, 'data');
  const full = join(d, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'x'), 'x');
  const emptyDir = join(d, 'empty');
  mkdirSync(emptyDir);
  await run(async () => {
    // EISDIR
    await expectErrno(t, File.open(d, { write: true }), 'EISDIR', d, 'open', 'open a directory for writing');
    await expectErrno(t, File.create(d), 'EISDIR', d, 'open', 'create over a directory');
    await expectErrno(t, writeFile(d, 'x'), 'EISDIR', d, 'open', 'writeFile over a directory');
    await expectErrno(t, readFile(d), 'EISDIR', d, 'read', 'readFile of a directory');
    await expectErrno(t, unlink(d), 'EISDIR', d, 'unlink', 'unlink a directory');
    const dirFile = await File.open(d); // read-only open of a directory is fine...
    t.true((await dirFile.stat()).isDirectory());
    await expectErrno(t, dirFile.readAt(Buffer.alloc(8), 0), 'EISDIR', d, 'read', '...reading it is not');
    await dirFile.close();
    await expectErrno(t, rename(f, full), 'EISDIR', f, 'rename', 'rename a file over a directory');

    // EEXIST
    await expectErrno(t, File.open(f, { write: true, create: true, exclusive: true }), 'EEXIST', f, 'open', 'exclusive create');
    await expectErrno(t, File.open(d, { write: true, create: true, exclusive: true }), 'EEXIST', d, 'open', 'exclusive create over a directory');
    await expectErrno(t, mkdir(full), 'EEXIST', full, 'mkdir', 'mkdir of an existing directory');
    await expectErrno(t, mkdir(f), 'EEXIST', f, 'mkdir', 'mkdir over a file');
    await expectErrno(t, mkdir(f, { recursive: true }), 'EEXIST', f, undefined, 'mkdir recursive over a file');
    const se = await expectErrno(t, symlink('anything', f), 'EEXIST', 'anything', 'symlink', 'symlink over a file (.path: the target)');
    t.is(se.dest, f, 'symlink: .dest is the link');
    t.is(readFileSync(f, 'utf8'), 'data', 'nothing clobbered the file');

    // ENOTDIR
    await expectErrno(t, File.open(join(f, 'x')), 'ENOTDIR', join(f, 'x'), 'open', 'open through a file');
    await expectErrno(t, stat(join(f, 'x')), 'ENOTDIR', join(f, 'x'), 'stat', 'stat through a file');
    await expectErrno(t, rmdir(f), 'ENOTDIR', f, 'rmdir', 'rmdir of a file');
    await expectErrno(t, mkdir(join(f, 'sub')), 'ENOTDIR', join(f, 'sub'), 'mkdir', 'mkdir under a file');
    const deep = await rejectionOf(t, mkdir(join(f, 'a', 'b'), { recursive: true }));
    t.is(deep.code, 'ENOTDIR', 'mkdir recursive through a file');
    t.is(typeof deep.path, 'string');
    await expectErrno(t, rename(emptyDir, f), 'ENOTDIR', emptyDir, 'rename', 'rename a directory over a file');

    // ENOTEMPTY
    await expectErrno(t, rmdir(full), 'ENOTEMPTY', full, 'rmdir', 'rmdir of a non-empty directory');
    await expectErrno(t, rename(emptyDir, full), 'ENOTEMPTY', emptyDir, 'rename', 'rename over a non-empty directory');
    t.true(existsSync(join(full, 'x')));
    t.true(statSync(emptyDir).isDirectory());
  });
});

/** How to run a child as uid/gid 65534, or why we cannot. */
function dropPrivileges(): { cmd: string[] } | { skip: string } {
  if (process.getuid!() !== 0) return { skip: 'not root: run directly' };
  const which = spawnSync('setpriv', ['--version'], { encoding: 'utf8' });
  if (which.error === undefined && which.status === 0) {
    return { cmd: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] };
  }
  return { skip: `setpriv unavailable (${which.error?.message ?? which.stderr})` };
}

const how = dropPrivileges();

rtTest('EACCES as an unprivileged user (child process via setpriv): open, readFile, writeFile, mkdir, unlink, rmdir', async (t) => {
  const fixture = fileURLToPath(new URL('../../test/fixtures/fs-eacces.mjs', import.meta.url));
  const root = tmp('eacces');
  mkdirSync(root, { mode: 0o755 });
  chmodSync(dir, 0o755); // mkdtemp made it 0700: let the other user search it
  chmodSync(root, 0o755);
  const secret = join(root, 'secret');
  writeFileSync(secret, 'top secret', { mode: 0o600 });
  chmodSync(secret, 0o600);

  let res: Record<string, { ok?: boolean; code?: string; syscall?: string; path?: string } | string | number>;
  if ('cmd' in how) {
    const [cmd, ...args] = how.cmd;
    const out = spawnSync(cmd!, [...args, fixture, secret, root], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, RINGIO_DRIVER: DRIVER },
    });
    if (out.status !== 0) t.log(out.stderr);
    t.is(out.status, 0, 'the fixture ran');
    res = JSON.parse(out.stdout.trim().split('\n').pop()!);
  } else {
    // Already unprivileged: run the fixture the same way, without setpriv.
    const out = spawnSync(process.execPath, [fixture, secret, root], { encoding: 'utf8', timeout: 20_000 });
    t.is(out.status, 0, out.stderr);
    res = JSON.parse(out.stdout.trim().split('\n').pop()!);
  }
  t.log(`child ran as uid ${String(res.uid)} on ${String(res.driver)}`);
  t.not(res.uid, 0);
  t.is(res.uid, res.euid, 'all ids switched');
  if (DRIVER !== 'auto') t.is(res.driver, DRIVER, 'the child ran the driver under test');
  const expect: [string, string, string][] = [
    ['openRead', secret, 'open'],
    ['openWrite', secret, 'open'],
    ['readFile', secret, 'open'],
    ['writeFile', secret, 'open'],
    ['createInRootDir', join(root, 'new-file'), 'open'],
    ['mkdirInRootDir', join(root, 'new-dir'), 'mkdir'],
    ['mkdirRecursiveInRootDir', join(root, 'a'), 'mkdir'],
    ['unlinkInRootDir', secret, 'unlink'],
    ['rmdirRootDir', root, 'rmdir'],
  ];
  for (const [key, path, syscall] of expect) {
    t.deepEqual(res[key], { code: 'EACCES', syscall, path }, key);
  }
  t.deepEqual(res.stat, { ok: true }, 'stat needs no read permission');
  t.is(readFileSync(secret, 'utf8'), 'top secret', 'the file is untouched');
  t.false(existsSync(join(root, 'new-file')) || existsSync(join(root, 'new-dir')) || existsSync(join(root, 'a')));
}, 30_000, 'skip' in how && process.getuid!() === 0 ? `no way to drop privileges: ${how.skip}` : null);

// ---------------------------------------------------------------------------------------------------
// mkdir, rename, symlink, rmdir, unlink

rtTest('mkdir recursive: creates nested dirs, returns the first one created (like node:fs), is idempotent; mode applies', async (t) => {
  const base = tmp('mk');
  const nodeBase = tmp('mk-node');
  mkdirSync(base);
  mkdirSync(nodeBase);
  await run(async () => {
    const deep = join(base, 'a', 'b', 'c', 'd');
    const first = await mkdir(deep, { recursive: true, mode: 0o750 });
    const nodeFirst = mkdirSync(join(nodeBase, 'a', 'b', 'c', 'd'), { recursive: true });
    t.is(first, join(base, 'a'), 'resolves the first directory created');
    t.is(relative(nodeBase, nodeFirst!), relative(base, first!), 'same as node:fs');
    for (const sub of ['a', 'a/b', 'a/b/c', 'a/b/c/d']) {
      const s = statSync(join(base, sub));
      t.true(s.isDirectory(), sub);
      t.is(s.mode & 0o777, 0o750 & ~process.umask(), `${sub}: mode`);
    }
    // The same calls on a twin tree through node:fs give the reference result: the first directory
    // created, spelled the way the path was given (relative stays relative, '..' stays), or undefined.
    const baseName = basename(base);
    const nodeName = basename(nodeBase);
    const asNode = (path: string): string => path.split(baseName).join(nodeName);
    const cwdRel = (path: string): string => relative(process.cwd(), path);
    for (const [what, path] of [
      ['again: nothing created', deep],
      ['an existing ancestor', join(base, 'a', 'b')],
      ['one level', join(base, 'a', 'b', 'x')],
      ['a path with ..', `${base}/a/b/x/../y/z`],
      ['a path with .', `${base}/a/./dot/e`],
      ['a relative path', cwdRel(join(base, 'rel', 'sub'))],
      ['a relative path, existing', cwdRel(join(base, 'rel'))],
    ] as const) {
      const want = mkdirSync(asNode(path), { recursive: true });
      const got = await mkdir(path, { recursive: true });
      t.is(got, want === undefined ? undefined : want.split(nodeName).join(baseName), `${what}: ${path}`);
    }
    t.true(statSync(join(base, 'a', 'b', 'y', 'z')).isDirectory());
    t.true(statSync(join(base, 'a', 'dot', 'e')).isDirectory());
    t.true(statSync(join(base, 'rel', 'sub')).isDirectory());

    // Non-recursive resolves undefined, and mode applies.
    t.is(await mkdir(join(base, 'plain'), { mode: 0o700 }), undefined);
    t.is(statSync(join(base, 'plain')).mode & 0o777, 0o700);
    await t.throwsAsync(mkdir(join(base, 'bad'), { mode: -1 }), { instanceOf: RangeError });
    await t.throwsAsync(mkdir(join(base, 'bad'), { mode: 0o10000 }), { instanceOf: RangeError });
    await t.throwsAsync(mkdir(5 as unknown as string), { instanceOf: TypeError });
    t.false(existsSync(join(base, 'bad')));

    // Concurrent recursive mkdirs of overlapping trees all succeed.
    const many = await Promise.all(Array.from({ length: 16 }, (_, i) => mkdir(join(base, 'race', 'p', `leaf${i % 4}`), { recursive: true })));
    t.is(many.length, 16);
    for (let i = 0; i < 4; i++) t.true(statSync(join(base, 'race', 'p', `leaf${i}`)).isDirectory());
  });
});

rtTest('rename moves files and directories (same inode, atomic replace); rmdir and unlink remove', async (t) => {
  const d = tmp('mv');
  mkdirSync(d);
  const a = join(d, 'a');
  const b = join(d, 'b');
  const c = join(d, 'c');
  const data = randomBytes(5000);
  writeFileSync(a, data);
  writeFileSync(c, 'old');
  await run(async () => {
    const ino = statSync(a).ino;
    await rename(a, b);
    t.false(existsSync(a));
    t.is(statSync(b).ino, ino, 'the same inode under the new name');
    t.true(readFileSync(b).equals(data));
    await rename(b, c);
    t.true(readFileSync(c).equals(data), 'rename replaced the existing file');
    t.is(statSync(c).ino, ino);

    const sub = join(d, 'sub');
    mkdirSync(join(sub, 'inner'), { recursive: true });
    writeFileSync(join(sub, 'inner', 'f'), 'x');
    await rename(sub, join(d, 'moved'));
    t.is(readFileSync(join(d, 'moved', 'inner', 'f'), 'utf8'), 'x');
    t.false(existsSync(sub));
    // Buffer and URL paths.
    await rename(Buffer.from(c), pathToFileURL(join(d, 'by url')));
    t.true(readFileSync(join(d, 'by url')).equals(data));

    await unlink(join(d, 'moved', 'inner', 'f'));
    t.false(existsSync(join(d, 'moved', 'inner', 'f')));
    await rmdir(join(d, 'moved', 'inner'));
    await rmdir(join(d, 'moved'));
    t.false(existsSync(join(d, 'moved')));
    await unlink(join(d, 'by url'));
    await expectErrno(t, unlink(join(d, 'by url')), 'ENOENT', join(d, 'by url'), 'unlink', 'unlink twice');
    await rmdir(d);
    t.false(existsSync(d));
  });
});

rtTest('symlink + lstat: the link itself vs its target; dangling links; unlink removes only the link', async (t) => {
  const d = tmp('ln');
  mkdirSync(d);
  const target = join(d, 'target');
  writeFileSync(target, randomBytes(777));
  await run(async () => {
    const rel = join(d, 'rel');
    const abs = join(d, 'abs');
    await symlink('target', rel);
    await symlink(target, abs);
    t.is(readlinkSync(rel), 'target');
    t.is(readlinkSync(abs), target);
    for (const [link, text] of [
      [rel, 'target'],
      [abs, target],
    ] as const) {
      const l = await lstat(link);
      const nl = lstatSync(link);
      t.true(l.isSymbolicLink(), 'lstat sees the link');
      t.false(l.isFile());
      t.is(l.size, Buffer.byteLength(text), 'its size is the target string length');
      t.is(l.ino, nl.ino);
      t.is(l.mode, nl.mode);
      t.is(l.mtimeMs, nl.mtimeMs);
      const s = await stat(link);
      t.true(s.isFile(), 'stat follows it');
      t.is(s.size, 777);
      t.is(s.ino, statSync(target).ino);
    }
    // Reading through the link.
    t.true((await readFile(rel)).equals(readFileSync(target)));
    // A link to a directory.
    await symlink(d, join(d, 'self'));
    t.true((await stat(join(d, 'self'))).isDirectory());
    t.true((await lstat(join(d, 'self'))).isSymbolicLink());
    await expectErrno(t, rmdir(join(d, 'self')), 'ENOTDIR', join(d, 'self'), 'rmdir', 'rmdir of a symlink to a directory');

    const dangling = join(d, 'dangling');
    await symlink(join(d, 'nowhere'), dangling);
    t.true((await lstat(dangling)).isSymbolicLink());
    await expectErrno(t, stat(dangling), 'ENOENT', dangling, 'stat', 'stat of a dangling link');
    await expectErrno(t, File.open(dangling), 'ENOENT', dangling, 'open', 'open of a dangling link');
    // Creating through a dangling link creates its target.
    await writeFile(dangling, 'made');
    t.is(readFileSync(join(d, 'nowhere'), 'utf8'), 'made');

    await unlink(rel);
    t.false(existsSync(rel));
    t.true(existsSync(target), 'unlinking the link keeps the target');
    // symlink with non-UTF-8-safe but valid bytes in a Buffer target.
    const weird = join(d, 'weird');
    await symlink(Buffer.from([0x61, 0xff, 0x62]), weird);
    t.true(readlinkSync(weird, { encoding: 'buffer' }).equals(Buffer.from([0x61, 0xff, 0x62])));
    await t.throwsAsync(symlink(5 as unknown as string, join(d, 'x')), { instanceOf: TypeError });
    await t.throwsAsync(symlink('t', 'a\0b'), { instanceOf: TypeError });
    await t.throwsAsync(rename('a', 5 as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(unlink(null as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(rmdir({} as unknown as string), { instanceOf: TypeError });
  });
});
