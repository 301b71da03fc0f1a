/**
 * Two-phase deploys across threads (Monolake's Precommit / Update / Abort). A DeployPlane is a command
 * channel per thread plus one reply channel, made once before start() and handed to every thread in
 * `shared`. Every thread serves its commands with serveDeploys(); one coordinator (any thread, usually
 * thread 0) runs Deployer.deploy(changes):
 *
 *   1. prepare: every thread builds its new chains (factory.make(old)) and keeps them aside;
 *   2. if every thread answered ok: commit everywhere (the slots switch); otherwise abort everywhere
 *      (what was prepared is dropped, the slots keep the old chains).
 *
 * The report says, per thread, whether its prepare succeeded, why not, and what it did in the end.
 */
import { channel, ringioError, type Channel } from '@ringio/runtime';
import { buildFactory, checkFactorySpec, type FactorySpec } from './spec.js';
import { Slot } from './slot.js';
import type { Factory } from './service.js';

/** One chain change: a new spec for `key`, or `spec: null` to remove it. `data` goes to the target as is. */
export interface Change {
  /** The slot's key (a server's name, for instance). */
  key: string;
  /** The factory of the new chain, or null to remove the key. */
  spec: FactorySpec | null;
  /** Anything the target needs besides the factory (structured-cloned to every thread). */
  data?: unknown;
}

type Command =
  | { id: number; kind: 'prepare'; changes: Change[] }
  | { id: number; kind: 'commit' }
  | { id: number; kind: 'abort' }
  | { id: number; kind: 'query'; query: unknown };

interface Reply {
  id: number;
  threadId: number;
  ok: boolean;
  ms: number;
  value?: unknown;
  error?: { message: string; code?: string };
}

/** The channels of deploys: one command channel per thread and one reply channel (deployPlane() makes it; pass it in start()'s `shared`). */
export interface DeployPlane {
  /** Commands to each thread, indexed by threadId. */
  readonly commands: Channel<Command>[];
  /** Every thread's replies to the coordinator. */
  readonly replies: Channel<Reply>;
}

/** Makes the channels for `threads` threads. Call it once, before start(), and pass it in `shared`. */
export function deployPlane(threads: number): DeployPlane {
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw new RangeError(`threads must be an integer in 1..1024, got ${String(threads)}`);
  }
  return { commands: Array.from({ length: threads }, () => channel<Command>(64)), replies: channel<Reply>(4096) };
}

/** What one thread does with deploy commands. */
export interface DeployTarget {
  /** Builds everything the changes need without making it visible. Throw (or reject) to fail the deploy. */
  prepare(id: number, changes: Change[]): Promise<void>;
  /** Makes deploy `id`'s prepared state current. Should not fail. */
  commit(id: number): void | Promise<void>;
  /** Drops deploy `id`'s prepared state. */
  abort(id: number): void | Promise<void>;
  /** Answers a query (stats, for instance) with cloneable data. */
  query?(query: unknown): unknown;
}

function errorInfo(e: unknown): { message: string; code?: string } {
  const err = e as { message?: unknown; code?: unknown };
  return {
    message: typeof err?.message === 'string' ? err.message : String(e),
    ...(typeof err?.code === 'string' ? { code: err.code } : {}),
  };
}

/**
 * Serves this thread's deploy commands until `signal` aborts or the plane is closed. Run it in a task
 * (spawn) on every thread.
 */
export async function serveDeploys(plane: DeployPlane, threadId: number, target: DeployTarget, signal?: AbortSignal): Promise<void> {
  const commands = plane.commands[threadId];
  if (commands === undefined) throw new RangeError(`threadId ${threadId} has no command channel in this plane`);
  for (;;) {
    let cmd: Command | undefined;
    try {
      cmd = await commands.recv({ signal });
    } catch (e) {
      if (signal?.aborted) return;
      throw e;
    }
    if (cmd === undefined) return; // closed
    const t0 = performance.now();
    const reply: Reply = { id: cmd.id, threadId, ok: true, ms: 0 };
    try {
      if (cmd.kind === 'prepare') await target.prepare(cmd.id, cmd.changes);
      else if (cmd.kind === 'commit') await target.commit(cmd.id);
      else if (cmd.kind === 'abort') await target.abort(cmd.id);
      else reply.value = target.query ? await target.query(cmd.query) : undefined;
    } catch (e) {
      reply.ok = false;
      reply.error = errorInfo(e);
    }
    reply.ms = performance.now() - t0;
    try {
      await plane.replies.send(reply);
    } catch {
      return; // the plane is closed: the coordinator is gone
    }
  }
}

/** One thread's part of a DeployReport. */
export interface ThreadReport {
  /** The thread. */
  threadId: number;
  /** Whether this thread's prepare succeeded (false also when it did not answer in time). */
  prepared: boolean;
  /** What happened to the deploy on this thread in the end. */
  outcome: 'committed' | 'aborted';
  /** Why prepare (or commit) failed here. */
  error?: string;
  /** The failure's code, when it had one. */
  code?: string;
  /** Prepare time on this thread, in ms. */
  prepareMs?: number;
}

/** What Deployer.deploy() resolves with: the outcome on every thread. */
export interface DeployReport {
  /** The deploy's id (1, 2, ... per Deployer). */
  id: number;
  /** True when every thread prepared and the deploy was committed everywhere; false: aborted everywhere. */
  ok: boolean;
  /** Per thread, in threadId order. */
  threads: ThreadReport[];
  /** The first failure, with its thread, when !ok. */
  error?: string;
}

/** Options of Deployer.deploy() and query(). */
export interface DeployOptions {
  /** How long each phase may wait for every thread's answer (ms, default 10000). A thread that does not answer fails the prepare. */
  timeout?: number;
}

/** Runs deploys and queries over a plane, one at a time. */
export class Deployer {
  readonly #plane: DeployPlane;
  #nextId = 1;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(plane: DeployPlane) {
    this.#plane = plane;
  }

  /** How many threads the plane serves. */
  get threads(): number {
    return this.#plane.commands.length;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #round(cmd: Command, timeoutMs: number): Promise<(Reply | undefined)[]> {
    const n = this.#plane.commands.length;
    for (const ch of this.#plane.commands) await ch.send(cmd);
    const got: (Reply | undefined)[] = new Array(n).fill(undefined);
    let left = n;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      while (left > 0) {
        const r = await this.#plane.replies.recv({ signal });
        if (r === undefined) throw ringioError('ERR_RINGIO_CLOSED', 'the deploy plane is closed');
        if (r.id !== cmd.id) continue; // a late answer to an earlier round
        if (got[r.threadId] === undefined) left--;
        got[r.threadId] = r;
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    }
    return got;
  }

  /** Deploys `changes` on every thread in two phases. Resolves a report; never leaves threads split. */
  deploy(changes: Change[], opts: DeployOptions = {}): Promise<DeployReport> {
    if (!Array.isArray(changes)) return Promise.reject(new TypeError('changes must be an array'));
    for (const [i, c] of changes.entries()) {
      if (c === null || typeof c !== 'object' || typeof c.key !== 'string') return Promise.reject(new TypeError(`changes[${i}].key must be a string`));
      try {
        if (c.spec !== null) checkFactorySpec(c.spec, `changes[${i}].spec`);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const timeoutMs = opts.timeout ?? 10000;
    return this.#serial(async () => {
      const id = this.#nextId++;
      const prepared = await this.#round({ id, kind: 'prepare', changes }, timeoutMs);
      const ok = prepared.every((r) => r?.ok === true);
      const finish = await this.#round(ok ? { id, kind: 'commit' } : { id, kind: 'abort' }, timeoutMs);
      const threads: ThreadReport[] = prepared.map((r, threadId) => {
        const rep: ThreadReport = { threadId, prepared: r?.ok === true, outcome: ok ? 'committed' : 'aborted' };
        if (r === undefined) rep.error = `no answer to prepare within ${timeoutMs} ms`;
        else {
          rep.prepareMs = r.ms;
          if (!r.ok) {
            rep.error = r.error?.message;
            if (r.error?.code !== undefined) rep.code = r.error.code;
          }
        }
        const f = finish[threadId];
        if (f !== undefined && !f.ok && rep.error === undefined) {
          rep.error = `${ok ? 'commit' : 'abort'} failed: ${f.error?.message}`;
          if (f.error?.code !== undefined) rep.code = f.error.code;
        }
        return rep;
      });
      const report: DeployReport = { id, ok, threads };
      const bad = threads.find((t) => t.error !== undefined && !t.prepared);
      if (!ok && bad) report.error = `thread ${bad.threadId}: ${bad.error}`;
      return report;
    });
  }

  /** Asks every thread's target.query(query); resolves the answers in threadId order (undefined for a thread that failed or was late). */
  query(query: unknown, opts: DeployOptions = {}): Promise<unknown[]> {
    const timeoutMs = opts.timeout ?? 10000;
    return this.#serial(async () => {
      const id = this.#nextId++;
      const got = await this.#round({ id, kind: 'query', query }, timeoutMs);
      return got.map((r) => (r?.ok ? r.value : undefined));
    });
  }
}

/** Thrown by deployOrThrow when a deploy failed. */
export function deployError(report: DeployReport): Error {
  return ringioError('ERR_RINGIO_DEPLOY', `deploy ${report.id} failed (${report.error ?? 'unknown'}); the old chain is kept on every thread`, { report });
}

interface Pending {
  key: string;
  remove: boolean;
  service: unknown;
  data: unknown;
}

/** ChainRegistry's callbacks around prepare, commit and abort (the proxy opens and closes listeners in them). */
export interface ChainRegistryHooks {
  /** After a commit switched `key` (service undefined: removed). */
  onCommit?(key: string, service: unknown, old: unknown, data: unknown): void | Promise<void>;
  /** For each prepared change that was aborted (dispose what prepare made). */
  onAbort?(key: string, service: unknown, data: unknown): void | Promise<void>;
  /** Before a change is made (after the factory is built): throw to fail the prepare. */
  onPrepare?(key: string, data: unknown, remove: boolean): void | Promise<void>;
}

/**
 * A DeployTarget that keeps one Slot per key: prepare builds each change's factory from its spec and
 * makes the new service from the slot's current one (make(old)); commit switches the slots; abort drops
 * the prepared services.
 */
export class ChainRegistry implements DeployTarget {
  /** The slots by key: each holds the current chain of its key. */
  readonly slots = new Map<string, Slot<unknown>>();
  readonly #pending = new Map<number, Pending[]>();
  readonly #hooks: ChainRegistryHooks;

  constructor(hooks: ChainRegistryHooks = {}) {
    this.#hooks = hooks;
  }

  /** The slot for key (made empty on first use). */
  slot<S>(key: string): Slot<S> {
    let s = this.slots.get(key);
    if (s === undefined) this.slots.set(key, (s = new Slot()));
    return s as Slot<S>;
  }

  async prepare(id: number, changes: Change[]): Promise<void> {
    const done: Pending[] = [];
    try {
      for (const c of changes) {
        await this.#hooks.onPrepare?.(c.key, c.data, c.spec === null);
        if (c.spec === null) {
          done.push({ key: c.key, remove: true, service: undefined, data: c.data });
          continue;
        }
        const factory: Factory<unknown> = await buildFactory(c.spec);
        const service = await factory.make(this.slots.get(c.key)?.peek());
        done.push({ key: c.key, remove: false, service, data: c.data });
      }
    } catch (e) {
      for (const p of done) await this.#hooks.onAbort?.(p.key, p.service, p.data);
      throw e;
    }
    this.#pending.set(id, done);
  }

  async commit(id: number): Promise<void> {
    const list = this.#pending.get(id) ?? [];
    this.#pending.delete(id);
    for (const p of list) {
      const slot = this.slot(p.key);
      const old = p.remove ? slot.clear() : slot.set(p.service);
      if (p.remove) this.slots.delete(p.key);
      await this.#hooks.onCommit?.(p.key, p.remove ? undefined : p.service, old, p.data);
    }
  }

  async abort(id: number): Promise<void> {
    const list = this.#pending.get(id) ?? [];
    this.#pending.delete(id);
    for (const p of list) await this.#hooks.onAbort?.(p.key, p.service, p.data);
  }
}
