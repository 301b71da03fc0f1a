/**
 * start(): checks the options, makes this thread's runtime (runThread), runs main on it, and tears it
 * down; with `threads: N`, the same on N threads (threads/group.ts). The top of the runtime package:
 * nothing here imports it but index.ts and thread-entry.ts.
 */
import { availableParallelism } from 'node:os';
import { native } from './addon.js';
import { hasRuntime, setCurrentRuntime } from './context.js';
import type { DriverKind } from './driver/driver.js';
import { ringioError } from './errors.js';
import { Runtime, type TaskErrorHandler } from './runtime.js';
import {
  callerSite,
  checkModuleSpec,
  claim,
  isModuleSpec,
  loadExport,
  pinPlan,
  runGroup,
  type ModuleSpec,
  type ThreadConfig,
} from './threads/group.js';

/**
 * The options of `start(main, opts)`. `S` is the type of `shared`, which `main` receives as
 * `ctx.shared` (inferred from the `shared` you pass).
 */
export interface StartOptions<S = unknown> {
  /** 'uring', 'epoll' or 'auto' (default: $RINGIO_DRIVER, else 'auto'). */
  driver?: DriverKind;
  /** io_uring submission queue size, 1..32768 (default 1024). The completion queue is 4× that. */
  entries?: number;
  /**
   * Threads to run main on: an integer 1..1024, or 'auto' (os.availableParallelism()). Not given: one
   * thread, and start() resolves with main's value. Given (even 1): start() resolves with the array of
   * every thread's value, in threadId order.
   */
  threads?: number | 'auto';
  /** Pin thread i to a CPU: true cycles through the CPUs this thread may use; or a list. Default off. */
  pin?: boolean | number[];
  /**
   * Handed to every thread as ctx.shared: the object itself on the calling thread; on the others a
   * structured clone, with the channels, oneshots and watches in it revived as this thread's handles.
   */
  shared?: S;
  /** Worker threads for spawnBlocking, per runtime, 1..1024 (default os.availableParallelism()). */
  blockingThreads?: number;
  /** After an error, how long a thread may take to stop before it is terminated (ms, default 5000). */
  shutdownTimeout?: number;
  /** Receives errors of tasks nobody awaited. Without it they are raised as uncaught exceptions. */
  onTaskError?: TaskErrorHandler;
  /** Completions plus queued tasks run before Node's loop gets a turn (default 1024). */
  budget?: number;
}

/** What `main` receives: `start(main, opts)` calls `main(ctx)` on each thread. */
export interface RuntimeContext<S = unknown> {
  /** This thread's index: 0 on the thread that called start(), 1..threads − 1 on the workers. */
  readonly threadId: number;
  /** How many threads run main (1 unless the `threads` option says otherwise). */
  readonly threads: number;
  /**
   * start()'s `shared` option: the object itself on thread 0; on other threads a structured clone in
   * which channels, oneshots and watches are this thread's handles (class instances arrive as plain
   * objects). `undefined` when `shared` was not given.
   */
  readonly shared: S;
  /**
   * Aborted when this runtime starts shutting down (main settled), or when another thread of the
   * group failed; its reason is a RingioError ERR_RINGIO_CLOSED. Pass it to long waits.
   */
  readonly signal: AbortSignal;
}

const DRIVERS = new Set(['uring', 'epoll', 'auto']);
const MAX_THREADS = 1024;

function checkThreads(threads: unknown): number {
  if (threads === undefined) return 1;
  if (threads === 'auto') return availableParallelism();
  if (typeof threads !== 'number') throw new TypeError(`threads must be a number or 'auto', got ${typeof threads}`);
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`threads must be an integer in 1..${MAX_THREADS} or 'auto', got ${threads}`);
  }
  return threads;
}

/**
 * Runs `main(ctx)` on runtimes and resolves with its result. With `threads: 1` (the default) main runs
 * on this thread's runtime; with more, on this thread plus threads − 1 worker threads, each with its
 * own runtime, and start() resolves with the array of their results in threadId order (see
 * threads/group.ts for how workers find main). Each runtime lives until its main settles; then
 * everything still in flight is cancelled and drained before that thread's part settles.
 */
export function start<T, S = undefined>(
  main: (ctx: RuntimeContext<S>) => T | PromiseLike<T>,
  opts?: StartOptions<S> & { threads?: undefined },
): Promise<Awaited<T>>;
export function start<T, S = undefined>(
  main: (ctx: RuntimeContext<S>) => T | PromiseLike<T>,
  opts: StartOptions<S> & { threads: number | 'auto' },
): Promise<Awaited<T>[]>;
export function start<T, S = undefined>(
  main: (ctx: RuntimeContext<S>) => T | PromiseLike<T>,
  opts: StartOptions<S>,
): Promise<Awaited<T> | Awaited<T>[]>;
export function start(main: ModuleSpec, opts?: StartOptions & { threads?: undefined }): Promise<unknown>;
export function start(main: ModuleSpec, opts: StartOptions & { threads: number | 'auto' }): Promise<unknown[]>;
export function start(main: ModuleSpec, opts?: StartOptions): Promise<unknown>;
export function start<T>(
  main: ((ctx: RuntimeContext<unknown>) => T | PromiseLike<T>) | ModuleSpec,
  opts: StartOptions<unknown> = {},
): Promise<unknown> {
  // The place start() was called from decides which module worker threads load; take it first.
  const site = callerSite();
  try {
    return startChecked(main, opts, site);
  } catch (e) {
    return Promise.reject(e);
  }
}

function startChecked<T>(
  main: ((ctx: RuntimeContext<unknown>) => T | PromiseLike<T>) | ModuleSpec,
  opts: StartOptions<unknown>,
  site: ReturnType<typeof callerSite>,
): Promise<unknown> {
  if (typeof main !== 'function' && !isModuleSpec(main)) {
    throw new TypeError('start(main, opts): main must be a function or { module, export }');
  }
  if (opts === null || typeof opts !== 'object') throw new TypeError('start(main, opts): opts must be an object');
  const kind = opts.driver ?? ((process.env.RINGIO_DRIVER || 'auto') as DriverKind);
  if (!DRIVERS.has(kind)) {
    throw new TypeError(`driver must be 'uring', 'epoll' or 'auto', got ${JSON.stringify(kind)}`);
  }
  const entries = opts.entries ?? 1024;
  if (typeof entries !== 'number') throw new TypeError('entries must be a number');
  if (!Number.isInteger(entries) || entries < 1 || entries > 32768) {
    throw new RangeError(`entries must be an integer in 1..32768, got ${entries}`);
  }
  const budget = opts.budget ?? 1024;
  if (typeof budget !== 'number') throw new TypeError('budget must be a number');
  if (!Number.isInteger(budget) || budget < 1) throw new RangeError(`budget must be a positive integer, got ${budget}`);
  const threads = checkThreads(opts.threads);
  const blockingThreads = opts.blockingThreads ?? availableParallelism();
  if (typeof blockingThreads !== 'number' || !Number.isInteger(blockingThreads) || blockingThreads < 1 || blockingThreads > MAX_THREADS) {
    throw new RangeError(`blockingThreads must be an integer in 1..${MAX_THREADS}, got ${String(blockingThreads)}`);
  }
  const shutdownTimeout = opts.shutdownTimeout ?? 5000;
  if (typeof shutdownTimeout !== 'number' || !(shutdownTimeout >= 0) || !Number.isFinite(shutdownTimeout)) {
    throw new RangeError(`shutdownTimeout must be a finite number of ms >= 0, got ${String(shutdownTimeout)}`);
  }
  if (opts.onTaskError !== undefined && typeof opts.onTaskError !== 'function') {
    throw new TypeError('onTaskError must be a function');
  }
  const pins = pinPlan(opts.pin, threads);
  if (isModuleSpec(main) && site !== undefined && checkModuleSpec(main, 'start').module === site.url) {
    // Importing the module that is calling start() would wait for its own evaluation: a deadlock.
    throw ringioError(
      'ERR_RINGIO_THREAD_ENTRY',
      `start({ module }) names the module that calls it (${site.url}); pass main itself: start(main, opts)`,
    );
  }
  if (typeof main === 'function' && claim(main as never, site?.site)) {
    // This worker thread was made for this very call: main runs as its member; the code after
    // start() runs only on the calling thread, so here start() never settles.
    return new Promise<never>(() => {});
  }
  if (hasRuntime()) throw ringioError('ERR_RINGIO_NESTED_START');
  const configs: ThreadConfig[] = Array.from({ length: threads }, (_, i) => ({
    driver: kind,
    entries,
    budget,
    blockingThreads,
    cpu: pins?.[i] ?? -1,
  }));
  if (threads === 1) {
    // One thread, on this one. With `threads` given (1, or 'auto' on a one-CPU machine) the result is
    // still an array, so its type never depends on the machine.
    const one = (fn: (ctx: RuntimeContext<unknown>) => unknown): Promise<unknown> =>
      runThread(fn, { threadId: 0, threads: 1, shared: opts.shared }, configs[0]!, () => {}, opts.onTaskError);
    const run = typeof main !== 'function' ? loadExport(checkModuleSpec(main, 'start')).then((fn) => one(fn as never)) : one(main);
    return opts.threads === undefined ? run : run.then((v) => [v]);
  }
  return runGroup(main as never, site, threads, opts.shared, configs, shutdownTimeout, (fn, ctx, config, onRuntime) =>
    runThread(fn, ctx, config, onRuntime, opts.onTaskError),
  );
}

/** One thread's part: pin, make the runtime, run main, and tear the runtime down (rule 2). */
export async function runThread(
  main: (ctx: RuntimeContext<unknown>) => unknown,
  ctx: { threadId: number; threads: number; shared: unknown },
  config: ThreadConfig,
  onRuntime: (requestShutdown: (reason?: unknown) => void) => void,
  onTaskError?: StartOptions['onTaskError'],
): Promise<unknown> {
  if (hasRuntime()) throw ringioError('ERR_RINGIO_NESTED_START');
  // Pinning is for the runtime's life only; threads it starts (spawnBlocking's pool) get the CPUs
  // this thread had before, not its pin.
  const unpinned = config.cpu >= 0 ? native.ringio_thread_affinity() : undefined;
  if (config.cpu >= 0) native.ringio_thread_pin([config.cpu]);
  let rt: Runtime;
  try {
    rt = new Runtime(config.driver as DriverKind, config.entries, config.budget, onTaskError, config.blockingThreads, unpinned);
  } catch (e) {
    if (unpinned !== undefined) native.ringio_thread_pin(unpinned);
    throw e;
  }
  setCurrentRuntime(rt);
  try {
    onRuntime((reason) => rt.requestShutdown(reason));
    return await main({ threadId: ctx.threadId, threads: ctx.threads, shared: ctx.shared, signal: rt.signal });
  } finally {
    try {
      await rt.shutdown();
    } finally {
      setCurrentRuntime(undefined);
      if (unpinned !== undefined) native.ringio_thread_pin(unpinned);
    }
  }
}

