/**
 * The L7 HTTP reverse proxy service (protocol = "http"). Its request is an accepted connection (Conn),
 * served by an @ringio/http server without a listener (connectionServer); each request is routed by
 * host and path prefix (a table precomputed per deploy, longest prefix first), sent to an upstream
 * chosen by the route's balancer through a per-thread keep-alive pool (HttpClient), and its response
 * relayed back. Bodies stream both ways one piece at a time: a piece is written (and awaited) before
 * the next is read, so TCP flow control reaches from one end to the other and nothing is buffered whole.
 * Hop-by-hop fields (RFC 9110 §7.6.1) are removed both ways; Forwarded and X-Forwarded-* are added.
 *
 * A reload builds a new HttpProxy from the old one (make(old)): a route whose upstream set is unchanged
 * keeps its pool and its balancer state (Monolake's transfer_pool). After the commit the old server is
 * closed gracefully (idle keep-alive connections now, busy ones after their current response), then the
 * pools the new chain did not take are closed.
 */
import { createHash } from 'node:crypto';
import { connectionServer, HttpClient, type HttpServer, type ServerRequest, type ServerResponse } from '@ringio/http';
import type { ByteStream, TcpStream } from '@ringio/net';
import { findOld, stackFactory, type Factory, type Service } from '@ringio/service';
import { Balancer, type Upstream } from './balance.js';
import type { HttpUpstreamConfig, RouteConfig, ServerConfig } from './config.js';
import { log } from './log.js';
import { connectionLayers, type Conn, type ConnResult, type ServerArgs } from './tcp-proxy.js';

/** RFC 9110 §7.6.1 hop-by-hop fields (lower case), plus Expect (the proxy answers 100-continue itself). */
const HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection',
  'proxy-authenticate', 'proxy-authorization',
]);
const REQUEST_ONLY = new Set(['expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

const TEXT = Object.freeze({ 'content-type': 'text/plain' });

/** Upstream connect errors that prove the request was not sent: the next upstream may be tried. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
/** Errors answered with 502 Bad Gateway (anything else from the upstream side too, except timeouts). */
const TIMEOUT = 'ERR_RINGIO_TIMEOUT';

/** One upstream set's keep-alive pool and balancer; shared by the routes with the same set. */
export class UpstreamPool {
  /** The keep-alive client the pool's requests go through. */
  readonly client: HttpClient;
  /** Picks the upstream of each request (its state carries over reloads). */
  balancer: Balancer;
  /** Requests sent, failed to connect, answered 502/504 by the proxy */
  requests = 0;

  /** With `prev` (the same upstream set in the chain being replaced): its connections and balancer state. */
  constructor(upstreams: HttpUpstreamConfig[], conf: ServerConfig, balance: RouteConfig['balance'], prev?: UpstreamPool) {
    this.client =
      prev?.client ??
      new HttpClient({
        // https:// upstreams: each origin's CA, verification and SNI name from its config.
        tls: (origin) => upstreamTls(upstreams, origin),
        maxConnections: 1024,
        keepAliveTimeout: conf.upstreamKeepalive,
        connectTimeout: conf.connectTimeout,
        headersTimeout: conf.responseTimeout,
        bodyTimeout: conf.bodyTimeout,
      });
    this.balancer = new Balancer(upstreams, balance, conf.backoffMin, conf.backoffMax, prev?.balancer);
    this.requests = prev?.requests ?? 0;
  }
}

/** The TLS options of the https:// upstream at `origin` (its tls_ca, tls_verify, tls_servername). */
function upstreamTls(upstreams: HttpUpstreamConfig[], origin: URL): { ca?: string; rejectUnauthorized: boolean; servername?: string } {
  const t = upstreams.find((u) => u.url === origin.origin)?.tls;
  return { rejectUnauthorized: t?.verify !== false, ...(t?.ca ? { ca: t.ca } : {}), ...(t?.servername ? { servername: t.servername } : {}) };
}

/** A pool's identity: the set of upstream URLs (their order and weights do not matter for the connections) and their TLS settings. */
function poolKey(r: RouteConfig): string {
  return r.upstreams
    .map((u) => (u.tls === null ? u.url : `${u.url}#${u.tls.verify}#${u.tls.servername ?? ''}#${u.tls.ca === null ? '' : createHash('sha256').update(u.tls.ca).digest('hex')}`))
    .sort()
    .join(' ');
}

interface RouteEntry {
  path: string;
  host: string;
  /** undefined for a route with a static response */
  pool: UpstreamPool | undefined;
  urls: Map<Upstream, string>;
  conf: RouteConfig;
  /** The static response's body bytes and fields (made once per deploy). */
  fixed: { body: Buffer; headers: Readonly<Record<string, string>> } | undefined;
  /** Request fields the route drops or replaces (lower case); undefined when none. */
  dropRequest: Set<string> | undefined;
  dropResponse: Set<string> | undefined;
}

/** Host and path-prefix routing, precomputed per deploy: per host, its routes and the host-less ones, longest path first. */
export class Router {
  readonly #byHost = new Map<string, RouteEntry[]>();
  readonly #any: RouteEntry[];

  constructor(entries: RouteEntry[]) {
    const order = (a: RouteEntry, b: RouteEntry): number => b.path.length - a.path.length || (b.host === '' ? 0 : 1) - (a.host === '' ? 0 : 1);
    this.#any = entries.filter((e) => e.host === '').sort(order);
    for (const e of entries) {
      if (e.host === '' || this.#byHost.has(e.host)) continue;
      this.#byHost.set(e.host, entries.filter((x) => x.host === e.host || x.host === '').sort(order));
    }
  }

  /** The route of a request: the longest path prefix among the host's routes (else the host-less ones), or undefined. */
  match(host: string, path: string): RouteEntry | undefined {
    const list = this.#byHost.get(host) ?? this.#any;
    for (let i = 0; i < list.length; i++) if (path.startsWith(list[i]!.path)) return list[i];
    return undefined;
  }
}

/** The Host field's name part, lower case, without the port. */
function hostName(h: string | null): string {
  if (h === null) return '';
  let end = h.length;
  if (h.startsWith('[')) end = h.indexOf(']') + 1 || end;
  else {
    const c = h.lastIndexOf(':');
    if (c >= 0) end = c;
  }
  return h.slice(0, end).toLowerCase();
}

/** The field names a Connection field lists (lower case). */
function connectionTokens(v: string | null): Set<string> | undefined {
  if (v === null) return undefined;
  const s = new Set<string>();
  for (const t of v.split(',')) {
    const x = t.trim().toLowerCase();
    if (x !== '') s.add(x);
  }
  return s;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Copies bytes from → to until from ends, then shuts down to's write half (half-close passes through). */
async function pipeBytes(from: ByteStream, to: ByteStream): Promise<void> {
  let buf = Buffer.allocUnsafe(16384);
  const opts = { length: 0 };
  for (;;) {
    const [n, b] = await from.read(buf);
    buf = b;
    if (n === 0) {
      await to.shutdown().catch(() => {});
      return;
    }
    opts.length = n;
    [, buf] = await to.writeAll(buf, opts);
  }
}

function errorCode(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

/**
 * The HTTP server of one proxy server on one thread, shared by the chains of successive reloads while its
 * options stay the same: a keep-alive client connection outlives a reload, and its next request is routed
 * by the chain committed last (`current`), not by the one it was accepted on.
 */
class Front {
  #server: HttpServer | undefined;

  constructor(
    public current: HttpProxy,
    readonly options: string,
  ) {}

  /** Made at the first connection (a build that a deploy aborts starts nothing). */
  server(): HttpServer {
    if (this.#server === undefined) {
      const conf = this.current.conf;
      this.#server = connectionServer(
        {
          maxBodySize: conf.maxBodySize === 0 ? Infinity : conf.maxBodySize,
          bodyTimeout: conf.bodyTimeout,
          // TLS termination: the first certificate is the default, the others are chosen by SNI.
          ...(conf.tls !== null
            ? {
                tls: {
                  cert: conf.tls[0]!.cert,
                  key: conf.tls[0]!.key,
                  sni: conf.tls.map((c) => ({ cert: c.cert, key: c.key, ...(c.names !== null ? { names: c.names } : {}) })),
                },
                handshakeTimeout: conf.handshakeTimeout,
              }
            : {}),
          onError: (err: unknown) => log('warn', 'http_upstream_failed', { server: this.current.conf.name, error: errorCode(err) ?? (err as Error)?.message ?? String(err) }),
        },
        (req, res) => this.current.handle(req, res),
      );
    }
    return this.#server;
  }

  close(): Promise<void> {
    return this.#server?.close() ?? Promise.resolve();
  }
}

function frontOptions(conf: ServerConfig): string {
  // New certificates make a new server (its context); connections of the old one keep theirs.
  const tls = conf.tls === null ? '' : createHash('sha256').update(conf.tls.map((c) => `${c.cert}\0${c.key}\0${c.names?.join(',') ?? ''}`).join('\0')).digest('hex');
  return `${conf.maxBodySize} ${conf.bodyTimeout} ${tls} ${conf.handshakeTimeout}`;
}

/** The innermost service of an HTTP server's chain: serves the connection as HTTP/1.1 and forwards each request to its route's upstreams (or answers it). */
export class HttpProxy implements Service<Conn, ConnResult> {
  readonly #front: Front;
  /** Requests in progress on this chain (its pools stay open until they end). */
  #inflight = 0;
  #idle: (() => void) | undefined;
  /** This chain's routing table. */
  readonly router: Router;
  /** The upstream pools of this chain, one per upstream set. */
  readonly pools = new Map<string, UpstreamPool>();
  /** Counters of this server on this thread (carried over reloads). */
  readonly counts: { requests: number; noRoute: number; badGateway: number; gatewayTimeout: number; retired: number };
  #retired = false;

  constructor(
    /** The server's config. */
    readonly conf: ServerConfig,
    old?: HttpProxy,
  ) {
    this.counts = old?.counts ?? { requests: 0, noRoute: 0, badGateway: 0, gatewayTimeout: 0, retired: 0 };
    const entries: RouteEntry[] = [];
    for (const r of conf.routes) {
      const dropRequest = r.removeRequestHeaders.length + r.setRequestHeaders.length > 0 ? new Set([...r.removeRequestHeaders, ...r.setRequestHeaders.map(([n]) => n.toLowerCase())]) : undefined;
      const dropResponse = r.removeResponseHeaders.length + r.setResponseHeaders.length > 0 ? new Set([...r.removeResponseHeaders, ...r.setResponseHeaders.map(([n]) => n.toLowerCase())]) : undefined;
      if (r.response !== null) {
        const headers: Record<string, string> = { 'content-type': r.response.contentType };
        for (const [n, v] of r.setResponseHeaders) headers[n] = v;
        const fixed = { body: Buffer.from(r.response.body), headers: Object.freeze(headers) };
        entries.push({ path: r.path, host: r.host, pool: undefined, urls: new Map(), conf: r, fixed, dropRequest, dropResponse });
        continue;
      }
      const key = `${r.balance} ${poolKey(r)}`;
      let pool = this.pools.get(key);
      if (pool === undefined) {
        // Same upstream set as in the old chain: keep its connections and balancer state (weights may change).
        pool = new UpstreamPool(r.upstreams, conf, r.balance, old?.pools.get(key));
        this.pools.set(key, pool);
      }
      const urls = new Map<Upstream, string>();
      for (const u of pool.balancer.upstreams) urls.set(u, r.upstreams.find((x) => x.addr === u.addr)!.url);
      entries.push({ path: r.path, host: r.host, pool, urls, conf: r, fixed: undefined, dropRequest, dropResponse });
    }
    this.router = new Router(entries);
    // The old chain's server, while its options stay: it switches to this chain at the commit (retire()).
    const opts = frontOptions(conf);
    this.#front = old !== undefined && old.#front.options === opts ? old.#front : new Front(this, opts);
  }

  /** The HTTP server that serves this chain's connections. */
  get server(): HttpServer {
    return this.#front.server();
  }

  async call(conn: Conn): Promise<ConnResult> {
    let peer: TcpStream['peerAddr'] | string = '';
    if (conn.kind === 'tcp') {
      try {
        peer = (conn.stream as TcpStream).peerAddr;
      } catch {
        peer = '';
      }
    }
    // A connection accepted by this chain after a reload that made a new server (options changed).
    await this.#front.server().serveStream(conn.stream, peer);
    return { ok: true, bytesUp: 0, bytesDown: 0 };
  }

  /**
   * After a commit replaced this chain with `next`: a shared server switches its requests to `next`; a
   * server of its own closes gently (idle keep-alive connections now, busy ones after their response).
   * Once this chain's requests in progress have ended, the pools `next` did not take are closed.
   */
  async retire(next: HttpProxy | undefined): Promise<void> {
    if (this.#retired) return;
    this.#retired = true;
    if (next !== undefined && next.#front === this.#front) this.#front.current = next;
    else await this.#front.close();
    if (this.#inflight > 0) await new Promise<void>((r) => (this.#idle = r));
    const kept = new Set<HttpClient>();
    for (const p of next?.pools.values() ?? []) kept.add(p.client);
    for (const p of this.pools.values()) if (!kept.has(p.client)) await p.client.close().catch(() => {});
  }

  /** Stopping: idle keep-alive connections close now, busy ones after their response. */
  drain(): Promise<void> {
    return this.#front.close();
  }

  /** Proxies one request: routes it, forwards it upstream and streams the response back (502/504 when the upstream fails or is slow). */
  async handle(req: ServerRequest, res: ServerResponse): Promise<void> {
    this.#inflight++;
    try {
      await this.#proxy(req, res);
    } finally {
      if (--this.#inflight === 0 && this.#idle !== undefined) this.#idle();
    }
  }

  async #proxy(req: ServerRequest, res: ServerResponse): Promise<void> {
    this.counts.requests++;
    const hostField = req.headers.get('host');
    let target = req.url;
    if (!target.startsWith('/')) {
      // absolute-form (a client that talks to us as to a forward proxy) or '*': route on the path.
      if (/^http:\/\//i.test(target)) {
        const slash = target.indexOf('/', 7);
        target = slash < 0 ? '/' : target.slice(slash);
      } else {
        this.counts.noRoute++;
        return res.writeHead(404, TEXT).end('no route\n');
      }
    }
    // The path the upstream will see (URL parsing normalizes dot segments): route on that same path,
    // so a route's prefix cannot be escaped with "/api/../admin".
    const u = new URL(target, 'http://x');
    const route = this.router.match(hostName(hostField), u.pathname);
    if (route === undefined) {
      this.counts.noRoute++;
      return res.writeHead(404, TEXT).end('no route\n');
    }
    if (route.fixed !== undefined) {
      return res.writeHead(route.conf.response!.status, route.fixed.headers).end(route.fixed.body);
    }
    const headers = this.#requestHeaders(req, hostField, route);
    let upPath = u.pathname;
    if (route.conf.stripPrefix) {
      upPath = upPath.slice(route.path.length);
      if (!upPath.startsWith('/')) upPath = '/' + upPath;
    }
    const upTarget = upPath + u.search;
    const hasBody = req.body.length !== 0;
    const upgrade = hasBody ? null : req.headers.get('upgrade');
    if (upgrade !== null && connectionTokens(req.headers.get('connection'))?.has('upgrade')) {
      const proto = upgrade.split(',')[0]!.trim();
      if (TOKEN.test(proto)) return this.#upgrade(req, res, route, upTarget, proto, headers);
    }
    let bodyError: unknown;
    let bodyStarted = false;
    const body = hasBody
      ? (async function* pieces() {
          bodyStarted = true;
          for (;;) {
            let piece: Uint8Array | null;
            try {
              piece = await req.body.read();
            } catch (e) {
              bodyError = e;
              throw e;
            }
            if (piece === null) return;
            yield piece; // the client writes it (awaited) before asking for the next
          }
        })()
      : null;
    const pool = route.pool!;
    const order = pool.balancer.order(Date.now());
    const tries = Math.min(order.length, 3);
    let lastError: unknown;
    for (let i = 0; i < tries; i++) {
      const up = order[i]!;
      const url = route.urls.get(up)! + upTarget;
      up.active++;
      let ures;
      try {
        pool.requests++;
        ures = await pool.client.request(url, { method: req.method, headers, body });
      } catch (e) {
        up.active--;
        if (bodyError !== undefined) throw bodyError; // the client's body failed: the server answers it
        lastError = e;
        const code = errorCode(e);
        if (code !== undefined && NOT_SENT.has(code)) {
          if (pool.balancer.failed(up, Date.now())) log('warn', 'upstream_down', { server: this.conf.name, upstream: up.addr, error: code, streak: up.streak });
          if (!bodyStarted) continue;
        }
        break;
      }
      if (pool.balancer.succeeded(up, Date.now())) log('info', 'upstream_up', { server: this.conf.name, upstream: up.addr });
      try {
        await this.#relayResponse(req, ures, res, route);
      } finally {
        up.active--;
      }
      return;
    }
    return this.#gatewayError(res, lastError);
  }

  /**
   * Upgrade pass-through (WebSocket and the like): the request goes upstream with its Upgrade; a 101
   * takes both connections out of HTTP and the proxy relays bytes both ways until both ends have closed
   * (an end of stream on one side shuts down the other's write half). Any other answer is relayed as an
   * ordinary response.
   */
  async #upgrade(req: ServerRequest, res: ServerResponse, route: RouteEntry, target: string, proto: string, headers: [string, string][]): Promise<void> {
    const pool = route.pool!;
    const order = pool.balancer.order(Date.now());
    let ures: Awaited<ReturnType<HttpClient['request']>> | undefined;
    let lastError: unknown;
    for (let i = 0; i < Math.min(order.length, 3) && ures === undefined; i++) {
      const up = order[i]!;
      try {
        pool.requests++;
        ures = await pool.client.request(route.urls.get(up)! + target, { method: req.method, headers, upgrade: proto });
        if (pool.balancer.succeeded(up, Date.now())) log('info', 'upstream_up', { server: this.conf.name, upstream: up.addr });
      } catch (e) {
        lastError = e;
        const code = errorCode(e);
        if (code === undefined || !NOT_SENT.has(code)) break;
        if (pool.balancer.failed(up, Date.now())) log('warn', 'upstream_down', { server: this.conf.name, upstream: up.addr, error: code, streak: up.streak });
      }
    }
    if (ures === undefined) return this.#gatewayError(res, lastError);
    const upstream = ures.stream;
    if (ures.status !== 101 || upstream === undefined) {
      if (upstream !== undefined) await upstream.close();
      return this.#relayResponse(req, ures, res, route);
    }
    let client: ByteStream | undefined;
    try {
      const taken = await req.upgrade();
      client = taken.stream;
      const named = connectionTokens(ures.headers.get('connection'));
      let head = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (const [name, value] of ures.headers) {
        const lower = name.toLowerCase();
        if (lower !== 'upgrade' && (HOP.has(lower) || named?.has(lower))) continue;
        if (route.dropResponse?.has(lower)) continue;
        head += `${name}: ${value}\r\n`;
      }
      for (const [name, value] of route.conf.setResponseHeaders) head += `${name}: ${value}\r\n`;
      head += 'Connection: Upgrade\r\n\r\n';
      await client.writeAll(Buffer.from(head, 'latin1'));
      if (ures.head !== undefined && ures.head.length > 0) await client.writeAll(ures.head);
      if (taken.head.length > 0) await upstream.writeAll(taken.head);
      const a = pipeBytes(client, upstream);
      const b = pipeBytes(upstream, client);
      try {
        await Promise.all([a, b]);
      } catch {
        // One side reset or failed: closing both (finally) ends the other direction.
        void client.close();
        void upstream.close();
        await Promise.allSettled([a, b]);
      }
    } finally {
      await Promise.all([client?.close(), upstream.close()]);
    }
  }

  async #gatewayError(res: ServerResponse, err: unknown): Promise<void> {
    const timedOut = errorCode(err) === TIMEOUT;
    if (timedOut) this.counts.gatewayTimeout++;
    else this.counts.badGateway++;
    res.setHeader('connection', 'close');
    await res.writeHead(timedOut ? 504 : 502, TEXT).end(`${timedOut ? 'upstream timed out' : 'bad gateway'}: ${errorCode(err) ?? (err as Error)?.message ?? 'no upstream'}\n`);
  }

  /** The request's fields minus hop-by-hop ones (and those Connection names), plus Forwarded / X-Forwarded-*. */
  #requestHeaders(req: ServerRequest, hostField: string | null, route: RouteEntry): [string, string][] {
    const named = connectionTokens(req.headers.get('connection'));
    const out: [string, string][] = [];
    const bodyless = req.body.length === 0;
    for (const [name, value] of req.headers) {
      const lower = name.toLowerCase();
      if (HOP.has(lower) || REQUEST_ONLY.has(lower) || named?.has(lower)) continue;
      if (bodyless && lower === 'content-length') continue; // the client sends Content-Length: 0 where it belongs
      if (route.dropRequest?.has(lower)) continue;
      out.push([name, value]);
    }
    for (const h of route.conf.setRequestHeaders) out.push(h);
    const fwdFor = req.headers.get('x-forwarded-for');
    const fwd = req.headers.get('forwarded');
    if (this.conf.forwarded) {
      const ra = req.remoteAddr;
      let ip = '';
      let node = 'unknown';
      if (typeof ra === 'object' && ra !== null) {
        ip = ra.address;
        node = ra.family === 'IPv6' || ip.includes(':') ? `"[${ip}]"` : ip;
      }
      const host = hostField ?? '';
      const mine = `for=${node};proto=${this.conf.tls !== null ? 'https' : 'http'}${host !== '' ? `;host="${host.replace(/["\\]/g, '')}"` : ''}`;
      out.push(['forwarded', fwd !== null ? `${fwd}, ${mine}` : mine]);
      if (ip !== '') out.push(['x-forwarded-for', fwdFor !== null ? `${fwdFor}, ${ip}` : ip]);
      else if (fwdFor !== null) out.push(['x-forwarded-for', fwdFor]);
      out.push(['x-forwarded-proto', this.conf.tls !== null ? 'https' : 'http']);
      if (host !== '') out.push(['x-forwarded-host', host]);
    } else {
      if (fwd !== null) out.push(['forwarded', fwd]);
      if (fwdFor !== null) out.push(['x-forwarded-for', fwdFor]);
      for (const n of ['x-forwarded-proto', 'x-forwarded-host']) {
        const v = req.headers.get(n);
        if (v !== null) out.push([n, v]);
      }
    }
    return out;
  }

  async #relayResponse(req: ServerRequest, ures: Awaited<ReturnType<HttpClient['request']>>, res: ServerResponse, route: RouteEntry): Promise<void> {
    const named = connectionTokens(ures.headers.get('connection'));
    const headers: [string, string][] = [];
    for (const [name, value] of ures.headers) {
      const lower = name.toLowerCase();
      if (HOP.has(lower) || named?.has(lower) || route.dropResponse?.has(lower)) continue;
      headers.push([name, value]);
    }
    for (const h of route.conf.setResponseHeaders) headers.push(h);
    res.writeHead(ures.status, headers);
    if (ures.body.length === 0 || req.method === 'HEAD' || ures.status === 204 || ures.status === 304) {
      if (!ures.body.done) ures.close();
      return res.end();
    }
    try {
      for (;;) {
        const piece = await ures.body.read();
        if (piece === null) break;
        await res.write(piece); // resolves once the kernel took it (or it was copied): then the next read
      }
    } catch (e) {
      ures.close(); // the client went away, or the upstream failed mid-body: drop the upstream connection
      throw e;
    }
    await res.end();
  }
}

function isHttpProxy(s: unknown): s is HttpProxy {
  return s instanceof HttpProxy;
}

/** Finds the HttpProxy in a chain (for reload hand-over and stats). */
export function findHttpProxy(chain: unknown): HttpProxy | undefined {
  return findOld(chain, isHttpProxy);
}

/** The innermost factory: an HttpProxy that takes the old one's pools for unchanged upstream sets. */
export function httpProxyFactory(conf: ServerConfig): Factory<HttpProxy> {
  return { make: (old?: unknown) => new HttpProxy(conf, findOld(old, isHttpProxy)) };
}

/** A whole HTTP server's chain: HttpProxy, then the layers every server has (see connectionLayers). */
export function httpServerFactory(args: unknown): Factory<Service<Conn, ConnResult>> {
  const conf = args as ServerArgs;
  return stackFactory(httpProxyFactory(conf), ...connectionLayers(conf));
}
