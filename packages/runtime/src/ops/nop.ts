import { IORING_OP } from '../driver/layout.js';
import { OpAble, type SqeWriter } from '../op.js';

/** NOP: completes at once. The round-trip cost of the driver itself, and a cheap wakeup. */
export class NopOp extends OpAble<number> {
  get name(): string {
    return 'nop';
  }

  // io_uring: IORING_OP_NOP. epoll: the same record; the legacy engine answers 0 with no syscall.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.NOP, -1);
  }

  complete(res: number): number {
    return this.check(res);
  }
}
