/**
 * fromDuplex: the rented-buffer API (read, readExact, write, writeAll, shutdown, close) over any
 * node:stream Duplex: a net.Socket, a tls.TLSSocket, a toDuplex() stream, anything with bytes.
 *
 * Rules:
 *  1. The Duplex flows only while a read waits. A chunk that arrives with no read waiting, or that is
 *     larger than the waiting read's window, is held (with its offset) and the Duplex is paused until
 *     the held bytes are consumed. So at most one of the Duplex's chunks is held beyond its own buffer.
 *  2. Each byte is copied once: from the Duplex's chunk into the caller's buffer. Writes hand the
 *     caller's buffer (a view of the window) to duplex.write() without copying, and resolve only in
 *     write()'s callback, when the Duplex is done with it, so the buffer comes back only then.
 *  3. Every promise resolves [n, buf] with the caller's buffer, or rejects with an error carrying `buf`.
 *     Errors keep the Duplex's `code`. One error object is never handed out with two different bufs:
 *     the second rejection gets a copy (same message, code, errno, syscall; `cause` = the original).
 *  4. Bytes received before an error or the end are delivered before it.
 */
import type { Duplex } from 'node:stream';
import { ERRNO, abortError, checkBuffer, checkRange, errnoError, ringioError } from '@ringio/runtime';
import type { ReadOptions, WriteOptions } from '@ringio/net';

const EPIPE = ERRNO.EPIPE;

interface Waiter {
  buf: Uint8Array;
  /** Where the next byte goes. */
  pos: number;
  end: number;
  /** Bytes needed before resolving: 1 for read, the window for readExact. */
  need: number;
  got: number;
  resolve: (v: [number, Uint8Array]) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return signal as AbortSignal | undefined;
}

/** What fromDuplex returns: a rented-buffer stream over a Duplex. */
export class RentedDuplex {
  /** The Duplex underneath. */
  readonly duplex: Duplex;
  /** Received chunks not yet consumed; the first from `#off`. */
  readonly #held: Buffer[] = [];
  #off = 0;
  readonly #waiters: Waiter[] = [];
  #ended = false;
  #error: Error | undefined;
  /** The Duplex closed without ending or failing: it was destroyed. */
  #gone = false;
  #closing: Promise<void> | undefined;
  #shutdown: Promise<void> | undefined;
  /** Errors already handed out with a buf. */
  readonly #lent = new WeakSet<object>();

  /** @internal How fromDuplex() makes one. */
  static _create(duplex: Duplex): RentedDuplex {
    return new RentedDuplex(duplex);
  }

  /** Use fromDuplex(). */
  private constructor(duplex: Duplex) {
    this.duplex = duplex;
    duplex.on('data', this.#onData);
    duplex.pause(); // flows only while a read waits (rule 1)
    duplex.on('end', this.#onEnd);
    duplex.on('error', this.#onError);
    duplex.on('close', this.#onClose);
    if (duplex.readableEnded) this.#ended = true;
    if (duplex.destroyed && !this.#ended) this.#gone = true;
  }

  /** True from the moment close() is called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Reads what is available (at least 1 byte, or 0 at the end of the stream) into the window of buf.
   * Resolves [n, buf]. A zero-length window resolves [0, buf] at once.
   */
  read<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    return this.#read(buf, opts, false);
  }

  /**
   * Fills the window of buf. Rejects ERR_RINGIO_UNEXPECTED_EOF (with `n`, the bytes read, and `buf`)
   * if the stream ends first.
   */
  readExact<B extends Uint8Array>(buf: B, opts?: ReadOptions): Promise<[number, B]> {
    return this.#read(buf, opts, true);
  }

  /** Writes the window of buf. The Duplex takes all of it, so this is writeAll. */
  write<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    return this.writeAll(buf, opts);
  }

  /**
   * Hands the window of buf to duplex.write() and resolves [length, buf] once its callback runs (the
   * Duplex is done with the bytes). A signal that is already aborted rejects at once; once handed
   * over, a write cannot be taken back, so a later abort does not cancel it.
   */
  writeAll<B extends Uint8Array>(buf: B, opts?: WriteOptions): Promise<[number, B]> {
    try {
      const call = this.#begin(buf, opts);
      if (call instanceof Promise) return call;
      const { offset, length } = call;
      const d = this.duplex;
      // duplex.write() after end() would destroy the Duplex (and its read side with it): refuse as a
      // socket refuses a send after shutdown.
      if (this.#shutdown !== undefined || d.writableEnded) return Promise.reject(errnoError(EPIPE, 'write', { buf }));
      if (this.#error !== undefined) return Promise.reject(this.#withBuf(this.#error, buf));
      const view = offset === 0 && length === buf.byteLength ? buf : buf.subarray(offset, offset + length);
      return new Promise((resolve, reject) => {
        d.write(view, (err?: Error | null) => {
          if (err) reject(this.#withBuf(err, buf));
          else resolve([length, buf]);
        });
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Ends the Duplex's write side (end()) and resolves once it has finished. Idempotent. */
  shutdown(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(this.#closedError(undefined));
    if (this.#shutdown === undefined) {
      const d = this.duplex;
      // end() on a finished Duplex fails ERR_STREAM_ALREADY_FINISHED; for us it is already shut down.
      this.#shutdown = d.writableFinished
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            d.end((err?: Error | null) => (err ? reject(err) : resolve()));
          });
    }
    return this.#shutdown;
  }

  /**
   * Destroys the Duplex and resolves once it has closed. Waiting reads reject ERR_RINGIO_CLOSED (with
   * their buf); writes still queued in the Duplex reject with its ERR_STREAM_DESTROYED. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      const d = this.duplex;
      for (const w of this.#waiters.splice(0)) this.#settle(w, this.#closedError(w.buf));
      if (d.closed) {
        resolve();
        return;
      }
      d.once('close', () => resolve());
      d.destroy();
      // A Duplex made with emitClose: false never emits 'close'.
      if ((d as unknown as { _readableState?: { emitClose?: boolean } })._readableState?.emitClose === false) resolve();
    });
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Checks a call's arguments (throws TypeError/RangeError) and returns its window, or the promise the
   * call settles with at once: closed, already aborted, or an empty window.
   */
  #begin<B extends Uint8Array>(
    buf: B,
    opts: ReadOptions | undefined,
  ): { offset: number; length: number; signal: AbortSignal | undefined } | Promise<[number, B]> {
    checkBuffer(buf);
    const offset = opts?.offset ?? 0;
    const length = checkRange(buf, offset, opts?.length);
    const signal = checkSignal(opts?.signal);
    if (this.#closing !== undefined) return Promise.reject(this.#closedError(buf));
    if (signal?.aborted) return Promise.reject(abortError(signal, buf));
    if (length === 0) return Promise.resolve([0, buf]);
    return { offset, length, signal };
  }

  #read<B extends Uint8Array>(buf: B, opts: ReadOptions | undefined, exact: boolean): Promise<[number, B]> {
    try {
      const call = this.#begin(buf, opts);
      if (call instanceof Promise) return call;
      const { offset, length, signal } = call;
      return new Promise<[number, B]>((resolve, reject) => {
        const w: Waiter = {
          buf,
          pos: offset,
          end: offset + length,
          need: exact ? length : 1,
          got: 0,
          resolve: resolve as Waiter['resolve'],
          reject,
          signal,
          onAbort: undefined,
        };
        if (this.#waiters.length === 0 && this.#fill(w)) return;
        this.#waiters.push(w);
        if (signal !== undefined) {
          w.onAbort = () => {
            const i = this.#waiters.indexOf(w);
            if (i < 0) return;
            this.#waiters.splice(i, 1);
            // Bytes a readExact already took stay in its window; the error says nothing of them (as SocketStream).
            this.#settle(w, abortError(signal, buf));
          };
          signal.addEventListener('abort', w.onAbort, { once: true });
        }
        this.duplex.resume();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Copies held bytes into w; settles w when it has what it needs, or when the stream has ended or
   * failed. Returns whether w is settled.
   */
  #fill(w: Waiter): boolean {
    const held = this.#held;
    while (held.length > 0 && w.pos < w.end) {
      const chunk = held[0]!;
      const n = Math.min(chunk.length - this.#off, w.end - w.pos);
      w.buf.set(chunk.subarray(this.#off, this.#off + n), w.pos);
      w.pos += n;
      w.got += n;
      this.#off += n;
      if (this.#off === chunk.length) {
        held.shift();
        this.#off = 0;
      }
    }
    if (w.got >= w.need) {
      this.#settle(w, undefined);
      return true;
    }
    if (this.#ended) {
      if (w.got === 0) this.#settle(w, undefined);
      else this.#settle(w, ringioError('ERR_RINGIO_UNEXPECTED_EOF', `the stream ended after ${w.got} of ${w.end - w.pos + w.got} bytes`, { n: w.got, buf: w.buf }));
      return true;
    }
    if (this.#error !== undefined) {
      this.#settle(w, this.#withBuf(this.#error, w.buf));
      return true;
    }
    if (this.#gone) {
      this.#settle(w, ringioError('ERR_RINGIO_CLOSED', 'the duplex was destroyed', { buf: w.buf }));
      return true;
    }
    return false;
  }

  #settle(w: Waiter, err: unknown): void {
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    if (err === undefined) w.resolve([w.got, w.buf]);
    else w.reject(err);
  }

  /** Serves the waiting reads in order; pauses the Duplex while bytes are held and nobody waits. */
  #serve(): void {
    const waiters = this.#waiters;
    while (waiters.length > 0 && this.#fill(waiters[0]!)) waiters.shift();
    if (this.#held.length > 0 || waiters.length === 0) this.duplex.pause();
  }

  readonly #onData = (chunk: Buffer | string): void => {
    let bytes: Buffer;
    if (typeof chunk === 'string') bytes = Buffer.from(chunk, this.duplex.readableEncoding ?? 'utf8');
    else if (chunk instanceof Uint8Array) bytes = chunk;
    else {
      this.#onError(new TypeError('fromDuplex: the duplex emitted a chunk that is not bytes (object mode?)'));
      this.duplex.destroy();
      return;
    }
    if (bytes.length === 0) return;
    this.#held.push(bytes);
    this.#serve();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#serve();
  };

  readonly #onError = (err: unknown): void => {
    // A Duplex may be destroyed with a value that is not an object; errors here carry `buf`.
    this.#error ??= err !== null && typeof err === 'object' ? (err as Error) : new Error(String(err));
    this.#serve();
  };

  readonly #onClose = (): void => {
    if (!this.#ended && this.#error === undefined) {
      this.#gone = true;
      this.#serve();
    }
  };

  #closedError(buf: unknown): Error {
    return ringioError('ERR_RINGIO_CLOSED', 'the RentedDuplex is closed', { buf });
  }

  /** err with `buf`, or a copy of it when err already went out with another buffer (rule 3). */
  #withBuf(err: Error, buf: unknown): Error {
    if (!this.#lent.has(err)) {
      this.#lent.add(err);
      (err as Error & { buf?: unknown }).buf = buf;
      return err;
    }
    const src = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
    const copy = new Error(err.message, { cause: err }) as Error & Record<string, unknown>;
    copy.name = err.name;
    for (const k of ['code', 'errno', 'syscall'] as const) if (src[k] !== undefined) copy[k] = src[k];
    copy.buf = buf;
    return copy;
  }
}

/**
 * The rented-buffer API over a node:stream Duplex carrying bytes, so ringio code (copy(),
 * copyBidirectional(), protocol loops) can use node:tls sockets or any other Duplex. Takes over the
 * Duplex's 'data' flow: do not read from it elsewhere.
 */
export function fromDuplex(duplex: Duplex): RentedDuplex {
  const d = duplex as unknown as Record<string, unknown> | null;
  if (
    d === null ||
    typeof d !== 'object' ||
    typeof d.on !== 'function' ||
    typeof d.pause !== 'function' ||
    typeof d.resume !== 'function' ||
    typeof d.write !== 'function' ||
    typeof d.end !== 'function' ||
    typeof d.destroy !== 'function'
  ) {
    throw new TypeError('fromDuplex(duplex): duplex must be a stream.Duplex');
  }
  if (duplex.readableObjectMode || duplex.writableObjectMode) {
    throw new TypeError('fromDuplex(duplex): the duplex must carry bytes, not objects (objectMode)');
  }
  return RentedDuplex._create(duplex);
}
