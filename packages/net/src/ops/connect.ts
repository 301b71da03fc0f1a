import { IORING_OP, OpAble, checkFd, type Interest, type SqeWriter } from '@ringio/runtime';

/** CONNECT: connects a socket to a sockaddr. Resolves once connected. */
export class ConnectOp extends OpAble<void> {
  readonly fd: number;
  readonly addr: Uint8Array;
  readonly addrLen: number;

  constructor(fd: number, addr: Uint8Array, addrLen: number) {
    super();
    this.fd = checkFd(fd);
    this.addr = addr;
    this.addrLen = addrLen;
  }

  get name(): string {
    return 'connect';
  }

  // io_uring: IORING_OP_CONNECT (addr = sockaddr, off = its length).
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.CONNECT, this.fd, 0, this.addrLen).addrBufEnd(this.addr);
  }

  // epoll: connect(2) at once; on EINPROGRESS wait until writable and read SO_ERROR.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'writable' };
  }

  complete(res: number): void {
    this.check(res);
  }
}
