import { IORING_CQE_F_NOTIF, IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { MSG_NOSIGNAL } from '../constants.js';

/**
 * SEND_ZC: zero-copy send. The kernel answers twice: first the byte count (flagged MORE), then a
 * notification once it no longer reads the buffer. The op, and so the buffer, completes only at the
 * notification. On epoll (or without SEND_ZC) the legacy path is a plain send.
 */
export class SendZcOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B]> {
  readonly fd: number;
  readonly buf: B;
  readonly offset: number;
  readonly length: number;
  /** The byte count from the first completion. */
  private sent = 0;

  constructor(fd: number, buf: B, offset: number, length: number) {
    super();
    this.fd = checkFd(fd);
    this.buf = buf;
    this.offset = offset;
    this.length = length;
  }

  get name(): string {
    return 'send';
  }

  // io_uring: IORING_OP_SEND_ZC with MSG_NOSIGNAL.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SEND_ZC, this.fd, this.length).buf(this.buf, this.offset).opFlags(MSG_NOSIGNAL);
  }

  // epoll: a plain send(2) once the socket is writable (no zero-copy there), done when it returns.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'writable' };
  }

  override legacyCall(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SEND, this.fd, this.length).buf(this.buf, this.offset).opFlags(MSG_NOSIGNAL);
  }

  override more(res: number, flags: number): void {
    if (!(flags & IORING_CQE_F_NOTIF)) this.sent = res;
  }

  override payload(): B {
    return this.buf;
  }

  complete(res: number, flags: number): [number, B] {
    // The final completion is the notification when the send produced one; else it is the result.
    const n = flags & IORING_CQE_F_NOTIF ? this.sent : res;
    return [this.check(n), this.buf];
  }
}
