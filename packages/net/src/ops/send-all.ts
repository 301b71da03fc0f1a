import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { MSG_NOSIGNAL } from '../constants.js';

/**
 * SEND of a whole window: a short send resubmits the rest from the same slot (OpAble.again), so
 * writeAll costs one op and one promise however many sends it takes. Resolves [length, buf]. An
 * error after a partial send rejects with `.n`, the bytes sent before it.
 */
export class SendAllOp<B extends Uint8Array = Uint8Array> extends OpAble<[number, B]> {
  readonly fd: number;
  buf: B;
  offset: number;
  length: number;
  /** Bytes sent so far. */
  sent = 0;
  #interest: Interest | undefined;

  /** The caller has validated buf, offset and length. */
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

  /** Reuses a completed op for the next write on the same fd (streams pool their write op). */
  reuse(buf: B, offset: number, length: number): boolean {
    if (!this.recycle()) return false;
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    this.sent = 0;
    return true;
  }

  // io_uring: IORING_OP_SEND of what is left, with MSG_NOSIGNAL.
  uringOp(sqe: SqeWriter): void {
    sqe
      .prep(IORING_OP.SEND, this.fd, this.length - this.sent)
      .buf(this.buf, this.offset + this.sent)
      .opFlags(MSG_NOSIGNAL);
  }

  // epoll: wait until writable, then send(2) what is left.
  override legacyInterest(): Interest {
    // Made once per op (a stream pools its write op): the driver reads it and keeps nothing.
    return (this.#interest ??= { fd: this.fd, direction: 'writable' });
  }

  override again(res: number): boolean {
    this.sent += res;
    return res > 0 && this.sent < this.length;
  }

  override payload(): B {
    return this.buf;
  }

  complete(res: number): [number, B] {
    this.check(res, this.sent > 0 ? { n: this.sent } : undefined);
    return [this.sent, this.buf];
  }
}
