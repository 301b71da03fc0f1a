/**
 * @ringio/net close() on the driver under test: a socket with nothing in flight closes its fd during the
 * call (close(2), no CLOSE op); with an op in flight, only after the kernel has answered it (invariant
 * 1); a connect cancelled while in progress leaves nothing behind for the next connect on the slot or
 * the fd number it frees (the epoll engine's per-slot connect state); a connection accepted into the
 * number of an fd closed behind the driver's back starts fresh (the epoll engine's per-fd state).
 */
import { closeSync as closeBehindTheDriver } from 'node:fs';
import net from 'node:net';
import { TcpListener, TcpStream } from '@ringio/net';
import { closeSync, pipe, read, stats, timeout } from '@ringio/runtime';
import { fdCount, guard, rejectionOf, rtTest, run, tcpPairs } from './helpers.js';

rtTest('close() with nothing in flight closes the fd during the call (no op); with a read in flight, once the read has settled', async (t) => {
  await run(async () => {
    const [[c, s], [c2, s2]] = await tcpPairs(2);
    const fds = fdCount();
    const ops = stats().opsInFlight;
    const closing = s.close();
    t.is(fdCount(), fds - 1, 'closed during the close() call');
    t.is(stats().opsInFlight, ops, 'no op went to the driver for it');
    t.is(s.fd, -1);
    await closing;
    t.is((await guard(c.read(Buffer.alloc(8)), 5000, 'the peer reads the end'))[0], 0);
    await c.close();
    // A silent peer: the read waits until close() cancels it.
    const fds2 = fdCount();
    const reading = c2.read(Buffer.alloc(8));
    await new Promise((r) => setTimeout(r, 5));
    const closing2 = c2.close();
    t.is(fdCount(), fds2, 'a read is in flight: the fd stays open until the kernel has answered it');
    t.is((await rejectionOf(t, reading)).code, 'ERR_RINGIO_CLOSED');
    await closing2;
    t.is(fdCount(), fds2 - 1);
    t.is(c2.close(), closing2, 'close() is idempotent');
    await s2.close();
  });
});

/** SocketStream's internal close without a promise (stripped from the .d.ts). */
function closeTo(s: TcpStream, cb: (e: unknown) => void): void {
  (s as unknown as { _closeTo(cb: (e: unknown) => void): void })._closeTo(cb);
}

rtTest('_closeTo(cb) (close without a promise): at once with nothing in flight; after the read in flight has settled; close() before or after it agrees', async (t) => {
  await run(async () => {
    const [[c, s], [c2, s2], [c3, s3]] = await tcpPairs(3);
    const fds = fdCount();
    const ops = stats().opsInFlight;
    let first: unknown = 'not called';
    closeTo(s, (e) => (first = e));
    t.is(first, null, 'nothing in flight: the callback ran during the call');
    t.is(fdCount(), fds - 1);
    t.is(stats().opsInFlight, ops, 'no op went to the driver for it');
    t.is(s.fd, -1);
    t.true(s.closed);
    await s.close(); // settles at once: the fd is closed
    let again: unknown = 'not called';
    closeTo(s, (e) => (again = e));
    t.is(again, null, 'idempotent');
    t.is((await guard(c.read(Buffer.alloc(8)), 5000, 'the peer reads the end'))[0], 0);

    // A read in flight (invariant 1): the fd closes once the kernel has answered it, then the callback runs.
    const fds2 = fdCount();
    const reading = c2.read(Buffer.alloc(8));
    await new Promise((r) => setTimeout(r, 5));
    const order: string[] = [];
    let cbErr: unknown = 'not called';
    closeTo(c2, (e) => {
      cbErr = e;
      order.push(`callback, fd count ${fds2 - fdCount()} down`);
    });
    t.is(cbErr, 'not called', 'a read is in flight: not yet');
    t.is(fdCount(), fds2, 'the fd stays open until the kernel has answered the read');
    t.throws(() => c2.fd === -1 && c2.setNoDelay(true), { code: 'ERR_RINGIO_CLOSED' });
    const viaPromise = c2.close().then(() => order.push('close() resolved'));
    closeTo(c2, () => order.push('second callback'));
    t.is((await rejectionOf(t, reading)).code, 'ERR_RINGIO_CLOSED');
    await viaPromise;
    t.is(cbErr, null);
    // The first callback once the fd is closed; close() made a promise, which the later callback follows.
    t.deepEqual(order, ['callback, fd count 1 down', 'close() resolved', 'second callback']);
    t.is(c2.close(), c2.close(), 'close() after it is idempotent');

    // close() first, then _closeTo: the callback follows the promise.
    const reading3 = c3.read(Buffer.alloc(8));
    await new Promise((r) => setTimeout(r, 5));
    const closing3 = c3.close();
    const after = new Promise<unknown>((resolve) => closeTo(c3, resolve));
    t.is((await rejectionOf(t, reading3)).code, 'ERR_RINGIO_CLOSED');
    await closing3;
    t.is(await after, null);
    await Promise.all([c.close(), s2.close(), s3.close()]);
    t.is(fdCount(), fds - 6, 'every fd of the three pairs is gone');
    t.is(stats().opsInFlight, ops);
  });
});

rtTest('_closeTo(cb): a callback that throws from the last op\'s completion is reported on its own, and the dispatch carries on', async (t) => {
  await run(async () => {
    const [[c, s], [c2, s2]] = await tcpPairs(2);
    const fds = fdCount();
    const r1 = c.read(Buffer.alloc(8));
    const r2 = c2.read(Buffer.alloc(8));
    await new Promise((r) => setTimeout(r, 5));
    // The report goes through queueMicrotask: catch it here instead of letting it reach the test runner.
    const reported: unknown[] = [];
    const real = globalThis.queueMicrotask;
    const boom = new Error('boom from a close callback');
    let second: unknown = 'not called';
    globalThis.queueMicrotask = (fn: () => void) =>
      real(() => {
        try {
          fn();
        } catch (e) {
          reported.push(e);
        }
      });
    try {
      closeTo(c, () => {
        throw boom;
      });
      closeTo(c2, (e) => (second = e));
      t.is((await rejectionOf(t, r1)).code, 'ERR_RINGIO_CLOSED');
      t.is((await rejectionOf(t, r2)).code, 'ERR_RINGIO_CLOSED');
      await new Promise((r) => setTimeout(r, 5));
    } finally {
      globalThis.queueMicrotask = real;
    }
    t.deepEqual(reported, [boom], 'the throw is reported once, as its own');
    t.is(second, null, 'the other stream\'s close still completed');
    t.is(fdCount(), fds - 2, 'both fds are closed');
    t.is(await c.close(), undefined, 'close() after it settles');
    await Promise.all([s.close(), s2.close()]);
  });
});

rtTest('a connect cancelled while in progress, its socket closed: the next connect (same slot, same fd number) really connects', async (t) => {
  await run(async () => {
    // A listener that never accepts, with its queue full: the kernel drops new SYNs, so a connect hangs.
    const hole = await TcpListener.bind('127.0.0.1:0', { reusePort: false, backlog: 1 });
    const holePort = hole.localAddr.port;
    const fillers = Array.from({ length: 4 }, () => net.connect(holePort, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 300));
    const good = await TcpListener.bind('127.0.0.1:0');
    const serving = (async () => {
      for (let i = 0; i < 3; i++) {
        const [s] = await good.accept();
        const b = Buffer.alloc(64);
        const [n] = await s.read(b);
        await s.writeAll(b.subarray(0, n));
        await s.close();
      }
    })();
    for (let i = 0; i < 3; i++) {
      const e = await rejectionOf(t, timeout((signal) => TcpStream.connect({ host: '127.0.0.1', port: holePort }, { signal }), 100));
      t.is(e.code, 'ERR_RINGIO_TIMEOUT');
      const c = await guard(TcpStream.connect({ host: '127.0.0.1', port: good.localAddr.port }), 5000, 'the next connect');
      await c.writeAll(Buffer.from(`hello ${i}`));
      const b = Buffer.alloc(64);
      const [n] = await guard(c.read(b), 5000, 'the echo');
      t.is(b.subarray(0, n).toString(), `hello ${i}`);
      await c.close();
    }
    await serving;
    await good.close();
    for (const f of fillers) f.destroy();
    await hole.close();
  });
});

rtTest("a connection accepted into the number of an fd closed behind the driver's back starts fresh (no stale readiness state or waiter)", async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    // The connection waits in the backlog; the client's socket has its fd number already.
    const c = await TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port });
    const [r, w] = pipe();
    // A read waits on r (on epoll: r is registered and the read is parked on it) ...
    const stale = read(r, Buffer.alloc(8)).then(
      ([n]) => n,
      (e: { code?: string }) => e.code,
    );
    await new Promise((res) => setTimeout(res, 5));
    // ... when r is closed without the driver's knowledge, and the next accept gets its number.
    closeBehindTheDriver(r);
    const [s] = await guard(l.accept(), 5000, 'accept');
    t.is(s.fd, r, "the accepted socket has the closed fd's number");
    await c.writeAll(Buffer.from('hello'));
    const [n, got] = await guard(s.read(Buffer.alloc(16)), 5000, 'the accepted socket reads what its peer sent');
    t.is(got.toString('latin1', 0, n), 'hello');
    closeSync(w);
    // epoll: the read parked on the old fd failed EBADF when the number was reused; io_uring: its read
    // holds the pipe, and ends with the write end.
    t.true([0, 'EBADF'].includes((await guard(stale, 5000, 'the stale read settles')) ?? 'no code'));
    await s.close();
    await c.close();
    await l.close();
  });
});
