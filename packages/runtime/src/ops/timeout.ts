/**
 * TIMEOUT: completes after a relative delay. Resolves true when the delay expired. The runtime's timer
 * heap keeps one of these armed for its earliest deadline (timers.ts).
 */
import { IORING_OP } from '../driver/layout.js';
import { ETIME } from '../errors.js';
import { OpAble, type SqeWriter } from '../op.js';

export class TimeoutOp extends OpAble<boolean> {
  readonly name = 'timeout';
  readonly sec: number;
  readonly nsec: number;

  constructor(ms: number) {
    super();
    if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError('ms must be a number');
    if (ms < 0 || !Number.isFinite(ms) || ms > 2 ** 31 * 1000) throw new RangeError(`ms out of range: ${ms}`);
    const ns = Math.round(ms * 1e6);
    this.sec = Math.floor(ns / 1e9);
    this.nsec = ns - this.sec * 1e9;
  }

  // io_uring: IORING_OP_TIMEOUT with a relative timespec and no completion count.
  // epoll: the same record; the legacy engine arms a timerfd for it and waits for it to be readable.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.TIMEOUT, -1, 1, 0).timespec(this.sec, this.nsec);
  }

  complete(res: number): boolean {
    // An expired timeout answers -ETIME: that is this op's success.
    if (res === ETIME) return true;
    return this.check(res) >= 0;
  }
}
