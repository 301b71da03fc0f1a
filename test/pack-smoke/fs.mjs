// @ringio/fs from its tarball: write a file, read it whole and at an offset.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start } from '@ringio/runtime';
import { File, readFile, writeFile, stat } from '@ringio/fs';

const dir = mkdtempSync(join(tmpdir(), 'ringio-smoke-fs-'));
try {
  const data = Buffer.alloc(100_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const res = await start(async () => {
    const path = join(dir, 'data.bin');
    await writeFile(path, data);
    const whole = await readFile(path);
    const f = await File.open(path);
    const [n, part] = await f.readAt(Buffer.alloc(1000), 50_000);
    await f.close();
    return { whole, n, part, size: (await stat(path)).size };
  });
  if (!res.whole.equals(data)) throw new Error('readFile returned other bytes');
  if (res.n !== 1000 || !res.part.equals(data.subarray(50_000, 51_000))) throw new Error('readAt returned other bytes');
  if (res.size !== data.length) throw new Error(`stat size ${res.size}`);
  console.log(`ok fs: wrote and read back ${res.whole.length} bytes`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
