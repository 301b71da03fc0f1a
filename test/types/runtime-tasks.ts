// spawn, JoinHandle (usable as a Promise<T>), yieldNow, and the task's signal.
import { start, spawn, yieldNow, read, pipe, JoinHandle } from '@ringio/runtime';
import { assertType, type Eq } from './_expect.js';


await start(async () => {
  const h = spawn(async () => 21);
  assertType<Eq<typeof h, JoinHandle<number>>>();
  // A JoinHandle can be stored as a Promise<T> and passed where one is expected.
  const p: Promise<number> = h;
  const all: number[] = await Promise.all([h, spawn(() => 2)]);
  const raced: number = await Promise.race([spawn(async () => 1), p]);
  void all;
  void raced;
  // @ts-expect-error the result is a number
  const s: Promise<string> = spawn(async () => 1);
  void s;

  // The task's signal, also through a wrapper that declares no parameter of its own.
  const [r, w] = pipe();
  const reader = (signal: AbortSignal) => read(r, Buffer.alloc(8), { signal });
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => R) =>
    (...a: A): R =>
      f(...a);
  const t = spawn(wrap(reader));
  t.abort(new Error('stop'));
  const fin: boolean = t.isFinished;
  void fin;
  await t.catch((e: unknown) => e);
  void w;

  await yieldNow();
  // @ts-expect-error the constructor is private: tasks come from spawn()
  new JoinHandle(() => 1, {});
  // @ts-expect-error run() is internal
  h.run();
  // @ts-expect-error spawn takes a function
  spawn(42);
});
