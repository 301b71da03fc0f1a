/**
 * The { module, export } entry every thread of ringio-proxy runs (cli.ts names this module): the thread's
 * ProxyThread serving deploys, and on thread 0 the coordinator too. Apart from thread.ts so that the
 * coordinator, which needs thread.ts's types, and thread.ts do not import each other.
 */
import type { RuntimeContext } from '@ringio/runtime';
import { serveDeploys } from '@ringio/service';
import { runCoordinator } from './coordinator.js';
import { log, setLogFormat } from './log.js';
import { setConnectionCells } from './tcp-proxy.js';
import { ProxyThread, type ProxyShared } from './thread.js';

/** The { module, export } entry every thread runs. Thread 0 also runs the coordinator. */
export async function proxyThread(ctx: RuntimeContext): Promise<unknown> {
  const shared = ctx.shared as ProxyShared;
  setLogFormat(shared.logFormat);
  setConnectionCells(shared.limits);
  const t = new ProxyThread(ctx.threadId);
  const agent = serveDeploys(shared.plane, ctx.threadId, t, ctx.signal);
  if (ctx.threadId === 0) {
    try {
      await runCoordinator(shared, t);
    } finally {
      for (const ch of shared.plane.commands) ch.close();
    }
  }
  await agent;
  return { threadId: ctx.threadId, accepted: t.accepted };
}
