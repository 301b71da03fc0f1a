// start(): the shared type flows into main's context; `threads` decides whether the result is an array.
import {
  start,
  channel,
  watch,
  currentRuntime,
  stats,
  hasFeature,
  type Channel,
  type Feature,
  type Runtime,
  type RuntimeContext,
  type RuntimeStats,
  type StartOptions,
  type Watch,
} from '@ringio/runtime';
import { assertType, type Eq } from './_expect.js';


// One thread: main's value itself.
const one: number = await start(async () => 42);
void one;

// shared: the type given is the type main sees.
const config = watch({ greeting: 'hello' });
const jobs = channel<{ id: number }>();
const served = await start(
  async ({ threadId, threads, shared, signal }) => {
    const g: string = shared.config.get().greeting;
    await shared.jobs.send({ id: threadId });
    // @ts-expect-error shared has no `other` key
    shared.other;
    // @ts-expect-error the channel carries { id: number }
    await shared.jobs.send('x');
    const t: number = threads;
    const s: AbortSignal = signal;
    void t;
    void s;
    return g.length;
  },
  { threads: 4, shared: { config, jobs } },
);
// threads given: always an array, in threadId order.
const first: number[] = served;
void first;
assertType<Eq<typeof served, number[]>>();

// threads: 'auto' and threads: 1 are arrays too.
const auto = await start(() => 'x', { threads: 'auto' });
assertType<Eq<typeof auto, string[]>>();
const single = await start(() => 'x', { threads: 1 });
assertType<Eq<typeof single, string[]>>();

// No shared: ctx.shared is undefined.
await start((ctx) => {
  assertType<Eq<typeof ctx.shared, undefined>>();
});

// An annotated main: RuntimeContext<S>.
async function main(ctx: RuntimeContext<{ port: number }>): Promise<number> {
  return ctx.shared.port;
}
const port: number = await start(main, { shared: { port: 8080 } });
void port;
// @ts-expect-error shared must match what main declares
await start(main, { shared: { port: '8080' } });

// Options typed on their own: StartOptions is exported; with `threads` unknown the result may be either.
const opts: StartOptions = { driver: 'epoll', entries: 256 };
const either = await start(() => 1, opts);
assertType<Eq<typeof either, number | number[]>>();
// @ts-expect-error driver is 'uring' | 'epoll' | 'auto'
await start(() => 1, { driver: 'io_uring' });
// @ts-expect-error threads is a number or 'auto'
await start(() => 1, { threads: '4' });

// { module, export }: the result is unknown (an array with threads).
const viaModule = await start({ module: new URL('file:///srv/app.mjs'), export: 'main' }, { threads: 2 });
assertType<Eq<typeof viaModule, unknown[]>>();

// Runtime, RuntimeStats and features.
await start(() => {
  const rt: Runtime = currentRuntime();
  const st: RuntimeStats = stats();
  const f: Feature[] = st.features;
  const zc: boolean = hasFeature('op:SEND_ZC');
  // @ts-expect-error not a feature ringio reports
  hasFeature('op:SEND_ZERO_COPY');
  void rt.signal.aborted;
  void f;
  void zc;
});

// Channels and watches handed over keep their types.
const c: Channel<{ id: number }> = jobs;
const w: Watch<{ greeting: string }> = config;
void c;
void w;
