/**
 * Addresses ringio hands out (SocketAddr: localAddr, peerAddr, accept(), recvFrom()) are accepted back
 * wherever an address is expected: connect, bind, sendTo, UdpSocket#connect, parseAddr.
 */
import { spawn } from '@ringio/runtime';
import { TcpListener, TcpStream, UdpSocket, parseAddr } from '@ringio/net';
import { rt, rtTest } from './helpers.js';

rtTest('TcpStream.connect(listener.localAddr), over IPv4 and IPv6', async (t) => {
  await rt(async () => {
    for (const host of ['127.0.0.1:0', '[::1]:0']) {
      const listener = await TcpListener.bind(host);
      const served = spawn(async () => {
        const [conn, peer] = await listener.accept();
        await conn.writeAll(Buffer.from(`${peer.family}`));
        await conn.close();
        return peer;
      });
      const client = await TcpStream.connect(listener.localAddr);
      const [n, buf] = await client.readExact(Buffer.alloc(4));
      t.is(buf.toString('utf8', 0, n), listener.localAddr.family);
      const peer = await served;
      // The peer the server saw is the client's local address, and connects back as an address too.
      t.deepEqual(peer, client.localAddr);
      t.deepEqual(parseAddr(client.peerAddr), { host: listener.localAddr.address, port: listener.localAddr.port });
      await Promise.all([client.close(), listener.close()]);
    }
  });
});

rtTest('UdpSocket: sendTo(reply, from), connect(localAddr), bind(localAddr)', async (t) => {
  await rt(async () => {
    const server = await UdpSocket.bind('127.0.0.1:0');
    const client = await UdpSocket.bind('127.0.0.1:0');
    await client.sendTo(Buffer.from('ping'), server.localAddr);
    const [n, buf, from] = await server.recvFrom(Buffer.alloc(16));
    t.deepEqual(from, client.localAddr);
    await server.sendTo(Buffer.from(`pong:${buf.toString('utf8', 0, n)}`), from);
    const [m, reply] = await client.recvFrom(Buffer.alloc(16));
    t.is(reply.toString('utf8', 0, m), 'pong:ping');
    await client.connect(server.localAddr);
    await client.send(Buffer.from('again'));
    const [k, again] = await server.recvFrom(Buffer.alloc(16));
    t.is(again.toString('utf8', 0, k), 'again');
    // A SocketAddr binds too (here: the server's, once it is free again).
    const addr = server.localAddr;
    await server.close();
    const rebound = await UdpSocket.bind(addr);
    t.deepEqual(rebound.localAddr, addr);
    await Promise.all([client.close(), rebound.close()]);
  });
});

rtTest('parseAddr takes a SocketAddr; a bad object is still a TypeError', (t) => {
  t.deepEqual(parseAddr({ address: '::1', port: 80, family: 'IPv6' }), { host: '::1', port: 80 });
  t.throws(() => parseAddr({ address: 5, port: 80 } as never), { instanceOf: TypeError });
  t.throws(() => parseAddr({ address: '::1', port: 70000, family: 'IPv6' }), { instanceOf: RangeError });
});
