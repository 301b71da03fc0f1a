import { IORING_OP, IORING_TIMEOUT_ABS } from '../driver/layout.js';
import { ETIME } from '../errors.js';
import { OpAble, type SqeWriter } from '../op.js';

/**
 * TIMEOUT: completes after a delay, or at an absolute CLOCK_MONOTONIC time. Resolves true when it
 * expired. The runtime's timer heap keeps one absolute timeout armed for its earliest deadline
 * (timers.ts): a relative one would start counting only when the batch is flushed, which can be long
 * after the deadline was computed.
 */
export class TimeoutOp extends OpAble<boolean> {
  get name(): string {
    return 'timeout';
  }
  readonly sec: number;
  readonly nsec: number;
  readonly absolute: boolean;

  /**
   * `ms` after submission, or, with `absolute`, when CLOCK_MONOTONIC reaches `ms` milliseconds
   * (the clock of process.hrtime()).
   */
  constructor(ms: number, opts?: { absolute?: boolean }) {
    super();
    if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError('ms must be a number');
    if (ms < 0 || !Number.isFinite(ms) || ms > 2 ** 31 * 1000) throw new RangeError(`ms out of range: ${ms}`);
    this.absolute = opts?.absolute === true;
    this.sec = Math.floor(ms / 1000);
    this.nsec = Math.min(999_999_999, Math.round((ms - this.sec * 1000) * 1e6));
  }

  // io_uring: IORING_OP_TIMEOUT with a timespec (IORING_TIMEOUT_ABS when absolute), no completion count.
  // epoll: the same record; the legacy engine arms a timerfd (TFD_TIMER_ABSTIME when absolute).
  uringOp(sqe: SqeWriter): void {
    sqe
      .prep(IORING_OP.TIMEOUT, -1, 1, 0)
      .timespec(this.sec, this.nsec)
      .opFlags(this.absolute ? IORING_TIMEOUT_ABS : 0);
  }

  complete(res: number): boolean {
    // An expired timeout answers -ETIME: that is this op's success.
    if (res === ETIME) return true;
    return this.check(res) >= 0;
  }
}
