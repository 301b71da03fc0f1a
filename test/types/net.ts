// TCP, Unix and UDP sockets the way users write them; addresses ringio hands out are accepted back.
import { start, spawn } from '@ringio/runtime';
import {
  TcpListener,
  TcpStream,
  UnixListener,
  UnixStream,
  UdpSocket,
  UnixDatagram,
  copy,
  copyBidirectional,
  parseAddr,
  type AddrInput,
  type SocketAddr,
  type TcpListenOptions,
  type TcpConnectOptions,
  type UdpBindOptions,
  type UnixListenOptions,
  type SpliceCopyOptions,
  type CopyOptions,
  type ReadOptions,
  type WriteOptions,
} from '@ringio/net';

await start(async () => {
  const opts: TcpListenOptions = { reusePort: true, backlog: 128 };
  await using listener = await TcpListener.bind('127.0.0.1:0', opts);
  const local: SocketAddr = listener.localAddr;
  const family: 'IPv4' | 'IPv6' = local.family;
  void family;

  const server = spawn(async () => {
    const [conn, peer] = await listener.accept();
    const addr: SocketAddr = peer;
    void addr;
    const [n, buf] = await conn.read(Buffer.alloc(1024));
    const b: Buffer = buf;
    const wopts: WriteOptions = { length: n };
    await conn.writeAll(b, wopts);
    await conn.close();
  });

  // A SocketAddr goes straight back into connect.
  await using client = await TcpStream.connect(listener.localAddr);
  await TcpStream.connect({ host: 'localhost', port: local.port }).then((s) => s.close());
  const input: AddrInput = client.peerAddr;
  void input;
  await client.writeAll(Buffer.from('hello'));
  const ropts: ReadOptions = { offset: 0, length: 5 };
  const [n, reply] = await client.readExact(new Uint8Array(5), ropts);
  const u: Uint8Array = reply;
  void [n, u];
  await server;
  const copts: TcpConnectOptions = { noDelay: false, signal: AbortSignal.timeout(1000) };
  await TcpStream.connect(listener.localAddr, copts).then((s) => s.close());
  const bopts: UdpBindOptions = { reusePort: true };
  const lopts: UnixListenOptions = { backlog: 16 };
  const sopts: SpliceCopyOptions = { chunk: 4096 };
  const co: CopyOptions = { bufferSize: 1024 };
  void [bopts, lopts, sopts, co];
  // @ts-expect-error noDelay is a boolean
  await TcpStream.connect(listener.localAddr, { noDelay: 1 });
  // @ts-expect-error connect takes an address, not a port number
  await TcpStream.connect(8080);
  // @ts-expect-error the constructor is internal: use connect() or accept()
  new TcpStream(3);

  // UDP: reply to whoever sent.
  await using udp = await UdpSocket.bind('127.0.0.1:0');
  await using peer = await UdpSocket.bind({ host: '127.0.0.1', port: 0 });
  await peer.sendTo(Buffer.from('ping'), udp.localAddr);
  const [got, data, from] = await udp.recvFrom(Buffer.alloc(64));
  await udp.sendTo(data.subarray(0, got), from);
  await udp.connect(peer.localAddr);
  await UdpSocket.bind(udp.localAddr).catch(() => undefined);

  // Unix sockets use paths.
  const [a, b] = UnixStream.pair();
  await a.writeAll(Buffer.from('x'));
  await b.read(Buffer.alloc(1));
  const ul = await UnixListener.bind('\0ringio-types-test');
  const path: string = ul.localAddr;
  void path;
  await ul.close();
  const [d1, d2] = UnixDatagram.pair();
  await d1.send(Buffer.from('x'));
  const [, , src] = await d2.recvFrom(Buffer.alloc(4));
  const srcPath: string = src;
  void srcPath;
  // @ts-expect-error a Unix datagram socket sends to paths, not IP addresses
  await d1.sendTo(Buffer.from('x'), udp.localAddr);

  await copy(a, b, { bufferSize: 4096 }).catch(() => 0);
  const [ab, ba]: [number, number] = await copyBidirectional(a, b).catch(() => [0, 0] as [number, number]);
  void [ab, ba];
  await Promise.all([a.close(), b.close(), d1.close(), d2.close()]);

  const parsed: { host: string; port: number } = parseAddr(local);
  void parsed;
});
