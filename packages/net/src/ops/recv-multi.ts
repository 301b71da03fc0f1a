import { IORING_CQE_F_BUFFER, IORING_OP, IORING_RECV_MULTISHOT, IOSQE_BUFFER_SELECT, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';
import { cancelSink, settleSink, type PooledReadSink } from './recv-select.js';

/**
 * Multishot RECV with provided buffers (io_uring, kernel 6.0+): one submission keeps receiving. Every
 * arrival is a completion flagged MORE naming the pool buffer the kernel filled, handed to
 * its sink (`data(id, n)`). The op ends (its final completion) at end of stream (0), on an error, when the pool
 * is empty (ENOBUFS: the reader waits for a buffer and re-arms), when cancelled, or when the kernel
 * stops it for its own reasons; a final completion may still carry data. A kernel without it answers
 * EINVAL and the reader falls back to RecvSelectOp.
 *
 * The epoll driver has no multishot form: readers use RecvSelectOp there, and the legacy face below is
 * a single pooled read, so the op stays correct if submitted to epoll anyway.
 */
export class RecvMultishotOp extends OpAble<number> {
  readonly fd: number;
  readonly sink: PooledReadSink;

  constructor(fd: number, sink: PooledReadSink) {
    super();
    this.fd = checkFd(fd);
    this.sink = sink;
  }

  get name(): string {
    return 'recv';
  }

  // io_uring: RECV, len 0, buffer group 0, IORING_RECV_MULTISHOT in ioprio.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.RECV, this.fd, 0).sqeFlags(IOSQE_BUFFER_SELECT).ioprio(IORING_RECV_MULTISHOT);
  }

  // epoll: one pooled read once readable.
  override legacyCall(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.RECV, this.fd, 0).sqeFlags(IOSQE_BUFFER_SELECT);
  }

  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }

  override more(res: number, flags: number): void {
    if (flags & IORING_CQE_F_BUFFER) this.sink.data(flags >>> 16, res);
  }

  /** Submitted detached (no promise): a cancellation the kernel confirmed goes to the sink, as its reason. */
  override cancelledBy(reason: 'abort' | 'closed'): void {
    cancelSink(this, this.sink, reason);
  }

  /** The final completion: its data first (if any), then the sink learns the end (or error) at once. */
  complete(res: number, flags: number): number {
    if (flags & IORING_CQE_F_BUFFER) this.sink.data(flags >>> 16, res);
    return settleSink(this, this.sink, res);
  }
}
