/**
 * READ / WRITE / READV / WRITEV on a file, at a position (or -1: the file position). Resolve [n, buf].
 * On the epoll driver a regular file's syscall may block, so it runs on the engine's file thread pool
 * ('pool'); a FIFO or device opened by File waits for readiness like a socket instead.
 */
import { IORING_OP, OpAble, type Direction, type Interest, type SqeWriter } from '@ringio/runtime';

// Module-local copies: V8 folds these, but loads an imported binding from its module cell at every use.
const READ = IORING_OP.READ;
const WRITE = IORING_OP.WRITE;
const READV = IORING_OP.READV;
const WRITEV = IORING_OP.WRITEV;

abstract class FileIoOp<R> extends OpAble<R> {
  readonly fd: number;
  position: number | bigint;
  readonly wait: Direction;
  readonly path: string | undefined;

  constructor(fd: number, position: number | bigint, wait: Direction, path: string | undefined) {
    super();
    this.fd = fd;
    this.position = position;
    this.wait = wait;
    this.path = path;
  }

  // epoll: the file thread pool for regular files, readiness for FIFOs and devices.
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: this.wait };
  }

  protected errProps(): Record<string, unknown> | undefined {
    return this.path === undefined ? undefined : { path: this.path };
  }
}

/** READ into buf[offset, offset + length) at `position` (-1: the file position): resolves [n, buf]; n < length at end of file. On epoll, a regular file's syscall runs on the file thread pool. */
export class FileReadOp<B extends Uint8Array = Uint8Array> extends FileIoOp<[number, B]> {
  constructor(
    fd: number,
    public buf: B,
    public offset: number,
    public length: number,
    position: number | bigint,
    wait: Direction,
    path?: string,
  ) {
    super(fd, position, wait, path);
  }

  get name(): string {
    return 'read';
  }

  /** Reuses a completed op for another read on the same file (File keeps a free list). */
  reuse(buf: B, offset: number, length: number, position: number | bigint): boolean {
    if (!this.recycle()) return false;
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    this.position = position;
    return true;
  }

  // io_uring: IORING_OP_READ at the position.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(READ, this.fd, this.length, this.position).buf(this.buf, this.offset);
  }

  override payload(): B {
    return this.buf;
  }

  /**
   * The op goes back to its File's free list once settled, so it lets go of the caller's buffer here:
   * a pooled op must not keep a buffer (and its buffer-registry id) alive after the read is done.
   */
  complete(res: number): [number, B] {
    const buf = this.buf;
    if (res < 0) {
      try {
        this.check(res, this.errProps());
      } finally {
        this.buf = NO_BUF as B;
      }
    }
    this.buf = NO_BUF as B;
    return [res, buf];
  }
}

/** What a pooled read op holds between reads. */
const NO_BUF = new Uint8Array(0);

/** WRITE from buf[offset, offset + length) at `position` (-1: the file position, the end with O_APPEND): resolves [n, buf]; n may be short. On epoll, a regular file's syscall runs on the file thread pool. */
export class FileWriteOp<B extends Uint8Array = Uint8Array> extends FileIoOp<[number, B]> {
  constructor(
    fd: number,
    readonly buf: B,
    readonly offset: number,
    readonly length: number,
    position: number | bigint,
    wait: Direction,
    path?: string,
  ) {
    super(fd, position, wait === 'readable' ? 'writable' : wait, path);
  }

  get name(): string {
    return 'write';
  }

  // io_uring: IORING_OP_WRITE at the position.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(WRITE, this.fd, this.length, this.position).buf(this.buf, this.offset);
  }

  override payload(): B {
    return this.buf;
  }

  complete(res: number): [number, B] {
    return [res < 0 ? this.check(res, this.errProps()) : res, this.buf];
  }
}

/** READV into several buffers, each used whole, at `position`: resolves [n, bufs]. On epoll, a regular file's syscall runs on the file thread pool. */
export class FileReadvOp<B extends Uint8Array = Uint8Array> extends FileIoOp<[number, B[]]> {
  constructor(fd: number, readonly bufs: B[], position: number | bigint, wait: Direction, path?: string) {
    super(fd, position, wait, path);
  }

  get name(): string {
    return 'readv';
  }

  // io_uring: IORING_OP_READV at the position.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(READV, this.fd, this.bufs.length, this.position).iovec(this.bufs);
  }

  override payload(): B[] {
    return this.bufs;
  }

  complete(res: number): [number, B[]] {
    return [res < 0 ? this.check(res, this.errProps()) : res, this.bufs];
  }
}

/** WRITEV from several buffers, each used whole, at `position`: resolves [n, bufs]. On epoll, a regular file's syscall runs on the file thread pool. */
export class FileWritevOp<B extends Uint8Array = Uint8Array> extends FileIoOp<[number, B[]]> {
  constructor(fd: number, readonly bufs: B[], position: number | bigint, wait: Direction, path?: string) {
    super(fd, position, wait === 'readable' ? 'writable' : wait, path);
  }

  get name(): string {
    return 'writev';
  }

  // io_uring: IORING_OP_WRITEV at the position.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(WRITEV, this.fd, this.bufs.length, this.position).iovec(this.bufs);
  }

  override payload(): B[] {
    return this.bufs;
  }

  complete(res: number): [number, B[]] {
    return [res < 0 ? this.check(res, this.errProps()) : res, this.bufs];
  }
}
