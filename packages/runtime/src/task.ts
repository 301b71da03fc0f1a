/**
 * Tasks and their JoinHandles.
 *
 * A JoinHandle is a thenable: `await handle` gives the task's result or rethrows its error. It is not a
 * Promise, so an error nobody awaits does not become an anonymous unhandled rejection: the runtime
 * reports it (the start() option `onTaskError`, else as an uncaught exception) one loop turn after the
 * task failed, unless somebody awaited the handle by then.
 */
import { AbortError } from './errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandle = JoinHandle<any>;

export interface TaskHost {
  onTaskEnd(handle: AnyHandle): void;
  reportTaskError(error: unknown, handle: AnyHandle): void;
}

const fnToString = Function.prototype.toString;

/**
 * True only for a function that provably cannot observe the arguments it is called with: an arrow
 * function (async or not) whose parameter list is `()` (arrows have no `arguments` of their own).
 * Anything else with length 0 (rest or default parameters, `function` expressions, methods, bound
 * functions, comments in the parameter list) is treated as able to, and gets the signal.
 */
function cannotSeeArguments(fn: (...args: never[]) => unknown): boolean {
  const s = fnToString.call(fn);
  let i = 0;
  if (s.startsWith('async')) {
    i = 5;
    while (s.charCodeAt(i) === 32) i++;
  }
  if (s.charCodeAt(i) !== 40 /* ( */) return false;
  i++;
  while (s.charCodeAt(i) === 32) i++;
  if (s.charCodeAt(i) !== 41 /* ) */) return false;
  // `()` then `=>`: an arrow. (`function ()` does not start with '(', nor does a method shorthand.)
  i++;
  while (s.charCodeAt(i) === 32) i++;
  return s.charCodeAt(i) === 61 /* = */ && s.charCodeAt(i + 1) === 62 /* > */;
}

const QUEUED = 0;
const RUNNING = 1;
const OK = 2;
const FAILED = 3;

/**
 * The handle of a task started by `spawn` (or `spawnBlocking`). Await it for the task's result, or
 * `abort()` it. It works as a `Promise<T>` (`then`, `catch`, `finally`, and it can be stored where a
 * `Promise<T>` is expected), but it is not one: an error nobody awaited is reported through
 * `onTaskError` (else as an uncaught exception), not as an unhandled rejection.
 *
 * (It does not declare `implements Runnable`: run() is internal and left out of the declarations.)
 */
export class JoinHandle<T> implements Promise<T> {
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

  /** @internal Use spawn(). */
  private constructor(fn: (signal: AbortSignal) => T | PromiseLike<T>, host: TaskHost) {
    this.#fn = fn;
    this.#host = host;
  }

  /** @internal How the runtime makes a task (the constructor is private: use spawn()). */
  static _create<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>, host: TaskHost): JoinHandle<T> {
    return new JoinHandle(fn, host);
  }

  /** 'JoinHandle': what Object.prototype.toString shows, and what makes a JoinHandle a Promise<T> to TypeScript. */
  get [Symbol.toStringTag](): string {
    return 'JoinHandle';
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
    // Every task whose function can see its argument gets its signal: one that declares a parameter,
    // and one with length 0 that still can (a wrapper (...a) => f(...a), a default (s = x) => ..., a
    // `function` reading `arguments`). Making an AbortSignal costs Node about 1-2 us, several times an
    // empty task, so the one case where nobody can ever see it is skipped: an arrow with `()`.
    let signal: AbortSignal | undefined;
    if (fn.length > 0 || !cannotSeeArguments(fn)) {
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
