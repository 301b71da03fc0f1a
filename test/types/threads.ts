// Channels, oneshots and watches (with `using`), spawnBlocking's argument and result types, shareable.
import {
  start,
  channel,
  oneshot,
  watch,
  spawnBlocking,
  shareable,
  fromShareable,
  type BlockingOptions,
  Channel,
  type Cloned,
  type JoinHandle,
} from '@ringio/runtime';
import { assertType, type Eq } from './_expect.js';


await start(async () => {
  {
    using ch = channel<number>(16);
    await ch.send(1);
    const v: number | undefined = await ch.recv();
    // @ts-expect-error the channel carries numbers
    await ch.send('1');
    void v;
    for await (const x of ch) {
      const y: number = x;
      void y;
      break;
    }
  }
  {
    await using os = oneshot<string>();
    os.send('x');
    const s: string = await os.recv();
    void s;
  }
  {
    using w = watch({ n: 1 });
    w.set({ n: 2 });
    const n: number = w.get().n;
    void n;
  }

  // Arguments are checked against the function's parameters.
  const sum = spawnBlocking((a: number, b: number) => a + b, 1, 2);
  assertType<Eq<typeof sum, JoinHandle<number>>>();
  // @ts-expect-error 'x' is not a number
  spawnBlocking((a: number, b: number) => a + b, 'x');
  // @ts-expect-error b is missing
  spawnBlocking((a: number, b: number) => a + b, 1);
  // Parameters without annotations take the arguments' types.
  const len: number = await spawnBlocking((s, n) => s.repeat(n).length, 'ab', 3);
  void len;

  // The result is what comes back through the structured clone: a Buffer arrives as a Uint8Array.
  const bytes = await spawnBlocking(() => Buffer.from('hi'));
  assertType<Eq<typeof bytes, Uint8Array>>();
  // @ts-expect-error it is not a Buffer any more
  const asBuffer: Buffer = bytes;
  void asBuffer;
  class Point {
    constructor(public x: number) {}
    norm(): number {
      return Math.abs(this.x);
    }
  }
  type P = Cloned<Point>;
  assertType<Eq<P, { x: number }>>();
  assertType<Eq<Cloned<Map<string, Buffer>>, Map<string, Uint8Array>>>();
  assertType<Eq<Cloned<[Buffer, number]>, [Uint8Array, number]>>();

  // Options first.
  const ac = new AbortController();
  const opts: BlockingOptions = { signal: ac.signal, transfer: [new ArrayBuffer(8)] };
  const r: JoinHandle<number> = spawnBlocking(opts, (ab: ArrayBuffer) => ab.byteLength, new ArrayBuffer(8));
  // { module, export }: name the result type.
  const viaModule: JoinHandle<string> = spawnBlocking<string>({ module: '/srv/jobs.mjs', export: 'hash' }, 'abc');
  void [r, viaModule];

  // @ts-expect-error primitives come from channel(), oneshot(), watch()
  new Channel();
  // shareable / fromShareable keep the primitive's type.
  const ch: Channel<string> = channel<string>();
  const revived: Channel<string> = fromShareable(shareable(ch));
  void revived;
});
