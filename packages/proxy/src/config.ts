/**
 * ringio-proxy's configuration: TOML (or JSON when the text starts with '{'), parsed with smol-toml,
 * then checked key by key. Every error names the key path and its line: `proxy.toml:12:
 * servers.echo.balance: …`. Unknown keys are errors (a typo must not silently fall back to a default).
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { parseAddr } from '@ringio/net';
import { ringioError } from '@ringio/runtime';

/** How a server picks the first upstream to try (docs/api/proxy.md, 'Balance policies'). */
export type Balance = 'round_robin' | 'random' | 'weighted' | 'least_conn';
/** Every Balance, in the order error messages list them. */
export const BALANCES: readonly Balance[] = ['round_robin', 'random', 'weighted', 'least_conn'];

/** A listen or upstream address: 'host:port' or 'unix:/path'. */
export type Endpoint = { kind: 'tcp'; addr: string; host: string; port: number } | { kind: 'unix'; addr: string; path: string };

/** One entry of a server's `upstreams`. */
export interface UpstreamConfig {
  /** The address as written: 'host:port' or 'unix:/path'. */
  addr: string;
  /** `addr` parsed. */
  endpoint: Endpoint;
  /** Integer 1..1000000 (default 1), used by `weighted` and `least_conn`. */
  weight: number;
}

/** An HTTP upstream: an http:// or https:// origin (no path), its host:port as an Endpoint, and a weight. */
export interface HttpUpstreamConfig extends UpstreamConfig {
  /** 'http://host:port' or 'https://host:port' as written, without a trailing slash */
  url: string;
  /** https:// upstreams: how the proxy verifies them (null for http://). */
  tls: UpstreamTlsConfig | null;
}

/** An https:// upstream's TLS settings: `tls_verify`, `tls_ca` (read from its file), `tls_servername`. */
export interface UpstreamTlsConfig {
  /** Verify the upstream's certificate and name (default true). */
  verify: boolean;
  /** PEM of the CAs to trust instead of Node's root certificates, or null. */
  ca: string | null;
  /** The name sent as SNI and verified (default: the URL's host). */
  servername: string | null;
}

/** One certificate of a server's `tls`: PEM text read from its files, and the SNI names it answers. */
export interface TlsCertConfig {
  /** The certificate chain's PEM (from `cert`). */
  cert: string;
  /** The private key's PEM (from `key`). */
  key: string;
  /** `names`, or null: the certificate's own DNS names. */
  names: string[] | null;
  /** The files as resolved (for messages). */
  certFile: string;
  keyFile: string;
}

/** One route of an HTTP server: requests whose Host and path prefix match go to its upstreams. */
export interface RouteConfig {
  /** Lower case, without a port; '' matches every host */
  host: string;
  /** A prefix starting with '/' */
  path: string;
  /** Empty for a route with a static `response` */
  upstreams: HttpUpstreamConfig[];
  balance: Balance;
  /** Remove the route's path prefix from the path sent upstream */
  stripPrefix: boolean;
  /** [name, value] set (replacing) on the request sent upstream */
  setRequestHeaders: [string, string][];
  /** lower-case names removed from the request sent upstream */
  removeRequestHeaders: string[];
  /** [name, value] set (replacing) on the response to the client */
  setResponseHeaders: [string, string][];
  /** lower-case names removed from the response to the client */
  removeResponseHeaders: string[];
  /** A response made by the proxy itself (no upstream) */
  response: { status: number; body: string; contentType: string } | null;
}

/** One `[servers.NAME]` table, normalized: durations in ms, addresses parsed, defaults filled in. */
export interface ServerConfig {
  /** NAME, the server's key in `servers`. */
  name: string;
  /** Where to accept, as written. */
  listen: string;
  /** `listen` parsed. */
  endpoint: Endpoint;
  /** 'tcp' (a byte relay) or 'http' (a reverse proxy by routes). */
  protocol: 'tcp' | 'http';
  /** protocol "http": the routes, in config order (empty for tcp) */
  routes: RouteConfig[];
  /** protocol "http": ms to wait for an upstream's response head (504 after) */
  responseTimeout: number;
  /** protocol "http": ms a body read or write may make no progress, either side */
  bodyTimeout: number;
  /** protocol "http": ms an idle pooled upstream connection is kept */
  upstreamKeepalive: number;
  /** protocol "http": add Forwarded and X-Forwarded-For/-Proto/-Host */
  forwarded: boolean;
  /** protocol "http": the pseudonym of the Via field added both ways ("1.1 <it>"), or '' for no Via */
  via: string;
  /** protocol "http": bytes of a request body, 0 = no limit */
  maxBodySize: number;
  /** protocol "http": TLS termination, the default certificate first, then the ones chosen by SNI; null for plain HTTP */
  tls: TlsCertConfig[] | null;
  /** protocol "http" with tls: ms a TLS handshake may take */
  handshakeTimeout: number;
  /** protocol 'tcp': where connections are relayed to (non-empty). */
  upstreams: UpstreamConfig[];
  /** The balance policy (default 'round_robin'). */
  balance: Balance;
  /** ms */
  connectTimeout: number;
  /** ms; 0: none */
  idleTimeout: number;
  /** 0: no limit */
  maxConnections: number;
  /** Upstreams tried per connection before ERR_RINGIO_NO_UPSTREAM (default: the number of upstreams, at most 3). */
  connectAttempts: number;
  /** ms */
  backoffMin: number;
  /** ms */
  backoffMax: number;
  /** The PROXY protocol header sent to the upstream first: 'off' (default), 'v1' or 'v2'. */
  proxyProtocol: 'off' | 'v1' | 'v2';
  /** Relay through splice(2): 'auto' (default), 'always' or 'never'. */
  splice: 'auto' | 'always' | 'never';
  /** Bytes per relay buffer (default 16384). */
  bufferSize: number;
  /** The listen(2) backlog (default 1024). */
  backlog: number;
  /** One access line per connection (default false). */
  accessLog: boolean;
}

/** A whole checked configuration, as parseConfig() and loadConfig() return it. */
export interface ProxyConfig {
  /** The file it came from (absolute), or '' */
  file: string;
  /** sha256 of the text */
  hash: string;
  /** The `[runtime]` table: threads, CPU pinning and driver. */
  runtime: { threads: number | 'auto'; pin: boolean | number[]; driver: 'auto' | 'uring' | 'epoll' };
  /** The `[admin]` listener (metrics, stats), or null when there is none. */
  admin: { listen: string; endpoint: Endpoint } | null;
  /** The `[upgrade]` table: the binary-upgrade socket and how long old connections may drain (ms). */
  upgrade: { socket: string; drainTimeout: number };
  /** The `[log]` table: 'text' or 'json' lines. */
  log: { format: 'text' | 'json' };
  /** The servers by NAME. */
  servers: Record<string, ServerConfig>;
}

/** An invalid config (code ERR_RINGIO_CONFIG); the message names the file, line and key path. */
export class ConfigError extends Error {
  /** Always ERR_RINGIO_CONFIG. */
  readonly code = 'ERR_RINGIO_CONFIG';
  constructor(
    message: string,
    /** The file the config came from ('' for a text without one). */
    readonly file: string,
    /** The key path at fault ('servers.echo.balance'); '' when the file as a whole is. */
    readonly key: string,
    /** The line the key is written on (1-based), when it could be found. */
    readonly line: number | undefined,
  ) {
    super(message);
  }
}

type Path = (string | number)[];

function pathText(p: Path): string {
  let s = '';
  for (const seg of p) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}

/** Finds the line where a key path is written (1-based), for TOML and JSON texts; undefined when unsure. */
export function locateKey(text: string, path: Path, json: boolean): number | undefined {
  const lineAt = (pos: number): number => text.slice(0, pos).split('\n').length;
  if (json) {
    let pos = 0;
    let found = -1;
    for (const seg of path) {
      if (typeof seg === 'number') {
        let k = -1;
        let i = pos;
        for (; i < text.length; i++) if (text[i] === '{' && ++k === seg + 1) break;
        if (i >= text.length) break;
        pos = found = i;
      } else {
        const i = text.indexOf(JSON.stringify(seg), pos);
        if (i < 0) break;
        pos = found = i;
      }
    }
    return found < 0 ? undefined : lineAt(found);
  }
  // TOML: walk the lines, tracking the table header, and record where each dotted key is set.
  const lines = text.split('\n');
  const where = new Map<string, number>();
  let table: string[] = [];
  const arrays = new Map<string, number>();
  const keyParts = (k: string): string[] =>
    k
      .split('.')
      .map((x) => x.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    let m = /^\[\[\s*([^\]]+?)\s*\]\]/.exec(line);
    if (m) {
      const base = keyParts(m[1]!).join('.');
      const n = arrays.get(base) ?? 0;
      arrays.set(base, n + 1);
      table = [...keyParts(m[1]!), String(n)];
      where.set(keyParts(m[1]!).join('.'), where.get(base) ?? i + 1);
      where.set(table.join('.'), i + 1);
      continue;
    }
    m = /^\[\s*([^\]]+?)\s*\]/.exec(line);
    if (m) {
      table = keyParts(m[1]!);
      for (let j = 1; j <= table.length; j++) if (!where.has(table.slice(0, j).join('.'))) where.set(table.slice(0, j).join('.'), i + 1);
      continue;
    }
    m = /^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=/.exec(line);
    if (m) {
      const full = [...table, ...keyParts(m[1]!)];
      for (let j = table.length + 1; j <= full.length; j++) if (!where.has(full.slice(0, j).join('.'))) where.set(full.slice(0, j).join('.'), i + 1);
    }
  }
  // The deepest known prefix; an index into an inline array counts its '{'s from the key's line.
  for (let n = path.length; n > 0; n--) {
    const prefix = path.slice(0, n);
    // A key inside an array of tables ([[a.b]] … key): recorded under a.b.<index>.key.
    const direct = where.get(prefix.join('.'));
    if (direct !== undefined) return direct;
    let idx = -1;
    for (let j = 0; j < prefix.length; j++) if (typeof prefix[j] === 'number') idx = j;
    if (idx >= 0 && idx < n - 1) continue; // a key inside an array element: find the element first
    if (idx < 0) {
      const l = where.get(prefix.join('.'));
      if (l !== undefined) return l;
      continue;
    }
    const arrKey = prefix.slice(0, idx).join('.');
    const viaTables = where.get([...prefix.slice(0, idx), String(prefix[idx])].join('.'));
    if (viaTables !== undefined && n === idx + 1) return viaTables;
    const start = where.get(arrKey);
    if (start === undefined) continue;
    let offset = lines.slice(0, start - 1).join('\n').length + (start > 1 ? 1 : 0);
    let k = -1;
    for (; offset < text.length; offset++) if (text[offset] === '{' && ++k === (prefix[idx] as number)) return lineAt(offset);
    return start;
  }
  return undefined;
}

/** Milliseconds from a number (ms) or a string like '250ms', '5s', '2m', '1h'. */
function duration(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60000 : 3600000);
}

/** Parses 'host:port' or 'unix:/path' into an Endpoint; TypeError or RangeError for a bad one. */
export function parseEndpoint(v: string): Endpoint {
  if (v.startsWith('unix:')) {
    const path = v.slice(5);
    if (path === '') throw new TypeError("'unix:' needs a path, as in 'unix:/run/app.sock'");
    if (Buffer.byteLength(path) > 107) throw new RangeError(`a Unix socket path is at most 107 bytes, got ${Buffer.byteLength(path)}`);
    return { kind: 'unix', addr: v, path };
  }
  const { host, port } = parseAddr(v);
  return { kind: 'tcp', addr: v, host, port };
}

const TOP_KEYS = ['runtime', 'admin', 'upgrade', 'log', 'servers'];
const SERVER_KEYS = [
  'listen', 'protocol', 'upstreams', 'balance', 'connect_timeout', 'idle_timeout', 'max_connections', 'connect_attempts',
  'backoff_min', 'backoff_max', 'proxy_protocol', 'splice', 'buffer_size', 'backlog', 'access_log',
  'routes', 'response_timeout', 'body_timeout', 'upstream_keepalive', 'forwarded', 'via', 'max_body_size', 'tls', 'handshake_timeout',
];
const TCP_ONLY = ['upstreams', 'balance', 'idle_timeout', 'connect_attempts', 'backoff_min', 'backoff_max', 'proxy_protocol', 'splice', 'buffer_size'];
const HTTP_ONLY = ['routes', 'response_timeout', 'body_timeout', 'upstream_keepalive', 'forwarded', 'via', 'max_body_size', 'tls', 'handshake_timeout'];
const ROUTE_KEYS = [
  'host', 'path', 'upstreams', 'balance', 'strip_prefix', 'set_request_headers', 'remove_request_headers',
  'set_response_headers', 'remove_response_headers', 'response',
];
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection']);
const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses and checks a config text. Throws ConfigError (code ERR_RINGIO_CONFIG) naming the key and line. */
export function parseConfig(text: string, file = ''): ProxyConfig {
  const json = text.trimStart().startsWith('{');
  const where = file === '' ? '<config>' : file;
  let raw: unknown;
  try {
    raw = json ? JSON.parse(text) : parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split('\n')[0]!;
      throw new ConfigError(`${where}:${e.line}:${e.column}: ${first}`, file, '', e.line);
    }
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
    throw new ConfigError(`${where}${line !== undefined ? ':' + line : ''}: invalid JSON: ${(e as Error).message}`, file, '', line);
  }
  const fail = (path: Path, msg: string): never => {
    const line = locateKey(text, path, json);
    const key = pathText(path);
    throw new ConfigError(`${where}${line !== undefined ? ':' + line : ''}: ${key}: ${msg}`, file, key, line);
  };
  const isTable = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
  const show = (v: unknown): string => (v instanceof Date ? v.toISOString() : JSON.stringify(v) ?? String(v));
  const table = (v: unknown, path: Path, keys: string[]): Record<string, unknown> => {
    if (v === undefined) return {};
    if (!isTable(v)) fail(path, `must be a table, got ${show(v)}`);
    const t = v as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!keys.includes(k)) fail([...path, k], `unknown key (known keys here: ${keys.join(', ')})`);
    return t;
  };
  const str = (v: unknown, path: Path): string => {
    if (typeof v !== 'string') fail(path, `must be a string, got ${show(v)}`);
    return v as string;
  };
  const oneOf = <T extends string>(v: unknown, path: Path, allowed: readonly T[], dflt: T): T => {
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !allowed.includes(v as T)) fail(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${show(v)}`);
    return v as T;
  };
  const int = (v: unknown, path: Path, min: number, max: number, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(path, `must be an integer in ${min}..${max}, got ${show(v)}`);
    return v as number;
  };
  /** `via`: false (none, the default), true ("ringio") or a pseudonym (a token). */
  const viaName = (v: unknown, p: Path): string => {
    if (v === undefined || v === false) return '';
    if (v === true) return 'ringio';
    if (typeof v !== 'string' || !TCHAR.test(v)) fail(p, `must be true, false or a pseudonym (a token such as "edge-1"), got ${show(v)}`);
    return v as string;
  };
  const bool = (v: unknown, path: Path, dflt: boolean): boolean => {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') fail(path, `must be true or false, got ${show(v)}`);
    return v as boolean;
  };
  const ms = (v: unknown, path: Path, dflt: number, allowZero: boolean): number => {
    if (v === undefined) return dflt;
    const d = duration(v);
    if (d === undefined || (!allowZero && d === 0)) fail(path, `must be a duration: a number of ms or a string such as "500ms", "5s", "2m"${allowZero ? '' : ' (> 0)'}, got ${show(v)}`);
    if (d! > 2 ** 31 - 1) fail(path, `is too long (at most ${2 ** 31 - 1} ms)`);
    return d!;
  };
  const endpoint = (v: unknown, path: Path): Endpoint => {
    const s = str(v, path);
    try {
      return parseEndpoint(s);
    } catch (e) {
      return fail(path, `must be "host:port", "[v6]:port" or "unix:/path": ${(e as Error).message}`);
    }
  };

  const top = table(raw, [], TOP_KEYS);
  const rt = table(top.runtime, ['runtime'], ['threads', 'pin', 'driver']);
  let threads: number | 'auto' = 1;
  if (rt.threads === 'auto') threads = 'auto';
  else if (rt.threads !== undefined) threads = int(rt.threads, ['runtime', 'threads'], 1, 1024, 1);
  let pin: boolean | number[] = false;
  if (Array.isArray(rt.pin)) {
    if (rt.pin.length === 0) fail(['runtime', 'pin'], 'the CPU list is empty');
    pin = rt.pin.map((c, i) => int(c, ['runtime', 'pin', i], 0, 1023, 0));
  } else pin = bool(rt.pin, ['runtime', 'pin'], false);
  const driver = oneOf(rt.driver, ['runtime', 'driver'], ['auto', 'uring', 'epoll'] as const, 'auto');

  const ad = top.admin === undefined ? undefined : table(top.admin, ['admin'], ['listen']);
  let admin: ProxyConfig['admin'] = null;
  if (ad !== undefined) {
    if (ad.listen === undefined) fail(['admin'], 'needs listen ("host:port" or "unix:/path")');
    admin = { listen: ad.listen as string, endpoint: endpoint(ad.listen, ['admin', 'listen']) };
  }

  const abs = file === '' ? '' : resolve(file);
  // Files named in the config (certificates, keys, CAs) resolve from the config file's directory.
  const base = abs === '' ? process.cwd() : dirname(abs);
  const readPem = (f: string, path: Path): string => {
    let t = '';
    try {
      t = readFileSync(f, 'utf8');
    } catch (e) {
      fail(path, `cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!t.includes('-----BEGIN ')) fail(path, `${f} holds no PEM block`);
    return t;
  };
  const up = table(top.upgrade, ['upgrade'], ['socket', 'drain_timeout']);
  const defaultSocket = `/tmp/ringio-proxy-${createHash('sha256').update(abs || 'stdin').digest('hex').slice(0, 16)}.sock`;
  const socket = up.socket === undefined ? defaultSocket : str(up.socket, ['upgrade', 'socket']);
  if (!isAbsolute(socket)) fail(['upgrade', 'socket'], `must be an absolute path, got ${show(socket)}`);
  if (Buffer.byteLength(socket) > 100) fail(['upgrade', 'socket'], 'is too long for a Unix socket (at most 100 bytes)');
  const upgrade = { socket, drainTimeout: ms(up.drain_timeout, ['upgrade', 'drain_timeout'], 30000, true) };

  const lg = table(top.log, ['log'], ['format']);
  const log = { format: oneOf(lg.format, ['log', 'format'], ['text', 'json'] as const, 'text') };

  const serversRaw = table(top.servers, ['servers'], Object.keys(isTable(top.servers) ? top.servers : {}));
  const servers: Record<string, ServerConfig> = {};
  const listens = new Map<string, string>();
  for (const [name, v] of Object.entries(serversRaw)) {
    const p: Path = ['servers', name];
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) fail(p, 'a server name may use letters, digits, "_", "-" and "." only');
    const s = table(v, p, SERVER_KEYS);
    if (s.listen === undefined) fail(p, 'needs listen ("host:port" or "unix:/path")');
    const ep = endpoint(s.listen, [...p, 'listen']);
    const lk = ep.kind === 'unix' ? `unix:${ep.path}` : `${ep.host}:${ep.port}`;
    if (listens.has(lk)) fail([...p, 'listen'], `${show(s.listen)} is also the listen address of servers.${listens.get(lk)}`);
    listens.set(lk, name);
    if (s.protocol === undefined) fail(p, 'needs protocol ("tcp" or "http")');
    const protocol = oneOf(s.protocol, [...p, 'protocol'], ['tcp', 'http'] as const, 'tcp');
    for (const k of protocol === 'http' ? TCP_ONLY : HTTP_ONLY) {
      if (s[k] !== undefined) fail([...p, k], `is only for protocol = "${protocol === 'http' ? 'tcp' : 'http'}" (this server is "${protocol}")`);
    }
    let upstreams: UpstreamConfig[] = [];
    const routes: RouteConfig[] = [];
    if (protocol === 'tcp') {
      if (s.upstreams === undefined) fail(p, 'needs upstreams, as in [{ addr = "127.0.0.1:7001" }]');
      if (!Array.isArray(s.upstreams) || s.upstreams.length === 0) fail([...p, 'upstreams'], `must be a non-empty array of { addr, weight }, got ${show(s.upstreams)}`);
      upstreams = (s.upstreams as unknown[]).map((u, i): UpstreamConfig => {
        const up = table(u, [...p, 'upstreams', i], ['addr', 'weight']);
        if (up.addr === undefined) fail([...p, 'upstreams', i], 'needs addr');
        return { addr: up.addr as string, endpoint: endpoint(up.addr, [...p, 'upstreams', i, 'addr']), weight: int(up.weight, [...p, 'upstreams', i, 'weight'], 1, 1000000, 1) };
      });
    } else {
      if (s.routes === undefined) fail(p, 'needs routes, as in [[servers.NAME.routes]] path = "/" upstreams = [{ url = "http://127.0.0.1:9080" }]');
      if (!Array.isArray(s.routes) || s.routes.length === 0) fail([...p, 'routes'], `must be a non-empty array of tables, got ${show(s.routes)}`);
      const seen = new Map<string, number>();
      (s.routes as unknown[]).forEach((r, i) => {
        const rp: Path = [...p, 'routes', i];
        const rt = table(r, rp, ROUTE_KEYS);
        let host = '';
        if (rt.host !== undefined) {
          host = str(rt.host, [...rp, 'host']).toLowerCase();
          if (!/^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/.test(host)) fail([...rp, 'host'], `must be a host name without a port, as in "api.example.com", got ${show(rt.host)}`);
        }
        const path = rt.path === undefined ? '/' : str(rt.path, [...rp, 'path']);
        if (!path.startsWith('/') || /[\s?#]/.test(path)) fail([...rp, 'path'], `must be a path prefix starting with "/" (no spaces, "?" or "#"), got ${show(rt.path)}`);
        const dup = seen.get(`${host} ${path}`);
        if (dup !== undefined) fail([...rp, 'path'], `host ${show(host || '*')} and path ${show(path)} are also routes[${dup}]'s`);
        seen.set(`${host} ${path}`, i);
        const setHeaders = (key: string): [string, string][] => {
          const v = rt[key];
          if (v === undefined) return [];
          if (!isTable(v)) fail([...rp, key], `must be a table of name = "value", got ${show(v)}`);
          return Object.entries(v as Record<string, unknown>).map(([name, value]): [string, string] => {
            if (!TCHAR.test(name)) fail([...rp, key, name], 'is not a valid field name');
            if (FRAMING.has(name.toLowerCase())) fail([...rp, key, name], 'is a framing or hop-by-hop field, which the proxy sets itself');
            if (typeof value !== 'string' || /[\r\n\0]/.test(value) || /[^\u0000-\u00ff]/.test(value)) fail([...rp, key, name], `must be a string without CR, LF, NUL or characters above U+00FF, got ${show(value)}`);
            return [name, value as string];
          });
        };
        const removeHeaders = (key: string): string[] => {
          const v = rt[key];
          if (v === undefined) return [];
          if (!Array.isArray(v)) fail([...rp, key], `must be an array of field names, got ${show(v)}`);
          return (v as unknown[]).map((name, j) => {
            if (typeof name !== 'string' || !TCHAR.test(name)) fail([...rp, key, j], `must be a field name, got ${show(name)}`);
            return (name as string).toLowerCase();
          });
        };
        let response: RouteConfig['response'] = null;
        if (rt.response !== undefined) {
          const rs = table(rt.response, [...rp, 'response'], ['status', 'body', 'content_type']);
          response = {
            status: int(rs.status, [...rp, 'response', 'status'], 200, 599, 200),
            body: rs.body === undefined ? '' : str(rs.body, [...rp, 'response', 'body']),
            contentType: rs.content_type === undefined ? 'text/plain' : str(rs.content_type, [...rp, 'response', 'content_type']),
          };
          if (/[\r\n\0]/.test(response.contentType)) fail([...rp, 'response', 'content_type'], 'must not hold CR, LF or NUL');
          if (rt.upstreams !== undefined) fail([...rp, 'upstreams'], 'a route has either upstreams or a response, not both');
        }
        const common = {
          stripPrefix: bool(rt.strip_prefix, [...rp, 'strip_prefix'], false),
          setRequestHeaders: setHeaders('set_request_headers'),
          removeRequestHeaders: removeHeaders('remove_request_headers'),
          setResponseHeaders: setHeaders('set_response_headers'),
          removeResponseHeaders: removeHeaders('remove_response_headers'),
          response,
        };
        if (response !== null) {
          routes.push({ host, path, upstreams: [], balance: oneOf(rt.balance, [...rp, 'balance'], BALANCES, 'round_robin'), ...common });
          return;
        }
        if (rt.upstreams === undefined) fail(rp, 'needs upstreams, as in [{ url = "http://127.0.0.1:9080" }], or a response');
        if (!Array.isArray(rt.upstreams) || rt.upstreams.length === 0) fail([...rp, 'upstreams'], `must be a non-empty array of { url, weight }, got ${show(rt.upstreams)}`);
        const ups = (rt.upstreams as unknown[]).map((u, j): HttpUpstreamConfig => {
          const up = table(u, [...rp, 'upstreams', j], ['url', 'weight', 'tls_verify', 'tls_ca', 'tls_servername']);
          if (up.url === undefined) fail([...rp, 'upstreams', j], 'needs url');
          const text = str(up.url, [...rp, 'upstreams', j, 'url']);
          let url: URL | undefined;
          try {
            url = new URL(text);
          } catch {
            url = undefined;
          }
          if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
            fail([...rp, 'upstreams', j, 'url'], `must be an origin such as "http://127.0.0.1:9080" or "https://api.internal" (no path or query), got ${show(text)}`);
          }
          const secure = url!.protocol === 'https:';
          const up2: Path = [...rp, 'upstreams', j];
          if (!secure) for (const k of ['tls_verify', 'tls_ca', 'tls_servername']) if (up[k] !== undefined) fail([...up2, k], 'is only for https:// upstreams');
          const utls: UpstreamTlsConfig | null = secure
            ? {
                verify: bool(up.tls_verify, [...up2, 'tls_verify'], true),
                ca: up.tls_ca === undefined ? null : readPem(resolve(base, str(up.tls_ca, [...up2, 'tls_ca'])), [...up2, 'tls_ca']),
                servername: up.tls_servername === undefined ? null : str(up.tls_servername, [...up2, 'tls_servername']),
              }
            : null;
          const port = url!.port === '' ? (secure ? 443 : 80) : Number(url!.port);
          const h = url!.hostname.startsWith('[') ? url!.hostname.slice(1, -1) : url!.hostname;
          const addr = `${url!.hostname}:${port}`;
          return { url: `${url!.protocol}//${url!.host}`, addr, endpoint: { kind: 'tcp', addr, host: h, port }, weight: int(up.weight, [...rp, 'upstreams', j, 'weight'], 1, 1000000, 1), tls: utls };
        });
        routes.push({ host, path, upstreams: ups, balance: oneOf(rt.balance, [...rp, 'balance'], BALANCES, 'round_robin'), ...common });
      });
    }
    let tls: TlsCertConfig[] | null = null;
    if (s.tls !== undefined) {
      const list = Array.isArray(s.tls) ? (s.tls as unknown[]) : [s.tls];
      if (list.length === 0) fail([...p, 'tls'], 'must be { cert, key } or a non-empty array of { cert, key, names }');
      tls = list.map((c, i) => {
        const tp: Path = Array.isArray(s.tls) ? [...p, 'tls', i] : [...p, 'tls'];
        const t = table(c, tp, ['cert', 'key', 'names']);
        if (t.cert === undefined) fail(tp, 'needs cert (a PEM file, relative to the config file)');
        if (t.key === undefined) fail(tp, 'needs key (a PEM file, relative to the config file)');
        const certFile = resolve(base, str(t.cert, [...tp, 'cert']));
        const keyFile = resolve(base, str(t.key, [...tp, 'key']));
        const cert = readPem(certFile, [...tp, 'cert']);
        const key = readPem(keyFile, [...tp, 'key']);
        let leaf: X509Certificate | undefined;
        try {
          leaf = new X509Certificate(cert);
        } catch (e) {
          fail([...tp, 'cert'], `${certFile} is not a PEM certificate (${(e as Error).message})`);
        }
        try {
          const pk = createPrivateKey(key);
          if (!leaf!.checkPrivateKey(pk)) fail([...tp, 'key'], `${keyFile} is not the private key of ${certFile}`);
        } catch (e) {
          if ((e as { code?: string }).code === 'ERR_RINGIO_CONFIG') throw e;
          fail([...tp, 'key'], `${keyFile} is not a PEM private key (${(e as Error).message})`);
        }
        let names: string[] | null = null;
        if (t.names !== undefined) {
          if (!Array.isArray(t.names) || t.names.length === 0) fail([...tp, 'names'], `must be a non-empty array of server names, got ${show(t.names)}`);
          names = (t.names as unknown[]).map((n, j) => {
            if (typeof n !== 'string' || !/^(\*\.)?[A-Za-z0-9.-]+$/.test(n)) fail([...tp, 'names', j], `must be a server name such as "example.com" or "*.example.com", got ${show(n)}`);
            return (n as string).toLowerCase();
          });
        }
        return { cert, key, names, certFile, keyFile };
      });
    }
    const backoffMin = ms(s.backoff_min, [...p, 'backoff_min'], 1000, false);
    const backoffMax = ms(s.backoff_max, [...p, 'backoff_max'], 30000, false);
    if (backoffMax < backoffMin) fail([...p, 'backoff_max'], `must be >= backoff_min (${backoffMin} ms)`);
    let splice: ServerConfig['splice'] = 'auto';
    if (s.splice === true) splice = 'always';
    else if (s.splice === false) splice = 'never';
    else splice = oneOf(s.splice, [...p, 'splice'], ['auto', 'always', 'never'] as const, 'auto');
    let proxyProtocol: ServerConfig['proxyProtocol'] = 'off';
    if (s.proxy_protocol === false) proxyProtocol = 'off';
    else proxyProtocol = oneOf(s.proxy_protocol, [...p, 'proxy_protocol'], ['off', 'v1', 'v2'] as const, 'off');
    servers[name] = {
      name,
      listen: s.listen as string,
      endpoint: ep,
      protocol,
      upstreams,
      balance: oneOf(s.balance, [...p, 'balance'], BALANCES, 'round_robin'),
      connectTimeout: ms(s.connect_timeout, [...p, 'connect_timeout'], 5000, false),
      idleTimeout: ms(s.idle_timeout, [...p, 'idle_timeout'], 600000, true),
      maxConnections: int(s.max_connections, [...p, 'max_connections'], 0, 10000000, 0),
      connectAttempts: int(s.connect_attempts, [...p, 'connect_attempts'], 1, 100, Math.min(upstreams.length, 3)),
      backoffMin,
      backoffMax,
      proxyProtocol,
      splice,
      bufferSize: int(s.buffer_size, [...p, 'buffer_size'], 1024, 16 * 1024 * 1024, 16384),
      backlog: int(s.backlog, [...p, 'backlog'], 1, 65535, 1024),
      accessLog: bool(s.access_log, [...p, 'access_log'], false),
      routes,
      responseTimeout: ms(s.response_timeout, [...p, 'response_timeout'], 60000, false),
      bodyTimeout: ms(s.body_timeout, [...p, 'body_timeout'], 60000, true),
      upstreamKeepalive: ms(s.upstream_keepalive, [...p, 'upstream_keepalive'], 4000, false),
      forwarded: bool(s.forwarded, [...p, 'forwarded'], true),
      via: viaName(s.via, [...p, 'via']),
      maxBodySize: int(s.max_body_size, [...p, 'max_body_size'], 0, Number.MAX_SAFE_INTEGER, 0),
      tls,
      handshakeTimeout: ms(s.handshake_timeout, [...p, 'handshake_timeout'], 10000, true),
    };
  }
  if (Object.keys(servers).length === 0 && admin === null) fail(['servers'], 'no servers and no admin listener: nothing to do');
  // The files the config names count as part of it: new certificates make a reload that is not "unchanged".
  const hash = createHash('sha256').update(text);
  for (const sv of Object.values(servers)) {
    for (const c of sv.tls ?? []) hash.update(c.cert).update(c.key);
    for (const r of sv.routes) for (const u of r.upstreams) if (u.tls?.ca) hash.update(u.tls.ca);
  }
  return { file: abs, hash: hash.digest('hex'), runtime: { threads, pin, driver }, admin, upgrade, log, servers };
}

/** Reads and checks a config file (parseConfig); ConfigError when it cannot be read or is invalid. */
export function loadConfig(file: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the config: ${(e as Error).message}`, file, '', undefined);
  }
  return parseConfig(text, file);
}

/** The listener identity: two servers (or two configs) with the same key can share one socket. */
export function listenKey(ep: Endpoint): string {
  return ep.kind === 'unix' ? `unix:${ep.path}` : `${ep.host}:${ep.port}`;
}

export function configError(msg: string): Error {
  return ringioError('ERR_RINGIO_CONFIG', msg);
}
