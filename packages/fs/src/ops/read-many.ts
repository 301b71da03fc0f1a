/**
 * READ, one per entry of a File.readMany batch: many positions and buffers, one promise, one result
 * array. Each entry is an ordinary READ record (io_uring) or a syscall on the file thread pool (epoll),
 * so the batch reaches the kernel in the same flush as any other op; what the batch saves is the
 * promise, the result tuple and the caller's await per read. Entries settle through their own
 * `_resolve` / `_reject` (Driver.submitBound), which count down the batch and settle its one promise
 * once the last entry's final completion arrived.
 *
 * SAFETY: an entry holds its buffer from submission until its final completion, and only then goes back
 * to its File's free list (dropping the buffer): cancelling a batch (abort, close, shutdown) never
 * releases a buffer the kernel may still write into. The batch settles only once every entry did.
 */
import { IORING_OP, OpAble, cancelOp, errnoError, type Direction, type Interest, type SqeWriter } from '@ringio/runtime';

const READ = IORING_OP.READ;
const SUBMITTED = 1; // OpState.Submitted, module-local (an imported binding is loaded at every use)

/** What a pooled entry holds between batches. */
const NO_BUF = new Uint8Array(0);
const NO_PARTS: ReadManyOp[] = [];

/** How a batch that did not fully succeed says so: on the error it rejects with. */
export interface ReadManyFailure {
  /** The entry whose error this is (the first entry that failed; a cancelled entry before others). */
  index: number;
  /**
   * One slot per entry: the bytes read, for entries that completed (their data is in their buffers),
   * or the entry's Error (AbortError, ERR_RINGIO_CLOSED, or the errno error of its read).
   */
  results: (number | Error)[];
}

/** What an entry settles with: nothing; complete() has put its result into the batch. */
export const settled = (): void => {};

/** One readMany call: its results, the entries still in flight, and the caller's promise. */
export class ReadBatch {
  readonly results: (number | Error)[];
  /** Entries submitted and not yet finally completed. */
  remaining = 0;
  /** The first entry that failed by cancellation, and the first that failed otherwise (-1: none). */
  firstCancelled = -1;
  firstFailed = -1;
  /**
   * With a signal only (close() and shutdown reach entries through their File and the driver): every
   * entry submitted, for abort. An entry whose `batch` is another one has been reused since.
   */
  readonly parts: ReadManyOp[];
  readonly #resolve: (v: number[]) => void;
  readonly #reject: (e: unknown) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;

  constructor(n: number, signal: AbortSignal | undefined, resolve: (v: number[]) => void, reject: (e: unknown) => void) {
    // Holey until every entry has answered (Array.prototype.fill is a runtime call: measurable here).
    this.results = new Array<number | Error>(n);
    this.parts = signal === undefined ? NO_PARTS : new Array<ReadManyOp>(n);
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    if (signal !== undefined) {
      this.#onAbort = () => this.cancel('abort');
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /** Asks the kernel to cancel every entry in flight; the batch still settles only once all answered. */
  cancel(reason: 'abort' | 'closed'): void {
    for (const p of this.parts) {
      if (p !== undefined && p.batch === this && p.state === SUBMITTED) cancelOp(p, reason);
    }
  }

  /**
   * The driver builds an entry's AbortError without the signal (the batch holds it, not the entry): the
   * signal's reason goes on as `cause`, as it would on a single read's AbortError.
   */
  withCause(e: Error): Error {
    const reason = this.#signal?.reason as unknown;
    if (e.name === 'AbortError' && reason !== undefined && e.cause === undefined) {
      Object.defineProperty(e, 'cause', { value: reason, writable: true, configurable: true, enumerable: false });
    }
    return e;
  }

  /** Records an entry's failure. */
  fail(index: number, e: Error, cancelled: boolean): void {
    this.results[index] = e;
    if (cancelled) {
      if (this.firstCancelled < 0 || index < this.firstCancelled) this.firstCancelled = index;
    } else if (this.firstFailed < 0 || index < this.firstFailed) {
      this.firstFailed = index;
    }
  }

  /** One entry is done (its final completion arrived); the last one settles the batch. */
  done(): void {
    if (--this.remaining !== 0) return;
    if (this.#signal !== undefined) this.#signal.removeEventListener('abort', this.#onAbort!);
    const i = this.firstCancelled >= 0 ? this.firstCancelled : this.firstFailed;
    if (i < 0) {
      this.#resolve(this.results as number[]);
      return;
    }
    const e = this.results[i] as Error & ReadManyFailure;
    e.index = i;
    e.results = this.results;
    this.#reject(e);
  }
}

/**
 * READ of one readMany entry: the whole of `buf` at `position`. Pooled by its File and reused from batch
 * to batch; it settles into its batch (results[index]) rather than a promise of its own.
 */
export class ReadManyOp extends OpAble<void> {
  readonly fd: number;
  readonly path: string;
  readonly #interest: Interest;
  readonly #pool: ReadManyOp[];
  readonly #poolMax: number;
  buf: Uint8Array = NO_BUF;
  position: number | bigint = 0;
  index = 0;
  batch: ReadBatch | undefined = undefined;
  /** A cancelled entry rejects with the driver's AbortError / ERR_RINGIO_CLOSED, which lands here. */
  readonly onCancelled = (e: unknown): void => {
    const b = this.batch!;
    b.fail(this.index, b.withCause(e as Error), true);
    this.#release();
    b.done();
  };

  constructor(fd: number, wait: Direction, path: string, pool: ReadManyOp[], poolMax: number) {
    super();
    this.fd = fd;
    this.path = path;
    // epoll: the file thread pool for regular files, readiness for FIFOs and devices.
    this.#interest = { fd, direction: wait };
    this.#pool = pool;
    this.#poolMax = poolMax;
  }

  get name(): string {
    return 'read';
  }

  /** Arms the entry for a batch; false if it is not Completed (still the kernel's). */
  arm(batch: ReadBatch, index: number, buf: Uint8Array, position: number | bigint): boolean {
    if (this.state !== 0 && !this.recycle()) return false;
    this.batch = batch;
    this.index = index;
    this.buf = buf;
    this.position = position;
    return true;
  }

  // io_uring: IORING_OP_READ of the whole buffer at the position.
  uringOp(sqe: SqeWriter): void {
    sqe.prep(READ, this.fd, this.buf.length, this.position).buf(this.buf, 0);
  }

  override legacyInterest(): Interest {
    return this.#interest;
  }

  override payload(): Uint8Array {
    return this.buf;
  }

  /** The final completion: the count (or the error) goes into the batch, and the entry to the free list. */
  complete(res: number): void {
    const b = this.batch!;
    if (res >= 0) {
      b.results[this.index] = res;
    } else {
      b.fail(this.index, errnoError(res, 'read', { path: this.path, buf: this.buf }), false);
    }
    this.#release();
    b.done();
  }

  /** After the final completion only: drops the buffer and goes back to the File's free list. */
  #release(): void {
    this.buf = NO_BUF;
    if (this.#pool.length < this.#poolMax) this.#pool.push(this);
  }
}
