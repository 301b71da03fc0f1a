// @ringio/net from its tarball: an echo over TCP on loopback.
import { start, spawn } from '@ringio/runtime';
import { TcpListener, TcpStream } from '@ringio/net';

const total = await start(async () => {
  const listener = await TcpListener.bind('127.0.0.1:0');
  const server = spawn(async () => {
    for await (const [stream] of listener) {
      let buf = Buffer.alloc(4096);
      for (;;) {
        const [n, b] = await stream.read(buf);
        if (n === 0) break;
        [, buf] = await stream.writeAll(b, { length: n });
      }
      await stream.close();
      return;
    }
  });
  const client = await TcpStream.connect({ host: '127.0.0.1', port: listener.localAddr.port });
  let echoed = 0;
  for (let i = 0; i < 100; i++) {
    const msg = Buffer.from(`message ${i} `.padEnd(64, '.'));
    await client.writeAll(msg);
    const [, back] = await client.readExact(Buffer.alloc(64));
    if (!back.equals(msg)) throw new Error(`echo ${i} came back as ${back}`);
    echoed += back.length;
  }
  await client.close();
  await server;
  await listener.close();
  return echoed;
});
console.log(`ok net: ${total} bytes echoed over TCP`);
