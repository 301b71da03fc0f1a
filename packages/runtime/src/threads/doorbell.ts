/**
 * This thread's doorbell: how other threads wake it. The native half (addon/threads.cc) owns an
 * eventfd in libuv's poll set and an inbox of tokens; a token is the uid of the shared primitive
 * whose state changed. Here tokens are routed to the primitive's per-thread side, which re-checks the
 * shared state and settles whatever waiters can now go on.
 *
 * Rules:
 *  1. A token is a hint. Targets always re-read the shared state under its lock, so a duplicate,
 *     stale or misdirected token costs a lock round and nothing else.
 *  2. The loop is kept alive exactly while some task of this thread awaits another thread.
 *  3. When the runtime closes, every pending cross-thread wait is rejected (ERR_RINGIO_CLOSED) before
 *     the doorbell goes away.
 */
import { native } from '../addon.js';

export interface WakeTarget {
  /** The shared state may have changed: retry this thread's waiters. */
  onWake(): void;
  /** The runtime is closing: reject this thread's waiters with `err`. */
  failAll(err: Error): void;
}

const AREA = 512;

export class Doorbell {
  /** Other threads ring this key (ringio_thread_wake). */
  readonly key: number;
  private readonly area = new Int32Array(AREA);
  private readonly targets = new Map<number, WakeTarget>();
  private readonly woken = new Set<WakeTarget>();
  private waits = 0;
  private closed = false;

  constructor() {
    this.key = native.ringio_thread_register(this.area, this.onWake);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Routes tokens for `uid` to `target` while it has waiters here. */
  attach(uid: number, target: WakeTarget): void {
    this.targets.set(uid, target);
  }

  detach(uid: number): void {
    this.targets.delete(uid);
  }

  /** A task of this thread started (or stopped) awaiting another thread (rule 2). */
  waitStarted(): void {
    if (this.waits++ === 0) native.ringio_thread_ref(true);
  }

  waitEnded(): void {
    if (--this.waits === 0 && !this.closed) native.ringio_thread_ref(false);
  }

  /** Counters for stats(): tokens received and the eventfd writes it took to wake this thread. */
  counters(): [number, number] {
    return native.ringio_thread_counters();
  }

  private readonly onWake = (count: number): void => {
    const woken = this.woken;
    for (let i = 0; i < count; i++) {
      const t = this.targets.get(this.area[i]! >>> 0);
      if (t !== undefined) woken.add(t);
    }
    for (const t of woken) {
      try {
        t.onWake();
      } catch (e) {
        process.nextTick(() => {
          throw e;
        });
      }
    }
    woken.clear();
  };

  /** Rejects every pending wait (rule 3) and gives the doorbell back. */
  close(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [...this.targets.values()]) t.failAll(err);
    this.targets.clear();
    native.ringio_thread_unregister();
  }
}

/** Rings thread `key`'s doorbell with `uid`. Returns false if no thread owns that doorbell now. */
export function ring(key: number, uid: number): boolean {
  return native.ringio_thread_wake(key, uid);
}
