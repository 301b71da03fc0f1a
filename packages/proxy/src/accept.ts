/**
 * The accept loop the proxy uses on a listening socket that several threads (and, during an upgrade,
 * two processes) share: wait for POLLIN with a poll op, then accept4 without waiting until the queue is
 * empty. Stopping cancels the poll, which never takes a connection: whatever is queued stays queued for
 * the other threads or the new process (an in-flight accept op, cancelled, would lose what it took).
 */
import { POLLIN, closeSync, poll, sleep, sys } from '@ringio/runtime';
import { log } from './log.js';

/** Accepts from a listening socket shared with other threads or processes: poll for POLLIN, then accept4 what is queued (up to 128 per wake-up), handing each fd to `onFd`. */
export class AcceptLoop {
  readonly #ctl = new AbortController();
  /** Settles once the loop has ended and its fd is closed. */
  readonly done: Promise<void>;

  /** Takes ownership of `fd` (closed when the loop ends). */
  constructor(
    /** The listening socket (the loop owns it and closes it when it ends). */
    readonly fd: number,
    onFd: (fd: number) => void,
    /** Names the listener in log lines. */
    readonly label: string,
  ) {
    this.done = this.#run(onFd);
  }

  async #run(onFd: (fd: number) => void): Promise<void> {
    const signal = this.#ctl.signal;
    try {
      while (!signal.aborted) {
        try {
          await poll(this.fd, POLLIN, { signal });
        } catch (e) {
          if (signal.aborted) break;
          log('error', 'accept_failed', { listener: this.label, error: (e as Error).message });
          await sleep(100).catch(() => {});
          continue;
        }
        // Take what is queued, but not forever: other tasks on this thread need their turn too.
        for (let i = 0; i < 128 && !signal.aborted; i++) {
          let cfd: number;
          try {
            cfd = sys.accept(this.fd);
          } catch (e) {
            // EMFILE / ENFILE / ENOBUFS: out of fds or memory; back off instead of spinning.
            log('error', 'accept_failed', { listener: this.label, error: (e as { code?: string }).code ?? String(e) });
            await sleep(50).catch(() => {});
            break;
          }
          if (cfd < 0) break;
          onFd(cfd);
        }
      }
    } finally {
      closeSync(this.fd);
    }
  }

  /** Stops accepting: nothing queued is taken or lost. Resolves once the loop has ended and its fd is closed. */
  stop(): Promise<void> {
    this.#ctl.abort();
    return this.done;
  }
}
