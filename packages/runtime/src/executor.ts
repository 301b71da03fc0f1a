/**
 * The per-thread run queue: FIFO, drained in a microtask, at most `turn.budget` items between two turns
 * of Node's loop. Items are task starts (JoinHandle) and wakeups (yieldNow).
 *
 * The queue is a ring buffer that only grows, so a steady state allocates nothing. The drain is
 * scheduled with a plain promise reaction rather than queueMicrotask(), which wraps every callback in
 * an AsyncResource and costs more than the task itself.
 */
import type { Turn } from './driver/driver.js';

export interface Runnable {
  run(): void;
}

export type Item = Runnable | (() => void);

const RESOLVED = Promise.resolve();

export class Executor {
  private ring: (Item | undefined)[] = new Array(1024);
  private mask = 1023;
  private head = 0;
  private tail = 0;
  private drainQueued = false;
  private readonly turn: Turn;

  constructor(turn: Turn) {
    this.turn = turn;
  }

  get length(): number {
    return this.tail - this.head;
  }

  schedule(item: Item): void {
    if (this.tail - this.head === this.ring.length) this.grow();
    this.ring[this.tail++ & this.mask] = item;
    if (!this.drainQueued) {
      this.drainQueued = true;
      void RESOLVED.then(this.drainTask);
    }
  }

  private readonly drainTask = (): void => {
    this.drainQueued = false;
    this.drain();
  };

  /** Runs queued items in FIFO order until the queue is empty or the turn's budget is spent. */
  drain(): void {
    const turn = this.turn;
    while (this.head !== this.tail) {
      if (turn.work >= turn.budget) {
        // Let Node's loop (and the driver's completions and timers) have a turn first.
        turn.yieldToLoop();
        return;
      }
      const i = this.head++ & this.mask;
      const item = this.ring[i]!;
      this.ring[i] = undefined;
      turn.work++;
      if (typeof item === 'function') item();
      else item.run();
    }
  }

  /** Drops everything queued (runtime shutdown); returns what was dropped. */
  clear(): Item[] {
    const rest: Item[] = [];
    while (this.head !== this.tail) {
      const i = this.head++ & this.mask;
      rest.push(this.ring[i]!);
      this.ring[i] = undefined;
    }
    return rest;
  }

  private grow(): void {
    const old = this.ring;
    const n = old.length;
    const ring = new Array<Item | undefined>(n * 2);
    for (let k = 0; k < n; k++) ring[k] = old[(this.head + k) & this.mask];
    this.ring = ring;
    this.mask = n * 2 - 1;
    this.head = 0;
    this.tail = n;
  }
}
