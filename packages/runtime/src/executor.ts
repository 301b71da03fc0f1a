/**
 * The per-thread run queue: FIFO, drained in a microtask, at most `turn.budget` items between two turns
 * of Node's loop. Items are task starts (JoinHandle) and wakeups (yieldNow).
 */
import type { Turn } from './driver/driver.js';

export interface Runnable {
  run(): void;
}

type Item = Runnable | (() => void);

export class Executor {
  private q: (Item | undefined)[] = [];
  private head = 0;
  private drainQueued = false;
  private readonly turn: Turn;

  constructor(turn: Turn) {
    this.turn = turn;
  }

  get length(): number {
    return this.q.length - this.head;
  }

  schedule(item: Item): void {
    this.q.push(item);
    if (!this.drainQueued) {
      this.drainQueued = true;
      queueMicrotask(this.drainTask);
    }
  }

  private readonly drainTask = (): void => {
    this.drainQueued = false;
    this.drain();
  };

  /** Runs queued items in FIFO order until the queue is empty or the turn's budget is spent. */
  drain(): void {
    const turn = this.turn;
    while (this.head < this.q.length) {
      if (turn.work >= turn.budget) {
        // Let Node's loop (and the driver's completions and timers) have a turn first.
        turn.yieldToLoop();
        return;
      }
      const item = this.q[this.head]!;
      this.q[this.head++] = undefined;
      turn.work++;
      if (typeof item === 'function') item();
      else item.run();
    }
    this.q.length = 0;
    this.head = 0;
  }

  /** Drops everything queued (runtime shutdown); returns what was dropped. */
  clear(): Item[] {
    const rest = this.q.slice(this.head) as Item[];
    this.q = [];
    this.head = 0;
    return rest;
  }
}
