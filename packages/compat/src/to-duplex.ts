/**
 * toDuplex: a node:stream Duplex over a rented-buffer stream (TcpStream, UnixStream, or a
 * [ReadHalf, WriteHalf] pair), shaped like a net.Socket where node:http and node:tls look.
 *
 * Rules:
 *  1. Reads follow the Readable's demand: a read op is in flight only between a `_read()` call and
 *     its completion, and there is at most one. The Readable side asks again (`_read`) only while its
 *     buffer is under `readableHighWaterMark`, so a consumer that stops reading stops the socket reads,
 *     and the kernel's receive window pushes back on the peer. A source with readLeases (TcpStream,
 *     UnixStream), or with readChunks (TlsStream: its decrypted chunks, already copies of their own, are
 *     pushed as they are), is read by one consumer from the first `_read()` on instead (no promise per read):
 *     once push() says the buffer is full, the consumer pauses (a few leases at most are queued, then
 *     the bytes wait in the socket) until the next `_read()`.
 *  2. One copy per direction in user space at most. A source with readLease (TcpStream, UnixStream and
 *     their read halves) reads pooled (docs/design/net.md): a waiting read holds no buffer, the bytes
 *     land in a buffer of the runtime's pool, are copied into a chunk of exactly their size for push(),
 *     and the lease goes straight back. Other sources: reads land in a rented buffer of `readSize` bytes.
 *     A read that filled less than half of it is copied out into a fresh chunk for `push()` and the
 *     buffer is reused (a small message must not pin `readSize` bytes in the Readable's queue). A read
 *     that filled half or more hands the buffer itself to `push()` (zero copies) and rents a fresh one
 *     for the next read, which costs the same allocation the copy would have made. A `write()` chunk
 *     goes to the kernel as it is (zero copies: the kernel's copy into the socket buffer is the only
 *     one); chunks batched by cork() or a backlog (`_writev`) are copied once into a rented write buffer
 *     so they leave in one send. Strings are kept as strings (decodeStrings: false) and encoded straight
 *     into that buffer (node:http's heads); a string that is not batched becomes a Buffer on its own.
 *  3. A write's callback runs only after `writeAll` resolved, that is after the kernel took every byte,
 *     or with the error that stopped it. Errors are never reported late.
 *  4. `end()` shuts the write side down (SHUT_WR) after the pending writes; `destroy()` closes the stream,
 *     which cancels the ops in flight, and 'close' is emitted once the fd is closed.
 *  5. Errors keep their `code` (ECONNRESET, EPIPE, ...) and get node:net's fields (`syscall` 'read' or
 *     'write', message `read ECONNRESET`). The adapter's rented buffer is taken off them (`buf`) before
 *     they are emitted: it is the adapter's, not the caller's.
 *  6. Quiet at shutdown: once the runtime is closing (or gone), an op that fails with ERR_RINGIO_CLOSED or
 *     ERR_RINGIO_NO_RUNTIME destroys the Duplex without an error, as a net.Socket just goes away when its
 *     process exits. A write's own callback still gets the error; nothing is emitted as 'error'. A Duplex
 *     with nothing in flight is destroyed the same way when the runtime's signal aborts (one listener per
 *     runtime over a list of live Duplexes, not one per Duplex), so no fd outlives its runtime unseen.
 *  7. The stream may come later (connect.ts): until it is attached, reads wait, and the one write or
 *     end() that node:stream hands over waits (node:stream queues the rest), then they run in order.
 *  8. node's JSStreamSocket (the adapter node:http2 and node:tls put over a Duplex that is not a
 *     net.Socket) hands each write batch over whole (js-stream-guard.ts): one send or writev per batch,
 *     instead of one node:stream write() per buffer. It is taken only when node:stream has nothing queued;
 *     node:stream's own writes wait while such a batch is in flight, so bytes leave in call order.
 *  9. No Set of live Duplexes: a long-lived Set that gains and loses an entry per connection kept every
 *     connection's whole object graph (the Duplex, node:http's parser and messages, the stream) through
 *     V8's scavenges to the old space, where it waited for a full GC (17% of the young generation promoted
 *     against plain Node's 6%, scavenges 2-3x as long: docs/benchmarks.md, "New connections, branch ep1").
 *     The runtime's live Duplexes are a LiveList (@ringio/runtime), whose removed nodes point at nothing.
 * 10. A read or write error reaches node:stream on a later turn of the event loop (setImmediate) than
 *     the completion that carried it, as libuv delivers it in a callback of its own. The runtime hands
 *     over a batch of completions in one go: a connection's bytes and its ECONNRESET (or the failed
 *     write of a reply to a peer that already reset) can be in one batch. node:http2 emits 'stream' from
 *     a process.nextTick queued while it parses the bytes, so a destroy in the same batch (or one tick
 *     later, behind ticks that the parsing queued in turn) destroyed every such stream before its
 *     'stream' event, and a handler's respond() threw ERR_HTTP2_INVALID_STREAM out of the process. On
 *     the next turn every tick and microtask of the batch has run, as on a net.Socket.
 */
import { Duplex } from 'node:stream';
import { currentRuntime, errnoError, LiveList, ringioError, type LiveNode, type RecvLease } from '@ringio/runtime';
import { TcpStream, type ReadHalf, type SocketAddr, type WriteHalf } from '@ringio/net';
import { ensureJsStreamGuard, kWriteBatch } from './js-stream-guard.js';

type DuplexRuntime = { readonly isClosing: boolean; readonly signal: AbortSignal };

/** Rule 6: the live Duplexes of each runtime, destroyed quietly when its signal aborts (its shutdown); rule 9. */
const liveByRuntime = new WeakMap<DuplexRuntime, LiveList<SocketDuplex>>();

/** Rule 10: a read error, a turn after its completion (the Duplex may have gone meanwhile). */
function destroyLater(d: Duplex, err: Error): void {
  if (!d.destroyed) d.destroy(err);
}

/** destroySoon()'s 'finish' listener (one function for every Duplex). */
function destroyOnFinish(this: Duplex): void {
  this.destroy();
}

/** toDuplex's options. */
export interface ToDuplexOptions {
  /**
   * Size of the rented read buffer: the most one socket read can return (default 65536). Used only when
   * reads are not pooled (see `pooled`); pooled reads return at most the pool's bufferSize.
   */
  readSize?: number;
  /**
   * Pooled reads (default true when the source has readLease, or readChunks: a TlsStream): an idle
   * Duplex then holds no read buffer, a read takes one from the runtime's pool only when bytes arrive.
   * false: a rented buffer of `readSize` bytes, held by the read in flight.
   */
  pooled?: boolean;
  /** The Duplex's highWaterMark, both sides (default: node:stream's default). */
  highWaterMark?: number;
  /**
   * true (default): the peer's end ends only the readable side; the write side stays open until end()
   * (as the stream underneath, and as the sockets node:http's server makes; node:http and node:tls
   * end the write side themselves). false (net.Socket's default): the Duplex calls end() itself once
   * the peer has ended, after the writes already queued.
   */
  allowHalfOpen?: boolean;
}

/** The read side toDuplex needs (readLease, when it has one, makes reads pooled). */
export type DuplexReadSource = Pick<ReadHalf, 'read' | 'close'> &
  Partial<Pick<ReadHalf, 'readLease' | 'readLeases'>> & {
    /** Plaintext chunks from a consumer (TlsStream.readChunks): read as a readLeases consumer, chunks pushed as they are. */
    readChunks?(handler: (chunk: Buffer) => unknown): Promise<void>;
  };
/** The write side toDuplex needs (writev, when it has one, sends large batches in one call). */
export type DuplexWriteSource = Pick<WriteHalf, 'writeAll' | 'shutdown' | 'close'> & Partial<Pick<WriteHalf, 'writev'>>;

/** What toDuplex takes: a whole stream (TcpStream, UnixStream), or a [read half, write half] pair. */
export type DuplexSource =
  | (DuplexReadSource &
      DuplexWriteSource & {
        readonly peerAddr?: SocketAddr | string;
        readonly localAddr?: SocketAddr | string;
        setNoDelay?(noDelay?: boolean): unknown;
        setKeepAlive?(enable?: boolean, initialDelayMs?: number): unknown;
      })
  | readonly [DuplexReadSource, DuplexWriteSource];

type Whole = Exclude<DuplexSource, readonly unknown[]>;

/** SocketStream's internal writeAll without a promise. */
interface WriteAllTo {
  _writeAllTo(buf: Buffer, length: number, resolve: (r: [number, Buffer]) => void, reject: (e: unknown) => void): void;
}

/** SocketStream's internal shutdown without a promise: 0 or -errno, undefined when it cannot run at once. */
interface ShutdownNow {
  _shutdownNow(): number | undefined;
}

/** SocketStream's internal close without a promise: cb(null) once the fd is closed, cb(err) if that failed. */
interface CloseTo {
  _closeTo(cb: (err: unknown) => void): void;
}

/** SocketStream's internal readLeases without a promise (a consumer's end told to one callback). */
interface LeasesTo {
  _readLeasesTo(handler: (lease: RecvLease) => unknown, done: (err: unknown, closed: boolean) => void): void;
}

/** Batched writes up to this size are coalesced into the rented write buffer; larger chunks go as they are. */
const COALESCE = 64 * 1024;
/**
 * Spare write buffers (COALESCE bytes each) of this thread, shared by its Duplexes: a batch rents one for
 * its send and gives it back once the kernel is done with it, so a connection that writes once (a response
 * without keep-alive) does not allocate 64 KiB. At most SPARE are kept; each thread has its own (module state).
 */
const spare: Buffer[] = [];
const SPARE = 32;
const rentWriteBuffer = (): Buffer => spare.pop() ?? Buffer.allocUnsafeSlow(COALESCE);
const giveBack = (b: Buffer): void => {
  if (spare.length < SPARE) spare.push(b);
};
/**
 * Spare read buffers of the default size (DEFAULT_READ), the same way: a Duplex that is destroyed gives
 * its read buffer back once no read is in flight, and the next connection's first read takes it, so a
 * short connection does not allocate 64 KiB (their external memory drove most of the server's GC).
 */
const DEFAULT_READ = 65536;
const spareRead: Buffer[] = [];
const SPARE_READ = 64;
const rentReadBuffer = (size: number): Buffer => (size === DEFAULT_READ ? spareRead.pop() : undefined) ?? Buffer.allocUnsafeSlow(size);

/** The most buffers one writev takes (IOV_MAX). */
const IOV_MAX = 1024;
const MAX_READ = 0x7ffff000;

const hasFns = (o: unknown, names: string[]): boolean =>
  o !== null && typeof o === 'object' && names.every((n) => typeof (o as Record<string, unknown>)[n] === 'function');

/** node:net's syscall names for the ops a socket runs. */
const NODE_SYSCALL: Record<string, string> = { recv: 'read', readv: 'read', send: 'write', writev: 'write' };

/**
 * Takes the rented buffer (the adapter's) off an op's error before it leaves the adapter, and names the
 * syscall as node:net does (`read ECONNRESET`, `write EPIPE`).
 */
export function own(e: unknown): Error {
  if (e === null || typeof e !== 'object') return e as Error;
  const err = e as Error & { buf?: unknown; syscall?: unknown; errno?: unknown; code?: unknown };
  if ('buf' in err) delete err.buf;
  const syscall = typeof err.syscall === 'string' ? NODE_SYSCALL[err.syscall] : undefined;
  if (syscall !== undefined && typeof err.errno === 'number' && typeof err.code === 'string') {
    const was = err.message;
    err.syscall = syscall;
    err.message = `${syscall} ${err.code}`;
    if (typeof err.stack === 'string') err.stack = err.stack.replace(was, err.message);
  }
  return err;
}

/** The codes a closing (or gone) runtime fails ops with. */
const isShutdownCode = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ERR_RINGIO_CLOSED' || code === 'ERR_RINGIO_NO_RUNTIME';
};

function inetOf(a: unknown): SocketAddr | undefined {
  return a !== null && typeof a === 'object' && typeof (a as SocketAddr).port === 'number' ? (a as SocketAddr) : undefined;
}

/** The Duplex toDuplex returns: a stream.Duplex with the parts of net.Socket's surface that libraries use. */
export class SocketDuplex extends Duplex {
  /** Bytes received from the peer so far. */
  bytesRead = 0;
  /** Bytes the kernel has taken so far (net.Socket also counts bytes still queued; this does not). */
  bytesWritten = 0;
  #reader: DuplexReadSource | undefined;
  #writer: DuplexWriteSource | undefined;
  #whole: Whole | undefined;
  readonly #readSize: number;
  readonly #pooledOpt: boolean;
  /** Reads go through readLease (rule 2). */
  #pooled = false;
  /** ... and through one readLeases consumer, where the source has it (rule 2): no promise per read. */
  #consume = false;
  /** ... or through the source's readChunks consumer (a TlsStream: the chunks are its decrypted copies, pushed as they are). */
  #chunks = false;
  /** The consumer is paused (the Readable's buffer was full): the next _read() resumes it. */
  #resume: (() => void) | undefined;
  readonly #rt: DuplexRuntime;
  /** A read asked for before the stream was attached. */
  #wantRead = false;
  /** The _write, _writev or _final that waits for the stream to be attached (node:stream hands over one at a time). */
  #waiting: (() => void) | undefined;
  /** Its callback, for a destroy that comes first. */
  #waitingCb: ((err?: Error | null) => void) | undefined;
  /** The rented read buffer: made on demand, reused, or given to push() (then the next read makes one). */
  #rbuf: Buffer | undefined;
  #reading = false;
  /** The write buffer of a batch that #writeBatch gathers (rented from `spare` for that batch). */
  #wbuf: Buffer | undefined;
  #writeCb: ((err?: Error | null) => void) | undefined;
  /** A batch handed over by JSStreamSocket is in flight (rule 8): node:stream's writes wait for it. */
  #directBusy = false;
  #peer: SocketAddr | undefined;
  #local: SocketAddr | undefined;
  #timeoutMs = 0;
  /** The idle timer (kept while disarmed by setTimeout(0): see setTimeout), and the ms it was made with. */
  #timer: NodeJS.Timeout | undefined;
  #timerMs = 0;
  /** destroySoon() waits for 'finish'. */
  #destroySoon = false;
  /** Rule 6: this Duplex on its runtime's live list (undefined once off it). */
  #live: LiveNode<SocketDuplex> | undefined;

  /** Rule 6: onto the runtime's live list (made, with its one abort listener, by the runtime's first Duplex). */
  #track(): void {
    const rt = this.#rt;
    let list = liveByRuntime.get(rt);
    if (list === undefined) {
      if (rt.signal.aborted) return; // already shutting down: its first op fails quietly (rule 6)
      const made = (list = new LiveList<SocketDuplex>());
      liveByRuntime.set(rt, made);
      rt.signal.addEventListener('abort', () => SocketDuplex.#shutdownAll(rt, made), { once: true });
    }
    this.#live = list.add(this);
  }

  /** Off the live list. */
  #untrack(): void {
    const node = this.#live;
    if (node === undefined) return;
    this.#live = undefined;
    node.leave();
  }

  /** Rule 6: the runtime's signal aborted: every Duplex still on its list goes away quietly. */
  static #shutdownAll(rt: DuplexRuntime, list: LiveList<SocketDuplex>): void {
    liveByRuntime.delete(rt);
    for (let d = list.shift(); d !== undefined; d = list.shift()) {
      d.#live = undefined;
      d._shutdownQuietly();
    }
  }

  /** @internal How toDuplex() makes one. */
  static _create(source: DuplexSource, readSize: number, opts: { highWaterMark?: number; allowHalfOpen: boolean; pooled?: boolean }): SocketDuplex {
    return new SocketDuplex(source, readSize, opts);
  }

  /** Use toDuplex() (or compat's connect(), whose Socket attaches its stream once connected). */
  protected constructor(
    source: DuplexSource | undefined,
    readSize: number,
    opts: { highWaterMark?: number; allowHalfOpen: boolean; pooled?: boolean },
  ) {
    super({
      allowHalfOpen: opts.allowHalfOpen,
      highWaterMark: opts.highWaterMark,
      // Strings stay strings until they are copied into the write buffer (node:http's heads): one copy, no Buffer each.
      decodeStrings: false,
      emitClose: true,
      autoDestroy: true,
    });
    this.#rt = currentRuntime(); // ERR_RINGIO_NO_RUNTIME now rather than on the first read
    ensureJsStreamGuard();
    this.#track();
    this.#readSize = readSize;
    this.#pooledOpt = opts.pooled ?? true;
    if (source !== undefined) this._attach(source);
  }

  /** @internal Gives the Duplex its stream (connect.ts does this once connected); `_resume()` then runs what waited for it. */
  protected _attach(source: DuplexSource): void {
    if (Array.isArray(source)) {
      this.#reader = source[0];
      this.#writer = source[1];
    } else {
      this.#whole = source as Whole;
      this.#reader = this.#whole;
      this.#writer = this.#whole;
    }
    this.#pooled = this.#pooledOpt && typeof this.#reader?.readLease === 'function';
    this.#consume = this.#pooled && typeof this.#reader?.readLeases === 'function';
    this.#chunks = this.#pooledOpt && !this.#pooled && typeof this.#reader?.readChunks === 'function';
    if (this.#consume || this.#chunks) {
      // node:stream follows every push() made outside _read() with a tick (maybeReadMore) that calls
      // read(0), that is _read(), to fill the buffer up to the high-water mark. A consumer pushes on its
      // own until push() says the buffer is full, and _read() only resumes it then, so that tick has
      // nothing to do: marked as already scheduled, it is never made (one tick less per arrival).
      const state = (this as unknown as { _readableState?: { readingMore?: unknown } })._readableState;
      if (state !== undefined && typeof state.readingMore === 'boolean') state.readingMore = true;
    }
  }

  #wait(run: () => void, cb: (err?: Error | null) => void): void {
    this.#waiting = run;
    this.#waitingCb = cb;
  }

  /** @internal Runs the write, end() and read that waited for the stream (rule 7). */
  protected _resume(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    this.#waitingCb = undefined;
    waiting?.();
    if (this.#wantRead) {
      this.#wantRead = false;
      this._read();
    }
  }

  /** @internal Whether the runtime this Duplex runs on is closing or gone. */
  protected get _runtimeClosing(): boolean {
    return this.#rt.isClosing;
  }

  /** @internal Whether the stream is attached. */
  protected get _attached(): boolean {
    return this.#reader !== undefined;
  }

  /**
   * Rule 6: an op failed because the runtime is closing or gone. Destroys the Duplex without an error
   * and returns true; false for any other error.
   */
  protected _quiet(e: unknown): boolean {
    if (!this.#rt.isClosing || !isShutdownCode(e)) return false;
    this.destroy();
    return true;
  }

  // ---- the Readable side ------------------------------------------------------------------------

  override _read(): void {
    if (this.#reader === undefined) {
      this.#wantRead = true; // rule 7
      return;
    }
    if (this.#consume || this.#chunks) {
      const resume = this.#resume;
      if (resume !== undefined) {
        this.#resume = undefined;
        resume();
        return;
      }
      if (this.#reading) return; // the consumer runs; its arrivals push
      this.#reading = true;
      if (this.#chunks) {
        this.#reader.readChunks!(this.#onChunk).then(() => this.#onLease(null), this.#onReadError);
        return;
      }
      const to = (this.#reader as Partial<LeasesTo>)._readLeasesTo;
      if (to === undefined) {
        this.#reader.readLeases!(this.#onArrival).then(() => this.#onLease(null), this.#onReadError);
        return;
      }
      // A SocketStream's consumer without a promise: #onConsumerDone says how it ended.
      try {
        to.call(this.#reader, this.#onArrival, this.#onConsumerDone);
      } catch (e) {
        this.#onReadError(e);
      }
      return;
    }
    if (this.#reading) return; // a read is in flight; its completion pushes
    this.#reading = true;
    if (this.#pooled) {
      this.#reader.readLease!().then((this.#onLeaseFn ??= (l) => this.#onLease(l)), this.#onReadError);
      return;
    }
    const buf = this.#rbuf ?? rentReadBuffer(this.#readSize);
    this.#rbuf = undefined; // rented to the kernel until the read settles
    this.#reader.read(buf).then((this.#onReadFn ??= (r) => this.#onRead(r)), this.#onReadError);
  }

  /** The non-pooled read's completion handler, made on first use (a pooled Duplex never needs it). */
  #onReadFn: ((r: [number, Buffer]) => void) | undefined;

  #onRead([n, buf]: [number, Buffer]): void {
    this.#reading = false;
    this.#rbuf = buf;
    if (this.destroyed) return;
    if (n === 0) {
      this.push(null);
      return;
    }
    this.bytesRead += n;
    this._unrefTimer();
    if (n >= buf.length >>> 1) {
      // Mostly full: the buffer becomes the chunk, and the next read gets a fresh one (rule 2).
      this.#rbuf = undefined;
      this.push(n === buf.length ? buf : buf.subarray(0, n));
      return;
    }
    // The one copy of the read direction: the rented buffer is reused by the next read.
    const chunk = Buffer.allocUnsafe(n);
    buf.copy(chunk, 0, 0, n);
    this.push(chunk);
  }

  /**
   * Rule 2, a readLeases consumer: each arrival, synchronously from the completion's dispatch, copied into
   * a chunk of its size (the lease goes back at once). A full Readable buffer pauses the consumer (the
   * bytes wait in the socket, rule 1) until node:stream asks again (_read).
   */
  readonly #onArrival = (lease: RecvLease): Promise<void> | undefined => {
    if (this.destroyed) {
      lease.release();
      return undefined;
    }
    return this.#onChunk(lease.copy());
  };

  /** A consumer's chunk (a lease's copy, or a TlsStream's decrypted chunk): pushed; a full buffer pauses the consumer. */
  readonly #onChunk = (chunk: Buffer): Promise<void> | undefined => {
    if (this.destroyed) return undefined;
    this.bytesRead += chunk.length;
    this._unrefTimer();
    if (this.push(chunk)) return undefined;
    return new Promise<void>((resolve) => {
      this.#resume = resolve;
    });
  };

  /**
   * The end of a consumer without a promise (SocketStream._readLeasesTo): end of stream, an error, or the
   * stream closed. A close is ours (destroy() closes the stream) unless the Duplex is still alive: then
   * the stream was closed under it, which fails the read as readLeases would (ERR_RINGIO_CLOSED).
   */
  readonly #onConsumerDone = (err: unknown, closed: boolean): void => {
    if (closed) {
      this.#reading = false;
      if (!this.destroyed) this.#onReadError(ringioError('ERR_RINGIO_CLOSED', 'the stream was closed while a read waited'));
    } else if (err === null) this.#onLease(null);
    else this.#onReadError(err);
  };

  /** readLease's completion handler, made on first use (a source with readLeases does not need it). */
  #onLeaseFn: ((lease: RecvLease | null) => void) | undefined;

  /** A pooled read (rule 2): copied into a chunk of its size; the lease goes back at once. null: the end. */
  #onLease(lease: RecvLease | null): void {
    this.#reading = false;
    if (lease === null) {
      if (!this.destroyed) this.push(null);
      return;
    }
    const chunk = lease.copy();
    if (this.destroyed) return;
    this.bytesRead += chunk.length;
    this._unrefTimer();
    this.push(chunk);
  }

  readonly #onReadError = (e: unknown): void => {
    this.#reading = false;
    // The buffer comes back on the error (a cancelled read too): kept for the next read or the spare list.
    const back = (e as { buf?: unknown } | null)?.buf;
    if (Buffer.isBuffer(back) && back.length === this.#readSize) this.#rbuf = back;
    if (this.destroyed || this._quiet(e)) return; // our own close() cancelled it, or the runtime's shutdown
    setImmediate(destroyLater, this, own(e)); // rule 10
  };

  // ---- the Writable side ------------------------------------------------------------------------

  override _write(chunk: Buffer | string, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (typeof chunk === 'string') chunk = Buffer.from(chunk, encoding);
    if (this.#writer === undefined || this.#directBusy) {
      this.#wait(() => this._write(chunk, encoding, cb), cb); // rule 7 (or a direct write in flight: rule 8)
      return;
    }
    if (this.#rt.isClosing) {
      this.#writeClosed(cb);
      return;
    }
    this.#writeCb = cb;
    // Zero copies: the chunk itself is rented to the kernel until writeAll resolves.
    this.#writeAll(chunk, chunk.length, (this.#onWrittenFn ??= (r) => this.#onWritten(r)));
  }

  /**
   * writeAll(buf, { length }) to `done`, or to #onWriteError: without a promise where the writer has
   * _writeAllTo (a SocketStream), else through writeAll's promise.
   */
  #writeAll(buf: Buffer, length: number, done: (r: [number, Buffer]) => void): void {
    const writer = this.#writer!;
    const to = (writer as Partial<WriteAllTo>)._writeAllTo;
    if (to === undefined) {
      writer.writeAll(buf, { length }).then(done, this.#onWriteError);
      return;
    }
    try {
      to.call(writer, buf, length, done, this.#onWriteError);
    } catch (e) {
      this.#onWriteError(e);
    }
  }

  /** A single write's completion handler, made on first use (node:http's responses go as batches). */
  #onWrittenFn: ((r: [number, Uint8Array]) => void) | undefined;

  #onWritten([n]: [number, Uint8Array]): void {
    this.bytesWritten += n;
    this._unrefTimer();
    const cb = this.#writeCb!;
    this.#writeCb = undefined;
    cb();
  }

  readonly #onWriteError = (e: unknown): void => {
    const cb = this.#writeCb!;
    this.#writeCb = undefined;
    this._quiet(e); // destroyed first, so the callback's error is not emitted (rule 6)
    setImmediate(cb, own(e)); // rule 10: the callback, with its error, a turn later
  };

  #onBatchError(e: unknown, cb: (err?: Error | null) => void): void {
    this._quiet(e);
    setImmediate(cb, own(e)); // rule 10: the callback, with its error, a turn later
  }

  /** A write after the runtime closed: the Duplex goes away quietly, the callback learns why (rule 6). */
  #writeClosed(cb: (err?: Error | null) => void): void {
    this.destroy();
    cb(ringioError('ERR_RINGIO_CLOSED', 'the runtime is shut down: the write was not sent'));
  }

  override _writev(chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, cb: (err?: Error | null) => void): void {
    if (this.#writer === undefined || this.#directBusy) {
      this.#wait(() => this._writev(chunks, cb), cb); // rule 7 (or a direct write in flight: rule 8)
      return;
    }
    if (this.#rt.isClosing) {
      this.#writeClosed(cb);
      return;
    }
    if (chunks.length > 1 && this.#writeSmall(chunks, cb)) return;
    // Strings stay strings (node:http's heads): #sendAll encodes them straight into its write buffer.
    const parts = new Array<Buffer | string>(chunks.length);
    let encodings: BufferEncoding[] | undefined;
    for (let i = 0; i < chunks.length; i++) {
      const { chunk, encoding } = chunks[i]!;
      parts[i] = chunk;
      if (typeof chunk === 'string') (encodings ??= new Array<BufferEncoding>(chunks.length))[i] = encoding;
    }
    this.#sendAll(parts, cb, encodings);
  }

  /**
   * The common batch (node:http's head and body, corked): at most COALESCE bytes, copied straight from
   * node:stream's entries into a rented write buffer and sent at once (no array of the parts, no
   * encodings). false, having done nothing, when the batch may be larger (a string counts 3 bytes per
   * character, the most any encoding makes of one).
   */
  #writeSmall(chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, cb: (err?: Error | null) => void): boolean {
    let most = 0;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!.chunk;
      most += typeof c === 'string' ? c.length * 3 : c.length;
    }
    if (most > COALESCE) return false;
    const wbuf = rentWriteBuffer(); // rented to the kernel until the send resolves
    let fill = 0;
    for (let i = 0; i < chunks.length; i++) {
      const { chunk, encoding } = chunks[i]!;
      fill += typeof chunk === 'string' ? wbuf.write(chunk, fill, encoding) : chunk.copy(wbuf, fill);
    }
    this.#writeCb = cb;
    this.#writeAll(wbuf, fill, this.#onBatchWritten);
    return true;
  }

  /**
   * Sends a batch of chunks in order; `cb` once the kernel took every byte (rule 3). One chunk goes as it
   * is; up to COALESCE bytes are copied once into the rented write buffer and leave in one send (node:http's
   * head and body, corked; HTTP/2's frames); larger batches go by writev as they are (zero copies).
   */
  #sendAll(bufs: Array<Buffer | string>, cb: (err?: Error | null) => void, encodings?: BufferEncoding[]): void {
    const writer = this.#writer!;
    if (encodings !== undefined) {
      // A string in a batch that is not copied (alone, or in a large batch) becomes a Buffer here.
      let total = 0;
      for (let i = 0; i < bufs.length; i++) {
        const b = bufs[i]!;
        total += typeof b === 'string' ? Buffer.byteLength(b, encodings[i]) : b.length;
      }
      if (bufs.length === 1 || total > COALESCE) {
        for (let i = 0; i < bufs.length; i++) {
          const b = bufs[i]!;
          if (typeof b === 'string') bufs[i] = Buffer.from(b, encodings[i]);
        }
        encodings = undefined;
      }
    }
    if (bufs.length === 1) {
      this.#writeCb = cb;
      const only = bufs[0] as Buffer;
      this.#writeAll(only, only.length, (this.#onWrittenFn ??= (r) => this.#onWritten(r)));
      return;
    }
    let total = 0;
    if (encodings === undefined) {
      for (const b of bufs) total += b.length;
      if (total > COALESCE) {
        const chunks = bufs as Buffer[];
        const batch = writer.writev !== undefined ? this.#writevAll(chunks) : this.#writeBatch(chunks);
        batch.then(
          () => cb(),
          (e: unknown) => this.#onBatchError(e, cb),
        );
        return;
      }
    }
    const wbuf = rentWriteBuffer(); // rented to the kernel until the send resolves
    let fill = 0;
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs[i]!;
      fill += typeof b === 'string' ? wbuf.write(b, fill, encodings![i]) : b.copy(wbuf, fill);
    }
    this.#writeCb = cb;
    this.#writeAll(wbuf, fill, this.#onBatchWritten);
  }

  /**
   * @internal Rule 8: node's JSStreamSocket (node:http2, node:tls over this Duplex) hands its batch here
   * instead of to write() once per buffer (js-stream-guard.ts). Takes it only when node:stream has nothing
   * queued, corked or ending, so the order of bytes is the order of calls; returns false otherwise (the
   * caller then uses write()). `done` runs once the kernel took every byte, or with the error, which also
   * destroys the Duplex as a failed write() would, a turn later (rule 10).
   */
  [kWriteBatch](bufs: Buffer[], done: (err?: Error | null) => void): boolean {
    if (
      this.#writer === undefined ||
      this.#directBusy ||
      this.#waiting !== undefined ||
      this.destroyed ||
      this.writableEnded ||
      this.writableLength !== 0 ||
      this.writableCorked !== 0 ||
      this.#rt.isClosing
    ) {
      return false;
    }
    this.#directBusy = true;
    this.#sendAll(bufs, (err) => {
      this.#directBusy = false;
      // A write() that came meanwhile goes first: a batch that `done` hands over then queues behind it.
      const waiting = this.#waiting;
      this.#waiting = undefined;
      this.#waitingCb = undefined;
      if (!this.destroyed) waiting?.();
      done(err);
      // Rule 10: after a failed write the session, told first (done), reads on, so what the peer sent
      // before it reset still reaches it (as node:http2's native session does on a net.Socket); the
      // Duplex goes a turn later, after whatever those bytes set off.
      if (err && !this.destroyed) setImmediate(destroyLater, this, err);
    });
    return true;
  }

  readonly #onBatchWritten = (res: [number, Buffer]): void => {
    giveBack(res[1]);
    this.#onWritten(res);
  };

  /**
   * A batch of more than COALESCE bytes on a stream with writev: the chunks as they are (zero copies), up
   * to IOV_MAX per writev, one call for the whole batch unless the socket buffer fills (then the rest).
   */
  async #writevAll(chunks: Buffer[]): Promise<void> {
    const writev = this.#writer!.writev!.bind(this.#writer);
    const bufs: Buffer[] = [];
    for (const chunk of chunks) if (chunk.length > 0) bufs.push(chunk);
    let i = 0;
    while (i < bufs.length) {
      const window = i === 0 && bufs.length <= IOV_MAX ? bufs : bufs.slice(i, i + IOV_MAX);
      let [n] = await writev(window);
      if (n === 0) throw ringioError('ERR_RINGIO_CLOSED', 'the socket took no bytes');
      this.bytesWritten += n;
      this._unrefTimer();
      // Skip what the kernel took; a chunk it took part of goes again from where it stopped.
      while (n > 0) {
        const b = bufs[i]!;
        if (n >= b.length) {
          n -= b.length;
          i++;
        } else {
          bufs[i] = b.subarray(n);
          n = 0;
        }
      }
    }
  }

  /** A batch of more than COALESCE bytes without writev: runs of small chunks are gathered into the rented write buffer, large chunks go as they are. */
  async #writeBatch(chunks: Buffer[]): Promise<void> {
    let fill = 0;
    for (const chunk of chunks) {
      if (chunk.length >= COALESCE / 4) {
        if (fill > 0) fill = await this.#flush(fill);
        await this.#send(chunk, chunk.length);
        continue;
      }
      if (fill + chunk.length > COALESCE) fill = await this.#flush(fill);
      const wbuf = (this.#wbuf ??= rentWriteBuffer());
      fill += chunk.copy(wbuf, fill);
    }
    if (fill > 0) await this.#flush(fill);
    if (this.#wbuf !== undefined) giveBack(this.#wbuf);
    this.#wbuf = undefined;
  }

  async #flush(fill: number): Promise<0> {
    const wbuf = this.#wbuf!;
    this.#wbuf = undefined; // rented to the kernel until the send resolves
    this.#wbuf = await this.#send(wbuf, fill);
    return 0;
  }

  async #send<B extends Uint8Array>(buf: B, length: number): Promise<B> {
    const [n, back] = await this.#writer!.writeAll(buf, { length });
    this.bytesWritten += n;
    this._unrefTimer();
    return back;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#writer === undefined || this.#directBusy) {
      this.#wait(() => this._final(cb), cb); // rule 7 (or a direct write in flight: rule 8)
      return;
    }
    if (this.#rt.isClosing) {
      this.destroy(); // rule 6: ending at shutdown is closing
      cb();
      return;
    }
    const now = (this.#writer as Partial<ShutdownNow>)._shutdownNow;
    if (now !== undefined) {
      // A SocketStream with no write in flight shuts down at once: no promise.
      let res: number | undefined;
      try {
        res = now.call(this.#writer);
      } catch (e) {
        this.#onShutdownError(e, cb);
        return;
      }
      if (res !== undefined) {
        if (res < 0) this.#onShutdownError(errnoError(res, 'shutdown'), cb);
        else cb();
        return;
      }
    }
    this.#writer.shutdown().then(
      () => cb(),
      (e: unknown) => this.#onShutdownError(e, cb),
    );
  }

  #onShutdownError(e: unknown, cb: (err?: Error | null) => void): void {
    // As net.Socket: a peer that is already gone is not an error of end().
    if ((e as { code?: string } | null)?.code === 'ENOTCONN' || this._quiet(e)) cb();
    else cb(own(e));
  }

  /** @internal Rule 6: the runtime is shutting down; a Duplex still alive goes away without an error. */
  _shutdownQuietly(): void {
    if (!this.destroyed) this.destroy();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#clearTimer();
    this.#untrack();
    // A write or end() that waited for a stream that never came gets the error (node:stream then fails
    // the writes queued behind it the same way).
    const waitingCb = this.#waitingCb;
    this.#waiting = undefined;
    this.#waitingCb = undefined;
    waitingCb?.(err ?? ringioError('ERR_RINGIO_CLOSED', 'the socket was destroyed before it connected'));
    const detaching = this._detach();
    if (detaching === undefined) this.#closeStream(err, cb);
    else void detaching.then(() => this.#closeStream(err, cb));
  }

  /**
   * Closing cancels the ops in flight and waits for the kernel's answers before the fd is closed, so
   * 'close' means the fd is gone (with nothing in flight the stream closes it during close()).
   */
  #closeStream(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#reader === undefined) {
      cb(err);
      return;
    }
    const whole = this.#whole;
    const to = whole !== undefined ? (whole as Partial<CloseTo>)._closeTo : undefined;
    if (to !== undefined) {
      // A SocketStream closes without a promise (one connection, one close: none of the two it cost).
      to.call(whole, (e) => {
        if (e === null) this.#closed(err, cb);
        else this.#closeFailed(err, e, cb);
      });
      return;
    }
    const closing = whole !== undefined ? whole.close() : Promise.all([this.#reader.close(), this.#writer!.close()]);
    closing.then(
      () => this.#closed(err, cb),
      (e: unknown) => this.#closeFailed(err, e, cb),
    );
  }

  #closed(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#spareReadBuffer();
    cb(err);
  }

  #closeFailed(err: Error | null, e: unknown, cb: (err?: Error | null) => void): void {
    cb(err ?? (this.#rt.isClosing && isShutdownCode(e) ? null : own(e)));
  }

  /** Once closed: the read buffer goes to the spare list, unless a read still holds it (invariant 1). */
  #spareReadBuffer(): void {
    const b = this.#rbuf;
    if (b === undefined || this.#reading || b.length !== DEFAULT_READ) return;
    this.#rbuf = undefined;
    if (spareRead.length < SPARE_READ) spareRead.push(b);
  }

  /**
   * @internal Stops a connect under way (connect.ts); resolves once it has settled (attached or not).
   * undefined: nothing to wait for (a toDuplex Duplex), the stream closes in the same call.
   */
  protected _detach(): Promise<void> | undefined {
    return undefined;
  }

  /**
   * As node:stream's end(), except that end() with no arguments on a finished write side returns at once:
   * node:stream would make an ERR_STREAM_ALREADY_FINISHED (with its stack trace) and drop it, as there is
   * no callback to give it to. node:http's server calls it so on every connection whose peer closes after
   * the response.
   */
  override end(...args: unknown[]): this {
    if (args.length === 0 && this.writableFinished) return this;
    return (super.end as (...a: unknown[]) => this)(...args);
  }

  // ---- net.Socket's surface ---------------------------------------------------------------------

  /** Ends the write side, then destroys once the writes have finished (net.Socket.destroySoon). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else if (!this.#destroySoon) {
      this.#destroySoon = true;
      this.on('finish', destroyOnFinish); // 'finish' comes once: no once() wrapper, no closure
    }
  }

  /**
   * Emits 'timeout' after `ms` without reads or writes completing (0 disables), as net.Socket does. The
   * Duplex is not destroyed: that is the listener's job. `cb` is added as a once listener.
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError('setTimeout(ms): ms must be a number');
    if (ms < 0) throw new RangeError(`setTimeout(ms): ms must be >= 0, got ${ms}`);
    if (cb !== undefined && typeof cb !== 'function') throw new TypeError('setTimeout(ms, cb): cb must be a function');
    const t = Number.isFinite(ms) ? Math.trunc(ms) : 0;
    if (cb !== undefined) {
      if (t === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    if (this.destroyed) {
      this.#clearTimer();
      this.#timeoutMs = t;
      return this;
    }
    this.#timeoutMs = t;
    // 0 disarms without clearing: the Timeout stays (#onTimeout ignores it while disarmed), so the next
    // setTimeout(ms) re-arms it with refresh() instead of making a new one. node:http sets 0 when a
    // request comes and keepAliveTimeout once it is answered: one Timeout per connection, not per request.
    if (t === 0) return this;
    if (this.#timer !== undefined && this.#timerMs === t) {
      this.#timer.refresh();
    } else {
      this.#clearTimer();
      this.#timer = setTimeout(() => this.#onTimeout(), t).unref();
      this.#timerMs = t;
    }
    return this;
  }

  /** The idle timeout set by setTimeout() (undefined when none, as net.Socket). */
  get timeout(): number | undefined {
    return this.#timeoutMs === 0 ? undefined : this.#timeoutMs;
  }

  #onTimeout(): void {
    // The timer stays: activity (refresh) re-arms it. Disarmed (setTimeout(0)): nothing to say.
    if (this.#timeoutMs !== 0) this.emit('timeout');
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Restarts the idle timeout while one is armed (net.Socket's internal name; node:http calls it, and so does every read and write here). */
  _unrefTimer(): void {
    if (this.#timeoutMs !== 0) this.#timer?.refresh();
  }

  /** TCP_NODELAY. A no-op on Unix streams, on split pairs, and once destroyed (as net.Socket). */
  setNoDelay(noDelay = true): this {
    this.#sockopt(() => this.#whole?.setNoDelay?.(noDelay));
    return this;
  }

  /** SO_KEEPALIVE with the first probe after initialDelay ms. A no-op where setNoDelay is one. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    if (typeof initialDelay !== 'number' || !Number.isFinite(initialDelay) || initialDelay < 0) {
      throw new RangeError(`setKeepAlive: initialDelay must be a finite number >= 0, got ${String(initialDelay)}`);
    }
    this.#sockopt(() => this.#whole?.setKeepAlive?.(enable, initialDelay));
    return this;
  }

  #sockopt(set: () => unknown): void {
    if (this.destroyed) return;
    // A TcpStream needs no address look-up (node:http sets TCP_NODELAY on every connection it gets).
    if (!(this.#whole instanceof TcpStream) && this.#localInet() === undefined) return;
    set();
  }

  /** The runtime keeps Node's loop alive while start() runs; ref()/unref() exist for callers and change nothing. */
  ref(): this {
    return this;
  }

  /** Does nothing (see ref()). */
  unref(): this {
    return this;
  }

  /** True while a connect() runs (connect.ts); a toDuplex Duplex is connected from the start. */
  get connecting(): boolean {
    return false;
  }

  /** True until connected, as net.Socket. */
  get pending(): boolean {
    return this.#reader === undefined;
  }

  /** 'opening' while connecting, then 'open', 'readOnly', 'writeOnly' or 'closed', as net.Socket. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The peer's IP (TCP streams; undefined for Unix streams and split halves). */
  get remoteAddress(): string | undefined {
    return this.#remote()?.address;
  }

  /** The peer's port (TCP streams). */
  get remotePort(): number | undefined {
    return this.#remote()?.port;
  }

  /** 'IPv4' or 'IPv6' (TCP streams). */
  get remoteFamily(): string | undefined {
    return this.#remote()?.family;
  }

  /** This end's IP (TCP streams). */
  get localAddress(): string | undefined {
    return this.#localInet()?.address;
  }

  /** This end's port (TCP streams). */
  get localPort(): number | undefined {
    return this.#localInet()?.port;
  }

  /** 'IPv4' or 'IPv6' (TCP streams). */
  get localFamily(): string | undefined {
    return this.#localInet()?.family;
  }

  /** This end's { address, family, port }, or {} when not a TCP stream (as net.Socket). */
  address(): SocketAddr | Record<string, never> {
    const a = this.#localInet();
    return a === undefined ? {} : { address: a.address, family: a.family, port: a.port };
  }

  #remote(): SocketAddr | undefined {
    return (this.#peer ??= inetOf(this.#address('peerAddr')));
  }

  #localInet(): SocketAddr | undefined {
    return (this.#local ??= inetOf(this.#address('localAddr')));
  }

  /** A TCP address of the whole stream, or undefined (split pair, Unix stream, closed before it was read). */
  #address(which: 'peerAddr' | 'localAddr'): unknown {
    if (this.#whole === undefined) return undefined;
    try {
      return this.#whole[which];
    } catch {
      return undefined;
    }
  }
}

/**
 * Wraps a rented-buffer stream in a node:stream Duplex that node:http, node:tls, stream.pipeline and
 * other Duplex consumers can use as a socket. Needs the runtime running on this thread. The Duplex owns
 * the stream from now on: destroying it closes the stream.
 */
export function toDuplex(stream: DuplexSource, opts: ToDuplexOptions = DEFAULT_OPTS): SocketDuplex {
  // A TcpStream (a server's accepted connection) has the four methods: not looked up by name, which is a
  // megamorphic keyed load for each once several kinds of object have come by.
  if (!(stream instanceof TcpStream)) {
    if (Array.isArray(stream)) {
      if (stream.length !== 2 || !hasFns(stream[0], ['read', 'close']) || !hasFns(stream[1], ['writeAll', 'shutdown', 'close'])) {
        throw new TypeError('toDuplex(stream): a pair must be [ReadHalf, WriteHalf] (read/close and writeAll/shutdown/close)');
      }
    } else if (!hasFns(stream, ['read', 'writeAll', 'shutdown', 'close'])) {
      throw new TypeError('toDuplex(stream): stream must have read, writeAll, shutdown and close (a TcpStream, UnixStream, or [ReadHalf, WriteHalf])');
    }
  }
  if (opts === null || typeof opts !== 'object') throw new TypeError('toDuplex(stream, opts): opts must be an object');
  const o = opts === DEFAULT_OPTS ? DEFAULTS : duplexOptions(opts, true);
  return SocketDuplex._create(stream, o.readSize, o);
}

/** toDuplex() without options: its checked options, made once. */
const DEFAULT_OPTS: ToDuplexOptions = Object.freeze({});
const DEFAULTS = Object.freeze(duplexOptions(DEFAULT_OPTS, true));

/** @internal Checks the options every SocketDuplex takes; allowHalfOpen defaults to `halfOpen`. */
export function duplexOptions(
  opts: ToDuplexOptions,
  halfOpen: boolean,
): { readSize: number; highWaterMark?: number; allowHalfOpen: boolean; pooled: boolean } {
  const readSize = opts.readSize ?? 65536;
  if (typeof readSize !== 'number') throw new TypeError('readSize must be a number');
  if (!Number.isInteger(readSize) || readSize < 1 || readSize > MAX_READ) {
    throw new RangeError(`readSize must be an integer in 1..${MAX_READ}, got ${readSize}`);
  }
  const hwm = opts.highWaterMark;
  if (hwm !== undefined) {
    if (typeof hwm !== 'number') throw new TypeError('highWaterMark must be a number');
    if (!Number.isInteger(hwm) || hwm < 0) throw new RangeError(`highWaterMark must be an integer >= 0, got ${hwm}`);
  }
  const allowHalfOpen = opts.allowHalfOpen ?? halfOpen;
  if (typeof allowHalfOpen !== 'boolean') throw new TypeError('allowHalfOpen must be a boolean');
  const pooled = opts.pooled ?? true;
  if (typeof pooled !== 'boolean') throw new TypeError('pooled must be a boolean');
  return { readSize, highWaterMark: hwm, allowHalfOpen, pooled };
}
