/**
 * The native pieces the upgrade stands on (in @ringio/runtime's sys): sendFds/recvFds (SCM_RIGHTS),
 * dup, and accept without waiting. Checked directly, on the driver under test.
 */
import test from 'ava';
import { closeSync, POLLIN, poll, sys } from '@ringio/runtime';
import { TcpListener, TcpStream, UnixStream } from '@ringio/net';
import { run, unavailable } from './helpers.js';

test.serial('sendFds/recvFds pass listening sockets; the copy accepts what the original queued', async (t) => {
  if (unavailable !== null) return void t.pass(unavailable);
  await run(async () => {
    const [a, b] = UnixStream.pair();
    const l = await TcpListener.bind('127.0.0.1:0', { reusePort: false });
    t.throws(() => sys.recvFds(b.fd, Buffer.alloc(16)), { code: 'EAGAIN' });
    t.is(sys.sendFds(a.fd, Buffer.from('hello'), [l.fd]), 5);
    const buf = Buffer.alloc(64);
    const [n, fds] = sys.recvFds(b.fd, buf, 4);
    t.is(buf.toString('utf8', 0, n), 'hello');
    t.is(fds.length, 1);
    t.not(fds[0], l.fd);
    // The received fd is the same socket: a connection queued on it is accepted through it.
    const client = TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port });
    await poll(fds[0]!, POLLIN);
    const cfd = sys.accept(fds[0]!);
    t.true(cfd >= 0);
    t.is(sys.accept(fds[0]!), -1, 'nothing more queued: -1, no wait');
    const d = sys.dup(fds[0]!);
    t.true(d > 2);
    closeSync(d);
    closeSync(cfd);
    closeSync(fds[0]!);
    await (await client).close();
    // A message without fds, and too many fds.
    t.is(sys.sendFds(a.fd, Buffer.from('x'), []), 1);
    t.deepEqual(sys.recvFds(b.fd, buf, 1)[1], []);
    t.throws(() => sys.sendFds(a.fd, Buffer.from('x'), new Array(254).fill(l.fd)), { instanceOf: RangeError });
    t.throws(() => sys.sendFds(a.fd, Buffer.alloc(0), []), { instanceOf: TypeError });
    t.throws(() => sys.recvFds(b.fd, buf, 0), { instanceOf: RangeError });
    t.throws(() => sys.sendFds(-1, Buffer.from('x'), []), { instanceOf: RangeError });
    // More fds than the receiver asked for: the ones that arrived are closed, EMSGSIZE.
    sys.sendFds(a.fd, Buffer.from('y'), [l.fd, l.fd, l.fd]);
    t.throws(() => sys.recvFds(b.fd, buf, 1), { code: 'EMSGSIZE' });
    await Promise.all([a.close(), b.close(), l.close()]);
  });
});
