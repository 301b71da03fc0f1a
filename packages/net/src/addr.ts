/**
 * Socket addresses: parsing 'host:port' / '[v6]:port' / { host, port }, resolving names without
 * blocking the thread (dns.lookup runs on libuv's pool), and sockaddr encoding and decoding.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AF_INET, AF_INET6, AF_UNIX } from './constants.js';

/**
 * An address to bind, connect or send to: `'host:port'`, `'[v6]:port'`, `{ host, port }`, or a
 * {@link SocketAddr} that ringio handed out (`localAddr`, `peerAddr`, `accept()`, `recvFrom()`), so an
 * address you got can always be given back. Host names are resolved with dns.lookup; `''` and
 * `'localhost'` mean 127.0.0.1.
 */
export type AddrInput = string | { host: string; port: number } | SocketAddr;

/** An IP socket address, as ringio reports one (`localAddr`, `peerAddr`, `accept()`, `recvFrom()`). */
export interface SocketAddr {
  /** The IP address, as text: '127.0.0.1', '::1' (RFC 5952 compressed), '::ffff:127.0.0.1' (IPv4-mapped). No scope id. */
  address: string;
  /** The port, 0..65535. */
  port: number;
  /** 'IPv4' for an AF_INET socket, 'IPv6' for AF_INET6 (IPv4-mapped addresses included). */
  family: 'IPv4' | 'IPv6';
}

export interface Sockaddr {
  buf: Uint8Array;
  len: number;
  family: number;
}

function checkPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port)) throw new TypeError(`port must be an integer, got ${String(port)}`);
  if (port < 0 || port > 65535) throw new RangeError(`port must be in 0..65535, got ${port}`);
  return port;
}

/**
 * Splits an address into host and port, without resolving: `'host:port'` splits at the last ':',
 * `'[v6]:port'` takes the brackets off, `{ host, port }` and a SocketAddr (`{ address, port, family }`)
 * are taken as they are. Throws TypeError / RangeError for what is not an address.
 */
export function parseAddr(addr: AddrInput): { host: string; port: number } {
  if (typeof addr === 'string') {
    let host: string;
    let portText: string;
    if (addr.startsWith('[')) {
      const end = addr.indexOf(']');
      if (end < 0 || addr[end + 1] !== ':') throw new TypeError(`bad address '${addr}': expected '[v6]:port'`);
      host = addr.slice(1, end);
      portText = addr.slice(end + 2);
    } else {
      const colon = addr.lastIndexOf(':');
      if (colon < 0) throw new TypeError(`bad address '${addr}': expected 'host:port'`);
      host = addr.slice(0, colon);
      portText = addr.slice(colon + 1);
      if (host.includes(':')) throw new TypeError(`bad address '${addr}': write IPv6 as '[${host}]:${portText}'`);
    }
    if (!/^\d+$/.test(portText)) throw new TypeError(`bad port in '${addr}'`);
    return { host, port: checkPort(Number(portText)) };
  }
  if (addr !== null && typeof addr === 'object') {
    if ('host' in addr && typeof addr.host === 'string') return { host: addr.host, port: checkPort(addr.port) };
    // A SocketAddr that ringio handed out (localAddr, peerAddr, accept(), recvFrom()).
    if (!('host' in addr) && 'address' in addr && typeof addr.address === 'string') {
      return { host: addr.address, port: checkPort(addr.port) };
    }
  }
  throw new TypeError("address must be 'host:port', { host, port } or a SocketAddr { address, port }");
}

/** Resolves a host name (no blocking: libuv's thread pool) and encodes a sockaddr. */
export async function resolveAddr(addr: AddrInput): Promise<Sockaddr> {
  const { host, port } = parseAddr(addr);
  const h = host === '' || host === 'localhost' ? '127.0.0.1' : host;
  if (isIP(h)) return encodeInet(h, port);
  const r = await lookup(h);
  return encodeInet(r.address, port);
}

/** Encodes a literal IP address; throws for names. */
export function encodeInet(ip: string, port: number): Sockaddr {
  const v = isIP(ip);
  if (v === 4) {
    const buf = new Uint8Array(16);
    const dv = new DataView(buf.buffer);
    dv.setUint16(0, AF_INET, true);
    dv.setUint16(2, port, false);
    const parts = ip.split('.');
    for (let i = 0; i < 4; i++) buf[4 + i] = Number(parts[i]);
    return { buf, len: 16, family: AF_INET };
  }
  if (v === 6) {
    const buf = new Uint8Array(28);
    const dv = new DataView(buf.buffer);
    dv.setUint16(0, AF_INET6, true);
    dv.setUint16(2, port, false);
    let text = ip;
    let scope = 0;
    const pct = text.indexOf('%');
    if (pct >= 0) {
      const z = text.slice(pct + 1);
      scope = /^\d+$/.test(z) ? Number(z) : 0;
      text = text.slice(0, pct);
    }
    buf.set(parseIPv6(text), 8);
    dv.setUint32(24, scope, true);
    return { buf, len: 28, family: AF_INET6 };
  }
  throw new TypeError(`not an IP address: '${ip}'`);
}

function parseIPv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let tail = text;
  let v4: number[] | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    v4 = text.slice(lastColon + 1).split('.').map(Number);
    tail = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = tail.includes('::') ? tail.split('::') : [tail, undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...new Array(8 - h.length - r.length).fill('0'), ...r];
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i] ?? '0', 16);
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  }
  if (v4) for (let i = 0; i < 4; i++) out[12 + i] = v4[i]!;
  return out;
}

function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':');
}

/** decodeInet's last IPv4 address (this thread's), as a number and as its string. */
let lastV4 = -1;
let lastV4Str = '';

/** Decodes an AF_INET / AF_INET6 sockaddr. */
export function decodeInet(buf: Uint8Array): SocketAddr {
  const family = buf[0]! | (buf[1]! << 8);
  const port = (buf[2]! << 8) | buf[3]!;
  if (family === AF_INET) {
    // A server sees the same few client IPs again and again: the last one's string is reused.
    const ip = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
    if (ip !== lastV4) {
      lastV4Str = `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`;
      lastV4 = ip;
    }
    return { address: lastV4Str, port, family: 'IPv4' };
  }
  if (family === AF_INET6) return { address: formatIPv6(buf.subarray(8, 24)), port, family: 'IPv6' };
  throw new TypeError(`not an inet sockaddr (family ${family})`);
}

const SUN_PATH_MAX = 108;

/** Encodes a sockaddr_un. A path starting with '\0' is in the abstract namespace. */
export function encodeUnix(path: string): Sockaddr {
  if (typeof path !== 'string') throw new TypeError('path must be a string');
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length === 0) throw new RangeError('path must not be empty');
  const abstract = bytes[0] === 0;
  if (bytes.length > SUN_PATH_MAX - (abstract ? 0 : 1)) {
    throw new RangeError(`unix socket path too long (${bytes.length} bytes, max ${SUN_PATH_MAX - 1})`);
  }
  const buf = new Uint8Array(2 + SUN_PATH_MAX);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  buf.set(bytes, 2);
  return { buf, len: 2 + bytes.length + (abstract ? 0 : 1), family: AF_UNIX };
}

/**
 * Decodes a sockaddr_un of `len` bytes ('' for an unnamed socket). Without `len` (the kernel's length
 * did not come back), trailing NULs are dropped: an unnamed peer decodes to '' and an abstract name to
 * '\0name'.
 */
export function decodeUnix(buf: Uint8Array, len?: number): string {
  let end = len ?? buf.byteLength;
  if (len === undefined) while (end > 2 && buf[end - 1] === 0) end--;
  if (end <= 2) return '';
  const path = buf.subarray(2, end);
  if (path[0] === 0) return Buffer.from(path).toString('utf8');
  const nul = path.indexOf(0);
  return Buffer.from(nul < 0 ? path : path.subarray(0, nul)).toString('utf8');
}
