import { ERRNO, errnoError } from '@ringio/runtime';
import { SEND_OPS_KEPT, SendWindowOp } from './send-all.js';

/** Where a queued send's final completion goes, synchronously as the driver dispatches it (SendQueue). */
export interface SendSink {
  /** The whole window was sent. */
  sent(op: SendQueuedOp): void;
  /** The send failed (an errno error, with `.n` after a partial send) or its cancellation was confirmed. */
  failed(op: SendQueuedOp, err: Error): void;
}

/** Completed ops kept for reuse on this thread (module state is per thread: one per worker); see SEND_OPS_KEPT. */
const free: SendQueuedOp[] = [];
const EMPTY = new Uint8Array(0);

/**
 * SEND of a whole window for SocketStream.send(), submitted detached (no promise): a short send
 * resubmits the rest from the same slot (OpAble.again), and the final completion goes to the sink (the
 * stream's send queue), which submits the next queued window from there. Ops come from a per-thread free
 * list and go back to it through release(), without their buffer.
 *
 * SAFETY: the op holds `buf` from submission until the driver hands it its final completion (complete()
 * or cancelled()), so the kernel never reads from memory JS may have freed; the sink releases a lease's
 * buffer to its pool only then.
 */
export class SendQueuedOp extends SendWindowOp<void> {
  sink: SendSink | undefined;

  /**
   * A ready-to-submit op from this thread's free list, or a new one. The caller validated the window;
   * `regId` is buf's buffer-registry id if known (a lease's: RecvLease._regId), else -1.
   */
  static take(fd: number, buf: Uint8Array, offset: number, length: number, sink: SendSink, regId: number): SendQueuedOp {
    let op = free.pop();
    if (op === undefined || !op.recycle()) op = new SendQueuedOp(fd, buf, offset, length);
    else op.reset(fd, buf, offset, length);
    op.sink = sink;
    op.regId = regId;
    return op;
  }

  /** Back to the free list, holding nothing (call once its final completion was handled). */
  release(): void {
    this.buf = EMPTY;
    this.sink = undefined;
    if (free.length < SEND_OPS_KEPT) free.push(this);
  }

  /** Submitted detached: a cancellation the kernel confirmed goes to the sink. */
  override cancelled(err: Error): void {
    this.sink!.failed(this, err);
  }

  /** The final completion: the sink learns it at once (no promise). */
  complete(res: number): void {
    const sink = this.sink!;
    if (res < 0) sink.failed(this, errnoError(res, 'send', this.sent > 0 ? { n: this.sent } : undefined));
    // A send that took nothing (res 0) before the window was out: the socket will take no more.
    else if (this.sent < this.length) sink.failed(this, errnoError(ERRNO.EPIPE, 'send', { n: this.sent }));
    else sink.sent(this);
  }
}
