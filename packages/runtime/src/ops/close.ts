import { IORING_OP } from '../driver/layout.js';
import { OpAble, checkFd, type SqeWriter } from '../op.js';

/** CLOSE: closes an fd through the driver, after every op queued before it on this thread. */
export class CloseOp extends OpAble<void> {
  get name(): string {
    return 'close';
  }
  readonly fd: number;
  constructor(fd: number) {
    super();
    this.fd = checkFd(fd);
  }

  // io_uring: IORING_OP_CLOSE. epoll: close(2), after the legacy engine forgets the fd's readiness
  // state and fails whatever still waits on it with EBADF.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.CLOSE, this.fd);
  }

  complete(res: number): void {
    this.check(res);
  }
}
