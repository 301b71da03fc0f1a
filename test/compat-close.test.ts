/**
 * toDuplex's end of a connection on the driver under test, the new-connection path node:http takes
 * without keep-alive: end() after a large write (the FIN after every byte), destroySoon(), a Duplex
 * destroyed while its reads are paused, and the fd gone by 'close' in each case.
 */
import { once } from 'node:events';
import { toDuplex, type SocketDuplex } from '@ringio/compat';
import { stats } from '@ringio/runtime';
import { countNoStackErrors, fdCount, promiseCounter, guard, hashToEnd, randomBytes, rtTest, run, sha256, tcpPairs } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function closeOf(d: SocketDuplex): Promise<unknown> {
  return d.closed ? Promise.resolve() : guard(once(d, 'close'), 5000, "the Duplex's close");
}

rtTest('end() after 8 MiB of writes: the peer reads every byte (sha256), then the end; the fd is gone by close', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const fds = fdCount();
    const d = toDuplex(s);
    const reading = hashToEnd(c);
    const chunks = Array.from({ length: 128 }, () => randomBytes(64 * KiB + 3));
    for (const chunk of chunks) d.write(chunk);
    d.end();
    const [n, hash] = await guard(reading, 20_000, 'the peer reads to the end');
    t.is(n, 128 * (64 * KiB + 3));
    t.is(hash, sha256(...chunks));
    if (!d.writableFinished) await guard(once(d, 'finish'), 5000, "'finish' after the shutdown");
    t.true(d.writableFinished);
    d.destroy();
    await closeOf(d);
    t.is(s.fd, -1);
    t.is(fdCount(), fds - 1, "the stream's fd is closed by 'close'");
    t.is(stats().opsInFlight, 0);
    await c.close();
  });
});

rtTest("destroySoon() after a response: the peer reads it and the end; the Duplex closes itself after 'finish'", async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const d = toDuplex(s);
    d.on('data', () => {}); // node:http reads the socket the whole time
    const reply = randomBytes(300 * KiB);
    d.write(reply.subarray(0, 1000));
    d.write(reply.subarray(1000));
    d.destroySoon();
    d.destroySoon(); // twice: one 'finish' listener, one destroy
    t.is(d.listenerCount('finish'), 1);
    const [n, hash] = await guard(hashToEnd(c), 10_000, 'the peer reads to the end');
    t.is(n, reply.length);
    t.is(hash, sha256(reply));
    await closeOf(d);
    t.true(d.destroyed);
    t.is(s.fd, -1);
    t.is(stats().opsInFlight, 0);
    await c.close();
  });
});

rtTest('a Duplex destroyed while its reads are paused (its buffer full) closes at once, with no error and no fd left', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const fds = fdCount();
    const d = toDuplex(s);
    let errors = 0;
    d.on('error', () => errors++);
    const writing = c.writeAll(randomBytes(4 * MiB)).catch((e: { code?: string }) => e.code);
    const first = (await guard(once(d, 'data'), 5000, 'the first chunk'))[0] as Buffer;
    t.true(first.length > 0);
    d.pause();
    await new Promise((r) => setTimeout(r, 100));
    t.true(d.readableLength >= d.readableHighWaterMark, 'the buffer is full: reading paused');
    d.destroy();
    await closeOf(d);
    t.is(errors, 0);
    t.is(s.fd, -1);
    t.is(fdCount(), fds - 1);
    await c.close();
    const w = await guard(writing, 5000, "the peer's write settles");
    t.true(Array.isArray(w) || ['ECONNRESET', 'EPIPE', 'ERR_RINGIO_CLOSED'].includes(w as string), `the peer's write: ${String(w)}`);
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('a stream closed under its reading Duplex: the Duplex fails with ERR_RINGIO_CLOSED, as before', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const d = toDuplex(s);
    const errors: Array<{ code?: string }> = [];
    d.on('error', (e) => errors.push(e as { code?: string }));
    d.resume(); // the consumer reads
    await new Promise((r) => setTimeout(r, 20));
    await s.close(); // not through the Duplex
    // 'error' and 'close' come on the next ticks ('closed' may be true already).
    await guard(new Promise((r) => setImmediate(r)).then(() => closeOf(d)), 5000, "the Duplex's close");
    t.deepEqual(
      errors.map((e) => e.code),
      ['ERR_RINGIO_CLOSED'],
    );
    await c.close();
  });
});

rtTest('destroying reading Duplexes makes no error object (no ERR_RINGIO_CLOSED for the consumer or the cancelled read)', async (t) => {
  await run(async () => {
    const pairs = await tcpPairs(6);
    const ds = pairs.map(([, s]) => toDuplex(s));
    const errors: unknown[] = [];
    for (const d of ds) {
      d.on('error', (e) => errors.push(e));
      d.resume();
    }
    await new Promise((r) => setTimeout(r, 20)); // the reads are in the kernel
    const made = await countNoStackErrors(async () => {
      for (const d of ds) d.destroy();
      await Promise.all(ds.map(closeOf));
    });
    t.is(made, 0, 'no ERR_RINGIO_CLOSED was made for the destroyed Duplexes');
    t.deepEqual(errors, []);
    for (const [, s] of pairs) t.is(s.fd, -1);
    await Promise.all(pairs.map(([c]) => c.close()));
  });
});

rtTest("a connection's life through toDuplex (read, one response, end(), close) makes no promise", async (t) => {
  await run(async () => {
    const net = await import('node:net');
    const { TcpListener } = await import('@ringio/net');
    const l = await TcpListener.bind('127.0.0.1:0');
    const accepted = l.accept();
    const peer = net.connect(l.localAddr.port, '127.0.0.1'); // node:net: the peer makes no promise
    const got: Buffer[] = [];
    peer.on('data', (b: Buffer) => got.push(b));
    const peerEnded = new Promise((resolve) => peer.on('end', resolve));
    const [s] = await accepted;
    await l.close();
    // Promises made on the Duplex's behalf (a to-duplex frame on the stack): not the driver's flush
    // microtask (one per batch of ops, not per connection), not the test's own.
    const hook = promiseCounter(/to-duplex/, 12);
    const closed = new Promise<void>((resolve) => {
      hook.enable();
      const d = toDuplex(s);
      d.on('data', () => {
        d.cork();
        d.write('HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n');
        d.write(Buffer.from('ok'));
        d.uncork();
        d.destroySoon();
      });
      d.on('close', () => {
        hook.disable();
        resolve();
      });
      peer.write('GET / HTTP/1.0\r\n\r\n');
    });
    await closed;
    await guard(peerEnded, 5000, 'the peer reads to the end');
    t.is(Buffer.concat(got).toString(), 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok');
    t.is(hook.count, 0, 'reads, the write, the shutdown and the close (SocketStream._closeTo) make none');
    peer.destroy();
  });
});
