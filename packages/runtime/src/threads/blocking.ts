/**
 * spawnBlocking: CPU work on a pool of worker threads, so the runtime's own thread keeps serving I/O.
 *
 * Rules:
 *  1. A function is shipped as its source text and compiled in the worker, so it cannot use variables
 *     from the scope it was written in. It is compiled here first, so a function that cannot be
 *     shipped at all (native, bound, a method shorthand, a class) fails at once with
 *     ERR_RINGIO_NOT_SHIPPABLE; a free variable can only show up when the worker runs it, as a
 *     ReferenceError that says so.
 *  2. A job aborted while queued never runs; one aborted while running has its worker terminated
 *     (JS cannot be interrupted otherwise) and replaced on demand.
 *  3. The pool belongs to one runtime and is terminated when that runtime shuts down; the handles
 *     of jobs still queued or running then reject (an AbortError whose cause is ERR_RINGIO_CLOSED, as
 *     for every task at shutdown).
 *  4. Arguments travel by postMessage (structured clone, `transfer` moves ArrayBuffers without a
 *     copy); results too, and ArrayBuffers in a result are transferred back, not copied.
 */
import { Worker } from 'node:worker_threads';
import { abortError, ringioError } from '../errors.js';
import { currentRuntime } from '../context.js';
import type { Runtime } from '../runtime.js';
import type { JoinHandle } from '../task.js';
import { checkModuleSpec, isModuleSpec, type ModuleSpec } from './module-spec.js';
import { fromWire, type WireError } from './wire.js';
import type { Cloned } from './cloned.js';

/** spawnBlocking's options, given before the function: `spawnBlocking({ signal, transfer }, fn, ...args)`. */
export interface BlockingOptions {
  /** Aborting it aborts the job: a queued job is dropped, a running one has its worker terminated. */
  signal?: AbortSignal;
  /** ArrayBuffers among the arguments to move to the worker instead of copying. */
  transfer?: ArrayBuffer[];
}

/** What a worker receives: the function by id, with its source the first time that worker sees it. */
export interface JobMsg {
  id: number;
  /** The function's id (0 for `{ module, export }`). */
  fn: number;
  src?: string;
  module?: string;
  export?: string;
  args: unknown[];
}

interface Job {
  id: number;
  msg: JobMsg;
  /** The function's source, sent along only to workers that have not compiled it yet. */
  src: string | undefined;
  transfer: ArrayBuffer[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  worker: PoolWorker | undefined;
  settled: boolean;
}

interface PoolWorker {
  worker: Worker;
  job: Job | undefined;
  /** Function ids this worker has compiled. */
  known: Set<number>;
}

function isDetached(ab: ArrayBuffer): boolean {
  try {
    structuredClone(ab);
    return false;
  } catch {
    return true;
  }
}

/** Source text → function id, for every function that passed the shippability check. */
const compiled = new Map<string, number>();
let nextFnId = 1;

function checkShippable(fn: (...args: never[]) => unknown): [string, number] {
  const src = Function.prototype.toString.call(fn);
  const known = compiled.get(src);
  if (known !== undefined) return [src, known];
  const notShippable = (why: string): Error =>
    ringioError('ERR_RINGIO_NOT_SHIPPABLE', `spawnBlocking: ${why}; pass a self-contained function or { module, export }`);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(src)) throw notShippable('native and bound functions have no source to ship');
  if (/^class\b/.test(src)) throw notShippable('a class is not a function it can call');
  try {
    // Compile only (never run) to catch sources that are not expressions, such as method shorthands.
    new Function(`return (${src});`);
  } catch (e) {
    throw notShippable(`its source does not compile on its own (${(e as Error).message})`);
  }
  const id = nextFnId++;
  compiled.set(src, id);
  return [src, id];
}

export class BlockingPool {
  private readonly size: number;
  private readonly idle: PoolWorker[] = [];
  private readonly all = new Set<PoolWorker>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  private readonly cpus: number[] | undefined;

  /** `cpus`: the CPUs workers may use, when the runtime's thread is pinned (they would inherit the pin). */
  constructor(size: number, cpus?: number[]) {
    this.size = size;
    this.cpus = cpus;
  }

  get jobs(): number {
    let running = 0;
    for (const w of this.all) if (w.job !== undefined) running++;
    return this.queue.length + running;
  }

  /** Queues a job; `cancel` (the handle was aborted) drops it or ends its worker. */
  run(msg: JobMsg, src: string | undefined, transfer: ArrayBuffer[]): { promise: Promise<unknown>; cancel: (reason: unknown) => void } {
    let job!: Job;
    const promise = new Promise<unknown>((resolve, reject) => {
      job = { id: this.nextId++, msg, src, transfer, resolve, reject, worker: undefined, settled: false };
    });
    job.msg.id = job.id;
    if (this.closed) {
      this.settle(job, false, ringioError('ERR_RINGIO_CLOSED', 'the runtime is shutting down'));
    } else {
      this.queue.push(job);
      this.dispatch();
    }
    return { promise, cancel: (reason) => this.abort(job, reason) };
  }

  private settle(job: Job, ok: boolean, v: unknown): void {
    if (job.settled) return;
    job.settled = true;
    if (ok) job.resolve(v);
    else job.reject(v);
  }

  private abort(job: Job, reason: unknown): void {
    if (job.settled) return;
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    const w = job.worker;
    this.settle(job, false, reason);
    if (w !== undefined) {
      // Rule 2: the only way to stop running JS is to end its thread.
      this.remove(w);
      void w.worker.terminate();
      this.dispatch();
    }
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let w = this.idle.pop();
      if (w === undefined) {
        if (this.all.size >= this.size) return;
        w = this.spawn();
      }
      const job = this.queue.shift()!;
      job.worker = w;
      w.job = job;
      w.worker.ref();
      const fnId = job.msg.fn;
      const first = job.src !== undefined && !w.known.has(fnId);
      job.msg.src = first ? job.src : undefined;
      try {
        w.worker.postMessage(job.msg, job.transfer);
        if (first) w.known.add(fnId);
      } catch (e) {
        // An argument that cannot be cloned: this job fails, the worker is still good.
        w.job = undefined;
        job.worker = undefined;
        w.worker.unref();
        this.idle.push(w);
        this.settle(job, false, ringioError('ERR_RINGIO_NOT_CLONEABLE', `spawnBlocking: ${(e as Error).message}`, { cause: e }));
      }
    }
  }

  private spawn(): PoolWorker {
    const worker = new Worker(new URL('../blocking-entry.js', import.meta.url), { workerData: { cpus: this.cpus } });
    const w: PoolWorker = { worker, job: undefined, known: new Set() };
    this.all.add(w);
    worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: WireError }) => {
      const job = w.job;
      if (job === undefined || job.id !== m.id) return;
      w.job = undefined;
      job.worker = undefined;
      this.settle(job, m.ok, m.ok ? m.value : fromWire(m.error!));
      if (!this.closed && this.all.has(w)) {
        worker.unref();
        this.idle.push(w);
        this.dispatch();
      }
    });
    const gone = (e: unknown): void => {
      const job = w.job;
      this.remove(w);
      if (job !== undefined) this.settle(job, false, e);
      this.dispatch();
    };
    worker.on('error', gone);
    worker.on('exit', (code) =>
      gone(ringioError('ERR_RINGIO_THREAD_EXIT', `a spawnBlocking worker exited (code ${code}) while running a job`)),
    );
    return w;
  }

  private remove(w: PoolWorker): void {
    this.all.delete(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Rule 3. */
  async close(err: Error): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) this.settle(job, false, err);
    const workers = [...this.all];
    for (const w of workers) if (w.job !== undefined) this.settle(w.job, false, err);
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
}

/**
 * Runs `fn(...args)` on a worker thread of this runtime's pool; returns a JoinHandle like spawn's.
 * Options go first when needed: `spawnBlocking({ signal, transfer }, fn, ...args)`. `fn` is a
 * self-contained function (shipped as source: no closures) or `{ module, export }`.
 *
 * Types: the arguments are checked against `fn`'s parameters; the result is what really comes back
 * through the structured clone, `Cloned<R>` (a Buffer arrives as a Uint8Array, a class instance as a
 * plain object). With `{ module, export }` nothing is known about the function: name the result type
 * yourself, `spawnBlocking<number>({ module, export }, ...args)`.
 */
export function spawnBlocking<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): JoinHandle<Cloned<Awaited<R>>>;
export function spawnBlocking<A extends unknown[], R>(
  opts: BlockingOptions,
  fn: (...args: A) => R,
  ...args: A
): JoinHandle<Cloned<Awaited<R>>>;
export function spawnBlocking<R = unknown>(fn: ModuleSpec, ...args: unknown[]): JoinHandle<R>;
export function spawnBlocking<R = unknown>(opts: BlockingOptions, fn: ModuleSpec, ...args: unknown[]): JoinHandle<R>;
export function spawnBlocking(...all: unknown[]): JoinHandle<unknown> {
  let opts: BlockingOptions = {};
  let fn = all[0];
  let args = all.slice(1);
  if (typeof fn !== 'function' && !isModuleSpec(fn)) {
    if (fn === null || typeof fn !== 'object') {
      throw new TypeError('spawnBlocking(fn, ...args): fn must be a function or { module, export }');
    }
    opts = fn as BlockingOptions;
    fn = all[1];
    args = all.slice(2);
  }
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  const transfer = opts.transfer ?? [];
  if (!Array.isArray(transfer) || transfer.some((t) => !(t instanceof ArrayBuffer))) {
    throw new TypeError('transfer must be an array of ArrayBuffers');
  }
  // postMessage silently drops a message whose transfer list holds a detached buffer (Node 20): the
  // job would never run. Refuse it here.
  for (const ab of transfer) {
    if (ab.byteLength === 0 && isDetached(ab)) {
      throw ringioError('ERR_RINGIO_NOT_CLONEABLE', 'spawnBlocking: transfer lists an ArrayBuffer that is already detached');
    }
  }
  let msg: JobMsg;
  let src: string | undefined;
  if (typeof fn === 'function') {
    const [text, id] = checkShippable(fn as (...a: never[]) => unknown);
    src = text;
    msg = { id: 0, fn: id, args };
  } else if (isModuleSpec(fn)) {
    const spec = checkModuleSpec(fn, 'spawnBlocking');
    msg = { id: 0, fn: 0, module: spec.module, export: spec.export, args };
  } else {
    throw new TypeError('spawnBlocking: fn must be a function or { module, export }');
  }
  const rt: Runtime = currentRuntime();
  if (signal?.aborted) {
    // Rule 2, before anything is queued: an idle worker would otherwise get the job at once.
    const h = rt.spawn(() => undefined);
    h.abort(signal.reason);
    return h as JoinHandle<unknown>;
  }
  const pool = (rt.blocking ??= new BlockingPool(rt.blockingThreads, rt.unpinnedCpus)) as BlockingPool;
  const job = pool.run(msg, src, transfer);
  // A handle aborted before its task ran never awaits job.promise, whose rejection (the cancel below,
  // or the pool closing) would then go unhandled: the handle reports the outcome, not this promise.
  job.promise.catch(() => {});
  // The task only waits for the job: no AbortSignal per job; an abort of the handle cancels the job.
  const h = rt.spawn(() => job.promise);
  h._onAbort = (reason) => job.cancel(reason instanceof Error ? reason : abortError(signal));
  signal?.addEventListener('abort', () => h.abort(signal.reason), { once: true });
  return h;
}
