/**
 * Tasks and their JoinHandles.
 *
 * A JoinHandle is a thenable: `await handle` gives the task's result or rethrows its error. It is not a
 * Promise, so an error nobody awaits does not become an anonymous unhandled rejection: the runtime
 * reports it (the start() option `onTaskError`, else as an uncaught exception) one loop turn after the
 * task failed, unless somebody awaited the handle by then.
 */
import { AbortError } from './errors.js';
import type { Runnable } from './executor.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandle = JoinHandle<any>;

export interface TaskHost {
  onTaskEnd(handle: AnyHandle): void;
  reportTaskError(error: unknown, handle: AnyHandle): void;
}

const QUEUED = 0;
const RUNNING = 1;
const OK = 2;
const FAILED = 3;

export class JoinHandle<T> implements PromiseLike<T>, Runnable {
  #fn: ((signal: AbortSignal) => T | PromiseLike<T>) | undefined;
  #host: TaskHost;
  #ctl: AbortController | undefined;
  #status = QUEUED;
  #value: unknown = undefined;
  #aborted = false;
  #observed = false;
  #resolve: ((v: T) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  #promise: Promise<T> | undefined;
  /** @internal Position in the runtime's live-task list, or -1. */
  _index = -1;
  /** @internal Told when the handle is aborted (spawnBlocking cancels its pool job this way). */
  _onAbort: ((reason: unknown) => void) | undefined = undefined;

  /** @internal */
  constructor(fn: (signal: AbortSignal) => T | PromiseLike<T>, host: TaskHost) {
    this.#fn = fn;
    this.#host = host;
  }

  /** True once the task has ended (returned, thrown, or was aborted before it started). */
  get isFinished(): boolean {
    return this.#status === OK || this.#status === FAILED;
  }

  /**
   * Aborts the task's signal, which cancels every op the task passed it to, and makes `await handle`
   * reject at once with an AbortError, whatever the task does next. Buffers of cancelled ops are still
   * released only when the kernel answers.
   */
  abort(reason?: unknown): void {
    if (this.isFinished || this.#aborted) return;
    this.#aborted = true;
    const err = new AbortError('The task was aborted', reason !== undefined ? { cause: reason } : undefined);
    if (this.#status === QUEUED) {
      this.#fn = undefined;
      this.#status = FAILED;
      this.#host.onTaskEnd(this);
    }
    this.#ctl?.abort(reason ?? err);
    this._onAbort?.(reason ?? err);
    this.#value = err;
    if (this.#reject !== undefined) this.#reject(err);
  }

  /** @internal Called by the run queue. */
  run(): void {
    const fn = this.#fn;
    if (fn === undefined) return;
    this.#fn = undefined;
    this.#status = RUNNING;
    // Creating an AbortSignal costs microseconds, so a task gets one only if its function takes a parameter.
    let signal: AbortSignal | undefined;
    if (fn.length > 0) {
      this.#ctl = new AbortController();
      signal = this.#ctl.signal;
    }
    let r: T | PromiseLike<T>;
    try {
      r = fn(signal as AbortSignal);
    } catch (e) {
      this.#settle(FAILED, e);
      return;
    }
    if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<T>).then === 'function') {
      (r as PromiseLike<T>).then(
        (v) => this.#settle(OK, v),
        (e) => this.#settle(FAILED, e),
      );
    } else {
      this.#settle(OK, r);
    }
  }

  /** @internal The runtime is shutting down: behave as if aborted, without reporting. */
  shutdown(reason: unknown): void {
    this.abort(reason);
  }

  #settle(status: number, value: unknown): void {
    this.#status = status;
    this.#host.onTaskEnd(this);
    if (this.#aborted) return; // the handle already rejected; what the task did next is ignored
    this.#value = value;
    if (status === OK) {
      if (this.#resolve !== undefined) this.#resolve(value as T);
    } else if (this.#reject !== undefined) {
      this.#reject(value);
    } else {
      setImmediate(() => {
        if (!this.#observed) this.#host.reportTaskError(value, this);
      });
    }
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.#observed = true;
    if (this.#promise === undefined) {
      if (this.#aborted || this.#status === FAILED) {
        // #value is the AbortError for an aborted task, else whatever the task threw (even undefined).
        this.#promise = Promise.reject(this.#value);
      } else if (this.#status === OK) {
        this.#promise = Promise.resolve(this.#value as T);
      } else {
        this.#promise = new Promise<T>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.then(undefined, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally);
  }
}
