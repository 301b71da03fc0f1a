import { IORING_OP, OpAble, checkFd, errnoError, type Interest, type SqeWriter } from '@ringio/runtime';
import { MSG_NOSIGNAL } from '../constants.js';

/**
 * Completed write ops kept for reuse on this thread (module state is per thread: one per worker). Up to
 * as many as a busy server has in flight at once: with 64, a 256-connection echo made a new op for two
 * sends in three (the batch's completions return more than 64 before its new sends take them), about
 * 110 of its ~185 bytes allocated a message (docs/benchmarks.md). 1024 idle ops are ~150 KiB at most.
 */
export const SEND_OPS_KEPT = 1024;
const free: SendAllOp[] = [];
const EMPTY = new Uint8Array(0);

/**
 * The SEND of a whole window, shared by SendAllOp (writeAll: one promise) and SendQueuedOp (send(): no
 * promise): a short send resubmits the rest from the same slot (OpAble.again), and the op holds `buf`
 * until its final completion.
 */
export abstract class SendWindowOp<T, B extends Uint8Array = Uint8Array> extends OpAble<T> {
  fd: number;
  buf: B;
  offset: number;
  length: number;
  /** Bytes sent so far. */
  sent = 0;
  /** buf's buffer-registry id when the caller knows it (a lease's pool buffer: SqeWriter.bufById), else -1. */
  regId = -1;
  #interest: { fd: number; direction: 'writable' } | undefined;

  /** The caller has validated buf, offset and length. */
  constructor(fd: number, buf: B, offset: number, length: number) {
    super();
    this.fd = checkFd(fd);
    this.buf = buf;
    this.offset = offset;
    this.length = length;
  }

  /** Points a recycled op at a new window (ops are pooled per thread: the fd may be another stream's). */
  protected reset(fd: number, buf: B, offset: number, length: number): void {
    this.fd = checkFd(fd);
    // The cached epoll interest names the fd: a reused op may serve another stream now. The object is
    // this op's own (the driver reads it and keeps nothing), so it is pointed at the new fd, not remade.
    if (this.#interest !== undefined) this.#interest.fd = this.fd;
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    this.sent = 0;
    this.regId = -1;
  }

  get name(): string {
    return 'send';
  }

  // io_uring: IORING_OP_SEND of what is left, with MSG_NOSIGNAL.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.SEND, this.fd, this.length - this.sent);
    if (this.regId >= 0) sqe.bufById(this.buf, this.regId, this.offset + this.sent);
    else sqe.buf(this.buf, this.offset + this.sent);
    sqe.opFlags(MSG_NOSIGNAL);
  }

  // epoll: wait until writable, then send(2) what is left.
  override legacyInterest(): Interest {
    // Made once per op (ops are pooled per thread; reset() points it at the new fd): the driver reads it and keeps nothing.
    return (this.#interest ??= { fd: this.fd, direction: 'writable' });
  }

  override again(res: number): boolean {
    this.sent += res;
    return res > 0 && this.sent < this.length;
  }

  override payload(): B {
    return this.buf;
  }
}

/**
 * SEND of a whole window: a short send resubmits the rest from the same slot (OpAble.again), so
 * writeAll costs one op and one promise however many sends it takes. Resolves [length, buf]. An
 * error after a partial send rejects with `.n`, the bytes sent before it.
 */
export class SendAllOp<B extends Uint8Array = Uint8Array> extends SendWindowOp<[number, B], B> {
  /** Made by take(): goes back to the free list when it completes (an op made with `new` never does). */
  #pooled = false;

  /**
   * A write op for writeAll: a completed one from this thread's free list (streams do not keep their
   * own, so an idle connection holds no write op), else a new one. The caller has validated the window.
   */
  static take<B extends Uint8Array>(fd: number, buf: B, offset: number, length: number): SendAllOp<B> {
    let op = free.pop() as SendAllOp<B> | undefined;
    if (op === undefined || !op.recycle()) {
      op = new SendAllOp(fd, buf, offset, length);
      op.#pooled = true;
      return op;
    }
    op.reset(fd, buf, offset, length);
    return op;
  }

  complete(res: number): [number, B] {
    const buf = this.buf;
    const sent = this.sent;
    // Completed (the runtime marked it so before calling us): back to the free list, without the
    // caller's buffer. Nothing reuses it before this completion's promise settles with `buf`.
    if (this.#pooled) {
      this.buf = EMPTY as B;
      if (free.length < SEND_OPS_KEPT) free.push(this as SendAllOp);
    }
    if (res < 0) throw errnoError(res, 'send', sent > 0 ? { n: sent, buf } : { buf });
    return [sent, buf];
  }
}
