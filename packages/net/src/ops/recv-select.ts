import { IORING_CQE_F_BUFFER, IORING_OP, IOSQE_BUFFER_SELECT, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';

/**
 * RECV into a buffer the pool picks when data arrives (provided buffers, docs/design/net.md): one
 * completion. io_uring: IORING_OP_RECV with IOSQE_BUFFER_SELECT and no address, so the kernel takes a
 * buffer from the runtime's ring (group 0) only once bytes are there. epoll: the engine waits for
 * readability, then reads into the pool's next free buffer. Either way the completion names the buffer
 * (IORING_CQE_F_BUFFER, id in the upper 16 bits), handed to `onData(id, n)`. Resolves the byte count
 * (0: end of stream); a pool with no free buffer answers ENOBUFS.
 */
export class RecvSelectOp extends OpAble<number> {
  readonly fd: number;
  readonly onData: (id: number, n: number) => void;

  constructor(fd: number, onData: (id: number, n: number) => void) {
    super();
    this.fd = checkFd(fd);
    this.onData = onData;
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
    return { fd: this.fd, direction: 'readable' };
  }

  complete(res: number, flags: number): number {
    if (flags & IORING_CQE_F_BUFFER) this.onData(flags >>> 16, res);
    return this.check(res);
  }
}
