/** The service model: layers wrap once, factories carry state through make(old), slots, and the stock layers. */
import test from 'ava';
import { sleep } from '@ringio/runtime';
import {
  AccessLog,
  accessLogFactory,
  accessLogLayer,
  CatchErrors,
  catchErrorsFactory,
  ConcurrencyLimit,
  SharedPermits,
  concurrencyLimitFactory,
  concurrencyLimitLayer,
  constFactory,
  findOld,
  Slot,
  stack,
  stackFactory,
  StatsService,
  statsFactory,
  statsLayer,
  sumCounters,
  timeoutLayer,
  TimeoutService,
  buildFactory,
  type Service,
} from '@ringio/service';
import { fixture, rt, unavailable, type AnyErr } from './helpers.js';
import { pathToFileURL } from 'node:url';

class Echo implements Service<string, string> {
  calls = 0;
  call(req: string): string {
    this.calls++;
    return `echo:${req}`;
  }
}

class Fails implements Service<string, string> {
  call(req: string): Promise<string> {
    return Promise.reject(Object.assign(new Error(`no ${req}`), { code: 'ENOPE' }));
  }
}

test('a layer wraps once at build time; calls go through without new closures', async (t) => {
  let built = 0;
  const counting = {
    layer(inner: Service<string, string>) {
      built++;
      return { inner, call: (req: string) => inner.call(req.toUpperCase()) };
    },
  };
  const svc = stack(new Echo(), counting, statsLayer()) as StatsService<string, string>;
  t.is(built, 1);
  t.is(await svc.call('a'), 'echo:A');
  t.is(await svc.call('b'), 'echo:B');
  t.is(built, 1);
  t.is(svc.counters.calls, 2);
});

test('make(old) carries state down the chain, and skips layers that were removed or added', async (t) => {
  // Keeps the same Echo across rebuilds (findOld: the old inner may be a layer that is gone now).
  const base = { make: (old?: unknown) => findOld(old, (s): s is Echo => s instanceof Echo) ?? new Echo() };
  const v1 = (await stackFactory(base, concurrencyLimitFactory(4), statsFactory(), catchErrorsFactory(() => 'caught')).make()) as CatchErrors<string, string>;
  await v1.call('x');
  const stats1 = findOld(v1, (s): s is StatsService<string, string> => s instanceof StatsService)!;
  t.is(stats1.counters.calls, 1);

  // Rebuild without the concurrency limit and with an access log (disabled: no layer at all).
  const v2 = (await stackFactory(base, statsFactory(), accessLogFactory({ enabled: false }), catchErrorsFactory(() => 'caught')).make(v1)) as CatchErrors<string, string>;
  const stats2 = findOld(v2, (s): s is StatsService<string, string> => s instanceof StatsService)!;
  t.not(stats2, stats1);
  t.is(stats2.counters, stats1.counters, 'the counters object carried over');
  t.is(findOld(v2, (s): s is ConcurrencyLimit<string, string> => s instanceof ConcurrencyLimit), undefined);
  t.is(findOld(v2, (s): s is AccessLog<string, string> => s instanceof AccessLog), undefined, 'access log off by default: no layer');
  await v2.call('y');
  t.is(stats1.counters.calls, 2);
  const echo = findOld(v2, (s): s is Echo => s instanceof Echo)!;
  t.is(echo.calls, 2, 'the innermost service came from the old chain');

  // Adding the limit back: its permits start fresh, the stats still carry.
  const v3 = (await stackFactory(base, concurrencyLimitFactory(1), statsFactory()).make(v2)) as StatsService<string, string>;
  t.is(v3.counters, stats1.counters);
  t.is(constFactory(echo).make(), echo);
});

test('slot: connections keep the chain they took; set and clear return the old one', (t) => {
  const slot = new Slot<string>();
  t.is(slot.version, 0);
  t.is(slot.peek(), undefined);
  t.throws(() => slot.get(), { code: 'ERR_RINGIO_CLOSED' });
  slot.set('v1');
  const taken = slot.get();
  t.is(slot.set('v2'), 'v1');
  t.is(taken, 'v1');
  t.is(slot.get(), 'v2');
  t.is(slot.version, 2);
  t.is(slot.clear(), 'v2');
  t.is(slot.peek(), undefined);
});

test('concurrency limit rejects over the limit with ERR_RINGIO_OVERLOADED and counts calls from the old chain', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow: Service<string, string> = { call: async (r) => (await gate, r) };
  const lim = stack(slow, concurrencyLimitLayer(2)) as ConcurrencyLimit<string, string>;
  const a = lim.call('a');
  const b = lim.call('b');
  t.is(lim.running, 2);
  const err = await t.throwsAsync(Promise.resolve(lim.call('c')));
  t.is((err as AnyErr).code, 'ERR_RINGIO_OVERLOADED');
  const lim2 = (await concurrencyLimitFactory<string, string>(2).wrap(constFactory(slow)).make(lim)) as ConcurrencyLimit<string, string>;
  await t.throwsAsync(Promise.resolve(lim2.call('d')), { code: 'ERR_RINGIO_OVERLOADED' });
  release();
  t.deepEqual(await Promise.all([a, b]), ['a', 'b']);
  t.is(lim2.running, 0);
  t.is(await lim2.call('e'), 'e');
  t.throws(() => new ConcurrencyLimit(slow, 0), { instanceOf: RangeError });
  // SharedPermits: one count for every limit on the same cell (every thread, in ringio-proxy).
  const cells = new Int32Array(new SharedArrayBuffer(8));
  const x = new ConcurrencyLimit(slow, 1, new SharedPermits(cells, 1));
  const y = new ConcurrencyLimit({ call: (r: string) => r }, 1, new SharedPermits(cells, 1));
  const held = x.call('held');
  t.is(cells[1], 1);
  await t.throwsAsync(Promise.resolve(y.call('refused')), { code: 'ERR_RINGIO_OVERLOADED' });
  t.is(await held, 'held');
  t.is(await y.call('now'), 'now');
  t.is(cells[1], 0);
  t.throws(() => new SharedPermits(new Int32Array(2), 0), { instanceOf: TypeError });
  t.throws(() => new SharedPermits(cells, 2), { instanceOf: RangeError });
});

test('catch-errors turns a rejection into a response; stats count errors by code', async (t) => {
  const svc = stack(new Fails(), statsLayer(), { layer: (inner: Service<string, string>) => new CatchErrors(inner, (e, req) => `${req} failed: ${(e as AnyErr).code}`) }) as CatchErrors<string, string>;
  t.is(await svc.call('x'), 'x failed: ENOPE');
  const stats = svc.inner as StatsService<string, string>;
  t.like(stats.counters.snapshot(), { calls: 1, running: 0, errors: 1, errorCodes: { ENOPE: 1 } });
  t.like(sumCounters([stats.counters.snapshot(), undefined, stats.counters.snapshot()]), { calls: 2, errors: 2, errorCodes: { ENOPE: 2 } });
  t.throws(() => new CatchErrors(new Fails(), 'x' as never), { instanceOf: TypeError });
});

test('access log: off by default; on, one line per call with errors', async (t) => {
  const lines: string[] = [];
  t.true(stack(new Echo(), accessLogLayer()) instanceof Echo, 'no layer unless enabled');
  const on = stack(new Fails(), accessLogLayer({ enabled: true, write: (l) => lines.push(l) })) as AccessLog<string, string>;
  await t.throwsAsync(on.call('q'));
  const ok = stack(new Echo(), accessLogLayer({ enabled: true, write: (l) => lines.push(l), format: (e) => `${e.req} -> ${e.res}` }));
  await ok.call('z');
  t.is(lines.length, 2);
  t.like(JSON.parse(lines[0]!), { ok: false, error: 'no q' });
  t.is(lines[1], 'z -> echo:z');
  // A sink that throws does not fail the call.
  const broken = stack(new Echo(), accessLogLayer({ enabled: true, write: () => { throw new Error('sink'); } }));
  t.is(await broken.call('k'), 'echo:k');
});

test.serial('timeout layer rejects with ERR_RINGIO_TIMEOUT; fast calls pass', async (t) => {
  if (unavailable !== null) return void t.pass(unavailable);
  await rt(async () => {
    const slow: Service<string, string> = { call: async (r) => (await sleep(5000), r) };
    const fast = stack(new Echo(), timeoutLayer(1000)) as TimeoutService<string, string>;
    t.is(await fast.call('f'), 'echo:f');
    const svc = stack(slow, timeoutLayer(20));
    await t.throwsAsync(Promise.resolve(svc.call('s')), { code: 'ERR_RINGIO_TIMEOUT' });
  });
  t.throws(() => new TimeoutService(new Echo(), 0), { instanceOf: RangeError });
});

test('buildFactory loads { module, export, args } and checks what it gets', async (t) => {
  const mod = pathToFileURL(fixture('service-deploy.mjs')).href;
  const f = await buildFactory<{ name: string; gen: number }>({ module: mod, export: 'counterFactory', args: { name: 'n' } });
  const s1 = await f.make();
  const s2 = await f.make(s1 as never);
  t.like(s2, { name: 'n', gen: 2 });
  await t.throwsAsync(buildFactory({ module: mod, export: 'nothing' }), { instanceOf: TypeError, message: /no exported function 'nothing'/ });
  await t.throwsAsync(buildFactory({ module: 'x.mjs' }), { instanceOf: TypeError });
  await t.throwsAsync(buildFactory({ module: mod, export: 'notAFactory' }), { instanceOf: TypeError, message: /did not return a factory/ });
});
