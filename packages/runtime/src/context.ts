/**
 * This thread's runtime: the one slot that says which Runtime is current, and the functions that act
 * on it (spawn, submit, stats, ...). Every module above the runtime reaches it through here and never
 * imports start.ts, so threads/, time.ts and fd.ts sit below start() with no import circle
 * (docs/design/layers.md).
 */
import { ringioError } from './errors.js';
import type { OpAble, SignalOptions } from './op.js';
import type { RecvPoolOptions } from './recv-pool.js';
import type { Feature, Runtime, RuntimeStats } from './runtime.js';
import type { JoinHandle } from './task.js';
import { checkSignal } from './validate.js';

let current: Runtime | undefined;

/** The runtime running on this thread; throws ERR_RINGIO_NO_RUNTIME if there is none. */
export function currentRuntime(): Runtime {
  if (current === undefined) throw ringioError('ERR_RINGIO_NO_RUNTIME');
  return current;
}

/** @internal Makes `rt` this thread's runtime (start.ts), or clears the slot. */
export function setCurrentRuntime(rt: Runtime | undefined): void {
  current = rt;
}

/** @internal Whether a runtime runs on this thread. */
export function hasRuntime(): boolean {
  return current !== undefined;
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

/**
 * Cancels an op in flight. Its promise still settles only after the kernel answers: with the op's
 * result if it finished first, else with an AbortError ('abort') or ERR_RINGIO_CLOSED ('closed').
 * Does nothing for an op that is not in flight.
 */
export function cancelOp(op: OpAble<unknown>, reason: 'abort' | 'closed' = 'abort'): void {
  currentRuntime().driver.cancel(op, reason);
}

/**
 * Whether this thread's driver has a feature from stats().features (`'op:SEND_ZC'`, `'COOP_TASKRUN'`,
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

/**
 * @internal Submits an op that settles by calling `resolve` / `reject` rather than through a promise of
 * its own: one promise for a batch of ops. Throws instead of rejecting.
 */
export function submitBound<T>(op: OpAble<T>, resolve: (v: T) => void, reject: (e: unknown) => void): void {
  currentRuntime().driver.submitBound(op, resolve as (v: unknown) => void, reject);
}

/** Submits an op to this thread's driver. Rejects ERR_RINGIO_NO_RUNTIME outside a runtime. */
export function submit<T>(op: OpAble<T>, opts?: SignalOptions): Promise<T> {
  try {
    return currentRuntime().submit(op, checkSignal(opts?.signal));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Sizes this runtime's receive-buffer pool (the memory pooled reads land in: readLease, toDuplex).
 * Call it before the first pooled read on this thread; later it throws ERR_RINGIO_POOL_IN_USE. A bad
 * value throws a RangeError naming the option.
 */
export function configureRecvPool(opts: RecvPoolOptions): void {
  currentRuntime().configureRecvPool(opts);
}
