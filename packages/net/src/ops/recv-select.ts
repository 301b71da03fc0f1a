import { IORING_CQE_F_BUFFER, IORING_OP, IOSQE_BUFFER_SELECT, OpAble, cancelError, checkFd, errnoError, type Interest, type SqeWriter } from '@ringio/runtime';

/**
 * Where a pooled read's completions go, synchronously as the driver dispatches them (so a reader
 * learns of data, the end of stream or an error in the same turn as any other op's result, not a
 * promise hop later): `data` for each buffer filled, then `end`, `fail` or `cancelled` (a cancellation the kernel
 * confirmed) for the final completion. The ops are submitted detached (no promise: see
 * Driver.submitDetached), since one lives as long as an idle connection.
 */
export interface PooledReadSink {
  /** Pool buffer `id` holds `n` received bytes (0: nothing; give the buffer back). */
  data(id: number, n: number): void;
  /** The op's final result: the byte count of its last arrival, or 0 at end of stream. */
  end(op: OpAble<number>, res: number): void;
  /** The op failed (an errno error, ENOBUFS when the pool is empty). */
  fail(op: OpAble<number>, err: Error): void;
  /**
   * The op's cancellation was confirmed: 'abort' (AbortError) or 'closed' (ERR_RINGIO_CLOSED). Optional:
   * without it the sink's fail() gets the error (cancelError); with it no error is made unless the sink
   * makes one.
   */
  cancelled?(op: OpAble<number>, reason: 'abort' | 'closed'): void;
}

/** A pooled read's confirmed cancellation, told to its sink (cancelled(), or fail() with the error). */
export function cancelSink(op: OpAble<number>, sink: PooledReadSink, reason: 'abort' | 'closed'): void {
  if (sink.cancelled !== undefined) sink.cancelled(op, reason);
  else sink.fail(op, cancelError(reason, undefined));
}

/** A pooled read's final result, told to its sink: the count, or the errno error (thrown too). */
export function settleSink(op: OpAble<number>, sink: PooledReadSink, res: number): number {
  if (res < 0) {
    const err = errnoError(res, 'recv');
    sink.fail(op, err);
    throw err;
  }
  sink.end(op, res);
  return res;
}

/**
 * RECV into a buffer the pool picks when data arrives (provided buffers, docs/design/net.md): one
 * completion. io_uring: IORING_OP_RECV with IOSQE_BUFFER_SELECT and no address, so the kernel takes a
 * buffer from the runtime's ring (group 0) only once bytes are there. epoll: the engine waits for
 * readability, then reads into the pool's next free buffer. Either way the completion names the buffer
 * (IORING_CQE_F_BUFFER, id in the upper 16 bits), handed to the sink (`data(id, n)`, then `end` or `fail`). Resolves the byte count
 * (0: end of stream); a pool with no free buffer answers ENOBUFS.
 */
export class RecvSelectOp extends OpAble<number> {
  readonly fd: number;
  readonly sink: PooledReadSink;
  /** epoll's interest, made once: the driver reads it and keeps nothing (no object per read). */
  #interest: Interest | undefined;

  constructor(fd: number, sink: PooledReadSink) {
    super();
    this.fd = checkFd(fd);
    this.sink = sink;
  }

  /** Makes a completed op submittable again (a LeaseReader keeps one for its single reads); false while in flight. */
  reuse(): boolean {
    return this.recycle();
  }

  get name(): string {
    return 'recv';
  }

  // io_uring: RECV, len 0 (the whole buffer), buffer group 0.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.RECV, this.fd, 0).sqeFlags(IOSQE_BUFFER_SELECT);
  }

  // epoll: wait until readable; the engine picks the buffer (the same record).
  override legacyInterest(): Interest {
    return (this.#interest ??= { fd: this.fd, direction: 'readable' });
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
