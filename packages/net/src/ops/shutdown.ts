import { IORING_OP, OpAble, checkFd, type SqeWriter } from '@ringio/runtime';
import { SHUT_WR } from '../constants.js';

/** SHUTDOWN: half-closes a socket (SHUT_WR by default). */
export class ShutdownOp extends OpAble<void> {
  readonly fd: number;
  readonly how: number;

  constructor(fd: number, how = SHUT_WR) {
    super();
    this.fd = checkFd(fd);
    this.how = how;
  }

  get name(): string {
    return 'shutdown';
  }

  // io_uring: IORING_OP_SHUTDOWN (len = how). epoll: shutdown(2) at once; it never blocks.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SHUTDOWN, this.fd, this.how);
  }

  complete(res: number): void {
    this.check(res);
  }
}
