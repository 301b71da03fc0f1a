/**
 * Time: sleep, timeout and interval over the runtime's timer heap (timers.ts), which keeps one kernel
 * timeout armed for the earliest deadline.
 */
import { currentRuntime } from './context.js';
import { abortError, ringioError } from './errors.js';
import type { SignalOptions } from './op.js';
import { checkSignal } from './validate.js';

function checkMs(ms: unknown): number {
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError('ms must be a number');
  if (ms < 0 || !Number.isFinite(ms) || ms > 2 ** 31 * 1000) throw new RangeError(`ms must be a finite number >= 0, got ${ms}`);
  return ms;
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

