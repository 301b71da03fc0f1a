/**
 * TcpListener.acceptEach(onConnection): the callback accept for servers that hand each connection on
 * (node:http through toDuplex). Every connection reaches the handler once, with no promise made per
 * connection; close() ends it quietly; an error in the handler ends it and leaves the listener open; no fd
 * leaks. Both accept modes: multishot (io_uring 5.19+) and single (epoll, RINGIO_ACCEPT_MULTISHOT=0).
 */
import net from 'node:net';
import { TcpListener, type TcpStream } from '@ringio/net';
import { stats, sys } from '@ringio/runtime';
import { acceptModes as modes, connectOutcome, fdsBackTo, fdCount, guard, promiseCounter, rejectionOf, rtTest, run, withAcceptMode as withMode } from './helpers.js';

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;

function connectN(port: number, n: number): net.Socket[] {
  return Array.from({ length: n }, () => net.connect(port, '127.0.0.1')); // node:net: the peers make no promise
}

for (const [mode, multishot] of modes) {
  rtTest(`acceptEach, ${mode}: 40 connections reach the handler with no promise made per connection`, async (t) => {
    await run(async () => {
      const l = await TcpListener.bind('127.0.0.1:0');
      const N = 40;
      const got: TcpStream[] = [];
      let all!: () => void;
      const allIn = new Promise<void>((resolve) => (all = resolve));
      // Promises made from the first connection's arrival to the last's (any frame of the runtime's or
      // net's code on the stack, not the driver's flush microtask: one per batch of ops, not per connection).
      const hook = promiseCounter(/packages\/(net|runtime)\//);
      // The driver's flush jobs: an accept settled through a bound resolve deferred each batch's flush to
      // one (39 for 40 connections in single mode); now a flush job comes only where nested flushes stop
      // (the driver flushes at a dispatch's end up to 8 dispatches deep).
      const flushes = promiseCounter(/queueFlush/, 16, null);
      const each = withMode(multishot, () =>
        l.acceptEach((s) => {
          got.push(s);
          if (got.length === 1) {
            hook.enable();
            flushes.enable();
          }
          if (got.length === N) {
            hook.disable();
            flushes.disable();
            all();
          }
        }),
      );
      const peers = connectN(l.localAddr.port, N);
      await guard(allIn, 10_000, 'every connection reaches the handler');
      hook.disable();
      flushes.disable();
      t.is(got.length, N);
      t.is(hook.count, 0, 'acceptEach makes no promise per connection (connections 2 to 40)');
      t.true(flushes.count <= N / 8, `flush jobs: ${flushes.count} for ${N - 1} connections, at most one per 8 (what the handler writes goes out as the dispatch ends)`);
      const ports = new Set(got.map((s) => s.peerAddr.port));
      t.is(ports.size, N, 'each connection once, with its peer address');
      for (const p of peers) t.true(ports.has(p.localPort!));
      // As accept()'s streams (net-tcp.test.ts), with or without the peer's address known at accept.
      t.true(
        got.every((s) => sys.getsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY) !== 0),
        'every stream acceptEach hands over has TCP_NODELAY',
      );
      await l.close();
      await guard(each, 5000, "acceptEach's end");
      await Promise.all(got.map((s) => s.close()));
      for (const p of peers) p.destroy();
    });
  });

  rtTest(`acceptEach, ${mode}: close() ends it quietly, a connection after it is refused, no fd leaks`, async (t) => {
    await run(async () => {
      const fds = fdCount();
      const l = await TcpListener.bind('127.0.0.1:0');
      const port = l.localAddr.port;
      const got: TcpStream[] = [];
      let first!: () => void;
      const one = new Promise<void>((resolve) => (first = resolve));
      const each = withMode(multishot, () =>
        l.acceptEach((s) => {
          got.push(s);
          first();
        }),
      );
      const [p] = connectN(port, 1);
      await guard(one, 5000, 'the first connection');
      await l.close();
      t.is(await guard(each, 5000, "acceptEach's end"), undefined, 'resolves on close');
      t.is(stats().opsInFlight, 0, 'no accept left in flight');
      const refused = await connectOutcome(port);
      t.is(refused, 'ECONNREFUSED');
      await got[0]!.close();
      p!.destroy();
      t.is(await fdsBackTo(fds), fds);
      // A closed listener: acceptEach resolves at once.
      t.is(await l.acceptEach(() => t.fail('no connection on a closed listener')), undefined);
    });
  });

  rtTest(`acceptEach, ${mode}: a throwing handler ends it with that error; the listener stays open`, async (t) => {
    await run(async () => {
      const l = await TcpListener.bind('127.0.0.1:0');
      const boom = new Error('boom');
      const streams: TcpStream[] = [];
      const each = withMode(multishot, () =>
        l.acceptEach((s) => {
          streams.push(s);
          throw boom;
        }),
      );
      const again = await rejectionOf(t, l.acceptEach(() => {}));
      t.true(again instanceof TypeError, 'one acceptEach at a time');
      const peers = connectN(l.localAddr.port, 1);
      t.is(await rejectionOf(t, each), boom);
      t.false(l.closed);
      // The listener still accepts: the next connection goes to accept().
      const next = l.accept();
      peers.push(...connectN(l.localAddr.port, 1));
      const [s] = await guard(next, 5000, 'accept() after acceptEach ended');
      streams.push(s);
      t.true(streams.length >= 2);
      const bad = await rejectionOf(t, l.acceptEach(42 as unknown as () => void));
      t.true(bad instanceof TypeError);
      await Promise.all(streams.map((x) => x.close()));
      await l.close();
      for (const p of peers) p.destroy();
    });
  });
}

for (const [mode, multishot] of modes) {
  rtTest(`serveEach, ${mode}: a connection whose handler throws is closed and reported, the next ones are served, close() ends it`, async (t) => {
    const fds = fdCount();
    await run(async () => {
      const l = await TcpListener.bind('127.0.0.1:0');
      const got: TcpStream[] = [];
      const errors: unknown[] = [];
      let arrived!: () => void;
      let all = new Promise<void>((r) => (arrived = r));
      let want = 1;
      const boom = new Error('handler failed');
      const serving = withMode(multishot, () =>
        l.serveEach(
          (s) => {
            if (got.length === 0 && errors.length === 0) throw boom;
            got.push(s);
            if (got.length === want) arrived();
          },
          (e) => {
            errors.push(e);
            arrived();
          },
        ),
      );
      const [first] = connectN(l.localAddr.port, 1);
      const closedByServer = new Promise<string>((resolve) => {
        first!.on('close', () => resolve('closed'));
        first!.on('error', () => resolve('closed'));
        first!.resume();
      });
      await guard(all, 5000, 'the first connection reaches the handler');
      t.deepEqual(errors, [boom], 'onError gets what the handler threw');
      t.is(await guard(closedByServer, 5000, 'the peer sees its connection closed'), 'closed');
      want = 5;
      all = new Promise<void>((r) => (arrived = r));
      const peers = connectN(l.localAddr.port, 5);
      await guard(all, 5000, 'the next five reach the handler');
      t.is(got.length, 5);
      await l.close();
      await guard(serving, 5000, "serveEach's end");
      t.is(errors.length, 1, 'a close is not an error');
      await Promise.all(got.map((s) => s.close()));
      for (const p of peers) p.destroy();
    });
    await fdsBackTo(fds, 3000);
  });
}
