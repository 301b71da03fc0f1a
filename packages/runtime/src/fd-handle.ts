/**
 * An fd owned by a JS object (a socket, a file): it tracks the ops in flight on the fd, and closes by
 * cancelling them (they reject ERR_RINGIO_CLOSED once the kernel has answered, or resolve if they had
 * finished) before closing the fd. After close() every call rejects ERR_RINGIO_CLOSED at once. The base
 * of @ringio/net's sockets and @ringio/fs's File.
 */
import type { Driver } from './driver/driver.js';
import { ringioError } from './errors.js';
import { closeSync } from './fd.js';
import { OpAble, type OpOwner } from './op.js';
import { CloseOp } from './ops/close.js';
import { currentRuntime, submit } from './context.js';
import { checkSignal } from './validate.js';

/** The close() of an fd closed inline: one settled promise for all of them. */
const CLOSED: Promise<void> = Promise.resolve();

/** #closing of a handle that closeTo() closed: close() makes a promise only when someone asks for one. */
const BY_CALLBACK: Promise<void> = new Promise<void>(() => undefined);

/**
 * An fd owned by a JS object, the base of @ringio/net's sockets and @ringio/fs's File: it tracks the
 * ops in flight on the fd, and close() cancels them, waits for the kernel's answers, then closes the
 * fd. After close() every call rejects ERR_RINGIO_CLOSED at once. Extend it to wrap an fd of your own.
 */
export class FdHandle implements OpOwner {
  #fd: number;
  #closing: Promise<void> | undefined;
  /**
   * The driver slots of the ops in flight on this socket, so close() can cancel them: positions 0 and 1
   * in #s0 / #s1, positions 2 and up in #more[k - 2]; #count of them in all. The driver keeps each one's
   * position (Driver.own) and passes it back to opSettled, so nothing is read from or written to the op
   * objects, whose hidden classes differ op by op. A socket seldom has more than two ops in flight (its
   * read and one send), and fields of the handle, which every submit and settle touches anyway, cost no
   * load of their own: a list array was two more objects per submit and per settle (the array, then its
   * elements), each a cache miss under load (a fifth of runDetached's time in the proxy's profile,
   * docs/benchmarks.md "Runtime user time, eighth session"). #more is made on the third op in flight.
   */
  #s0 = -1;
  #s1 = -1;
  #more: number[] | undefined = undefined;
  #count = 0;
  /** The driver those ops are in flight in (this thread's). */
  #driver: Driver | undefined;
  /** Resolves close() once the last op in flight has settled. */
  #drained: (() => void) | undefined;
  /** closeTo()'s callbacks, until the fd is closed; then whether it is, and close(2)'s error (null: none). */
  #onClosed: ((err: unknown) => void) | undefined;
  #closeDone = false;
  #closeErr: unknown = null;

  /** Takes ownership of a non-blocking fd. Meant for subclasses, which add the I/O methods. */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The socket's fd (-1 once closed). Do not close it yourself: use close(). */
  get fd(): number {
    return this.#closing === undefined ? this.#fd : -1;
  }

  /** True from the moment close() is called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** For subclasses: submits an op on this fd, tracked for close(). */
  protected run<T>(op: OpAble<T>, signal: AbortSignal | undefined): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(this.closedError(op.payload()));
    let driver: Driver;
    try {
      driver = currentRuntime().driver;
      checkSignal(signal);
    } catch (e) {
      return Promise.reject(e);
    }
    const p = driver.submit(op, signal);
    const slot = driver.lastSlot;
    if (slot >= 0) this.#track(driver, slot); // submitted: tracked until the runtime says it settled
    return p;
  }

  /**
   * For subclasses: submits an op that settles by calling `resolve` (with its complete()'s value) or
   * `reject` instead of through a promise (one promise for a batch of ops), tracked for close() like
   * run()'s. Throws ERR_RINGIO_CLOSED once closed, and what submit() would reject with.
   */
  protected runBound<T>(op: OpAble<T>, resolve: (v: T) => void, reject: (e: unknown) => void): void {
    if (this.#closing !== undefined) throw this.closedError(op.payload());
    const driver = currentRuntime().driver;
    this.#track(driver, driver.submitBound(op, resolve as (v: unknown) => void, reject));
  }

  /**
   * For subclasses: submits an op on this fd without a promise (see OpAble.cancelled), tracked for
   * close(). Throws ERR_RINGIO_CLOSED when the handle or the runtime is closed.
   */
  protected runDetached(op: OpAble<unknown>): void {
    if (this.#closing !== undefined) throw this.closedError(op.payload());
    const driver = currentRuntime().driver;
    this.#track(driver, driver.submitDetached(op));
  }

  #track(driver: Driver, slot: number): void {
    const i = this.#count++;
    if (i === 0) this.#s0 = slot;
    else if (i === 1) this.#s1 = slot;
    else {
      const more = (this.#more ??= []);
      if (i - 2 < more.length) more[i - 2] = slot;
      else more.push(slot);
    }
    if (this.#driver !== driver) this.#driver = driver;
    driver.own(slot, this, i);
  }

  /** The slot at position k (< #count) of the ops in flight. */
  #slotAt(k: number): number {
    return k === 0 ? this.#s0 : k === 1 ? this.#s1 : this.#more![k - 2]!;
  }

  /** The OpOwner hook: called by the runtime just before an op of this fd settles, with its position. */
  opSettled(_op: OpAble<unknown>, i: number): void {
    const n = --this.#count;
    if (i !== n) {
      // The last one takes the settled op's place (the driver is told its new position).
      const last = this.#slotAt(n);
      if (i === 0) this.#s0 = last;
      else if (i === 1) this.#s1 = last;
      else this.#more![i - 2] = last;
      this.#driver!.moveOwned(last, i);
    }
    if (n === 0 && this.#drained !== undefined) this.#drained();
  }

  /**
   * For subclasses: true when every op in flight on this fd has a name in `names` (true when none is in
   * flight). net's shutdown() asks it whether only reads are in flight before it shuts down at once.
   */
  protected onlyInflight(names: ReadonlySet<string>): boolean {
    const n = this.#count;
    if (n === 0) return true;
    const driver = this.#driver!;
    for (let k = 0; k < n; k++) {
      const op = driver.opAt(this.#slotAt(k));
      if (op !== undefined && !names.has(op.name)) return false;
    }
    return true;
  }

  /** For subclasses: the raw fd for building ops; throws ERR_RINGIO_CLOSED (with buf) once closed. */
  protected openFd(buf?: unknown): number {
    if (this.#closing !== undefined) throw this.closedError(buf);
    return this.#fd;
  }

  protected closedError(buf: unknown): Error {
    return ringioError('ERR_RINGIO_CLOSED', `the ${this.constructor.name} is closed`, { buf });
  }

  /**
   * For subclasses: true to close the fd with close(2) from JS once nothing is in flight on it, instead of
   * a CLOSE op through the driver (a submission, a completion and a promise). For fds whose close never
   * blocks, such as sockets (net's SocketBase, which sets no SO_LINGER); a file's close may flush (NFS),
   * so the default is the op. Invariant 1 holds either way: the fd closes only after the kernel has
   * answered every op that named it (they were all settled: the count below is 0).
   */
  protected get closesInline(): boolean {
    return false;
  }

  /** Cancels pending ops, waits for the kernel's answers, then closes the fd. Idempotent. */
  close(): Promise<void> {
    const closing = this.#closing;
    if (closing === BY_CALLBACK) {
      // closeTo() closed it: settled already, or a promise that its callback chain settles.
      if (this.#closeDone) return this.#closeErr === null ? CLOSED : Promise.reject(this.#closeErr);
      this.#closing = new Promise<void>((resolve, reject) => this.#whenClosed((e) => (e === null ? resolve() : reject(e))));
      return this.#closing;
    }
    if (closing !== undefined) return closing;
    const fd = this.#fd;
    if (this.#count === 0) {
      this.#closing = this.#closeFd(fd);
      return this.#closing;
    }
    if (!this.#cancelAll()) {
      this.#closing = this.#closeFd(fd, true);
      return this.#closing;
    }
    // No async function: a server closes one socket per connection, with its read in flight.
    this.#closing = new Promise<void>((resolve, reject) => {
      this.#drained = () => {
        this.#drained = undefined;
        if (!this.closesInline) {
          this.#closeFd(fd, false).then(resolve, reject);
          return;
        }
        // close(2) now, and settle close() straight from here (no promise in between).
        try {
          closeSync(fd);
        } catch (e) {
          reject(e);
          return;
        }
        resolve();
      };
    });
    return this.#closing;
  }

  /**
   * For subclasses: close() with a callback instead of a promise (net's sockets: compat's Duplex closes
   * one per connection). The same rules as close(): the ops in flight are cancelled and the fd is closed
   * once the kernel has answered them all (invariant 1). `cb(null)` once the fd is closed, `cb(err)` if
   * closing it failed; called synchronously when nothing was in flight. Idempotent, and close() after it
   * (or before it) settles with the same outcome.
   */
  protected closeTo(cb: (err: unknown) => void): void {
    const closing = this.#closing;
    if (closing === BY_CALLBACK) {
      if (this.#closeDone) cb(this.#closeErr);
      else this.#whenClosed(cb);
      return;
    }
    if (closing !== undefined) {
      closing.then(() => cb(null), cb);
      return;
    }
    this.#closing = BY_CALLBACK;
    this.#onClosed = cb;
    const fd = this.#fd;
    if (this.#count === 0) this.#closeFdTo(fd, this.closesInline);
    else if (!this.#cancelAll()) this.#closeFdTo(fd, true);
    else {
      this.#drained = () => {
        this.#drained = undefined;
        this.#closeFdTo(fd, this.closesInline);
      };
    }
  }

  /** closeTo()'s end: the fd closed (err null) or its close failed. */
  #closedWith(err: unknown): void {
    this.#closeDone = true;
    this.#closeErr = err;
    const cb = this.#onClosed;
    this.#onClosed = undefined;
    if (cb === undefined) return;
    try {
      cb(err);
    } catch (e) {
      // It may run inside the last op's settle hook: a throwing callback must not cut the driver's
      // dispatch short. It is reported as thrown from a callback of its own.
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  /** One more callback for closeTo()'s end. */
  #whenClosed(cb: (err: unknown) => void): void {
    const prev = this.#onClosed;
    this.#onClosed =
      prev === undefined
        ? cb
        : (e) => {
            prev(e);
            cb(e);
          };
  }

  /** closeTo()'s #closeFd: close(2) now, or a CLOSE op (files). */
  #closeFdTo(fd: number, inline: boolean): void {
    if (!inline) {
      this.#closeFd(fd, false).then(
        () => this.#closedWith(null),
        (e: unknown) => this.#closedWith(e),
      );
      return;
    }
    let err: unknown = null;
    try {
      closeSync(fd);
    } catch (e) {
      err = e;
    }
    this.#closedWith(err);
  }

  /**
   * Cancels every op in flight (they settle once the kernel has answered; the last one's settle calls
   * #drained). false when this thread's runtime is gone: its shutdown already cancelled and drained them.
   */
  #cancelAll(): boolean {
    try {
      const driver = this.#driver!;
      if (driver !== currentRuntime().driver) throw new Error('not this thread\'s runtime');
      if (this.#count === 1) {
        // The common case (a socket's read in flight): no copy of the list.
        const op = driver.opAt(this.#s0);
        if (op !== undefined) driver.cancel(op, 'closed');
      } else {
        const slots: number[] = [];
        for (let k = 0; k < this.#count; k++) slots.push(this.#slotAt(k));
        for (let k = 0; k < slots.length; k++) {
          const op = driver.opAt(slots[k]!);
          if (op !== undefined) driver.cancel(op, 'closed');
        }
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the fd once nothing is in flight on it: close(2) now (inline, or no runtime), else a CLOSE op. */
  #closeFd(fd: number, inline = this.closesInline): Promise<void> {
    if (inline) {
      try {
        closeSync(fd);
        return CLOSED;
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return submit(new CloseOp(fd)).catch(() => closeSync(fd));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
