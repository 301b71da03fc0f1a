/**
 * A connection's end of a readLeases() consumer, shared by the server's and the client's connections
 * (both read plain sockets through leases and copy each arrival into their own buffer):
 *  1. One lease at a time is held: the arrival not yet wholly copied into the connection's buffer. While
 *     one is held the consumer is paused (pause()); copying its last byte releases it and resumes reading.
 *  2. A body read (fill) waiting for bytes waits here: an arrival or the end of the reads settles it.
 *  3. Nothing keeps a lease past its release (copyInto, drop), so the reads run with `recycle` (RECYCLE):
 *     a released lease object is handed out again for a later arrival, and a read allocates nothing.
 * The connection keeps its buffer and decides when to compact it; this holds no bytes of its own.
 */
import type { RecvLease } from '@ringio/runtime';
import { copyBytes } from './out.js';

/** The options of a connection's readLeases() (rule 3). */
export const RECYCLE = Object.freeze({ recycle: true });

export class LeaseInbox {
  /** The lease not yet wholly copied (rule 1), and how much of it was. */
  held: RecvLease | undefined;
  off = 0;
  #unpause: (() => void) | undefined;
  #fillWait: ((n: number) => void) | undefined;
  #fillFail: ((e: unknown) => void) | undefined;
  // One executor each for every pause and wait (no closure per arrival).
  readonly #pauseBind = (resolve: () => void): void => {
    this.#unpause = resolve;
  };
  readonly #fillBind = (resolve: (n: number) => void, reject: (e: unknown) => void): void => {
    this.#fillWait = resolve;
    this.#fillFail = reject;
  };

  /** An arrival becomes the held lease. */
  hold(lease: RecvLease): void {
    this.held = lease;
    this.off = 0;
  }

  /** The consumer's pause until the held lease is wholly taken (the handler's return value). */
  pause(): Promise<void> {
    return new Promise<void>(this.#pauseBind);
  }

  /** The held lease's bytes not yet copied (0 without one). */
  get left(): number {
    return this.held === undefined ? 0 : this.held.length - this.off;
  }

  /**
   * Copies what fits of the held lease into `dst` from `at` to its end; once all of it is taken, releases
   * it and resumes the reads. Returns the bytes copied.
   */
  copyInto(dst: Uint8Array, at: number): number {
    const lease = this.held!;
    const off = this.off;
    const k = Math.min(lease.length - off, dst.length - at);
    if (k > 0) copyBytes(lease.buf, off, off + k, dst, at);
    if (off + k === lease.length) {
      this.held = undefined;
      lease.release();
      const u = this.#unpause;
      if (u !== undefined) {
        this.#unpause = undefined;
        u();
      }
    } else this.off = off + k;
    return k;
  }

  /** The held lease's bytes not yet copied, or undefined without one (valid until drop()). */
  rest(): Uint8Array | undefined {
    return this.held?.bytes.subarray(this.off);
  }

  /**
   * The held lease goes back to the pool without its rest being copied (the connection closes, or it
   * took rest() itself because the reads stopped); nothing is resumed: the consumer has ended or will.
   */
  drop(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    held.release();
  }

  /** Whether a body read waits for bytes. */
  get filling(): boolean {
    return this.#fillWait !== undefined;
  }

  /** A body read's wait for the next arrival (settled by wake() or end()). */
  waitFill(): Promise<number> {
    return new Promise<number>(this.#fillBind);
  }

  /** `n` bytes arrived: the waiting body read gets them. False when none waits. */
  wake(n: number): boolean {
    const f = this.#fillWait;
    if (f === undefined) return false;
    this.#fillWait = undefined;
    this.#fillFail = undefined;
    f(n);
    return true;
  }

  /** The reads ended: the waiting body read gets 0 (the end) or `err`. False when none waits. */
  end(err: unknown, failed: boolean): boolean {
    const f = this.#fillWait;
    if (f === undefined) return false;
    const fail = this.#fillFail!;
    this.#fillWait = undefined;
    this.#fillFail = undefined;
    if (failed) fail(err);
    else f(0);
    return true;
  }
}
