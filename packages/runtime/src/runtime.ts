/**
 * The per-thread runtime: a driver, a run queue and timers under one object. This module holds the
 * Runtime class only; this thread's current runtime and the functions over it are in context.ts,
 * sleep/timeout/interval in time.ts, and start() in start.ts (docs/design/layers.md).
 *
 * Rules:
 *  1. One runtime per thread at a time (context.ts). Module state is per thread in Node, so every
 *     worker has its own.
 *  2. start() owns the runtime's life: it ends when main settles, after every op in flight has been
 *     cancelled and answered by the kernel, and only then closes the driver (shutdown()).
 *  3. Work between two turns of Node's loop is bounded by BUDGET (completions + queued tasks).
 */
import { availableParallelism } from 'node:os';
import { Driver, type DriverKind, type Turn } from './driver/driver.js';
import { S_COMPLETIONS, S_ENTERS, S_SUBMITTED, S_WAKEUPS } from './driver/layout.js';
import { registeredBuffers } from './driver/registry.js';
import { ringioError } from './errors.js';
import { Executor } from './executor.js';
import { checkPoolOptions, RecvPool, type RecvPoolOptions, type RecvPoolStats } from './recv-pool.js';
import type { OpAble } from './op.js';
import { JoinHandle, type TaskHost } from './task.js';
import { Timers } from './timers.js';
import { Doorbell } from './threads/doorbell.js';

/** Receives errors of tasks nobody awaited (start()'s `onTaskError`). */
export type TaskErrorHandler = (error: unknown, handle: JoinHandle<unknown>) => void;

/**
 * Optional io_uring opcodes a kernel may lack (the op table's optional rows, addon/ops.cc);
 * `hasFeature('op:NAME')` says whether this thread's driver can run one.
 */
export type OptionalOp =
  | 'ACCEPT'
  | 'CONNECT'
  | 'FALLOCATE'
  | 'FSYNC'
  | 'FTRUNCATE'
  | 'MKDIRAT'
  | 'OPENAT'
  | 'RECV'
  | 'RECVMSG'
  | 'RENAMEAT'
  | 'SEND'
  | 'SENDMSG'
  | 'SEND_ZC'
  | 'SHUTDOWN'
  | 'SPLICE'
  | 'STATX'
  | 'SYMLINKAT'
  | 'UNLINKAT';

/** The opcodes every io_uring driver has (start() refuses a kernel without them). */
type RequiredOp = 'NOP' | 'READV' | 'WRITEV' | 'POLL_ADD' | 'TIMEOUT' | 'ASYNC_CANCEL' | 'CLOSE' | 'READ' | 'WRITE' | NativeOp;

/** The addon's own ops, built on required opcodes: listed on every driver. */
type NativeOp = 'READ_MANY';

/**
 * What `stats().features` may list: io_uring setup flags in use, kernel features, a registered ring
 * fd, adaptive poll-first receives (`RECV_POLL_FIRST`), multishot accept, provided-buffer rings (`PBUF_RING`) and multishot receive (`RECV_MULTISHOT`),
 * every opcode the driver can run (`op:NAME`); on epoll, `EPOLLET`, `TIMERFD`, `BUFFER_SELECT` (the
 * engine picks pool buffers on readiness) and the ops it runs as syscalls.
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
  | 'RECV_POLL_FIRST'
  | 'ACCEPT_MULTISHOT'
  | 'PBUF_RING'
  | 'RECV_MULTISHOT'
  | 'EPOLLET'
  | 'TIMERFD'
  | 'BUFFER_SELECT'
  | `op:${OptionalOp | RequiredOp}`;

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
  /**
   * Kernel features the driver probed for and runs without, each as `'NAME: why'` (io_uring:
   * `REGISTERED_RING_FD`, `RECV_POLL_FIRST`); empty on epoll and when nothing is missing.
   */
  degraded: string[];
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
  /** The receive-buffer pool (pooled reads: readLease, toDuplex): its mode, why not a richer one, and counters. */
  recvPool: RecvPoolStats;
}

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
  private readonly onTaskError: TaskErrorHandler | undefined;
  private immediateQueued = false;
  private closing = false;
  private bell: Doorbell | undefined;
  /** spawnBlocking's pool, made on first use (blocking.ts). */
  blocking: { readonly jobs: number; close(err: Error): Promise<void> } | undefined;
  /** The `blockingThreads` option in effect. */
  readonly blockingThreads: number;
  #pool: RecvPool | undefined;
  #poolOptions: RecvPoolOptions = {};
  /** The CPUs this thread had before start() pinned it (spawnBlocking's workers use these), if pinned. */
  readonly unpinnedCpus: number[] | undefined;

  constructor(
    kind: DriverKind,
    entries: number,
    budget: number,
    onTaskError: TaskErrorHandler | undefined,
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

  /** Plumbing, not API: gives Node's loop a turn (setImmediate) before more work runs. */
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

  /** Plumbing, not API: this runtime's receive-buffer pool, made on first use. */
  get recvPool(): RecvPool {
    if (this.#pool === undefined) {
      if (this.closing) throw ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down');
      this.#pool = new RecvPool(this.driver, this.#poolOptions);
    }
    return this.#pool;
  }

  /** As configureRecvPool(). */
  configureRecvPool(opts: RecvPoolOptions): void {
    checkPoolOptions(opts);
    if (this.#pool !== undefined) throw ringioError('ERR_RINGIO_POOL_IN_USE', 'configureRecvPool() must come before the first pooled read');
    this.#poolOptions = { ...opts };
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
      degraded: [...(info.degraded ?? [])],
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
      recvPool: this.#pool?.stats() ?? { mode: 'none', multishot: false, reason: null, ...checkPoolOptions(this.#poolOptions), grows: 0, leased: 0, exhausted: 0 },
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
    this.#pool?.close();
    if (this.blocking !== undefined) await this.blocking.close(reason);
  }
}

