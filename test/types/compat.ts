// node:http and node:tls over ringio sockets; the rented-buffer API over any Duplex.
import http from 'node:http';
import tls from 'node:tls';
import { pipeline } from 'node:stream/promises';
import type { Duplex } from 'node:stream';
import { start } from '@ringio/runtime';
import { TcpListener, TcpStream, UnixStream } from '@ringio/net';
import { toDuplex, fromDuplex, SocketDuplex, RentedDuplex, type ToDuplexOptions } from '@ringio/compat';

await start(async () => {
  const listener = await TcpListener.bind('127.0.0.1:0');
  const server = http.createServer((_req, res) => res.end('hello\n'));
  server.emit('listening');
  const client = await TcpStream.connect(listener.localAddr);
  const [stream] = await listener.accept();
  const opts: ToDuplexOptions = { readSize: 16384, allowHalfOpen: false };
  const duplex: SocketDuplex = toDuplex(stream, opts);
  const asDuplex: Duplex = duplex;
  server.emit('connection', asDuplex);

  // node:tls over a ringio socket, and the rented-buffer API back over the TLSSocket.
  const socket = tls.connect({ socket: toDuplex(client), servername: 'localhost', rejectUnauthorized: false });
  const rented: RentedDuplex = fromDuplex(socket);
  const [n, buf] = await rented.read(Buffer.alloc(1024)).catch(() => [0, Buffer.alloc(0)] as [number, Buffer]);
  const b: Buffer = buf;
  void [n, b];
  await rented.close();
  // @ts-expect-error fromDuplex takes a stream.Duplex
  fromDuplex(stream);
  // @ts-expect-error use toDuplex(): the constructor is internal
  new SocketDuplex(stream, 1, {});

  // @ts-expect-error use fromDuplex()
  new RentedDuplex(socket);
  const [x, y] = UnixStream.pair();
  await pipeline(toDuplex(x), toDuplex(y)).catch(() => undefined);
  await listener.close();
});
