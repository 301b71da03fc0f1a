/**
 * The per-thread runtime: a driver, a run queue and timers, and the public functions over them.
 *
 * Rules:
 *  1. One runtime per thread at a time (`current`). Module state is per thread in Node, so every
 *     worker has its own.
 *  2. start() owns the runtime's life: it ends when main settles, after every op in flight has been
 *     cancelled and answered by the kernel, and only then closes the driver.
 *  3. Work between two turns of Node's loop is bounded by BUDGET (completions + queued tasks).
 */
import { availableParallelism } from 'node:os';
import { Driver, type DriverKind, type Turn } from './driver/driver.js';
import { S_COMPLETIONS, S_ENTERS, S_SUBMITTED, S_WAKEUPS } from './driver/layout.js';
import { registeredBuffers } from './driver/registry.js';
import { abortError, ringioError } from './errors.js';
import { Executor } from './executor.js';
import type { OpAble, SignalOptions } from './op.js';
import { JoinHandle, type TaskHost } from './task.js';
import { Timers } from './timers.js';
import { Doorbell } from './threads/doorbell.js';
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
import { native } from './addon.js';

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
  onTaskError?: (error: unknown, handle: JoinHandle<unknown>) => void;
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

/** Optional io_uring opcodes the kernel may have; `hasFeature('op:NAME')` says whether it does. */
export type OptionalOp =
  | 'SEND_ZC'
  | 'MSG_RING'
  | 'SOCKET'
  | 'SPLICE'
  | 'STATX'
  | 'OPENAT'
  | 'SHUTDOWN'
  | 'RECV'
  | 'SEND'
  | 'ACCEPT'
  | 'CONNECT'
  | 'FSYNC'
  | 'FALLOCATE'
  | 'UNLINKAT'
  | 'RENAMEAT'
  | 'MKDIRAT'
  | 'SYMLINKAT'
  | 'FTRUNCATE';

/**
 * What `stats().features` may list: io_uring setup flags in use, kernel features, a registered ring
 * fd, the optional opcodes present (`op:NAME`); on epoll, `EPOLLET` and `TIMERFD`.
 */
export type Feature =
  | 'SINGLE_ISSUER'
  | 'DEFER_TASKRUN'
  | 'COOP_TASKRUN'
  | 'TASKRUN_FLAG'
  | 'SUBMIT_ALL'
  | 'EXT_ARG'
  | 'NODROP'
  | 'FAST_POLL'
  | 'REGISTERED_RING_FD'
  | 'EPOLLET'
  | 'TIMERFD'
  | `op:${OptionalOp}`;

/** `stats()`: figures and driver facts of this thread's runtime, a snapshot (a new object each call). */
export interface RuntimeStats {
  /** The driver in use: 'uring' (io_uring) or 'epoll'. */
  driver: 'uring' | 'epoll';
  /** Why 'auto' chose epoll, or null. */
  fallbackReason: string | null;
  /** The ring's submission queue size (0 on epoll). */
  entries: number;
  /** Setup flags and kernel features in use, and optional opcodes the kernel has (`op:SEND_ZC`, ...). */
  features: Feature[];
  /** The kernel release (uname -r). */
  kernel: string;
  /** Ops submitted and not yet finally completed (cancelled ones included until the kernel answers). */
  opsInFlight: number;
  /** Tasks and wake-ups waiting in the run queue. */
  tasksQueued: number;
  /** Pending sleeps (sleep, timeout, interval). */
  timers: number;
  /** io_uring_enter calls (epoll_wait calls on epoll) so far. */
  enters: number;
  /** Completions processed so far. */
  completions: number;
  /** Ops submitted so far. */
  submitted: number;
  /** Times Node's loop woke the runtime because the kernel had finished work. */
  wakeups: number;
  /** Wakeups from other threads (channel, oneshot, watch) delivered to this thread. */
  threadWakes: number;
  /** How many of those cost a syscall (an eventfd write, because this thread was asleep). */
  threadWakeSyscalls: number;
  /** spawnBlocking jobs queued or running. */
  blockingJobs: number;
  /**
   * Byte arrays in this thread's buffer registry: arrays used by more than one op, which records name
   * by id (a collected array leaves once its FinalizationRegistry callback has run).
   */
  registeredBuffers: number;
}

let current: Runtime | undefined;

/**
 * This thread's runtime, as `currentRuntime()` returns it: made by `start()`, one per thread. Its
 * public surface for users is `signal`, `isClosing` and `stats()`; the rest serves the packages.
 */
export class Runtime implements TaskHost, Turn {
  /** Plumbing, not API: this thread's driver (the ring, or the epoll backend). */
  readonly driver: Driver;
  /** Plumbing, not API: the run queue. */
  readonly executor: Executor;
  /** Plumbing, not API: the timer heap. */
  readonly timers: Timers;
  /** The `budget` option in effect. */
  readonly budget: number;
  /** Plumbing, not API: work done since Node's loop last had a turn. */
  work = 0;
  /** Live tasks, for shutdown. Unordered; each handle knows its index (swap-remove). */
  private readonly tasks: JoinHandle<unknown>[] = [];
  private readonly shutdownCtl = new AbortController();
  private readonly onTaskError: StartOptions['onTaskError'];
  private immediateQueued = false;
  private closing = false;
  private bell: Doorbell | undefined;
  /** spawnBlocking's pool, made on first use (blocking.ts). */
  blocking: { readonly jobs: number; close(err: Error): Promise<void> } | undefined;
  /** The `blockingThreads` option in effect. */
  readonly blockingThreads: number;
  /** The CPUs this thread had before start() pinned it (spawnBlocking's workers use these), if pinned. */
  readonly unpinnedCpus: number[] | undefined;

  constructor(
    kind: DriverKind,
    entries: number,
    budget: number,
    onTaskError: StartOptions['onTaskError'],
    blockingThreads = availableParallelism(),
    unpinnedCpus?: number[],
  ) {
    this.budget = budget;
    this.blockingThreads = blockingThreads;
    this.unpinnedCpus = unpinnedCpus;
    this.onTaskError = onTaskError;
    this.driver = new Driver(
      kind,
      entries,
      this,
      process.env.RINGIO_FAULT_URING_SETUP || undefined,
      process.env.RINGIO_URING_SETUP || undefined,
    );
    this.executor = new Executor(this);
    this.timers = new Timers(this.driver);
  }

  /** The same signal as ctx.signal: aborted when this runtime starts shutting down. */
  get signal(): AbortSignal {
    return this.shutdownCtl.signal;
  }

  /** True from the moment shutdown begins. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** This thread's doorbell, made on first use: how other threads wake this one. */
  get doorbell(): Doorbell {
    if (this.closing) throw ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down');
    if (this.bell === undefined) this.bell = new Doorbell();
    return this.bell;
  }

  /** Aborts ctx.signal: asks main to finish, without cancelling anything yet. */
  requestShutdown(reason?: unknown): void {
    this.shutdownCtl.abort(reason ?? ringioError('ERR_RINGIO_CLOSED', 'the runtime was asked to shut down'));
  }

  yieldToLoop(): void {
    if (this.immediateQueued) return;
    this.immediateQueued = true;
    setImmediate(this.onLoopTurn);
  }

  private readonly onLoopTurn = (): void => {
    this.immediateQueued = false;
    this.work = 0;
    if (!this.driver.isClosed) this.driver.pump();
    this.executor.drain();
  };

  /** As spawn(), without checking that fn is a function. */
  spawn<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>): JoinHandle<Awaited<T>> {
    const h = JoinHandle._create(fn as (signal: AbortSignal) => Awaited<T>, this);
    if (this.closing) {
      h.shutdown(ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down'));
      return h;
    }
    h._index = this.tasks.push(h as JoinHandle<unknown>) - 1;
    this.executor.schedule(h);
    return h;
  }

  /** Plumbing, not API: a task ended. */
  onTaskEnd(handle: JoinHandle<unknown>): void {
    const i = handle._index;
    if (i < 0) return;
    handle._index = -1;
    const last = this.tasks.pop()!;
    if (last !== handle) {
      this.tasks[i] = last;
      last._index = i;
    }
  }

  /** Plumbing, not API: an unawaited task failed (onTaskError, else an uncaught exception). */
  reportTaskError(error: unknown, handle: JoinHandle<unknown>): void {
    if (this.onTaskError !== undefined) {
      this.onTaskError(error, handle);
      return;
    }
    process.nextTick(() => {
      throw error;
    });
  }

  /** As submit(), with the signal given directly and not validated. */
  submit<T>(op: OpAble<T>, signal?: AbortSignal): Promise<T> {
    return this.driver.submit(op, signal);
  }

  /** As stats(). */
  stats(): RuntimeStats {
    const bellCounters = this.bell !== undefined && !this.bell.isClosed ? this.bell.counters() : [0, 0];
    const info = this.driver.info;
    const s = this.driver.stats;
    return {
      driver: info.driver,
      fallbackReason: info.fallbackReason,
      entries: info.entries,
      features: [...info.features] as Feature[],
      kernel: info.kernel,
      opsInFlight: this.driver.live,
      tasksQueued: this.executor.length,
      timers: this.timers.size,
      enters: s[S_ENTERS]!,
      completions: s[S_COMPLETIONS]!,
      submitted: s[S_SUBMITTED]!,
      wakeups: s[S_WAKEUPS]!,
      threadWakes: bellCounters[0],
      threadWakeSyscalls: bellCounters[1],
      blockingJobs: this.blocking?.jobs ?? 0,
      registeredBuffers: registeredBuffers(),
    };
  }

  /**
   * Stops the runtime: aborts ctx.signal and every task, rejects pending sleeps, cancels every op in
   * flight and waits until the kernel has answered for each, then closes the driver.
   */
  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const reason = ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down');
    this.shutdownCtl.abort(reason);
    this.bell?.close(reason);
    for (const t of [...this.tasks]) t.shutdown(reason);
    for (const item of this.executor.clear()) {
      if (typeof item === 'function') item(); // wake yielders; their next op or sleep sees the closed runtime
    }
    this.timers.closeAll();
    this.driver.beginShutdown();
    if (this.driver.live > 0) {
      await new Promise<void>((resolve) => {
        this.driver.onIdle = resolve;
        this.driver.pump();
      });
    }
    this.driver.onIdle = undefined;
    this.driver.close();
    if (this.blocking !== undefined) await this.blocking.close(reason);
  }
}

/** The runtime running on this thread; throws ERR_RINGIO_NO_RUNTIME if there is none. */
export function currentRuntime(): Runtime {
  if (current === undefined) throw ringioError('ERR_RINGIO_NO_RUNTIME');
  return current;
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
  if (current !== undefined) throw ringioError('ERR_RINGIO_NESTED_START');
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
  if (current !== undefined) throw ringioError('ERR_RINGIO_NESTED_START');
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
  current = rt;
  try {
    onRuntime((reason) => rt.requestShutdown(reason));
    return await main({ threadId: ctx.threadId, threads: ctx.threads, shared: ctx.shared, signal: rt.signal });
  } finally {
    try {
      await rt.shutdown();
    } finally {
      current = undefined;
      if (unpinned !== undefined) native.ringio_thread_pin(unpinned);
    }
  }
}

/** Queues `fn(signal)` as a task on this thread's run queue. See JoinHandle. */
export function spawn<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>): JoinHandle<Awaited<T>> {
  if (typeof fn !== 'function') throw new TypeError('spawn(fn): fn must be a function');
  return currentRuntime().spawn(fn);
}

/** Lets every task that is ready now run before the caller continues. */
export function yieldNow(): Promise<void> {
  const rt = currentRuntime();
  return new Promise<void>((resolve) => rt.executor.schedule(resolve));
}

function checkMs(ms: unknown): number {
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError('ms must be a number');
  if (ms < 0 || !Number.isFinite(ms) || ms > 2 ** 31 * 1000) throw new RangeError(`ms must be a finite number >= 0, got ${ms}`);
  return ms;
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return signal;
}

/** Resolves after `ms` milliseconds (1 ms resolution), measured by the driver's timer. */
export function sleep(ms: number, opts?: SignalOptions): Promise<void> {
  try {
    checkMs(ms);
    return currentRuntime().timers.sleep(ms, checkSignal(opts?.signal));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** What `timeout` runs: a promise (or any thenable, a JoinHandle too), or a function given an AbortSignal. */
export type TimeoutWork<T> = PromiseLike<T> | ((signal: AbortSignal) => PromiseLike<T> | T);

/**
 * Settles like `work`, or rejects with ERR_RINGIO_TIMEOUT once `ms` pass first. When `work` is a
 * function it is called with an AbortSignal that is aborted on timeout, which cancels its ops. Both
 * argument orders work: `timeout(work, ms)` and, as in tokio, `timeout(ms, work)`.
 */
export function timeout<T>(work: TimeoutWork<T>, ms: number): Promise<T>;
export function timeout<T>(ms: number, work: TimeoutWork<T>): Promise<T>;
export function timeout<T>(a: TimeoutWork<T> | number, b: TimeoutWork<T> | number): Promise<T> {
  try {
    // tokio's order, timeout(ms, work): a number first and a non-number second.
    const [work, ms] = typeof a === 'number' && typeof b !== 'number' ? [b, a] : [a as TimeoutWork<T>, b as number];
    checkMs(ms);
    const rt = currentRuntime();
    const isFn = typeof work === 'function';
    if (!isFn && (work === null || typeof work !== 'object' || typeof (work as PromiseLike<T>).then !== 'function')) {
      throw new TypeError('timeout(work, ms): work must be a promise or a function');
    }
    const timerCtl = new AbortController();
    const workCtl = isFn ? new AbortController() : undefined;
    let p: PromiseLike<T>;
    try {
      p = isFn ? Promise.resolve((work as (s: AbortSignal) => PromiseLike<T> | T)(workCtl!.signal)) : (work as PromiseLike<T>);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      let done = false;
      rt.timers.sleep(ms, timerCtl.signal).then(
        () => {
          if (done) return;
          done = true;
          const err = ringioError('ERR_RINGIO_TIMEOUT', `timed out after ${ms} ms`);
          workCtl?.abort(err);
          reject(err);
        },
        (e: unknown) => {
          // The timer was cancelled: by the work settling first (ignore), or by shutdown (report it).
          if (done || timerCtl.signal.aborted) return;
          done = true;
          workCtl?.abort(e);
          reject(e);
        },
      );
      p.then(
        (v) => {
          if (done) return;
          done = true;
          timerCtl.abort();
          resolve(v);
        },
        (e) => {
          if (done) return;
          done = true;
          timerCtl.abort();
          reject(e);
        },
      );
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * What interval() does when the consumer falls behind: 'burst' yields the missed ticks at once,
 * 'delay' restarts the period from now, 'skip' jumps to the next multiple of the period.
 */
export type MissedTick = 'burst' | 'delay' | 'skip';

/** interval()'s options. */
export interface IntervalOptions {
  /** Aborting it ends the iteration: a waiting next() rejects AbortError. */
  signal?: AbortSignal;
  /** What happens when the consumer falls behind (default 'burst'). */
  missedTick?: MissedTick;
}

/**
 * An async iterator that yields 1, 2, 3, ... every `ms` milliseconds, the first after `ms`.
 * When the consumer falls behind: 'burst' (default) yields the missed ticks at once, 'delay' restarts
 * the period from now, 'skip' jumps to the next multiple of the period.
 */
export function interval(
  ms: number,
  opts: IntervalOptions = {},
): AsyncIterableIterator<number> {
  checkMs(ms);
  if (ms === 0) throw new RangeError('interval period must be > 0');
  const signal = checkSignal(opts.signal);
  const mode = opts.missedTick ?? 'burst';
  if (mode !== 'burst' && mode !== 'delay' && mode !== 'skip') {
    throw new TypeError(`missedTick must be 'burst', 'delay' or 'skip'`);
  }
  const rt = currentRuntime();
  const start = performance.now();
  let next = start + ms;
  let tick = 0;
  let finished = false;
  const it: AsyncIterableIterator<number> = {
    async next(): Promise<IteratorResult<number>> {
      if (finished) return { value: undefined, done: true };
      if (signal?.aborted) {
        finished = true;
        throw abortError(signal);
      }
      const wait = next - performance.now();
      if (wait > 0) await rt.timers.sleep(wait, signal);
      const now = performance.now();
      tick++;
      if (mode === 'burst') next += ms;
      else if (mode === 'delay') next = now + ms;
      else next = start + (Math.floor((now - start) / ms) + 1) * ms;
      return { value: tick, done: false };
    },
    async return(): Promise<IteratorResult<number>> {
      finished = true;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

/**
 * Cancels an op in flight. Its promise still settles only after the kernel answers: with the op's
 * result if it finished first, else with an AbortError ('abort') or ERR_RINGIO_CLOSED ('closed').
 * Does nothing for an op that is not in flight.
 */
export function cancelOp(op: OpAble<unknown>, reason: 'abort' | 'closed' = 'abort'): void {
  currentRuntime().driver.cancel(op, reason);
}

/**
 * Whether this thread's driver has a feature from stats().features (`'op:SEND_ZC'`, `'DEFER_TASKRUN'`,
 * ...). Cheap: meant for hot paths, where stats() would build a whole object.
 */
export function hasFeature(name: Feature): boolean {
  return currentRuntime().driver.features.has(name);
}

/** The driver of this thread's runtime: 'uring' or 'epoll'. */
export function driverName(): 'uring' | 'epoll' {
  return currentRuntime().driver.info.driver;
}

/** Counters and driver facts of this thread's runtime. */
export function stats(): RuntimeStats {
  return currentRuntime().stats();
}

/** Submits an op to this thread's driver. Rejects ERR_RINGIO_NO_RUNTIME outside a runtime. */
export function submit<T>(op: OpAble<T>, opts?: SignalOptions): Promise<T> {
  try {
    return currentRuntime().submit(op, checkSignal(opts?.signal));
  } catch (e) {
    return Promise.reject(e);
  }
}
