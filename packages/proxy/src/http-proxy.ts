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
import { connectionServer, forward, H_CONTENT_LENGTH, H_HOST, H_TRANSFER_ENCODING, HttpClient, type CallHandle, type ClientResponse, type FieldSink, type FieldWriter, type ForwardRules, type HttpServer, type RawHead, type ServerRequest, type ServerResponse } from '@ringio/http';
import type { ByteStream, TcpStream } from '@ringio/net';
import { findOld, stackFactory, type Factory, type Service } from '@ringio/service';
import { Balancer, type Upstream } from './balance.js';
import type { HttpUpstreamConfig, RouteConfig, ServerConfig } from './config.js';
import { log } from './log.js';
import { connectionLayers, type Conn, type ConnResult, type ServerArgs } from './tcp-proxy.js';

/** RFC 9110 §7.6.1 hop-by-hop fields (lower case), for the 101 relayed on an upgrade (forward.ts skips them elsewhere). */
const HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection',
  'proxy-authenticate', 'proxy-authorization',
]);

const TEXT = Object.freeze({ 'content-type': 'text/plain' });
const EMPTY = Buffer.alloc(0);

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

/** A connection's Forwarded / X-Forwarded-* field lines (see HttpProxy.#forwardedFields), for `owner`'s requests with Host `host` (bytes; empty: none). */
interface KeptForwarded {
  owner: HttpProxy;
  host: Buffer;
  bytes: Buffer;
}

interface RouteEntry {
  path: string;
  host: string;
  /** undefined for a route with a static response */
  pool: UpstreamPool | undefined;
  /** Per upstream: the client's pool handle (forward.origin), and its host[:port] (the Host sent when the client sent none). */
  origins: Map<Upstream, unknown>;
  hosts: Map<Upstream, string>;
  conf: RouteConfig;
  /** The route's set_request_headers / set_response_headers as field lines (made once per deploy). */
  setRequest: Buffer;
  setResponse: Buffer;
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
  /** Whether any route names a host (else the Host field is not looked at). */
  readonly byHost: boolean;

  constructor(entries: RouteEntry[]) {
    const order = (a: RouteEntry, b: RouteEntry): number => b.path.length - a.path.length || (b.host === '' ? 0 : 1) - (a.host === '' ? 0 : 1);
    this.#any = entries.filter((e) => e.host === '').sort(order);
    for (const e of entries) {
      if (e.host === '' || this.#byHost.has(e.host)) continue;
      this.#byHost.set(e.host, entries.filter((x) => x.host === e.host || x.host === '').sort(order));
    }
    this.byHost = this.#byHost.size > 0;
  }

  /** match() on a request-target's bytes up to `end` (forward.plainPathEnd). */
  matchTarget(host: string, req: ServerRequest, end: number): RouteEntry | undefined {
    const list = this.byHost ? (this.#byHost.get(host) ?? this.#any) : this.#any;
    for (let i = 0; i < list.length; i++) if (forward.targetStartsWith(req, end, list[i]!.path)) return list[i];
    return undefined;
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

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A target the URL parser would change (percent-escapes, dot segments, backslashes, a fragment): routed on its normalized path. */
const UNSAFE_TARGET = /[%\\#]|\/\./;

function fieldLines(pairs: readonly (readonly [string, string])[]): Buffer {
  return Buffer.from(pairs.map(([n, v]) => `${n}: ${v}\r\n`).join(''), 'latin1');
}

/** One proxied request's scratch, pooled per chain: the upstream head, the response fields, the cancel handle. */
class Call implements CallHandle, FieldWriter {
  _conn: unknown = undefined;
  _cancelled = false;
  client: HttpClient | undefined = undefined;
  /** The request being proxied, its route, the upstreams to try and the one tried now. */
  req: ServerRequest | undefined = undefined;
  res: ServerResponse | undefined = undefined;
  route: RouteEntry | undefined = undefined;
  order: Upstream[] | undefined = undefined;
  upstream: Upstream | undefined = undefined;
  /** Where the upstream head's fields end (before Host and the blank line, added per upstream). */
  fieldsEnd = 0;
  /** The first try's callbacks (see HttpProxy.handle), made once per Call. */
  readonly _onHead: (ures: ClientResponse) => void;
  readonly _onFail: (e: unknown) => void;
  readonly onRelayed: () => void;
  readonly onRelayFailed: (e: unknown) => void;

  readonly up: RawHead = { buf: Buffer.allocUnsafe(2048), len: 0, flags: 0, declared: -1 };
  readonly down: RawHead = { buf: Buffer.allocUnsafe(2048), len: 0, flags: 0, declared: -1 };
  readonly rules: ForwardRules = { request: true, dropLength: false, dropHost: false, drop: undefined };
  /** The client left while the upstream's answer was awaited: cancel the upstream request. */
  readonly gone = (): void => {
    if (this.client !== undefined) forward.cancel(this.client, this);
    else this._cancelled = true;
  };

  /** The upstream response whose fields writeFields copies (set only while the server builds the head). */
  ures: ClientResponse | undefined = undefined;
  readonly #proxy: HttpProxy;

  constructor(proxy: HttpProxy) {
    this.#proxy = proxy;
    this._onHead = (ures) => proxy._settle(this, proxy._responded, ures);
    this._onFail = (e) => proxy._settle(this, proxy._sendFailed, e);
    this.onRelayed = () => proxy._relayed(this, false, undefined);
    this.onRelayFailed = (e) => proxy._relayed(this, true, e);
  }

  /**
   * The response head's fields, written by the server straight into its write buffer (forward.rawFieldsFrom):
   * the upstream's minus hop-by-hop ones (and those its Connection names), the route's, Via.
   */
  writeFields(out: FieldSink & { declaredLength: number }): void {
    responseFields(this.ures!, out, this.route!, this.rules, this.#proxy.conf.via);
    if (out.flags & H_CONTENT_LENGTH) {
      const n = this.ures!.body.length;
      out.declaredLength = n >= 0 ? n : 0;
    }
  }

  reset(): void {
    this._conn = undefined;
    this._cancelled = false;
    this.client = undefined;
    this.req = undefined;
    this.res = undefined;
    this.route = undefined;
    this.order = undefined;
    this.upstream = undefined;
  }
}

/**
 * A response head's fields into `out` (whose flags were cleared): the upstream's minus hop-by-hop ones and
 * the route's removals (and then, when its Connection names fields, again without those), the route's
 * set_response_headers, Via.
 */
function responseFields(ures: ClientResponse, out: FieldSink, route: RouteEntry, rules: ForwardRules, via: string): void {
  rules.request = false;
  rules.dropLength = false;
  rules.dropHost = false;
  rules.drop = route.dropResponse;
  const mark = out.len;
  const seen = forward.forwardFields(ures.headers, out, rules);
  if (seen & forward.F_CONNECTION) {
    const named = forward.connectionNamesOf(ures.headers);
    if (named !== undefined) {
      out.len = mark;
      out.flags = 0;
      rules.drop = route.dropResponse === undefined ? named : new Set([...route.dropResponse, ...named]);
      forward.forwardFields(ures.headers, out, rules);
    }
  }
  if (route.setResponse.length > 0) forward.appendBytes(out, route.setResponse);
  if (via !== '') forward.appendLatin1(out, `Via: ${ures.httpVersion} ${via}\r\n`);
}

/** Ends an upstream head at `fieldsEnd` for `upstream`: Host when the client sent none, then the blank line. */
function endHead(up: RawHead, fieldsEnd: number, route: RouteEntry, upstream: Upstream): void {
  up.len = fieldsEnd;
  if ((up.flags & H_HOST) === 0) forward.appendLatin1(up, `Host: ${route.hosts.get(upstream)}\r\n`);
  forward.appendCrlf(up);
}


function clear(h: RawHead): void {
  h.len = 0;
  h.flags = 0;
  h.declared = -1;
}

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
    this.#via11 = conf.via === '' ? EMPTY : Buffer.from(`Via: 1.1 ${conf.via}\r\n`, 'latin1');
    this.#via10 = conf.via === '' ? EMPTY : Buffer.from(`Via: 1.0 ${conf.via}\r\n`, 'latin1');
    const entries: RouteEntry[] = [];
    for (const r of conf.routes) {
      const dropRequest = r.removeRequestHeaders.length + r.setRequestHeaders.length > 0 ? new Set([...r.removeRequestHeaders, ...r.setRequestHeaders.map(([n]) => n.toLowerCase())]) : undefined;
      const dropResponse = r.removeResponseHeaders.length + r.setResponseHeaders.length > 0 ? new Set([...r.removeResponseHeaders, ...r.setResponseHeaders.map(([n]) => n.toLowerCase())]) : undefined;
      if (r.response !== null) {
        const headers: Record<string, string> = { 'content-type': r.response.contentType };
        for (const [n, v] of r.setResponseHeaders) headers[n] = v;
        const fixed = { body: Buffer.from(r.response.body), headers: Object.freeze(headers) };
        entries.push({ path: r.path, host: r.host, pool: undefined, origins: new Map(), hosts: new Map(), conf: r, fixed, dropRequest, dropResponse, setRequest: EMPTY, setResponse: EMPTY });
        continue;
      }
      const key = `${r.balance} ${poolKey(r)}`;
      let pool = this.pools.get(key);
      if (pool === undefined) {
        // Same upstream set as in the old chain: keep its connections and balancer state (weights may change).
        pool = new UpstreamPool(r.upstreams, conf, r.balance, old?.pools.get(key));
        this.pools.set(key, pool);
      }
      const origins = new Map<Upstream, unknown>();
      const hosts = new Map<Upstream, string>();
      for (const u of pool.balancer.upstreams) {
        const url = r.upstreams.find((x) => x.addr === u.addr)!.url;
        origins.set(u, forward.origin(pool.client, url));
        hosts.set(u, new URL(url).host);
      }
      entries.push({
        path: r.path, host: r.host, pool, origins, hosts, conf: r, fixed: undefined, dropRequest, dropResponse,
        setRequest: fieldLines(r.setRequestHeaders), setResponse: fieldLines(r.setResponseHeaders),
      });
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

  /**
   * Proxies one request: routes it, forwards it upstream and streams the response back (502/504 when
   * the upstream fails or is slow). The usual request (no body, no upgrade) runs without an async
   * frame: its head is built here, the upstream's answer arrives in the Call's callbacks, and a
   * response that is already whole in the upstream connection's buffer is queued at once (undefined
   * is returned when nothing is left to wait for). Bodies, upgrades and retries take #forward.
   */
  handle(req: ServerRequest, res: ServerResponse): Promise<void> | undefined {
    this.#inflight++;
    this.counts.requests++;
    const call = this.#calls.pop() ?? new Call(this);
    try {
      const router = this.router;
      const host = router.byHost ? hostName(req.headers.get('host')) : '';
      // The usual target is routed on its bytes and forwarded as sent: no string.
      const pathEnd = forward.plainPathEnd(req);
      let route = pathEnd >= 0 ? router.matchTarget(host, req, pathEnd) : undefined;
      let target: string | undefined;
      if (pathEnd < 0 || route?.conf.stripPrefix === true) [route, target] = this.#routeString(req, host);
      if (route === undefined) {
        this.counts.noRoute++;
        return this.#answered(call, res.writeHead(404, TEXT).end('no route\n'));
      }
      if (route.fixed !== undefined) {
        return this.#answered(call, res.writeHead(route.conf.response!.status, route.fixed.headers).end(route.fixed.body));
      }
      const hasBody = req.body.length !== 0;
      const method = req.method;
      // The upstream head: the request line, the client's fields copied as bytes minus hop-by-hop ones,
      // the route's fields, then Forwarded / X-Forwarded-* / Via.
      const up = call.up;
      clear(up);
      if (target === undefined) forward.appendRequestLine(up, method, req);
      else forward.appendLatin1(up, `${method} ${target} HTTP/1.1\r\n`);
      const lineEnd = up.len;
      const rules = call.rules;
      rules.request = true;
      rules.dropLength = false;
      rules.dropHost = false;
      rules.drop = route.dropRequest;
      let seen = forward.forwardFields(req.headers, up, rules);
      let upgrade = '';
      if (seen & forward.F_CONNECTION) {
        const named = forward.connectionNamesOf(req.headers);
        if (!hasBody && named?.has('upgrade') && req.headers.has('upgrade')) {
          const proto = req.headers.get('upgrade')!.split(',')[0]!.trim();
          if (TOKEN.test(proto)) upgrade = proto;
        }
        if (named !== undefined) {
          // Fields the client's Connection names are hop-by-hop too: copy again without them.
          up.len = lineEnd;
          up.flags = 0;
          rules.drop = route.dropRequest === undefined ? named : new Set([...route.dropRequest, ...named]);
          seen = forward.forwardFields(req.headers, up, rules);
        }
      }
      if (route.setRequest.length > 0) forward.appendBytes(up, route.setRequest);
      this.#forwardedFields(req, up, seen);
      call.req = req;
      call.res = res;
      call.route = route;
      if (upgrade !== '') {
        forward.appendLatin1(up, `Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n`);
        return this.#guarded(call, this.#upgrade(req, res, route, call));
      }
      if (hasBody && req.body.length < 0) {
        forward.appendLatin1(up, 'Transfer-Encoding: chunked\r\n');
        up.flags |= H_TRANSFER_ENCODING;
      }
      call.fieldsEnd = up.len;
      const pool = route.pool!;
      const balancer = pool.balancer;
      call.order = balancer.upstreams.length === 1 ? balancer.upstreams : balancer.order(Date.now());
      call.client = pool.client;
      forward.onClientGone(req, call.gone);
      if (hasBody) return this.#forward(call, { error: undefined, started: false }, 0, undefined);
      // The first try, without an async frame.
      const upstream = call.order[0]!;
      call.upstream = upstream;
      upstream.active++;
      pool.requests++;
      endHead(up, call.fieldsEnd, route, upstream);
      // No promise: the response is held, the client answers through the Call's callbacks, and
      // _settle releases it.
      forward.hold(res);
      forward.sendTo(pool.client, route.origins.get(upstream), method, up, call);
      return undefined;
    } catch (e) {
      this.#done(call);
      throw e;
    }
  }

  /**
   * Routing by the target as a string (absolute-form, a target the URL parser would change, a route
   * that strips its prefix): the route and the target to forward (normalized, prefix stripped), or no
   * route (404; '*' and other forms too).
   */
  #routeString(req: ServerRequest, host: string): [RouteEntry | undefined, string] {
    let target = req.url;
    if (target.charCodeAt(0) !== 47 /* / */) {
      // absolute-form (a client that talks to us as to a forward proxy) or '*': route on the path.
      if (!/^http:\/\//i.test(target)) return [undefined, ''];
      const slash = target.indexOf('/', 7);
      target = slash < 0 ? '/' : target.slice(slash);
    }
    // Route on the path the upstream will see: a target the URL parser would normalize is routed (and
    // forwarded) normalized, so a route's prefix cannot be escaped with "/api/../admin".
    let path: string;
    let search: string;
    if (UNSAFE_TARGET.test(target)) {
      const u = new URL(target, 'http://x');
      path = u.pathname;
      search = u.search;
      target = path + search;
    } else {
      const q = target.indexOf('?');
      path = q < 0 ? target : target.slice(0, q);
      search = q < 0 ? '' : target.slice(q);
    }
    const route = this.router.match(host, path);
    if (route === undefined) return [undefined, ''];
    if (route.conf.stripPrefix) {
      let p = path.slice(route.path.length);
      if (p.charCodeAt(0) !== 47) p = '/' + p;
      target = p + search;
    }
    return [route, target];
  }

  /** A request answered by the proxy itself (404, a static response). */
  #answered(call: Call, ended: Promise<void>): Promise<void> {
    this.#done(call);
    return ended;
  }

  /** Ends a request's bookkeeping: its Call goes back to the pool. */
  #done(call: Call): void {
    if (call.req !== undefined) forward.onClientGone(call.req, undefined);
    call.reset();
    if (this.#calls.length < 1024) this.#calls.push(call);
    if (--this.#inflight === 0 && this.#idle !== undefined) this.#idle();
  }

  async #guarded(call: Call, work: Promise<void>): Promise<void> {
    try {
      await work;
    } finally {
      this.#done(call);
    }
  }

  /**
   * @internal A first-try callback (Call._onHead / _onFail): runs `step` (_responded or _sendFailed)
   * and settles the handler's promise with its outcome. Never throws (the client calls it).
   */
  _settle<T>(call: Call, step: (this: HttpProxy, call: Call, arg: T) => Promise<void> | undefined, arg: T): void {
    // Taken first: the step may end the request and give the Call to the next one.
    const res = call.res!;
    let r: Promise<void> | undefined;
    try {
      r = step.call(this, call, arg);
    } catch (e) {
      forward.release(res, e);
      return;
    }
    if (r === undefined) forward.release(res);
    else
      r.then(
        () => forward.release(res),
        (e: unknown) => forward.release(res, e),
      );
  }

  /** @internal The first try's upstream response head arrived (Call._onHead): relayed, at once when whole. */
  _responded(call: Call, ures: ClientResponse): Promise<void> | undefined {
    const req = call.req!;
    const upstream = call.upstream!;
    forward.onClientGone(req, undefined);
    if (call.route!.pool!.balancer.succeeded(upstream, 0 /* not used */)) log('info', 'upstream_up', { server: this.conf.name, upstream: upstream.addr });
    let relayed: Promise<void> | undefined;
    try {
      relayed = this.#relay(req, ures, call.res!, call.route!, call);
    } catch (e) {
      upstream.active--;
      this.#done(call);
      throw e;
    }
    if (relayed === undefined) {
      upstream.active--;
      this.#done(call);
      return undefined;
    }
    return relayed.then(call.onRelayed, call.onRelayFailed);
  }

  /** @internal The relay that _responded started has ended (or failed: `e`). */
  _relayed(call: Call, failed: boolean, e: unknown): void {
    call.upstream!.active--;
    this.#done(call);
    if (failed) throw e;
  }

  /** @internal The first try failed (Call._onFail): the next upstream, or the answer to the client. */
  _sendFailed(call: Call, e: unknown): Promise<void> {
    call.upstream!.active--;
    if (call._cancelled) {
      this.#done(call); // the client went away: nobody to answer
      throw e;
    }
    return this.#forward(call, undefined, 1, e);
  }

  /**
   * The tries of a request from try `from` on (after the first one's error `lastError`, when from > 0),
   * each on the next upstream of the route's order, with the request body streamed (`body`: its state),
   * then the relay of the response; 502/504 when no try succeeded. Ends the request's bookkeeping.
   */
  async #forward(call: Call, body: { error: unknown; started: boolean } | undefined, from: number, lastError: unknown): Promise<void> {
    const req = call.req!;
    const res = call.res!;
    const route = call.route!;
    const pool = route.pool!;
    const order = call.order!;
    try {
      const pieces = body === undefined
        ? null
        : (async function* pieces() {
            body.started = true;
            for (;;) {
              let piece: Uint8Array | null;
              try {
                piece = await req.body.read();
              } catch (e) {
                body.error = e;
                throw e;
              }
              if (piece === null) return;
              yield piece; // the client writes it (awaited) before asking for the next
            }
          })();
      const tries = Math.min(order.length, 3);
      // After a first try that failed: the next upstream only when that request was not sent.
      for (let i = from > 0 && !this.#failedTry(order[from - 1]!, lastError, pool) ? tries : from; i < tries; i++) {
        const upstream = order[i]!;
        upstream.active++;
        let ures;
        try {
          pool.requests++;
          endHead(call.up, call.fieldsEnd, route, upstream);
          ures = await forward.send(pool.client, route.origins.get(upstream), req.method, call.up, pieces, call);
        } catch (e) {
          upstream.active--;
          if (body?.error !== undefined) throw body.error; // the client's body failed: the server answers it
          if (call._cancelled) throw e; // the client went away: nobody to answer
          lastError = e;
          if (this.#failedTry(upstream, e, pool) && !body?.started) continue;
          break;
        }
        forward.onClientGone(req, undefined);
        if (pool.balancer.succeeded(upstream, Date.now())) log('info', 'upstream_up', { server: this.conf.name, upstream: upstream.addr });
        try {
          await this.#relayResponse(req, ures, res, route, call);
        } finally {
          upstream.active--;
        }
        return;
      }
      return await this.#gatewayError(res, lastError);
    } finally {
      this.#done(call);
    }
  }

  /** A try's error `e` on `upstream`: true when the request was not sent (the next upstream may be tried). */
  #failedTry(upstream: Upstream, e: unknown, pool: UpstreamPool): boolean {
    const code = errorCode(e);
    if (code === undefined || !NOT_SENT.has(code)) return false;
    if (pool.balancer.failed(upstream, Date.now())) log('warn', 'upstream_down', { server: this.conf.name, upstream: upstream.addr, error: code, streak: upstream.streak });
    return true;
  }

  readonly #calls: Call[] = [];
  /** `Via: 1.1 <pseudonym>` / `Via: 1.0 <pseudonym>` field lines (made once per deploy; empty without via). */
  readonly #via11: Buffer;
  readonly #via10: Buffer;

  /** Appends Forwarded, X-Forwarded-For/-Proto/-Host (or passes the client's on, when `forwarded` is off) and Via. */
  #forwardedFields(req: ServerRequest, up: RawHead, seen: number): void {
    const h = req.headers;
    if (this.conf.forwarded) {
      // The fields of the connection's last request without Forwarded / X-Forwarded-For of its own, kept
      // as bytes with the connection (its address does not change): the next one with the same Host
      // (compared as bytes) reuses them.
      const kept = forward.connectionState(req) as KeptForwarded | undefined;
      if ((seen & (forward.F_FORWARDED | forward.F_X_FORWARDED_FOR)) === 0 && kept !== undefined && kept.owner === this && forward.hostBytesAre(h, kept.host)) {
        forward.appendBytes(up, kept.bytes);
      } else this.#newForwarded(req, up, seen);
    } else if (seen & (forward.F_FORWARDED | forward.F_X_FORWARDED_FOR | forward.F_X_FORWARDED_PROTO | forward.F_X_FORWARDED_HOST)) {
      for (const n of ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) {
        for (const v of h.getAll(n)) forward.appendLatin1(up, `${n}: ${v}\r\n`);
      }
    }
    if (this.#via11.length > 0) forward.appendBytes(up, req.httpVersion === '1.0' ? this.#via10 : this.#via11);
  }

  /**
   * Forwarded and X-Forwarded-* made for a request, kept with its connection (forward.setConnectionState)
   * when the client sent neither Forwarded nor X-Forwarded-For.
   */
  #newForwarded(req: ServerRequest, up: RawHead, seen: number): void {
    const h = req.headers;
    const ra = req.remoteAddr;
    let ip = '';
    let v6 = false;
    if (typeof ra === 'object' && ra !== null) {
      ip = ra.address;
      v6 = ra.family === 'IPv6';
    }
    const host = seen & forward.F_HOST ? (h.get('host') ?? '') : '';
    const node = ip === '' ? 'unknown' : v6 || ip.includes(':') ? `"[${ip}]"` : ip;
    const start = up.len;
    const fwd = seen & forward.F_FORWARDED ? `${h.get('forwarded')}, ` : '';
    const fwdFor = seen & forward.F_X_FORWARDED_FOR ? h.get('x-forwarded-for') : null;
    let xff = ip;
    if (fwdFor !== null) xff = ip !== '' ? `${fwdFor}, ${ip}` : fwdFor;
    const proto = this.conf.tls !== null ? 'https' : 'http';
    let fields = `Forwarded: ${fwd}for=${node};proto=${proto}`;
    if (host !== '') {
      const quoted = host.includes('"') || host.includes('\\') ? host.replace(/["\\]/g, '') : host;
      fields += `;host="${quoted}"`;
    }
    fields += xff !== '' ? `\r\nX-Forwarded-For: ${xff}\r\nX-Forwarded-Proto: ${proto}\r\n` : `\r\nX-Forwarded-Proto: ${proto}\r\n`;
    if (host !== '') fields += `X-Forwarded-Host: ${host}\r\n`;
    forward.appendLatin1(up, fields);
    if ((seen & (forward.F_FORWARDED | forward.F_X_FORWARDED_FOR)) === 0) {
      const bytes = Buffer.from(up.buf.subarray(start, up.len));
      const hostBytes = Buffer.from(host, 'latin1');
      const kept = forward.connectionState(req) as KeptForwarded | undefined;
      if (kept !== undefined && kept.owner === this) {
        kept.host = hostBytes;
        kept.bytes = bytes;
      } else forward.setConnectionState(req, { owner: this, host: hostBytes, bytes } satisfies KeptForwarded);
    }
  }

  /**
   * Upgrade pass-through (WebSocket and the like): the request goes upstream with its Upgrade; a 101
   * takes both connections out of HTTP and the proxy relays bytes both ways until both ends have closed
   * (an end of stream on one side shuts down the other's write half). Any other answer is relayed as an
   * ordinary response.
   */
  async #upgrade(req: ServerRequest, res: ServerResponse, route: RouteEntry, call: Call): Promise<void> {
    const pool = route.pool!;
    const order = pool.balancer.order(Date.now());
    let ures: Awaited<ReturnType<HttpClient['request']>> | undefined;
    let lastError: unknown;
    const fieldsEnd = call.up.len;
    for (let i = 0; i < Math.min(order.length, 3) && ures === undefined; i++) {
      const up = order[i]!;
      try {
        pool.requests++;
        endHead(call.up, fieldsEnd, route, up);
        ures = await forward.send(pool.client, route.origins.get(up), req.method, call.up, null, call);
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
      return this.#relayResponse(req, ures, res, route, call);
    }
    let client: ByteStream | undefined;
    try {
      const taken = await req.upgrade();
      client = taken.stream;
      const named = forward.connectionNamesOf(ures.headers);
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

  async #relayResponse(req: ServerRequest, ures: ClientResponse, res: ServerResponse, route: RouteEntry, call: Call): Promise<void> {
    await this.#relay(req, ures, res, route, call);
  }

  /**
   * Relays a response: its head, then its body piece by piece. A body already whole in the upstream
   * connection's buffer is queued with the head at once (undefined returned: nothing to wait for);
   * otherwise the promise of the rest.
   */
  #relay(req: ServerRequest, ures: ClientResponse, res: ServerResponse, route: RouteEntry, call: Call): Promise<void> | undefined {
    const body = ures.body;
    const status = ures.status;
    res.writeHead(status);
    const bodiless = body.length === 0 || req.method === 'HEAD' || status === 204 || status === 304;
    // A response whose body is whole in the upstream connection's buffer (a small one) and that the
    // server can queue at once is ended here, without a promise. Its bytes may be the receive lease they
    // arrived in (the client parsed them in place): nothing of them is kept.
    if (bodiless ? forward.canEndNow(res, 0) : forward.wholeBuffered(body) && forward.canEndNow(res, body.length)) {
      // The whole response goes out now when it can (the server's loop sends it beside its next read):
      // the head's fields are copied from the upstream's head straight into the write buffer
      // (call.writeFields), and the body from the upstream connection's buffer (endNowBuffered: no view).
      let now: boolean;
      call.ures = ures;
      forward.rawFieldsFrom(res, call);
      try {
        now = bodiless ? forward.endNow(res) : forward.endNowBuffered(res, body);
      } catch (e) {
        if (!bodiless || !body.done) void ures.close();
        throw e;
      } finally {
        call.ures = undefined;
      }
      if (now) {
        // The end of the body frees the upstream connection (as the read past it would).
        if (!bodiless) forward.endBody(body);
        else if (!body.done) void ures.close();
        return undefined;
      }
      forward.rawFieldsFrom(res, undefined);
    }
    // Written later: the fields are copied now (the upstream connection's buffer may change before).
    const down = call.down;
    clear(down);
    responseFields(ures, down, route, call.rules, this.conf.via);
    if (down.flags & H_CONTENT_LENGTH) down.declared = body.length >= 0 ? body.length : 0;
    forward.rawFields(res, down);
    if (bodiless) {
      if (!body.done) void ures.close();
      return res.end();
    }
    // The body's pieces are taken from the next microtask on: by then the client has copied what it
    // parsed in place into its own buffer.
    return Promise.resolve().then(() => this.#relayBody(ures, res));
  }

  /** The rest of a response body. */
  async #relayBody(ures: ClientResponse, res: ServerResponse): Promise<void> {
    const body = ures.body;
    try {
      let piece: Uint8Array | null | undefined;
      for (;;) {
        // A piece already in the upstream connection's buffer is taken without a promise.
        if (piece === undefined) piece = forward.bufferedPiece(body) ?? (await body.read());
        if (piece === null) break;
        if (body.done) {
          // The last piece: ends the response in the same send as its head when it fits (the server's
          // loop sends it beside its next read), then the end of the body frees the upstream connection
          // (as the read past it would).
          await res.end(piece);
          forward.endBody(body);
          return;
        }
        await res.write(piece); // resolves once the kernel took it (or it was copied): then the next read
        piece = undefined;
      }
    } catch (e) {
      void ures.close(); // the client went away, or the upstream failed mid-body: drop the upstream connection
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
