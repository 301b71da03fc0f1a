/**
 * watch(initial): one value that any thread may replace and every thread may read, with a way to
 * wait for the next change. Meant for configuration that one thread fetches and all threads use.
 */
import { Cell, H_AUX0, KIND_WATCH, SIDE_RECV } from './cell.js';
import { decode, encode } from './codec.js';
import { registerHandle } from './handles.js';
import { checkWaitOptions, closedError, SharedHandle, type Wait } from './shared.js';

const H_VERSION = H_AUX0;

/**
 * One value that any thread may replace (set) and every thread may read (get), with changed() to wait
 * for the next version (make it with watch(initial)). Meant for configuration that one thread fetches
 * and all threads use.
 */
export class Watch<T = unknown> extends SharedHandle {
  private readonly waitq: Wait[] = [];
  /** The newest version this thread's changed() has handed out. */
  private seen: number;
  private cachedVersion = -1;
  private cached: unknown;

  /**
   * @internal Use watch(). `seen`: the version current when the watch was handed to this thread
   * (share.ts), so that a set() made while this thread was still starting is one it has not seen;
   * without it (or if it is not a version this watch has had), the current version.
   */
  constructor(cell: Cell, seen?: number) {
    super(cell);
    const now = Atomics.load(cell.w, H_VERSION);
    this.seen = Number.isInteger(seen) && seen! >= 0 && seen! <= now ? seen! : now;
  }

  /** The version number of the current value: 0 for the initial one, +1 per set(). */
  get version(): number {
    return Atomics.load(this._cell.w, H_VERSION);
  }

  /**
   * The current value. It does not mark anything seen: a request handler calling get() must not
   * swallow the change another task of the same thread awaits with changed(). Within one thread,
   * successive calls return the same object until the value changes (decoded once per version):
   * treat it as read-only.
   */
  get(): T {
    const c = this._cell;
    const v = Atomics.load(c.w, H_VERSION);
    if (v !== this.cachedVersion) {
      c.lock();
      const rec = c.peek();
      const version = c.w[H_VERSION]!;
      c.unlock();
      this.cached = decode(rec.tag, rec.bytes);
      this.cachedVersion = version;
    }
    return this.cached as T;
  }

  /** get(), and marks the version it returns as seen (what changed() hands out). */
  private take(): T {
    const v = this.get();
    if (this.cachedVersion > this.seen) this.seen = this.cachedVersion;
    return v;
  }

  /** Replaces the value for every thread and wakes their changed() waiters. */
  set(value: T): void {
    const enc = encode(value);
    const c = this._cell;
    let keys: number[] | null;
    c.lock();
    try {
      if (c.closed) throw closedError('watch');
      c.replace(enc.tag, enc.bytes);
      Atomics.store(c.w, H_VERSION, c.w[H_VERSION]! + 1);
      keys = c.takeBits(SIDE_RECV);
    } finally {
      c.unlock();
    }
    this.wakeKeys(keys);
  }

  /**
   * Resolves with the new value once there is a version this thread's changed() has not handed out
   * yet, at once if there already is one, and marks it seen. Rejects with ERR_RINGIO_CLOSED once closed.
   */
  changed(opts?: { signal?: AbortSignal }): Promise<T> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkWaitOptions(opts);
      if (this.waitq.length === 0) {
        const r = this.checkOnce(-1);
        if (r === 1) return Promise.resolve(this.take());
        if (r === 2) return Promise.reject(closedError('watch'));
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.wait<T>(this.waitq, signal);
  }

  /** Closes it: changed() rejects with ERR_RINGIO_CLOSED, set() throws; get() still works. */
  close(): void {
    this.closeCell([SIDE_RECV]);
  }

  /** `using w = watch(v)`: close() when the scope ends (it closes the primitive for every thread). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** `await using`: the same as Symbol.dispose. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** 1: a newer version exists; 2: closed; 0: nothing yet (and `key` is registered). */
  private checkOnce(key: number): number {
    const c = this._cell;
    c.lock();
    try {
      if (c.w[H_VERSION]! > this.seen) return 1;
      if (c.closed) return 2;
      if (key >= 0) c.setBit(SIDE_RECV, key);
      return 0;
    } finally {
      c.unlock();
    }
  }

  protected pump(key: number): void {
    const q = this.waitq;
    if (q.length === 0) return;
    const r = this.checkOnce(key);
    if (r === 0) return;
    if (r === 2) {
      while (q.length > 0) this.fail(q, closedError('watch'));
      return;
    }
    let v: unknown;
    try {
      v = this.take();
    } catch (e) {
      while (q.length > 0) this.fail(q, e);
      return;
    }
    while (q.length > 0) this.settle(q, v);
  }

  protected queues(): Wait[][] {
    return [this.waitq];
  }
}

/** A value every thread can read and any thread can replace; hand it over in start()'s `shared`. */
export function watch<T = unknown>(initial: T): Watch<T> {
  const enc = encode(initial);
  const cell = Cell.create(KIND_WATCH, 1, 256);
  cell.lock();
  try {
    cell.replace(enc.tag, enc.bytes);
  } finally {
    cell.unlock();
  }
  return registerHandle(new Watch<T>(cell));
}
