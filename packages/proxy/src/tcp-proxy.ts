/**
 * The L4 TCP proxy service. Its request is an accepted connection (Conn); call(conn) connects an upstream
 * chosen by the balancer (trying the next on a failure), writes a PROXY protocol header if asked, then
 * relays both ways until both directions have ended: an end of stream on one side becomes a shutdown
 * (SHUT_WR) of the other, so half-close passes through. Each direction copies through two pooled
 * buffers; with splice = "auto" on epoll, a direction that fills a buffer (a bulk transfer) switches to
 * splice(2) through a pooled pipe, so the bytes stay in the kernel. On io_uring "auto" keeps copying: a
 * splice from a non-blocking socket that has nothing yet fails with EAGAIN and needs a poll op and a
 * retry, which cost more CPU than the copy saves (docs/benchmarks.md); splice = "always" forces it.
 */
import { closeSync, driverName, pipe, ringioError, timeout } from '@ringio/runtime';
import { spliceOnce, TcpStream, UnixStream, type SocketAddr, type SocketStream } from '@ringio/net';
import {
  catchErrorsFactory,
  accessLogFactory,
  concurrencyLimitFactory,
  findOld,
  SharedPermits,
  stackFactory,
  statsFactory,
  type Factory,
  type FactoryLayer,
  type Service,
} from '@ringio/service';
import { Balancer, type Upstream } from './balance.js';
import type { ServerConfig } from './config.js';
import { log } from './log.js';
import { proxyV1, proxyV2, type PeerInfo } from './proxy-protocol.js';

/** One accepted connection, as the chain sees it. The thread's accept loop makes it. */
export class Conn {
  /** Bumped on every relayed chunk: the idle sweeper compares it between sweeps. */
  ticks = 0;
  /** Set by the service: ms without traffic before the connection is closed (0: never). */
  idleTimeout = 0;
  /** The sweeper's bookkeeping. */
  seenTicks = -1;
  /** The sweeper's bookkeeping: when `ticks` last changed (ms). */
  seenAt = 0;
  /** Aborted to end the connection (idle timeout, forced drain): cancels the splice ops, which no socket tracks. */
  readonly ctl = new AbortController();
  /** The upstream once connected: kill() closes it too, which cancels the relay's ops on it. */
  upstream: SocketStream | undefined;

  constructor(
    /** The accepted client socket. */
    readonly stream: SocketStream,
    /** Whether it came through a TCP or a Unix listener. */
    readonly kind: 'tcp' | 'unix',
    /** The name of the server that accepted it. */
    readonly server: string,
    /** When it was accepted (Date.now()). */
    readonly start = Date.now(),
  ) {}

  /**
   * Ends the connection now (idle timeout, forced drain, a failed direction): closing both sockets
   * cancels the relay's reads and writes (ops carry no signal: an abort listener per op would cost on
   * every message), and the abort cancels splices.
   */
  kill(reason: unknown): void {
    if (!this.ctl.signal.aborted) this.ctl.abort(typeof reason === 'string' ? ringioError('ERR_RINGIO_CLOSED', reason) : reason);
    void this.stream.close();
    void this.upstream?.close();
  }
}

/** What TcpProxy's call() resolves with when a connection ends: whether it went well, where it went, the bytes relayed. */
export interface ConnResult {
  /** True when the connection was relayed to its end; false when it failed (see error and code). */
  ok: boolean;
  /** The upstream's addr, once connected. */
  upstream?: string;
  /** client → upstream */
  bytesUp: number;
  /** upstream → client */
  bytesDown: number;
  /** The failure's message, when not ok. */
  error?: string;
  /** The failure's code (ERR_RINGIO_NO_UPSTREAM, ECONNRESET, ...), when it had one. */
  code?: string;
}

/** Byte counters of one server on one thread; carried over reloads. */
export class ByteCounters {
  /** Bytes relayed client → upstream. */
  up = 0;
  /** Bytes relayed upstream → client. */
  down = 0;
  /** Connect attempts to an upstream that failed. */
  connectFailures = 0;
}

// Pools (per thread: module state is per thread): relay buffers by size, and empty pipes for splice.
const buffers = new Map<number, Buffer[]>();
const pipes: [number, number][] = [];
const MAX_POOLED = 1024;
/** Idle pipes kept per thread (each holds two fds). */
const MAX_PIPES = 32;

function takeBuffer(size: number): Buffer {
  return buffers.get(size)?.pop() ?? Buffer.allocUnsafe(size);
}

function giveBuffer(b: Buffer): void {
  let list = buffers.get(b.length);
  if (list === undefined) buffers.set(b.length, (list = []));
  // At most about 32 MiB of idle buffers of each size per thread.
  if (list.length < Math.min(MAX_POOLED, Math.max(8, (32 << 20) / b.length))) list.push(b);
}

let spliceBroken = false;
/** Bytes per splice: the default pipe capacity (64 KiB), whatever buffer_size is. */
const SPLICE_CHUNK = 65536;
/** Relay buffers once a direction turns out to be a bulk transfer (splice = "auto" on io_uring). */
const BULK_BUFFER = 262144;

/**
 * Relays from → to until from ends. Two pooled buffers: the next read runs while the previous chunk is
 * being written (a write that waits for a slow reader does not stop reading), and writes stay in order
 * (each one starts after the previous one finished).
 */
async function relay(from: SocketStream, to: SocketStream, conn: Conn, size: number, splice: ServerConfig['splice'], count: (n: number) => void): Promise<void> {
  const signal = conn.ctl.signal;
  let buf = takeBuffer(size);
  let spare = takeBuffer(size);
  let bulk = splice === 'always';
  const wopts = { length: 0 }; // read by writeAll synchronously: one object per direction, not per chunk
  let writing: Promise<[number, Buffer]> | undefined;
  try {
    while (!bulk) {
      const [n, b] = await from.read(buf);
      buf = b;
      if (n === 0) return;
      conn.ticks++;
      if (writing !== undefined) spare = (await writing)[1];
      wopts.length = n;
      writing = to.writeAll(buf, wopts);
      count(n);
      [buf, spare] = [spare, buf];
      if (n === buf.length && splice === 'auto') {
        if (!spliceBroken && driverName() === 'epoll') bulk = true;
        else if (buf.length < BULK_BUFFER) {
          // A bulk transfer on io_uring: bigger buffers, so fewer ops per byte (the pair goes back to
          // its pool; both buffers are idle once the write in flight is done).
          spare = (await writing!)[1];
          writing = undefined;
          giveBuffer(buf);
          giveBuffer(spare);
          buf = takeBuffer(BULK_BUFFER);
          spare = takeBuffer(BULK_BUFFER);
        }
      }
    }
    if (writing !== undefined) {
      spare = (await writing)[1];
      writing = undefined;
    }
  } finally {
    if (writing !== undefined) {
      // Leaving early (a failed read, or end of stream): the last write must finish (or fail) first.
      const w = writing;
      writing = undefined;
      try {
        spare = (await w)[1];
      } finally {
        giveBuffer(buf);
        giveBuffer(spare);
      }
    } else {
      giveBuffer(buf);
      giveBuffer(spare);
    }
  }
  // Bulk: splice through a pipe; the bytes never enter JS.
  const p = pipes.pop() ?? pipe();
  let clean = false;
  try {
    for (;;) {
      let n: number;
      try {
        n = await spliceOnce(from.fd, p[1], SPLICE_CHUNK, { fd: from.fd, direction: "readable" }, signal);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EINVAL' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
          // No splice for these fds here: copy through a buffer from now on.
          spliceBroken = true;
          clean = true;
          await relay(from, to, conn, size, 'never', count);
          return;
        }
        throw e;
      }
      if (n === 0) {
        clean = true;
        return;
      }
      conn.ticks++;
      let left = n;
      while (left > 0) left -= await spliceOnce(p[0], to.fd, left, { fd: to.fd, direction: 'writable' }, signal);
      count(n);
    }
  } finally {
    if (clean && pipes.length < MAX_PIPES) pipes.push(p);
    else {
      closeSync(p[0]);
      closeSync(p[1]);
    }
  }
}

function peerInfo(conn: Conn): PeerInfo {
  try {
    if (conn.kind === 'tcp') {
      const s = conn.stream as TcpStream;
      return { kind: 'tcp', src: s.peerAddr as SocketAddr, dst: s.localAddr as SocketAddr };
    }
    const s = conn.stream as UnixStream;
    return { kind: 'unix', src: s.peerAddr, dst: s.localAddr };
  } catch {
    return { kind: 'unknown' };
  }
}

/** The innermost service of a server's chain: connects to an upstream (balanced, with retries and backoff) and relays bytes both ways until both sides end. */
export class TcpProxy implements Service<Conn, ConnResult> {
  /** The server's config. */
  readonly conf: ServerConfig;
  /** This thread's balancer (its state carries over reloads). */
  readonly balancer: Balancer;
  /** This server's byte counters on this thread (carried over reloads). */
  readonly bytes: ByteCounters;

  constructor(conf: ServerConfig, old?: TcpProxy) {
    this.conf = conf;
    this.balancer = new Balancer(conf.upstreams, conf.balance, conf.backoffMin, conf.backoffMax, old?.balancer);
    this.bytes = old?.bytes ?? new ByteCounters();
  }

  async #connect(conn: Conn): Promise<[SocketStream, Upstream]> {
    const conf = this.conf;
    const order = this.balancer.order(Date.now());
    const tried: string[] = [];
    const attempts = Math.min(conf.connectAttempts, order.length);
    for (let i = 0; i < attempts; i++) {
      const u = order[i]!;
      try {
        const ep = u.endpoint;
        const s = await timeout<SocketStream>(
          (signal: AbortSignal) =>
            ep.kind === 'unix' ? UnixStream.connect(ep.path, { signal }) : TcpStream.connect({ host: ep.host, port: ep.port }, { signal }),
          conf.connectTimeout,
        );
        if (conn.ctl.signal.aborted) {
          await s.close();
          throw conn.ctl.signal.reason;
        }
        if (this.balancer.succeeded(u, Date.now())) log('info', 'upstream_up', { server: conf.name, upstream: u.addr });
        return [s, u];
      } catch (e) {
        if (conn.ctl.signal.aborted) throw e;
        this.bytes.connectFailures++;
        const code = (e as { code?: string }).code ?? 'ERROR';
        tried.push(`${u.addr}: ${code}`);
        if (this.balancer.failed(u, Date.now())) log('warn', 'upstream_down', { server: conf.name, upstream: u.addr, error: code, streak: u.streak });
      }
    }
    throw ringioError('ERR_RINGIO_NO_UPSTREAM', `no upstream of server ${conf.name} could be connected (${tried.join(', ')})`);
  }

  /** Proxies one connection to its end; rejects ERR_RINGIO_NO_UPSTREAM when no upstream could be connected. Both sockets are closed when it settles. */
  async call(conn: Conn): Promise<ConnResult> {
    const conf = this.conf;
    conn.idleTimeout = conf.idleTimeout;
    const client = conn.stream;
    let upstream: SocketStream | undefined;
    let u: Upstream | undefined;
    const result: ConnResult = { ok: true, bytesUp: 0, bytesDown: 0 };
    try {
      [upstream, u] = await this.#connect(conn);
      conn.upstream = upstream;
      u.active++;
      if (conn.ctl.signal.aborted) throw conn.ctl.signal.reason;
      result.upstream = u.addr;
      if (conf.proxyProtocol !== 'off') {
        const head = conf.proxyProtocol === 'v1' ? proxyV1(peerInfo(conn)) : proxyV2(peerInfo(conn));
        await upstream.writeAll(head);
      }
      const bytes = this.bytes;
      const up = upstream;
      const one = async (from: SocketStream, to: SocketStream, upward: boolean): Promise<void> => {
        await relay(from, to, conn, conf.bufferSize, conf.splice, upward ? (n) => ((result.bytesUp += n), (bytes.up += n)) : (n) => ((result.bytesDown += n), (bytes.down += n)));
        await to.shutdown().catch(() => {}); // half-close passes through
      };
      const a = one(client, up, true);
      const b = one(up, client, false);
      try {
        await Promise.all([a, b]);
      } catch (e) {
        // One direction failed (a reset, an idle timeout): stop the other by closing both sockets.
        conn.kill(e);
        await Promise.allSettled([a, b]);
        throw e;
      }
      return result;
    } finally {
      if (u !== undefined) u.active--;
      await Promise.all([client.close(), upstream?.close()]);
    }
  }
}

function isTcpProxy(s: unknown): s is TcpProxy {
  return s instanceof TcpProxy;
}

/** The innermost factory: a TcpProxy that keeps the old one's balancer state and byte counters. */
export function tcpProxyFactory(conf: ServerConfig): Factory<TcpProxy> {
  return { make: (old?: unknown) => new TcpProxy(conf, findOld(old, isTcpProxy)) };
}

function errorResult(err: unknown, conn: Conn): ConnResult {
  void conn.stream.close();
  const e = err as { message?: string; code?: string };
  return { ok: false, bytesUp: 0, bytesDown: 0, error: e?.message ?? String(err), ...(e?.code !== undefined ? { code: e.code } : {}) };
}

function accessLine(server: string) {
  return (e: { req: Conn; res: ConnResult | undefined; error: unknown; ms: number; start: number }): string => {
    const r = e.res;
    const err = e.error as { code?: string; message?: string } | undefined;
    const fields = {
      server,
      ms: Math.round(e.ms),
      upstream: r?.upstream,
      up: r?.bytesUp ?? 0,
      down: r?.bytesDown ?? 0,
      ...(err ? { error: err.code ?? err.message } : {}),
    };
    let peer = '';
    try {
      peer = e.req.kind === 'tcp' ? `${(e.req.stream as TcpStream).peerAddr.address}:${(e.req.stream as TcpStream).peerAddr.port}` : 'unix';
    } catch {
      peer = '-';
    }
    return JSON.stringify({ time: new Date(e.start).toISOString(), level: 'info', event: 'access', peer, ...fields });
  };
}

/** One Int32 per server (by `limitIndex`), shared by every thread: the process-wide max_connections counts. */
let connectionCells: Int32Array | undefined;

/** Called once per thread at start, with the cells from start()'s `shared`. */
export function setConnectionCells(cells: Int32Array | undefined): void {
  connectionCells = cells;
}

/** A server's factory args: its config, plus the cell its connection limit counts in. */
export type ServerArgs = ServerConfig & { limitIndex?: number };

/**
 * A whole server's chain, innermost first: TcpProxy → ConcurrencyLimit (max_connections, when set, counted
 * over every thread) →
 * StatsService → AccessLog (when access_log) → CatchErrors (a failed connection is closed and counted,
 * never thrown). This is the export that every thread loads by name: { module, export: 'tcpServerFactory' }.
 */
export function tcpServerFactory(args: unknown): Factory<Service<Conn, ConnResult>> {
  const conf = args as ServerArgs;
  return stackFactory(tcpProxyFactory(conf), ...connectionLayers(conf));
}

/**
 * The layers every server's chain has around its innermost service (TCP or HTTP), innermost first:
 * ConcurrencyLimit (max_connections, when set) → StatsService → AccessLog (when access_log) → CatchErrors.
 */
export function connectionLayers(conf: ServerArgs): FactoryLayer<any, any>[] {
  const layers: FactoryLayer<any, any>[] = [];
  if (conf.maxConnections > 0) {
    // Process-wide when the cells are there (ringio-proxy); per thread otherwise (embedders, tests).
    const shared = connectionCells !== undefined && conf.limitIndex !== undefined ? new SharedPermits(connectionCells, conf.limitIndex) : undefined;
    layers.push(concurrencyLimitFactory<Conn, ConnResult>(conf.maxConnections, shared));
  }
  layers.push(statsFactory<Conn, ConnResult>());
  layers.push(accessLogFactory<Conn, ConnResult>({ enabled: conf.accessLog, format: accessLine(conf.name) }));
  layers.push(catchErrorsFactory<Conn, ConnResult>(errorResult));
  return layers;
}
