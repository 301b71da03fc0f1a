import { IORING_OP } from '../driver/layout.js';
import { OpAble, checkFd, type Interest, type SqeWriter } from '../op.js';

/** poll events: data to read. */
export const POLLIN = 0x001;
/** poll events: urgent data. */
export const POLLPRI = 0x002;
/** poll events: writing will not block. */
export const POLLOUT = 0x004;
/** poll events (reported only): an error condition. */
export const POLLERR = 0x008;
/** poll events (reported only): the peer hung up. */
export const POLLHUP = 0x010;
/** poll events: the peer shut down its writing half. */
export const POLLRDHUP = 0x2000;

/** POLL_ADD: waits until an fd is ready for the given events (POLLIN, POLLOUT, ...); resolves revents. */
export class PollOp extends OpAble<number> {
  get name(): string {
    return 'poll';
  }
  readonly fd: number;
  readonly events: number;

  constructor(fd: number, events: number) {
    super();
    this.fd = checkFd(fd);
    if (!Number.isInteger(events) || events <= 0 || events > 0xffff) {
      throw new RangeError('events must be a non-empty poll mask (POLLIN, POLLOUT, ...)');
    }
    this.events = events;
  }

  // io_uring: one-shot IORING_OP_POLL_ADD with the mask.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.POLL_ADD, this.fd).opFlags(this.events);
  }

  // epoll: wait for the direction the mask asks for, then poll(2) with a zero timeout for revents.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: this.events & (POLLIN | POLLPRI | POLLRDHUP) ? 'readable' : 'writable' };
  }

  complete(res: number): number {
    return this.check(res);
  }
}
