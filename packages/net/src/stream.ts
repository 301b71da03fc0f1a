/**
 * A connected byte stream over a socket fd: the rented-buffer API shared by TcpStream and UnixStream.
 *
 * Contract: every read and write takes a Uint8Array and resolves to [n, buf] with the same buffer. The
 * runtime holds the buffer until the kernel is done with it; do not touch it until the promise
 * settles. Errors carry `code`, `syscall` and `buf`.
 *
 * Rules:
 *  1. Every op in flight on the stream is in `inflight`, so close() can cancel it. Cancelled ops still
 *     keep their buffers until the kernel answers (the runtime's rule), then reject ERR_RINGIO_CLOSED.
 *  2. After close() every call rejects ERR_RINGIO_CLOSED at once, with the buffer.
 *  3. Reads and writes may run concurrently (one reader and one writer is the common case, as with
 *     intoSplit()); several concurrent reads are allowed but their order is the kernel's.
 */
import { checkBuffer, checkBufs, checkRange, checkSignal, errnoError, hasFeature, PollOp, POLLIN, POLLOUT, RecvLease, ringioError, sys, type OpAble } from '@ringio/runtime';
import { consuming, LeaseReader, type ConsumerDone } from './lease-reader.js';
import { SendQueue } from './send-queue.js';
import { SocketBase } from './socket.js';
import { IPPROTO_TCP, SHUT_WR, SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_NODELAY } from './constants.js';
import { ReadvOp } from './ops/readv.js';
import { RecvOp } from './ops/recv.js';
import { SendOp } from './ops/send.js';
import { SendAllOp } from './ops/send-all.js';
import { SendZcOp } from './ops/send-zc.js';
import { ShutdownOp } from './ops/shutdown.js';
import { WritevOp } from './ops/writev.js';

/** Options of a read: the window of `buf` to fill, and an AbortSignal. */
export interface ReadOptions {
  /** Aborting it cancels the read; it rejects AbortError (with buf) once the kernel answered, unless data arrived first. */
  signal?: AbortSignal;
  /** Read into buf[offset, offset + length); defaults to the whole buffer. */
  offset?: number;
  /** The window's length (default: the rest of buf after offset). */
  length?: number;
}

/** Options of a write: the window of `buf` to send, and an AbortSignal. */
export interface WriteOptions {
  /** Aborting it cancels the write; it resolves with the count if the kernel had already sent the bytes. */
  signal?: AbortSignal;
  /** Send buf[offset, offset + length); defaults to the whole buffer. */
  offset?: number;
  /** The window's length (default: the rest of buf after offset). */
  length?: number;
}

/** The window of a queued send (SocketStream.send): of the buffer, or of a lease's received bytes. */
export interface SendOptions {
  /** Send from this offset (default 0). */
  offset?: number;
  /** The window's length (default: the rest of the buffer, or of the lease's bytes, after offset). */
  length?: number;
}

/** readLeases()'s options. */
export interface ReadLeasesOptions {
  /** Aborting it ends reading: readLeases() rejects AbortError, and later bytes wait for the next reader. */
  signal?: AbortSignal;
  /**
   * Recycle lease objects: a released lease is handed out again for a later read, so reading allocates
   * nothing. Only for handlers that keep no reference to a lease past its release (SocketStream.readLeases).
   */
  recycle?: boolean;
}

/** The ops that only read from the socket: shutdown() runs shutdown(2) at once while no other op is in flight. */
const READ_OPS: ReadonlySet<string> = new Set(['recv', 'readv', 'recvmsg']);

/** Node's default writableHighWaterMark is 16 KiB; a send queue of 64 KiB matches a socket buffer's scale. */
const SEND_HIGH_WATER_MARK = 65536;

/** The readable side of a stream (see intoSplit()). */
export interface ReadHalf {
  /** Reads at least 1 byte into the window (0: end of stream). Resolves [n, buf]. */
  read<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]>;
  /** Scatter read into several buffers, each used whole. Resolves [n, bufs]. */
  readv<B extends Uint8Array>(bufs: B[], opts?: { signal?: AbortSignal }): Promise<[number, B[]]>;
  /** Fills the window; rejects ERR_RINGIO_UNEXPECTED_EOF (with n, buf) if the stream ends first. */
  readExact<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]>;
  /**
   * The next received bytes on lease from the runtime's pool, or null at end of stream (see
   * SocketStream.readLease). Plain sockets (TcpStream, UnixStream and their halves) have it; a TlsStream,
   * which decrypts into the caller's buffer, does not.
   */
  readLease?(opts?: { signal?: AbortSignal }): Promise<RecvLease | null>;
  /** Every received lease to `handler` as it arrives, until end of stream (see SocketStream.readLeases). Plain sockets only. */
  readLeases?(handler: (lease: RecvLease) => unknown, opts?: ReadLeasesOptions): Promise<void>;
  /** Closes the whole stream (both halves). */
  close(): Promise<void>;
  /** The stream's fd (-1 once closed). */
  readonly fd: number;
}

/** The writable side of a stream (see intoSplit()). */
export interface WriteHalf {
  /** Sends the window; may be short. Resolves [n, buf]. */
  write<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]>;
  /** Gather write from several buffers, each used whole; may be short. Resolves [n, bufs]. */
  writev<B extends Uint8Array>(bufs: B[], opts?: { signal?: AbortSignal }): Promise<[number, B[]]>;
  /**
   * Queues the window (or a lease's received bytes) to be sent in order, without a promise; false once
   * `sendHighWaterMark` bytes are queued (then await flush()). See SocketStream.send. Plain sockets
   * have it; a TlsStream does not.
   */
  send?(data: Uint8Array | RecvLease, opts?: SendOptions): boolean;
  /** Resolves once everything send() queued has gone to the kernel (see SocketStream.flush). */
  flush?(): Promise<void>;
  /** Sends the whole window. Resolves [length, buf]. */
  writeAll<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]>;
  /** writeAll with SEND_ZC where the kernel has it (the buffer is rented until the kernel is done with it). */
  writeZeroCopy<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]>;
  /** Shuts down the writing side (SHUT_WR): the peer reads end of stream. */
  shutdown(): Promise<void>;
  /** Closes the whole stream (both halves). */
  close(): Promise<void>;
  /** The stream's fd (-1 once closed). */
  readonly fd: number;
}

/**
 * A connected byte stream (the base of TcpStream and UnixStream): rented-buffer reads and writes that
 * resolve [n, buf] with the buffer passed in (do not touch it until the promise settles), readv/writev,
 * readExact/writeAll, zero-copy sends, shutdown, and intoSplit() into a read half and a write half.
 * Errors carry `code`, `syscall` and `buf`; after close() every call rejects ERR_RINGIO_CLOSED.
 */
export class SocketStream extends SocketBase implements ReadHalf, WriteHalf {
  // One pooled read op, reused once completed, so a read loop allocates no op objects (concurrent reads
  // get fresh ops). Write ops come from a per-thread free list (SendAllOp.take): an idle connection
  // holds none.
  #readOp: RecvOp<Uint8Array> | undefined;
  #leases: LeaseReader | undefined;
  /** send()'s queue, made on first use. */
  #tx: SendQueue | undefined;
  #sendHighWaterMark = SEND_HIGH_WATER_MARK;

  /**
   * Queues bytes to be sent, in order, and returns at once: no promise, no await per write. `data` is a
   * Uint8Array (send buf[offset, offset + length)) or a RecvLease from readLease() (send its received
   * bytes, `offset`/`length` within them). Returns true while fewer than `sendHighWaterMark` bytes are
   * queued or in flight, false once that many are: then `await flush()` before sending more (Node's
   * writable.write() contract). One SEND is in flight at a time; the next window goes from its
   * completion.
   *
   * Ownership: a buffer is the stream's until flush() resolves (do not change it before); a lease is
   * the stream's from the call on, released when its bytes are sent, dropped or the stream closes, and
   * also at once if send() throws (so a loop never releases it). The buffer stays referenced until the
   * kernel is done with it.
   *
   * Errors: send() throws TypeError/RangeError for a bad window, ERR_RINGIO_LEASE_RELEASED for a released
   * lease, ERR_RINGIO_CLOSED once closed. A failed send (EPIPE, ECONNRESET: a `SystemError` with `code`,
   * `syscall` 'send' and `n` after a partial send) drops what is queued behind it and sticks: every later
   * send() throws it and flush() rejects with it; if neither did yet, the next read(), readv(),
   * readLease() or close() reports it once (close() closes the stream first, then rejects with it).
   * close() drops queued bytes that have not gone out: await flush() first to send them all. Do not mix
   * with write()/writeAll() while bytes are queued: their order against the queue would be the kernel's.
   */
  send(data: Uint8Array | RecvLease, opts?: SendOptions): boolean {
    let buf: Uint8Array;
    let lease: RecvLease | undefined;
    let size: number;
    if (data instanceof RecvLease) {
      lease = data;
      buf = data.buf; // throws ERR_RINGIO_LEASE_RELEASED for a released lease
      size = data.length;
    } else {
      buf = checkBuffer(data, 'data');
      size = buf.length;
    }
    let offset = 0;
    let length = size;
    if (opts !== undefined) {
      try {
        offset = opts.offset ?? 0;
        length = checkSendRange(size, offset, opts.length);
      } catch (e) {
        lease?.release();
        throw e;
      }
    }
    if (this.#tx === undefined) {
      if (this.closed) {
        lease?.release();
        throw this.closedError(buf);
      }
      this.#tx = SendQueue.take(this);
    }
    return this.#tx.push(buf, offset, length, lease) < this.#sendHighWaterMark;
  }

  /**
   * Resolves once every byte queued with send() has gone to the kernel (at once when none is queued).
   * Rejects with the error of a failed send (see send()), or ERR_RINGIO_CLOSED if the stream is closed
   * before the queue is empty.
   */
  flush(): Promise<void> {
    if (this.#tx === undefined) {
      return this.closed ? Promise.reject(this.closedError(undefined)) : Promise.resolve();
    }
    return this.#tx.flush();
  }

  /** Bytes queued by send() and not yet sent (Node's writableLength). */
  get sendQueued(): number {
    return this.#tx === undefined ? 0 : this.#tx.bytes;
  }

  /** The queue size at which send() answers false (default 64 KiB). An integer >= 1. */
  get sendHighWaterMark(): number {
    return this.#sendHighWaterMark;
  }

  set sendHighWaterMark(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`sendHighWaterMark must be an integer >= 1, got ${String(n)}`);
    this.#sendHighWaterMark = n;
  }

  /**
   * Reads the next bytes into a buffer taken from the runtime's receive pool only when they arrive, and
   * resolves them on lease (a RecvLease: `bytes`, `length`, `release()`, `copy()`), or null at end of
   * stream. A stream waiting here holds no buffer: on io_uring the kernel picks one from a provided-buffer
   * ring (multishot receive where the kernel has it), on epoll the engine picks one on readiness
   * (docs/design/net.md). Release every lease (or copy() it) once done: the pool has `buffers` of them,
   * and an empty pool slows reads (they wait for a buffer) but loses nothing. Bytes that arrive while
   * nobody waits are queued for the next call, so aborting `signal` rejects AbortError and loses nothing.
   * Do not mix with read() on the same stream while either waits: their order would be the kernel's.
   */
  readLease(opts?: { signal?: AbortSignal }): Promise<RecvLease | null> {
    const sendErr = this.#tx?.unreported();
    if (sendErr !== undefined) return Promise.reject(sendErr);
    try {
      const signal = checkSignal(opts?.signal);
      if (this.#leases === undefined) {
        this.openFd();
        this.#leases = new LeaseReader(this);
      }
      return this.#leases.read(signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Reads until end of stream, handing every received lease to `handler` as it arrives: synchronously,
   * from the completion's dispatch, with no promise and no await per read (readLease costs one of each,
   * about 430 bytes a message; docs/design/net.md). Resolves at end of stream. If `handler` returns a
   * promise (a thenable), reading pauses until it settles, and what arrives meanwhile waits in order
   * (a few leases at most; after that the socket holds the bytes). The handler owns each lease: release
   * it, copy() it, or give it to send(), which releases it once sent.
   *
   * Rejects with the read's error (ECONNRESET, `syscall: 'recv'`) once the leases before it were
   * handled; with what `handler` throws or its promise rejects with; AbortError when `signal` aborts;
   * ERR_RINGIO_CLOSED when the stream closes. Reading stops then, and bytes that arrive later are kept
   * for the next readLease() or readLeases(). While it runs, read() must not be used and readLease()
   * and another readLeases() reject TypeError. An unreported failed send() surfaces here too (see send()).
   *
   * `recycle: true`: lease objects are recycled: once released (by the handler, by copy(), or by send()
   * after its bytes went out), a lease object is handed out again for a later read on this thread,
   * so a read allocates nothing (a lease is 64 bytes; at 256 connections it was nearly all an echo
   * allocated: docs/design/net.md). Only for handlers that keep no reference to a lease past its
   * release: a kept one names some later read's bytes, and its release() would release those. A lease
   * is never recycled while it is unreleased, so never while send() or a queue holds it.
   *
   * ```js
   * await stream.readLeases((lease) => {
   *   if (!stream.send(lease)) return stream.flush(); // pause reading while the send queue is full
   * }, { recycle: true });
   * ```
   */
  readLeases(handler: (lease: RecvLease) => unknown, opts?: ReadLeasesOptions): Promise<void> {
    const sendErr = this.#tx?.unreported();
    if (sendErr !== undefined) return Promise.reject(sendErr);
    try {
      if (typeof handler !== 'function') throw new TypeError(`handler must be a function, got ${typeof handler}`);
      const signal = checkSignal(opts?.signal);
      const recycle = opts?.recycle ?? false;
      if (typeof recycle !== 'boolean') throw new TypeError(`opts.recycle must be a boolean, got ${typeof recycle}`);
      if (this.#leases === undefined) {
        this.openFd();
        this.#leases = new LeaseReader(this);
      }
      return this.#leases.consume(handler, signal, recycle);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * @internal readLeases() without a promise, for a consumer that lives as long as the connection
   * (compat's Duplex): `handler` as readLeases' (no recycling, no signal); `done(err, closed)` once it
   * ends, synchronously: (null, false) at end of stream, (err, false) where readLeases would reject,
   * (null, true) when the stream is closed (no ERR_RINGIO_CLOSED is made: the caller makes one if it
   * needs it). Throws what readLeases would reject with up front.
   */
  _readLeasesTo(handler: (lease: RecvLease) => unknown, done: ConsumerDone): void {
    const sendErr = this.#tx?.unreported();
    if (sendErr !== undefined) throw sendErr;
    if (this.#leases === undefined) {
      this.openFd();
      this.#leases = new LeaseReader(this);
    }
    this.#leases.consumeTo(handler, done);
  }

  /**
   * @internal Ends a readLeases() consumer (it resolves) and disarms the pooled reads: resolves, once no
   * receive op is in flight, with the leases that arrived and were not handed out (the caller owns
   * them). read() may be used after it (an HTTP server hands an upgraded connection over this way).
   */
  _stopLeases(): Promise<RecvLease[]> {
    return this.#leases === undefined ? Promise.resolve([]) : this.#leases.stop();
  }

  /** @internal LeaseSource, SendSource: a pooled op on this stream, without a promise, tracked for close(). */
  _submitPooled(op: OpAble<unknown>): void {
    this.runDetached(op);
  }

  /** @internal LeaseSource: an op on this stream, tracked for close() ('plain' mode's RECV). */
  _runPooled<T>(op: OpAble<T>): Promise<T> {
    return this.run(op, undefined);
  }

  /** @internal LeaseSource: the fd for a pooled read op; throws ERR_RINGIO_CLOSED once closed. */
  _pooledFd(): number {
    return this.openFd();
  }

  /** @internal SendSource: the queue sent everything and leaves for the thread's spare list (send-queue.ts rule 6). */
  _sendIdle(q: SendQueue): void {
    if (this.#tx === q) this.#tx = undefined;
  }

  /**
   * Closes the stream: queued leases go back to the pool, waiting reads reject ERR_RINGIO_CLOSED, bytes
   * send() queued and not yet sent are dropped. If a queued send failed and nothing reported it yet,
   * the stream closes and then close() rejects with that error (see send()).
   */
  override close(): Promise<void> {
    const err = this.#dropQueues();
    const closing = super.close();
    return err === undefined ? closing : closing.then(() => Promise.reject(err));
  }

  /**
   * close()'s and _closeTo()'s first step: ends the lease reads and the send() queue. Returns a queued
   * send's failure that nobody heard of yet (it becomes the close's error), else undefined.
   */
  #dropQueues(): unknown {
    this.#leases?.dispose();
    const tx = this.#tx;
    if (tx === undefined) return undefined;
    const err = tx.unreported();
    tx.dispose();
    return err;
  }
  /**
   * Reads what is available (at least 1 byte, or 0 at end of stream) into buf. Resolves [n, buf].
   * Aborting `signal` cancels the read; if the kernel had already delivered data, the read resolves
   * with it instead, so no byte is lost.
   */
  read<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    const sendErr = this.#tx?.unreported();
    if (sendErr !== undefined) return Promise.reject(sendErr);
    if (this.#leases?.consuming === true) return Promise.reject(consuming());
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      const fd = this.openFd(buf);
      let op = this.#readOp as RecvOp<B> | undefined;
      if (op === undefined || !op.reuse(buf, offset, length)) {
        op = new RecvOp(fd, buf, offset, length);
        this.#readOp = op as unknown as RecvOp<Uint8Array>;
      }
      return this.run(op, opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * READV and WRITEV honour the socket's O_NONBLOCK on io_uring: the kernel answers EAGAIN instead of
   * waiting (SEND and RECV wait by polling). So on EAGAIN, wait for readiness with a poll op on this
   * socket (cancelled by close() and by the signal like any op) and go again. The epoll path waits by
   * itself and never sees EAGAIN here.
   */
  async #vectored<T>(make: () => OpAble<T>, events: number, signal: AbortSignal | undefined): Promise<T> {
    for (;;) {
      try {
        return await this.run(make(), signal);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EAGAIN') throw e;
        await this.run(new PollOp(this.openFd(), events), signal);
      }
    }
  }

  /** Scatter read into several buffers, each used whole. Resolves [n, bufs]. */
  readv<B extends Uint8Array>(bufs: B[], opts?: { signal?: AbortSignal }): Promise<[number, B[]]> {
    const sendErr = this.#tx?.unreported();
    if (sendErr !== undefined) return Promise.reject(sendErr);
    try {
      checkBufs(bufs);
      return this.#vectored(() => new ReadvOp(this.openFd(bufs), bufs), POLLIN, opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Fills buf[offset, offset + length) completely. Rejects ERR_RINGIO_UNEXPECTED_EOF (with `.n`, the
   * bytes read, and `.buf`) if the stream ends first.
   */
  readExact<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    return readExactFrom(this, buf, opts);
  }

  /** Writes what the socket takes now (may be short). Resolves [n, buf]. */
  write<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      return this.run(new SendOp(this.openFd(buf), buf, offset, length), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Gather write from several buffers, each used whole (may be short). Resolves [n, bufs]. */
  writev<B extends Uint8Array>(bufs: B[], opts?: { signal?: AbortSignal }): Promise<[number, B[]]> {
    try {
      checkBufs(bufs);
      return this.#vectored(() => new WritevOp(this.openFd(bufs), bufs), POLLOUT, opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes all of buf[offset, offset + length). Resolves [n, buf] with n === length. Short sends are
   * resubmitted inside the runtime: one op, one promise. An error after a partial send has `.n`.
   */
  writeAll<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    try {
      checkBuffer(buf);
      const offset = opts?.offset ?? 0;
      const length = checkRange(buf, offset, opts?.length);
      if (length === 0) return Promise.resolve([0, buf]);
      const fd = this.openFd(buf);
      return this.run(SendAllOp.take(fd, buf, offset, length), opts?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * @internal writeAll(buf, { length }) without a promise of its own (compat's Duplex, one write per
   * response; TlsStream's one-send writes, where the caller's promise is the only one):
   * `resolve([length, buf])` once the kernel took every byte, `reject(err)` with what writeAll would
   * reject with, each called from the completion's dispatch. Throws ERR_RINGIO_CLOSED (with buf) once
   * closed. The caller passes a valid window (a Buffer and 0 <= length <= its length).
   */
  _writeAllTo<B extends Uint8Array>(buf: B, length: number, resolve: (r: [number, B]) => void, reject: (e: unknown) => void): void {
    const fd = this.openFd(buf);
    if (length === 0) {
      resolve([0, buf]);
      return;
    }
    this.runBound(SendAllOp.take(fd, buf, 0, length) as unknown as OpAble<[number, B]>, resolve, reject);
  }

  /**
   * Writes all of the window with zero-copy sends (SEND_ZC) when the driver is io_uring and the kernel
   * has it, else with plain sends. Resolves only after the kernel's notification that it no longer
   * reads the buffer. Pays off for large buffers (tens of KiB and up).
   */
  async writeZeroCopy<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    checkBuffer(buf);
    const offset = opts?.offset ?? 0;
    const length = checkRange(buf, offset, opts?.length);
    // Only io_uring lists op:SEND_ZC, and only when the kernel has it.
    if (!hasFeature('op:SEND_ZC')) return this.writeAll(buf, opts);
    let n = 0;
    while (n < length) {
      const [sent] = await this.run(new SendZcOp(this.openFd(buf), buf, offset + n, length - n), opts?.signal);
      n += sent;
    }
    return [n, buf];
  }

  /**
   * Half-closes the stream (SHUT_WR): the peer reads end of stream after the bytes the kernel has taken;
   * this side can still read. Bytes queued by send() go first (as flush(); a failed send rejects
   * shutdown() with its error). With no write op in flight on the stream (reads may be), shutdown(2)
   * runs at once, without an op: on io_uring a SHUTDOWN op always goes to a kernel worker thread. While
   * a write()/writeAll() is still in flight, a SHUTDOWN op, which does not wait for it: await the write
   * first, or bytes it has not handed to the kernel yet fail EPIPE.
   */
  shutdown(): Promise<void> {
    try {
      const res = this._shutdownNow();
      if (res !== undefined) return res < 0 ? Promise.reject(errnoError(res, 'shutdown')) : Promise.resolve();
      if (this.#tx !== undefined && this.#tx.bytes > 0) return this.#tx.flush().then(() => this.shutdown());
      return this.run(new ShutdownOp(this.openFd()), undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * @internal shutdown() without a promise, when it can run at once (nothing queued by send(), no write op
   * in flight): shutdown(2)'s 0 or -errno. undefined when it cannot: then call shutdown(). Throws
   * ERR_RINGIO_CLOSED once closed. (compat's Duplex ends each connection this way.)
   */
  _shutdownNow(): number | undefined {
    const fd = this.openFd();
    if ((this.#tx !== undefined && this.#tx.bytes > 0) || !this.onlyInflight(READ_OPS)) return undefined;
    return sys.shutdown(fd, SHUT_WR);
  }

  /**
   * @internal close() without a promise: `cb(null)` once the fd is closed (synchronously when nothing
   * was in flight), `cb(err)` if closing it failed. The same rules as close(). (compat's Duplex closes
   * each connection this way.)
   */
  _closeTo(cb: (err: unknown) => void): void {
    const err = this.closed ? undefined : this.#dropQueues();
    this.closeTo(err === undefined ? cb : (e) => cb(e ?? err));
  }

  /** TCP_NODELAY (TCP streams only). */
  setNoDelay(noDelay = true): this {
    sys.setsockopt(this.openFd(), IPPROTO_TCP, TCP_NODELAY, noDelay ? 1 : 0);
    return this;
  }

  /** SO_KEEPALIVE, with the first probe after `initialDelayMs` (TCP streams only). */
  setKeepAlive(enable = true, initialDelayMs = 0): this {
    const fd = this.openFd();
    if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0) throw new RangeError('initialDelayMs must be >= 0');
    sys.setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, enable ? 1 : 0);
    if (enable && initialDelayMs > 0) {
      const secs = Math.max(1, Math.round(initialDelayMs / 1000));
      sys.setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, secs);
      sys.setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, secs);
      sys.setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, 9);
    }
    return this;
  }

  /**
   * Splits the stream into a read half and a write half that may be used concurrently. Both are views
   * of this stream; closing either closes the stream.
   */
  intoSplit(): [ReadHalf, WriteHalf] {
    return splitHalves(this);
  }
}

/** @internal The read half and the write half of a whole stream (SocketStream, TlsStream): views that call it. */
export function splitHalves(s: ReadHalf & WriteHalf): [ReadHalf, WriteHalf] {
  const read: ReadHalf = {
    ...(s.readLease !== undefined ? { readLease: (o?: { signal?: AbortSignal }) => s.readLease!(o) } : {}),
    ...(s.readLeases !== undefined
      ? { readLeases: (h: (lease: RecvLease) => unknown, o?: ReadLeasesOptions) => s.readLeases!(h, o) }
      : {}),
    read: (b, o) => s.read(b, o),
    readv: (b, o) => s.readv(b, o),
    readExact: (b, o) => s.readExact(b, o),
    close: () => s.close(),
    get fd() {
      return s.fd;
    },
  };
  const write: WriteHalf = {
    ...(s.send !== undefined ? { send: (d: Uint8Array | RecvLease, o?: SendOptions) => s.send!(d, o), flush: () => s.flush!() } : {}),
    write: (b, o) => s.write(b, o),
    writev: (b, o) => s.writev(b, o),
    writeAll: (b, o) => s.writeAll(b, o),
    writeZeroCopy: (b, o) => s.writeZeroCopy(b, o),
    shutdown: () => s.shutdown(),
    close: () => s.close(),
    get fd() {
      return s.fd;
    },
  };
  return [read, write];
}

/** @internal readExact over any stream's read() (SocketStream, TlsStream): reads until the window is full. */
export async function readExactFrom<B extends Uint8Array>(s: Pick<ReadHalf, 'read'>, buf: B, opts?: ReadOptions): Promise<[number, B]> {
  checkBuffer(buf);
  const offset = opts?.offset ?? 0;
  const length = checkRange(buf, offset, opts?.length);
  let n = 0;
  while (n < length) {
    const [got] = await s.read(buf, { offset: offset + n, length: length - n, signal: opts?.signal });
    if (got === 0) {
      throw ringioError('ERR_RINGIO_UNEXPECTED_EOF', `the stream ended after ${n} of ${length} bytes`, { n, buf });
    }
    n += got;
  }
  return [n, buf];
}

/** The window of a queued send within `size` bytes; its length. */
function checkSendRange(size: number, offset: number, length: number | undefined): number {
  const len = length === undefined ? size - offset : length;
  if (!Number.isInteger(offset) || offset < 0 || offset > size) throw new RangeError(`offset must be an integer in [0, ${size}], got ${String(offset)}`);
  if (!Number.isInteger(len) || len < 0 || offset + len > size) throw new RangeError(`length must be an integer in [0, ${size - offset}], got ${String(length)}`);
  return len;
}
