// sleep, timeout in both argument orders, interval.
import { start, sleep, timeout, interval, spawn, type IntervalOptions, type MissedTick, type SignalOptions, type TimeoutWork } from '@ringio/runtime';

await start(async ({ signal }) => {
  await sleep(10);
  const so: SignalOptions = { signal };
  await sleep(10, so);
  const io: IntervalOptions = { missedTick: 'delay' };
  void io;
  // @ts-expect-error ms is a number
  await sleep('10');

  const a: number = await timeout(spawn(async () => 1), 100);
  // tokio's order: timeout(duration, future)
  const b: string = await timeout(100, Promise.resolve('x'));
  const c: number = await timeout(async (s: AbortSignal) => (s.aborted ? 0 : 1), 100);
  const d: number = await timeout(100, (s) => (s.aborted ? 0 : 1));
  const work: TimeoutWork<number> = Promise.resolve(1);
  await timeout(work, 5);
  // @ts-expect-error the work is a promise or a function
  await timeout(100, 100);
  void [a, b, c, d];

  const mode: MissedTick = 'skip';
  for await (const tick of interval(5, { missedTick: mode, signal })) {
    const n: number = tick;
    if (n >= 2) break;
  }
  // @ts-expect-error missedTick is 'burst' | 'delay' | 'skip'
  interval(5, { missedTick: 'catch-up' });

  // A sleep left pending when main returns needs no handler.
  void sleep(10_000);
});
