/**
 * The accept loop shared by TcpListener and UnixListener: accept({ signal }), async iteration and
 * close().
 *
 * On io_uring a listener keeps one multishot ACCEPT armed (kernel 5.19+) from its first accept() on:
 * connections queue up as they arrive and accept() takes the oldest. Elsewhere (epoll, older kernels,
 * RINGIO_ACCEPT_MULTISHOT=0) each accept() is one AcceptOp. Either way a connection that arrives for a
 * cancelled accept, or after close(), is closed: no fd leaks.
 */
import { ERRNO, abortError, closeSync, hasFeature, sleep } from '@ringio/runtime';
import { AcceptOp } from './ops/accept.js';
import { EachAcceptOp } from './ops/accept-each.js';
import { MultishotAcceptOp } from './ops/accept-multi.js';
import { SocketBase } from './socket.js';

/** acceptEach()'s run: its handler, its end, and (single mode) the EachAcceptOp it reuses. */
interface EachRun<S> {
  readonly onConnection: (stream: S) => void;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
  op: EachAcceptOp | undefined;
}

interface Waiter {
  resolve: (fd: number) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const EINVAL = ERRNO.EINVAL;

/** Accept errors after which serveEach() resumes (after SERVE_RETRY_MS): out of fds or memory, or a connection aborted in the backlog. */
const RETRY_ACCEPT: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'ECONNABORTED']);
const SERVE_RETRY_MS = 100;

export abstract class ListenerBase<S, A> extends SocketBase {
  /** 'unknown' until the first accept() decides. */
  #mode: 'unknown' | 'multishot' | 'single' = 'unknown';
  #armed: MultishotAcceptOp | undefined;
  readonly #ready: number[] = [];
  readonly #waiters: Waiter[] = [];
  #error: unknown;
  /** acceptEach()'s run while it accepts. */
  #each: EachRun<S> | undefined;

  /** @internal Wraps an accepted fd; `addr` is its sockaddr when known. */
  protected abstract wrap(fd: number, addr: Uint8Array | undefined): [S, A];

  /** @internal wrap()'s stream alone (acceptEach): a subclass whose pair costs more than the stream overrides it. */
  protected wrapStream(fd: number, addr: Uint8Array | undefined): S {
    return this.wrap(fd, addr)[0];
  }

  #decideMode(): void {
    if (this.#mode === 'unknown') {
      this.#mode = hasFeature('ACCEPT_MULTISHOT') && process.env.RINGIO_ACCEPT_MULTISHOT !== '0' ? 'multishot' : 'single';
    }
  }

  /** Waits for the next connection. Resolves [stream, peerAddr]. */
  accept(opts?: { signal?: AbortSignal }): Promise<[S, A]> {
    const signal = opts?.signal;
    try {
      this.#decideMode();
      if (this.#mode === 'single') return this.#acceptOne(signal);
      // No async function here: a server pays for its promises once per connection.
      const now = this.#takeQueued(signal);
      if (now !== undefined) return Promise.resolve(now);
      return this.#nextFd(signal).then((fd) => this.#take(fd, signal));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * One AcceptOp (epoll, or no multishot). The listener keeps one idle op and reuses it: it is taken while
   * its accept runs and until its address has been read (a reused op's next accept writes the same
   * buffer); concurrent accepts get ops of their own. No async function: one promise less per connection.
   */
  #acceptOne(signal: AbortSignal | undefined): Promise<[S, A]> {
    const fd = this.openFd();
    let op = this.#idleAccept;
    if (op !== undefined && op.reuse()) this.#idleAccept = undefined;
    else op = new AcceptOp(fd);
    return this.run(op, signal).then(
      (conn) => {
        try {
          return this.wrap(conn, op.addr);
        } finally {
          this.#idleAccept = op;
        }
      },
      (e: unknown) => {
        this.#idleAccept = op;
        throw e;
      },
    );
  }

  /**
   * Accepts until the listener (or the runtime) closes, calling `onConnection(stream)` with each new
   * connection during the completion's dispatch: no promise, no task per connection (a server that hands
   * each socket on, such as node:http fed through toDuplex, pays for neither). The peer's address is
   * `stream.peerAddr`. Resolves when the listener is closed or the runtime shuts down; rejects with an
   * accept error (EMFILE, ...) or what `onConnection` threw, and accepting stops then (the listener stays
   * open: call acceptEach again). Connections go to `onConnection` while it runs, also those accept()
   * callers wait for. One acceptEach at a time: a second one rejects with a TypeError.
   */
  acceptEach(onConnection: (stream: S) => void): Promise<void> {
    if (typeof onConnection !== 'function') {
      return Promise.reject(new TypeError(`acceptEach(onConnection): onConnection must be a function, got ${typeof onConnection}`));
    }
    if (this.#each !== undefined) return Promise.reject(new TypeError('acceptEach() is already running on this listener'));
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const run: EachRun<S> = { onConnection, resolve, reject, op: undefined };
      try {
        this.openFd();
        this.#decideMode();
      } catch (e) {
        reject(e);
        return;
      }
      this.#each = run;
      if (this.#mode === 'single') {
        this.#eachNext(run);
        return;
      }
      // Multishot: connections already queued first, then every one the armed accept delivers.
      while (this.#each === run && this.#ready.length > 0) this.#eachFd(run, this.#ready.shift()!, undefined);
      if (this.#each === run) this.#arm();
    });
  }

  /**
   * acceptEach() for a server, which must go on accepting whatever one connection or one accept throws:
   * runs until the listener (or the runtime) closes. What `onConnection` throws closes that connection
   * and goes to `onError`; an accept error that more file descriptors or memory may cure (EMFILE, ENFILE,
   * ENOBUFS, ENOMEM) or ECONNABORTED goes to `onError` and accepting resumes after 100 ms; any other
   * accept error goes to `onError` and ends it. Never rejects (what `onError` throws is dropped).
   */
  async serveEach(onConnection: (stream: S) => void, onError: (e: unknown) => void): Promise<void> {
    if (typeof onConnection !== 'function' || typeof onError !== 'function') {
      throw new TypeError('serveEach(onConnection, onError): both must be functions');
    }
    const report = (e: unknown): void => {
      try {
        onError(e);
      } catch {
        // The server's own reporting failed: nothing left to tell.
      }
    };
    const guarded = (stream: S): void => {
      try {
        onConnection(stream);
      } catch (e) {
        (stream as { close(): Promise<void> }).close().catch(() => {});
        report(e);
      }
    };
    for (;;) {
      try {
        await this.acceptEach(guarded);
        return;
      } catch (e) {
        const code = (e as { code?: string } | null)?.code ?? '';
        if (code === 'ERR_RINGIO_CLOSED') return;
        report(e);
        if (!RETRY_ACCEPT.has(code) || this.closed) return;
      }
      try {
        await sleep(SERVE_RETRY_MS);
      } catch {
        return; // the runtime is shutting down
      }
      if (this.closed) return;
    }
  }

  /** Ends acceptEach's run: quietly on a close (of the listener or the runtime), else with the error. */
  #eachEnd(run: EachRun<S>, e: unknown): void {
    if (this.#each !== run) return;
    this.#each = undefined;
    if (e === undefined || (e as { code?: string } | null)?.code === 'ERR_RINGIO_CLOSED') run.resolve();
    else run.reject(e);
  }

  /**
   * acceptEach, single mode: submits the run's EachAcceptOp (detached: its completion calls #eachFd or
   * #eachEnd during the dispatch, no promise), made once per run and reused for every connection.
   */
  #eachNext(run: EachRun<S>): void {
    if (this.#each !== run) return;
    if (this.closed) {
      this.#eachEnd(run, undefined);
      return;
    }
    try {
      let op = run.op;
      if (op === undefined) {
        const made: EachAcceptOp = new EachAcceptOp(
          this.openFd(),
          (fd) => this.#eachFd(run, fd, made.addr),
          (e) => this.#eachEnd(run, e),
        );
        op = run.op = made;
      } else {
        op.reuse();
      }
      this.runDetached(op);
    } catch (e) {
      this.#eachEnd(run, e);
    }
  }

  /** acceptEach: hands one accepted fd on (single mode: then accepts the next). */
  #eachFd(run: EachRun<S>, fd: number, addr: Uint8Array | undefined): void {
    if (this.#each !== run || this.closed) {
      closeSync(fd);
      this.#eachEnd(run, undefined);
      return;
    }
    let stream: S;
    try {
      stream = this.wrapStream(fd, addr);
    } catch (e) {
      closeSync(fd);
      // The peer reset before we took the connection (a Unix peer's name: ENOTCONN): take the next.
      if ((e as { code?: string }).code !== 'ENOTCONN') {
        this.#eachEnd(run, e);
        return;
      }
      if (run.op !== undefined) this.#eachNext(run);
      return;
    }
    try {
      run.onConnection(stream);
    } catch (e) {
      this.#eachEnd(run, e);
      return;
    }
    if (run.op !== undefined) this.#eachNext(run);
  }

  /** The AcceptOp that #acceptOne reuses, when none of its accepts holds it. */
  #idleAccept: AcceptOp | undefined;

  /**
   * Multishot mode: wraps a queued fd (a TCP peer's address is read on first ask; a Unix peer's name now),
   * or drops it when that fails with ENOTCONN (the peer already reset) and takes the next.
   */
  #take(fd: number, signal: AbortSignal | undefined): [S, A] | Promise<[S, A]> {
    try {
      return this.wrap(fd, undefined);
    } catch (e) {
      // The peer reset before we took the connection (ENOTCONN): drop it, take the next.
      closeSync(fd);
      if ((e as { code?: string }).code !== 'ENOTCONN') throw e;
      return this.accept({ signal });
    }
  }

  /** Multishot mode: a connection already queued, wrapped (undefined when none is, or on an error to report). */
  #takeQueued(signal: AbortSignal | undefined): [S, A] | Promise<[S, A]> | undefined {
    this.openFd();
    if (this.#ready.length === 0 || signal?.aborted === true) return undefined;
    return this.#take(this.#ready.shift()!, signal);
  }

  #nextFd(signal: AbortSignal | undefined): Promise<number> {
    this.openFd();
    if (this.#ready.length > 0) return Promise.resolve(this.#ready.shift()!);
    if (this.#error !== undefined) {
      const e = this.#error;
      this.#error = undefined;
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    this.#arm();
    return new Promise<number>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.push(w);
    });
  }

  #arm(): void {
    if (this.#armed !== undefined || this.closed) return;
    const op = new MultishotAcceptOp(this.openFd(), (fd) => this.#deliver(fd));
    this.#armed = op;
    this.run(op, undefined).then(
      (fd) => {
        // The kernel ended the multishot with one last connection (e.g. a full completion queue).
        this.#armed = undefined;
        this.#deliver(fd);
        if (this.#waiters.length > 0 || this.#each !== undefined) this.#arm();
      },
      (e: { code?: string; errno?: number }) => {
        this.#armed = undefined;
        if (e.errno === EINVAL && this.#mode === 'multishot') {
          // No multishot accept in this kernel: serve the waiters one AcceptOp at a time.
          this.#mode = 'single';
          for (const w of this.#waiters.splice(0)) this.#single(w);
          if (this.#each !== undefined) this.#eachNext(this.#each);
          return;
        }
        if (this.#each !== undefined) {
          // acceptEach takes the error (it ends with it); waiting accept() calls get the next one.
          this.#eachEnd(this.#each, this.closed ? undefined : e);
          if (this.#waiters.length > 0) this.#arm();
          return;
        }
        if (this.closed) return;
        const w = this.#waiters.shift();
        if (w !== undefined) this.#settle(w, e, true);
        else this.#error = e;
        if (this.#waiters.length > 0) this.#arm();
      },
    );
  }

  #single(w: Waiter): void {
    let op: AcceptOp;
    try {
      op = new AcceptOp(this.openFd());
    } catch (e) {
      this.#settle(w, e, true);
      return;
    }
    this.run(op, w.signal).then(
      (fd) => this.#settle(w, fd, false),
      (e) => this.#settle(w, e, true),
    );
  }

  #settle(w: Waiter, value: unknown, failed: boolean): void {
    if (w.signal !== undefined) w.signal.removeEventListener('abort', w.onAbort!);
    if (failed) w.reject(value);
    else w.resolve(value as number);
  }

  #deliver(fd: number): void {
    if (this.closed) {
      closeSync(fd);
      return;
    }
    if (this.#each !== undefined) {
      this.#eachFd(this.#each, fd, undefined);
      return;
    }
    const w = this.#waiters.shift();
    if (w !== undefined) this.#settle(w, fd, false);
    else this.#ready.push(fd);
  }

  /**
   * `for await (const [stream, peer] of listener)`: ends when the listener is closed; any other error ends
   * it by throwing. Leaving the loop does not close the listener. (A plain iterator over accept(), not an
   * async generator: one promise per connection instead of a generator's several.)
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<[S, A]> {
    let done = false;
    const end = (): IteratorResult<[S, A], undefined> => {
      done = true;
      return { value: undefined, done: true };
    };
    const onValue = (value: [S, A]): IteratorResult<[S, A], undefined> => ({ value, done: false });
    const onError = (e: unknown): IteratorResult<[S, A], undefined> => {
      done = true;
      if (this.closed && (e as { code?: string } | null)?.code === 'ERR_RINGIO_CLOSED') return end();
      throw e;
    };
    const it: AsyncIterableIterator<[S, A]> = {
      next: () => {
        if (done || this.closed) return Promise.resolve(end());
        let now: [S, A] | Promise<[S, A]> | undefined;
        if (this.#mode === 'multishot') {
          try {
            now = this.#takeQueued(undefined);
          } catch (e) {
            return Promise.reject(e).catch(onError);
          }
        }
        // A connection already queued: one promise for it, not three.
        if (now !== undefined && !(now instanceof Promise)) return Promise.resolve(onValue(now));
        return (now ?? this.accept()).then(onValue, onError);
      },
      return: () => Promise.resolve(end()),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Stops accepting: pending accepts reject ERR_RINGIO_CLOSED, queued connections are closed. */
  override close(): Promise<void> {
    if (!this.closed) {
      const err = this.closedError(undefined);
      for (const w of this.#waiters.splice(0)) this.#settle(w, err, true);
      for (const fd of this.#ready.splice(0)) closeSync(fd);
      if (this.#each !== undefined) this.#eachEnd(this.#each, undefined);
    }
    return super.close();
  }
}

export function checkBacklog(backlog: unknown): number {
  if (typeof backlog !== 'number' || !Number.isInteger(backlog) || backlog < 1 || backlog > 65535) {
    throw new RangeError(`backlog must be an integer in 1..65535, got ${String(backlog)}`);
  }
  return backlog;
}
