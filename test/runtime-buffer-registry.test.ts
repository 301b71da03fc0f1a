/**
 * The buffer registry (packages/runtime/src/driver/registry.ts) on the driver under test: an array is
 * registered on its second use and only then; ids of collected arrays are released and handed to new
 * arrays, and reads into those land in the new arrays only; an array detached after its record was
 * written fails its op with EFAULT instead of reaching the kernel; views on resizable buffers and
 * separate views over the same memory; registrations outlive a runtime; registering adds no property
 * the array's owner can see.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { File } from '@ringio/fs';
import { stats } from '@ringio/runtime';
import { gc, gcNow, randomBytes, rejectionOf, rt, rtTest, run, tempDir } from './helpers.js';

const { tmp } = tempDir('ringio-registry-');

/** A file of `blocks` 4 KiB blocks, each filled with its own random bytes; returns [path, data]. */
function blockFile(blocks: number): [string, Buffer] {
  const p = tmp('blocks');
  const data = randomBytes(blocks * 4096);
  writeFileSync(p, data);
  return [p, data];
}

function block(data: Buffer, i: number): Buffer {
  return data.subarray(i * 4096, (i + 1) * 4096);
}

/** Forces GCs until the registry holds at most `target` ids (FinalizationRegistry callbacks run as tasks). */
async function settleRegistry(target: number): Promise<number> {
  for (let i = 0; i < 50 && stats().registeredBuffers > target; i++) {
    gcNow();
    await new Promise((r) => setTimeout(r, 5));
  }
  return stats().registeredBuffers;
}

function sameBytes(t: ExecutionContext, got: Uint8Array, want: Uint8Array, what: string): void {
  t.true(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), want) === 0, what);
}

rtTest('an array is registered on its second use; one-shot arrays are not', async (t) => {
  const [p, data] = blockFile(16);
  await run(async () => {
    const f = await File.open(p);
    const before = stats().registeredBuffers;
    const bufs = Array.from({ length: 8 }, () => Buffer.alloc(4096));
    await Promise.all(bufs.map((b, i) => f.readAt(b, i * 4096)));
    t.is(stats().registeredBuffers, before, 'first use: nothing registered');
    // One-shot arrays on the side, used once each.
    for (let i = 0; i < 8; i++) await f.readAt(Buffer.alloc(4096), 0);
    t.is(stats().registeredBuffers, before, 'one-shot arrays are never registered');
    for (let round = 0; round < 3; round++) {
      bufs.reverse();
      const results = await Promise.all(bufs.map((b, i) => f.readAt(b, (i + round) * 4096)));
      t.is(stats().registeredBuffers, before + 8, 'second and later uses: registered once each');
      results.forEach(([n, b], i) => {
        t.is(n, 4096);
        t.is(b, bufs[i]);
        sameBytes(t, b, block(data, i + round), `round ${round}, read ${i}`);
      });
    }
    await f.close();
  });
});

rtTest('the registry adds no property to an array it registers; a non-extensible array is read into all the same', async (t) => {
  const [p, data] = blockFile(4);
  await run(async () => {
    const f = await File.open(p);
    const buf = Buffer.alloc(4096);
    const keys = Reflect.ownKeys(buf);
    const sealed = Object.preventExtensions(new Uint8Array(4096));
    const before = stats().registeredBuffers;
    for (let use = 0; use < 3; use++) {
      const [n, b] = await f.readAt(buf, use * 4096);
      t.is(n, 4096);
      sameBytes(t, b, block(data, use), `use ${use}`);
      const [m, s] = await f.readAt(sealed, (use + 1) * 4096);
      t.is(m, 4096);
      sameBytes(t, s, block(data, use + 1), `non-extensible, use ${use}`);
    }
    t.true(stats().registeredBuffers >= before + 1, 'the plain array was registered');
    t.deepEqual(Reflect.ownKeys(buf), keys, 'no property, string or symbol, was added');
    t.is(Object.getPrototypeOf(buf), Buffer.prototype);
    t.true(Object.isExtensible(buf));
    t.false(Object.isExtensible(sealed));
    await f.close();
  });
});

rtTest('ids of collected arrays are released and reused; reads land only in the live arrays', async (t) => {
  t.is(typeof gc, 'function', 'run with --expose-gc');
  const [p, data] = blockFile(64);
  await run(async () => {
    const f = await File.open(p);
    const base = await settleRegistry(0);
    // Register 32 arrays (two uses each), then drop them.
    await (async () => {
      const bufs = Array.from({ length: 32 }, () => Buffer.alloc(4096));
      for (let use = 0; use < 2; use++) await Promise.all(bufs.map((b, i) => f.readAt(b, i * 4096)));
      t.is(stats().registeredBuffers, base + 32);
    })();
    t.is(await settleRegistry(base), base, 'every id of a collected array was released');
    // New arrays, likely at the addresses the old ones had, take the freed ids.
    const fresh = Array.from({ length: 32 }, () => Buffer.alloc(4096, 0xaa));
    const guards = Array.from({ length: 32 }, () => Buffer.alloc(4096, 0x55));
    for (let use = 0; use < 3; use++) {
      const results = await Promise.all(fresh.map((b, i) => f.readAt(b, ((i + 7 * use) % 64) * 4096)));
      results.forEach(([n, b], i) => {
        t.is(n, 4096);
        t.is(b, fresh[i]);
        sameBytes(t, b, block(data, (i + 7 * use) % 64), `use ${use}, read ${i}`);
      });
    }
    t.is(stats().registeredBuffers, base + 32, 'the new arrays hold 32 ids');
    t.true(
      guards.every((g) => g.every((x) => x === 0x55)),
      'arrays allocated meanwhile and never read into are untouched',
    );
    await f.close();
  });
});

rtTest('a window of a registered array is checked against the array, and the rest is untouched', async (t) => {
  const [p, data] = blockFile(4);
  await run(async () => {
    const f = await File.open(p);
    const buf = Buffer.alloc(3 * 4096, 0xee);
    await f.readAt(buf, 0, { offset: 0, length: 16 });
    await f.readAt(buf, 0, { offset: 0, length: 16 });
    const [n] = await f.readAt(buf, 4096, { offset: 4096, length: 4096 });
    t.is(n, 4096);
    sameBytes(t, buf.subarray(4096, 8192), block(data, 1), 'the window');
    t.true(buf.subarray(8192).every((x) => x === 0xee), 'after the window');
    t.true(buf.subarray(16, 4096).every((x) => x === 0xee), 'between the windows');
    // A view sharing the memory is its own registration and addresses its own bytes.
    const view = buf.subarray(8192);
    await f.readAt(view, 2 * 4096);
    const [m, got] = await f.readAt(view, 3 * 4096);
    t.is(m, 4096);
    t.is(got, view);
    sameBytes(t, buf.subarray(8192), block(data, 3), 'the subarray view');
    sameBytes(t, buf.subarray(4096, 8192), block(data, 1), 'the earlier window is unchanged');
    const bad = await rejectionOf(t, f.readAt(view, 0, { offset: 4096, length: 1 }));
    t.true(bad instanceof RangeError, 'a window past the view is a RangeError before anything is submitted');
    await f.close();
  });
});

rtTest('an array detached after its read was written fails with EFAULT, registered or not', async (t) => {
  const [p, data] = blockFile(2);
  await run(async () => {
    const f = await File.open(p);
    for (const registered of [false, true]) {
      const buf = Buffer.alloc(4096);
      if (registered) {
        await f.readAt(buf, 0);
        await f.readAt(buf, 0);
      }
      const regs = stats().registeredBuffers;
      const read = f.readAt(buf, 4096);
      // Transfer the memory away before the batch is flushed (the flush runs after this tick).
      const moved = new Uint8Array(structuredClone(buf.buffer, { transfer: [buf.buffer] }));
      moved.fill(0x11);
      t.is(buf.byteLength, 0, 'detached');
      const err = await rejectionOf(t, read);
      t.is(err.code, 'EFAULT', `registered: ${registered}`);
      t.is(err.buf, buf, 'the error carries the caller buffer');
      t.true(moved.every((x) => x === 0x11), 'the memory now owned by the transferred buffer was not written');
      t.is(stats().registeredBuffers, regs);
    }
    // The file itself still reads fine.
    const [n, b] = await f.readAt(Buffer.alloc(4096), 4096);
    t.is(n, 4096);
    sameBytes(t, b, block(data, 1), 'a read after the failures');
    await f.close();
  });
});

const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
/** Whether this Node makes resizable ArrayBuffers (the test below skips where it does not). */
const hasResizable = (() => {
  try {
    return (new Resizable(1, { maxByteLength: 2 }) as { resizable?: boolean }).resizable === true;
  } catch {
    return false;
  }
})();

rtTest('views on resizable buffers are never registered and read correctly', async (t) => {
  const [p, data] = blockFile(4);
  const ab = new Resizable(4096, { maxByteLength: 8192 });
  await run(async () => {
    const f = await File.open(p);
    const before = stats().registeredBuffers;
    const view = new Uint8Array(ab, 0, 4096);
    for (let i = 0; i < 3; i++) {
      const [n] = await f.readAt(view, i * 4096);
      t.is(n, 4096);
      sameBytes(t, view, block(data, i), `read ${i}`);
    }
    t.is(stats().registeredBuffers, before, 'not registered');
    await f.close();
  });
}, 30_000, hasResizable ? null : 'this Node has no resizable ArrayBuffer');

rtTest('a registration outlives its runtime', async (t) => {
  const [p, data] = blockFile(4);
  const buf = Buffer.alloc(4096);
  const regs = await rt(async () => {
    const f = await File.open(p);
    await f.readAt(buf, 0);
    await f.readAt(buf, 4096);
    await f.close();
    return stats().registeredBuffers;
  });
  await run(async () => {
    t.is(stats().registeredBuffers, regs, 'the new runtime sees the same registry');
    const f = await File.open(p);
    const [n, b] = await f.readAt(buf, 2 * 4096);
    t.is(n, 4096);
    t.is(b, buf);
    sameBytes(t, buf, block(data, 2), 'read under the second runtime');
    await f.close();
  });
});

rtTest('an array that lies about its length is never registered and gets EFAULT from the addon', async (t) => {
  const [p] = blockFile(16);
  class Liar extends Uint8Array {
    override get length(): number {
      return 1 << 20;
    }
  }
  await run(async () => {
    const f = await File.open(p);
    const backing = new Uint8Array(3 * 4096).fill(0x33);
    const liar = new Liar(backing.buffer, 4096, 4096);
    const before = stats().registeredBuffers;
    for (let use = 0; use < 3; use++) {
      const err = await rejectionOf(t, f.readAt(liar, 0, { length: 8192 }));
      t.is(err.code, 'EFAULT', `use ${use}`);
      t.is(err.buf, liar);
      // A window inside the real array still works, by either path.
      const [n] = await f.readAt(liar, 0, { length: 16 });
      t.is(n, 16);
    }
    t.is(stats().registeredBuffers, before, 'not registered: its length is not the intrinsic one');
    t.true(backing.subarray(0, 4096).every((x) => x === 0x33), 'before the array');
    t.true(backing.subarray(8192).every((x) => x === 0x33), 'after the array');
    await f.close();
  });
});

test('the addon registers only non-empty byte arrays and ignores releases of ids it never gave out', (t) => {
  const native = createRequire(import.meta.url)('node-gyp-build')(fileURLToPath(new URL('../..', import.meta.url))) as {
    ringio_buf_register(v: unknown): number;
    ringio_buf_release(id: unknown): void;
    ringio_buf_registered(): number;
  };
  const before = native.ringio_buf_registered();
  for (const bad of [{}, 'x', 7, null, undefined, new Uint16Array(4), new Float64Array(2), new Uint8Array(0), new DataView(new ArrayBuffer(8))]) {
    t.is(native.ringio_buf_register(bad), -1, String(bad));
  }
  for (const bad of [-1, 1e9, 'x', undefined, 2 ** 31]) native.ringio_buf_release(bad);
  t.is(native.ringio_buf_registered(), before);
  const keep = [new Int8Array(8), new Uint8ClampedArray(8), Buffer.alloc(8)];
  const ids = keep.map((a) => native.ringio_buf_register(a));
  t.true(ids.every((id) => id >= 0), 'byte arrays of each kind register');
  t.is(new Set(ids).size, 3, 'with distinct ids');
  t.is(native.ringio_buf_registered(), before + 3);
  for (const id of ids) native.ringio_buf_release(id);
  native.ringio_buf_release(ids[0]);
  t.is(native.ringio_buf_registered(), before, 'a second release of an id changes nothing');
});
