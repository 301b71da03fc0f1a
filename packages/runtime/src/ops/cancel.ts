import { IORING_OP } from '../driver/layout.js';
import { OpAble, type SqeWriter } from '../op.js';

/**
 * ASYNC_CANCEL: asks the kernel to cancel another op, found by its slot (user_data).
 * Resolves 0 when the target was cancelled; rejects ENOENT when it was not found (already finished)
 * and EALREADY when it is running and cannot be stopped. The target still completes on its own,
 * normally with ECANCELED, and only then releases its buffers.
 */
export class CancelOp extends OpAble<number> {
  get name(): string {
    return 'cancel';
  }
  constructor(readonly target: number) {
    super();
  }

  // io_uring: IORING_OP_ASYNC_CANCEL keyed by user_data. epoll: the same record; the legacy engine
  // unparks the target if it is still waiting for readiness and completes it with ECANCELED.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.ASYNC_CANCEL, -1).u64(this.target);
  }

  complete(res: number): number {
    return this.check(res);
  }
}
