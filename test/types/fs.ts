// @ringio/fs with node:fs/promises-style options: encodings, flags strings, and File.
import { start } from '@ringio/runtime';
import {
  File,
  readFile,
  writeFile,
  stat,
  mkdir,
  rename,
  unlink,
  allocAligned,
  Stats,
  type OpenOptions,
  type OpenFlags,
  type FileIoOptions,
  type ReadFileOptions,
  type WriteFileOptions,
  type PathLike,
} from '@ringio/fs';
import { assertType, type Eq } from './_expect.js';


await start(async () => {
  const p: PathLike = '/tmp/ringio-types.txt';
  await writeFile(p, 'héllo', 'latin1');
  await writeFile(p, 'hello', { encoding: 'utf8', mode: 0o600, flag: 'w', flush: true });
  await writeFile(p, new Uint16Array([1, 2]), { flag: 'a' });
  // @ts-expect-error not an encoding
  await writeFile(p, 'x', 'utf-9');
  // @ts-expect-error not an option (a typo is an error, not silently ignored)
  await writeFile(p, 'x', { encodng: 'utf8' });

  const text = await readFile(p, 'utf8');
  assertType<Eq<typeof text, string>>();
  const text2 = await readFile(p, { encoding: 'base64' });
  assertType<Eq<typeof text2, string>>();
  const bytes = await readFile(p);
  assertType<Eq<typeof bytes, Buffer>>();
  const bytes2 = await readFile(p, { signal: AbortSignal.timeout(1000), flag: 'r' });
  assertType<Eq<typeof bytes2, Buffer>>();
  const ro: ReadFileOptions = { encoding: null };
  const either = await readFile(p, ro);
  assertType<Eq<typeof either, string | Buffer>>();
  const wo: WriteFileOptions = { encoding: 'hex' };
  void wo;

  const flags: OpenFlags = 'r+';
  await using f = await File.open(p, flags);
  await using g = await File.open(p, 'w', 0o644);
  const oo: OpenOptions = { read: true, write: true, create: true, exclusive: false, mode: 0o600, sync: true };
  void oo;
  // @ts-expect-error not a flags string
  await File.open(p, 'rw');
  const io: FileIoOptions = { offset: 0, length: 4 };
  const [n, buf] = await f.readAt(Buffer.alloc(16), 0, io);
  const b: Buffer = buf;
  const [, big] = await f.readAt(new Uint8Array(4), 5_000_000_000n);
  const u: Uint8Array = big;
  await g.writeAllAt(b.subarray(0, n), 0);
  void u;
  const st: Stats = await f.stat();
  const size: number = st.size;
  const mtime: Date = st.mtime;
  const isFile: boolean = st.isFile();
  void [size, mtime, isFile];
  // @ts-expect-error the constructor is internal: use File.open
  new File(3, 'x', 'pool', undefined);

  // @ts-expect-error Stats decodes the bytes of a struct statx
  new Stats('x');
  const s2 = await stat(p);
  void s2.ino;
  const made: string | undefined = await mkdir('/tmp/ringio-types-dir/a', { recursive: true });
  void made;
  await rename(p, '/tmp/ringio-types-2.txt');
  await unlink('/tmp/ringio-types-2.txt');
  const aligned: Buffer = allocAligned(4096);
  void aligned;
});
