/**
 * Shared test helpers. Every I/O test runs on the driver named by RINGIO_DRIVER (scripts/test.mjs runs
 * the suite once per driver). When io_uring is asked for but this machine cannot run it, uring tests
 * skip with the reason instead of failing.
 */
import { readdirSync } from 'node:fs';
import { start, stats, type RuntimeContext, type StartOptions } from '@ringio/runtime';

export const DRIVER = (process.env.RINGIO_DRIVER ?? 'auto') as 'uring' | 'epoll' | 'auto';

/** Why the requested driver cannot run here, or null when it can. */
export const unavailable: string | null = await (async () => {
  if (DRIVER !== 'uring') return null;
  const s = await start(() => stats(), { driver: 'auto' });
  return s.driver === 'uring' ? null : `io_uring unavailable: ${s.fallbackReason}`;
})();

/** Runs fn on a runtime with the driver under test. */
export function rt<T>(fn: (ctx: RuntimeContext) => T | PromiseLike<T>, opts: StartOptions = {}): Promise<Awaited<T>> {
  return start(fn, { driver: DRIVER, ...opts });
}

/** Open fds of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (Math.random() * 256) | 0;
  return b;
}
