/**
 * What the types promise for threads holds at run time: `threads` given means an array (1 included),
 * spawnBlocking's Buffer result is a Uint8Array, and channels, oneshots and watches close on `using`.
 */
import { channel, oneshot, spawnBlocking, start, watch } from '@ringio/runtime';
import { DRIVER, rejectionOf, rt, rtTest } from './helpers.js';

rtTest('start: threads given (1 included) resolves an array; not given, the value; shared is the object', async (t) => {
  const shared = { n: 21 };
  t.deepEqual(await start(({ shared: s, threads }) => [s.n * 2, threads], { driver: DRIVER, threads: 1, shared }), [[42, 1]]);
  t.deepEqual(await start(({ shared: s }) => s === shared, { driver: DRIVER, shared }), true);
});

rtTest('spawnBlocking: a Buffer result arrives as a Uint8Array, as its type says', async (t) => {
  await rt(async () => {
    const r = await spawnBlocking(() => Buffer.from('hi'));
    t.true(r instanceof Uint8Array);
    t.false(Buffer.isBuffer(r));
    t.is(Buffer.from(r).toString(), 'hi');
    t.is(await spawnBlocking((a: number, b: number) => a + b, 40, 2), 42);
  });
});

rtTest('using / await using close channels, oneshots and watches', async (t) => {
  await rt(async () => {
    const ch = channel<number>();
    const os = oneshot<number>();
    const w = watch(0);
    {
      using c = ch;
      await using o = os;
      using v = w;
      await c.send(1);
      void o;
      void v;
    }
    t.is(((await rejectionOf(t, ch.send(2))) as { code?: string }).code, 'ERR_RINGIO_CLOSED');
    t.is(await ch.recv(), 1, 'values queued before close are still delivered');
    t.is(((await rejectionOf(t, os.recv())) as { code?: string }).code, 'ERR_RINGIO_CLOSED');
    t.throws(() => w.set(1), { message: /closed/ });
  });
});
