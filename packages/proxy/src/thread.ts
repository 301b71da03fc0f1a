/**
 * What every proxy thread runs: a deploy agent (serveDeploys) over a ProxyThread, which keeps one slot
 * per server (ChainRegistry) and one accept loop per server on its own dup of the server's listening
 * socket. Each accepted connection takes the chain that is current at that moment and keeps it.
 */
import { closeSync, LiveList, sleep, sys, type RuntimeContext } from '@ringio/runtime';
import { TcpStream, UnixStream } from '@ringio/net';
import { ChainRegistry, Counters, findOld, serveDeploys, StatsService, type Change, type DeployPlane, type DeployTarget, type Service } from '@ringio/service';
import { AcceptLoop } from './accept.js';
import { findHttpProxy } from './http-proxy.js';
import { Conn, setConnectionCells, TcpProxy, type ConnResult } from './tcp-proxy.js';
import { log, setLogFormat } from './log.js';
import type { ServerConfig } from './config.js';

/** What a server change carries besides its factory spec. */
export interface ServerData {
  /** The server's config. */
  conf: ServerConfig;
  /** The listening socket's fd in this process (owned by thread 0; each thread dups it). */
  fd: number;
  /** The listening socket's identity (listenKey): a change with the same lkey keeps the socket. */
  lkey: string;
}

/**
 * Fault injection for tests: RINGIO_PROXY_FAULT=prepare:THREAD:SERVER makes thread THREAD fail the
 * prepare of any deploy that changes servers.SERVER (the two-phase abort path, end to end).
 */
const FAULT = ((): { thread: number; server: string } | undefined => {
  const m = /^prepare:(\d+):(.+)$/.exec(process.env.RINGIO_PROXY_FAULT ?? '');
  return m ? { thread: Number(m[1]), server: m[2]! } : undefined;
})();

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;

interface Accepting {
  lkey: string;
  loop: AcceptLoop;
}

/** One server's figures on one thread (the metrics page sums them). */
export interface ServerStats {
  /** The server's name. */
  server: string;
  /** Its chain's call counters (calls, running, errors), when the chain has the stats layer. */
  counters: ReturnType<Counters['snapshot']> | undefined;
  /** Bytes relayed client → upstream. */
  bytesUp: number;
  /** Bytes relayed upstream → client. */
  bytesDown: number;
  /** Connect attempts to an upstream that failed. */
  connectFailures: number;
  /** Per upstream: open connections, connects, failures, and whether it is in rotation. */
  upstreams: { addr: string; active: number; connects: number; failures: number; up: boolean }[];
}

/** One thread's part of the proxy: its deploy target (servers' chains and accept loops, changed by two-phase deploys), its live connections and its stats. */
export class ProxyThread implements DeployTarget {
  /** The servers' chains on this thread, by server name. */
  readonly registry = new ChainRegistry();
  /** The accept loop of each server on this thread, by server name. */
  readonly accepting = new Map<string, Accepting>();
  /** Connections open on this thread now (a LiveList, not a Set: closed ones must die young). */
  readonly live = new LiveList<Conn>();
  readonly #pendingFds = new Map<number, { name: string; lkey: string; fd: number; kind: 'tcp' | 'unix' }[]>();
  readonly #removed = new Map<number, string[]>();
  /** Per deploy: the keys it changes (to retire the HTTP servers of the chains it replaces). */
  readonly #keys = new Map<number, string[]>();
  #sweeping = false;
  #stopped = false;
  /** Connections this thread accepted, in total. */
  accepted = 0;

  /** Made by proxyThread() on each thread; `threadId` is the runtime's. */
  constructor(
    /** This thread's id (0..threads − 1). */
    readonly threadId: number,
  ) {}

  async prepare(id: number, changes: Change[]): Promise<void> {
    const fds: { name: string; lkey: string; fd: number; kind: 'tcp' | 'unix' }[] = [];
    try {
      for (const c of changes) {
        if (FAULT !== undefined && FAULT.thread === this.threadId && FAULT.server === c.key) {
          throw Object.assign(new Error(`injected prepare failure for servers.${c.key} (RINGIO_PROXY_FAULT)`), { code: 'EFAULTINJECTED' });
        }
        if (c.spec === null) continue;
        const d = c.data as ServerData;
        if (this.accepting.get(c.key)?.lkey === d.lkey) continue; // same socket: only the chain changes
        fds.push({ name: c.key, lkey: d.lkey, fd: sys.dup(d.fd), kind: d.conf.endpoint.kind });
      }
      await this.registry.prepare(id, changes);
    } catch (e) {
      for (const f of fds) closeSync(f.fd);
      throw e;
    }
    this.#pendingFds.set(id, fds);
    this.#removed.set(id, changes.filter((c) => c.spec === null).map((c) => c.key));
    this.#keys.set(id, changes.map((c) => c.key));
  }

  async commit(id: number): Promise<void> {
    const keys = this.#keys.get(id) ?? [];
    this.#keys.delete(id);
    const before = keys.map((k) => findHttpProxy(this.registry.slots.get(k)?.peek()));
    await this.registry.commit(id);
    keys.forEach((k, i) => {
      // An HTTP chain that was replaced: its server closes gently, then the pools the new chain did not take.
      const old = before[i];
      const now = findHttpProxy(this.registry.slots.get(k)?.peek());
      if (old !== undefined && old !== now) void old.retire(now);
    });
    const fds = this.#pendingFds.get(id) ?? [];
    const removed = this.#removed.get(id) ?? [];
    this.#pendingFds.delete(id);
    this.#removed.delete(id);
    const stops: Promise<void>[] = [];
    for (const name of removed) {
      const a = this.accepting.get(name);
      this.accepting.delete(name);
      if (a) stops.push(a.loop.stop()); // stops accepting; its connections drain on their own
    }
    for (const f of fds) {
      const old = this.accepting.get(f.name);
      if (old) stops.push(old.loop.stop());
      const slot = this.registry.slot<Service<Conn, ConnResult>>(f.name);
      const loop = new AcceptLoop(f.fd, (cfd) => this.#handle(cfd, f.kind, f.name, slot.peek()), `${f.name}@${f.lkey}`);
      this.accepting.set(f.name, { lkey: f.lkey, loop });
    }
    await Promise.all(stops);
  }

  abort(id: number): Promise<void> {
    for (const f of this.#pendingFds.get(id) ?? []) closeSync(f.fd);
    this.#pendingFds.delete(id);
    this.#removed.delete(id);
    this.#keys.delete(id);
    return this.registry.abort(id);
  }

  #handle(cfd: number, kind: 'tcp' | 'unix', name: string, svc: Service<Conn, ConnResult> | undefined): void {
    if (svc === undefined || this.#stopped) {
      closeSync(cfd);
      return;
    }
    let stream: TcpStream | UnixStream;
    try {
      if (kind === 'tcp') {
        sys.setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, 1);
        stream = TcpStream.fromFd(cfd);
      } else stream = UnixStream.fromFd(cfd);
    } catch {
      closeSync(cfd);
      return;
    }
    this.accepted++;
    const conn = new Conn(stream, kind, name);
    const node = this.live.add(conn);
    const done = (): void => {
      node.leave();
    };
    let p: PromiseLike<ConnResult> | ConnResult;
    try {
      p = svc.call(conn);
    } catch (e) {
      done();
      void stream.close();
      log('error', 'chain_failed', { server: name, error: (e as Error).message });
      return;
    }
    Promise.resolve(p).then(done, (e: unknown) => {
      done();
      void stream.close();
      log('error', 'chain_failed', { server: name, error: (e as Error)?.message ?? String(e) });
    });
    if (conn.idleTimeout > 0) this.#sweep();
  }

  /** Closes connections that saw no traffic for their idle_timeout. Runs while there are connections. */
  #sweep(): void {
    if (this.#sweeping) return;
    this.#sweeping = true;
    void (async () => {
      try {
        while (this.live.size > 0 && !this.#stopped) {
          await sleep(50);
          const now = Date.now();
          this.live.forEach((c) => {
            if (c.idleTimeout <= 0) return;
            if (c.ticks !== c.seenTicks) {
              c.seenTicks = c.ticks;
              c.seenAt = now;
            } else if (now - c.seenAt >= c.idleTimeout) c.kill('idle timeout');
          });
        }
      } catch {
        // the runtime is shutting down
      } finally {
        this.#sweeping = false;
      }
    })();
  }

  /** Each server's figures on this thread. */
  stats(): ServerStats[] {
    const out: ServerStats[] = [];
    for (const [name, slot] of this.registry.slots) {
      const svc = slot.peek();
      const st = findOld(svc, (s): s is StatsService<Conn, ConnResult> => s instanceof StatsService);
      const tp = findOld(svc, (s): s is TcpProxy => s instanceof TcpProxy);
      const now = Date.now();
      out.push({
        server: name,
        counters: st?.counters.snapshot(),
        bytesUp: tp?.bytes.up ?? 0,
        bytesDown: tp?.bytes.down ?? 0,
        connectFailures: tp?.bytes.connectFailures ?? 0,
        upstreams: (tp?.balancer.upstreams ?? []).map((u) => ({ addr: u.addr, active: u.active, connects: u.connects, failures: u.failures, up: u.isUp(now) })),
      });
    }
    return out;
  }

  /** Stops accepting everywhere, waits up to `ms` for the connections to end, then closes the rest. */
  async drain(ms: number): Promise<{ left: number; accepted: number }> {
    await Promise.all([...this.accepting.values()].map((a) => a.loop.stop()));
    this.accepting.clear();
    // HTTP servers: close idle keep-alive connections now; busy ones end after their current response.
    for (const slot of this.registry.slots.values()) void findHttpProxy(slot.peek())?.drain();
    const until = Date.now() + ms;
    while (this.live.size > 0 && Date.now() < until) await sleep(20);
    const left = this.live.size;
    for (const c of this.live.values()) c.kill('drain timeout');
    while (this.live.size > 0) await sleep(5);
    this.#stopped = true;
    return { left, accepted: this.accepted };
  }

  query(q: unknown): unknown {
    const op = (q as { op?: string })?.op;
    if (op === 'stats') return { threadId: this.threadId, live: this.live.size, accepted: this.accepted, servers: this.stats() };
    if (op === 'drain') return this.drain((q as { ms: number }).ms);
    throw new TypeError(`unknown query ${JSON.stringify(q)}`);
  }
}

/** What every proxy thread gets as ctx.shared from the coordinator. */
export interface ProxyShared {
  /** The channels deploys and queries travel on. */
  plane: DeployPlane;
  /** One Int32 per server over a SharedArrayBuffer: max_connections counted over every thread. */
  limits?: Int32Array;
  /** The log line format: 'text' or 'json'. */
  logFormat: 'text' | 'json';
  /** Only on thread 0: the coordinator's boot data (not cloned: thread 0 gets the object itself). */
  boot?: unknown;
}
