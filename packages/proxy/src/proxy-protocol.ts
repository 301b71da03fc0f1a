/**
 * PROXY protocol headers (HAProxy's spec, v1 text and v2 binary) that tell the upstream who the client
 * was. Built once per connection, before the first byte is relayed.
 */
import type { SocketAddr } from '@ringio/net';

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Who the client was, for a PROXY protocol header: TCP addresses, Unix socket paths, or unknown (the addresses could not be read). */
export type PeerInfo = { kind: 'tcp'; src: SocketAddr; dst: SocketAddr } | { kind: 'unix'; src: string; dst: string } | { kind: 'unknown' };

/** v1: "PROXY TCP4 src dst sport dport\r\n", or "PROXY UNKNOWN\r\n" when the addresses are not TCP. */
export function proxyV1(p: PeerInfo): Buffer {
  if (p.kind !== 'tcp' || p.src.family !== p.dst.family) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const fam = p.src.family === 'IPv4' ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${fam} ${p.src.address} ${p.dst.address} ${p.src.port} ${p.dst.port}\r\n`, 'latin1');
}

function ipBytes(addr: SocketAddr): Buffer {
  if (addr.family === 'IPv4') return Buffer.from(addr.address.split('.').map(Number));
  // Expand '::' and an embedded IPv4 tail.
  let a = addr.address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    a = a.slice(0, -v4[1]!.length) + ((b[0]! << 8) | b[1]!).toString(16) + ':' + ((b[2]! << 8) | b[3]!).toString(16);
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return out;
}

/** v2: the binary header, command PROXY; AF_INET/AF_INET6 over STREAM, AF_UNIX with paths, else LOCAL. */
export function proxyV2(p: PeerInfo): Buffer {
  let famProto: number;
  let body: Buffer;
  let cmd = 0x21; // version 2, PROXY
  if (p.kind === 'tcp' && p.src.family === p.dst.family) {
    const v4 = p.src.family === 'IPv4';
    famProto = v4 ? 0x11 : 0x21;
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(p.src.port, 0);
    ports.writeUInt16BE(p.dst.port, 2);
    body = Buffer.concat([ipBytes(p.src), ipBytes(p.dst), ports]);
  } else if (p.kind === 'unix') {
    famProto = 0x31;
    body = Buffer.alloc(216);
    body.write(p.src.slice(0, 107), 0, 'utf8');
    body.write(p.dst.slice(0, 107), 108, 'utf8');
  } else {
    cmd = 0x20; // LOCAL: the upstream uses the connection's own addresses
    famProto = 0x00;
    body = Buffer.alloc(0);
  }
  const head = Buffer.alloc(16);
  V2_SIG.copy(head, 0);
  head[12] = cmd;
  head[13] = famProto;
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}
