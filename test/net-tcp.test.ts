/**
 * @ringio/net TCP on the driver under test: byte-exact echo at several sizes, 1,000 concurrent
 * connections, half-close both ways, peer reset, refused and busy ports, IPv6, read and accept
 * cancellation (with a randomized race and an fd-leak check), split halves used concurrently, zero-copy
 * writes, the closed-socket contract, bad input, addresses, socket options and readExact at EOF.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { TcpListener, TcpStream, type ReadHalf, type WriteHalf } from '@ringio/net';
import { sleep, spawn, stats, sys } from '@ringio/runtime';
import { fdCount, guard, hashToEnd, later, noIpv6, randomBytes, randomStep, rejectionOf, resettingServer, rtTest, run, sha256, type AnyErr } from './helpers.js';

const SOL_SOCKET = 1;
const SO_KEEPALIVE = 9;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;

const MiB = 1024 * 1024;

function addrOf(l: TcpListener): string {
  const a = l.localAddr;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** A connected (client, server) pair over a fresh loopback listener, which is closed again. */
async function connectedPair(host = '127.0.0.1'): Promise<[TcpStream, TcpStream]> {
  const l = await TcpListener.bind({ host, port: 0 });
  try {
    const accepted = l.accept();
    const c = await TcpStream.connect({ host, port: l.localAddr.port });
    const [s] = await accepted;
    return [c, s];
  } finally {
    await l.close();
  }
}

/** Reads until end of stream; resolves everything read. */
async function readToEnd(s: Pick<ReadHalf, 'read'>, chunk = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  let buf = Buffer.allocUnsafe(chunk);
  for (;;) {
    const [n, b] = await s.read(buf);
    if (b !== buf) throw new Error('read resolved with another buffer');
    if (n === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(b.subarray(0, n)));
    buf = b;
  }
}

/** Echoes until end of stream, then closes. Resolves the bytes echoed. */
async function echo(s: TcpStream): Promise<number> {
  let total = 0;
  try {
    let buf = Buffer.allocUnsafe(65536);
    for (;;) {
      const [n, b] = await s.read(buf);
      if (n === 0) return total;
      const [m, back] = await s.writeAll(b, { length: n });
      if (m !== n) throw new Error(`writeAll wrote ${m} of ${n}`);
      buf = back;
      total += n;
    }
  } finally {
    await s.close();
  }
}

/** Writes src in chunks of random sizes (exercising offset/length), then half-closes. */
async function writeChunked(w: Pick<WriteHalf, 'writeAll' | 'shutdown'>, src: Uint8Array, maxChunk = 65536): Promise<number> {
  let off = 0;
  while (off < src.length) {
    const len = Math.min(src.length - off, 1 + ((Math.random() * maxChunk) | 0));
    const [n, b] = await w.writeAll(src, { offset: off, length: len });
    if (n !== len || b !== src) throw new Error(`writeAll resolved [${n}, ${b === src ? 'src' : 'other'}] for ${len}`);
    off += len;
  }
  await w.shutdown();
  return off;
}

/** The soft RLIMIT_NOFILE of this process. */
function fdLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s+/)[3];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

// ---------------------------------------------------------------------------------------------------
// echo

for (const size of [1, 64, 64 * 1024, 8 * MiB]) {
  rtTest(`echo of ${size} random bytes is byte-exact (client half-closes, server echoes to EOF)`, async (t) => {
    await run(async () => {
      const l = await TcpListener.bind('127.0.0.1:0');
      const server = spawn(async () => {
        const [s] = await l.accept();
        return echo(s);
      });
      const c = await TcpStream.connect(addrOf(l));
      const src = randomBytes(size);
      const writer = spawn(async () => {
        const [n, b] = await c.writeAll(src);
        t.is(n, size);
        t.is(b, src);
        await c.shutdown();
      });
      const got = await guard(readToEnd(c), 20_000, 'echo');
      const [, echoed] = await Promise.all([writer, server]);
      t.is(echoed, size, 'the server echoed every byte');
      t.is(got.length, size);
      t.true(got.equals(src), 'echo is byte-exact');
      await c.close();
      await l.close();
      t.is(stats().opsInFlight, 0);
    });
  });
}

const THOUSAND = 1000;
rtTest('1,000 concurrent connections each echo their own message; every fd is returned', async (t) => {
  const N = THOUSAND;
  const fds0 = fdCount();
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const addr = addrOf(l);
    const server = spawn(async () => {
      const echoes: PromiseLike<number>[] = [];
      for (let i = 0; i < N; i++) {
        const [s] = await l.accept();
        echoes.push(spawn(() => echo(s)));
      }
      return Promise.all(echoes);
    });
    let peakFds = 0;
    const clients = Array.from({ length: N }, (_, i) =>
      spawn(async () => {
        const c = await TcpStream.connect(addr);
        try {
          const msg = Buffer.from(`connection #${i}: ${randomBytes(8).toString('hex')}`);
          await c.writeAll(msg);
          await c.shutdown();
          peakFds = Math.max(peakFds, fdCount());
          const got = await readToEnd(c, 256);
          return got.equals(msg) ? null : `#${i}: got '${got.toString()}' want '${msg.toString()}'`;
        } finally {
          await c.close();
        }
      }),
    );
    const results = await guard(Promise.all(clients), 25_000, `${N} echo connections`);
    const echoed = await server;
    t.deepEqual(
      results.filter((r) => r !== null),
      [],
    );
    t.is(echoed.length, N);
    t.log(`peak fds ${peakFds} (baseline ${fds0}, limit ${fdLimit()})`);
    await l.close();
    t.is(stats().opsInFlight, 0);
  });
  t.is(fdCount(), fds0, 'every socket (and the runtime) is closed');
}, 30_000, fdCount() + 2 * THOUSAND + 64 > fdLimit() ? `RLIMIT_NOFILE ${fdLimit()} is too low for ${THOUSAND} connections` : null);

// ---------------------------------------------------------------------------------------------------
// half-close

rtTest('client shutdown: the server reads EOF and can still write back; the client reads it, then EOF', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const req = randomBytes(3000);
    await c.writeAll(req);
    await c.shutdown();
    const got = await guard(readToEnd(s), 5000, 'server reads to EOF');
    t.true(got.equals(req), 'the server got the request, then EOF');
    // Reading again at EOF keeps returning 0.
    t.is((await s.read(Buffer.alloc(8)))[0], 0);
    // The server's write side is still open.
    const reply = randomBytes(200_000);
    const writer = spawn(async () => {
      await s.writeAll(reply);
      await s.close();
    });
    const back = await guard(readToEnd(c), 5000, 'client reads the reply');
    await writer;
    t.true(back.equals(reply), 'the client reads the reply written after its shutdown');
    // Writing after our own shutdown fails EPIPE (no SIGPIPE).
    const wbuf = Buffer.from('late');
    const err = await rejectionOf(t, c.write(wbuf));
    t.is(err.code, 'EPIPE');
    t.is(err.syscall, 'send');
    t.is(err.buf, wbuf);
    await c.close();
  });
});

rtTest('server shutdown: the client reads EOF and can still write; the server reads it, then EOF', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const msg = randomBytes(1000);
    await s.writeAll(msg);
    await s.shutdown();
    const got = await guard(readToEnd(c), 5000, 'client reads to EOF');
    t.true(got.equals(msg));
    const late = randomBytes(300_000);
    const writer = spawn(async () => {
      const [n] = await c.writeAll(late);
      await c.close();
      return n;
    });
    const back = await guard(readToEnd(s), 5000, 'server reads what the client wrote after EOF');
    t.is(await writer, late.length);
    t.true(back.equals(late));
    await s.close();
  });
});

/**
 * End of stream is sticky, and a FIN that arrives together with the last bytes raises no edge of its
 * own: the epoll driver must not treat the read side as drained after a short or zero-byte read then.
 */
rtTest('a read after end of stream resolves 0 again (EOF is sticky)', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    await s.shutdown();
    const buf = Buffer.alloc(16);
    t.is((await guard(c.read(buf), 2000, 'first read at EOF'))[0], 0);
    t.is((await guard(c.read(buf), 2000, 'second read at EOF'))[0], 0);
    t.is((await guard(c.read(buf), 2000, 'third read at EOF'))[0], 0);
    await c.close();
    await s.close();
  }, 10_000);
});

rtTest('EOF that arrives together with the last bytes is seen by the next read', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const buf = Buffer.alloc(64);
    // The server's read waits first; then the client's byte and FIN leave in one batch.
    const first = s.read(buf);
    await sleep(5);
    const w = c.write(Buffer.from('x'));
    const sh = c.shutdown();
    await Promise.all([w, sh]);
    const [n] = await guard(first, 2000, 'the byte');
    t.is(n, 1);
    t.is(buf[0], 'x'.charCodeAt(0));
    t.is((await guard(s.read(buf), 2000, 'EOF after the byte'))[0], 0);
    await c.close();
    await s.close();
  }, 10_000);
});

// ---------------------------------------------------------------------------------------------------
// errors from the peer and the kernel

rtTest('peer reset (SO_LINGER 0 via resetAndDestroy): a pending read rejects ECONNRESET with its buffer', async (t) => {
  const srv = net.createServer((sock) => {
    // Let the client's read be posted first, then reset.
    setTimeout(() => sock.resetAndDestroy(), 20);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as net.AddressInfo).port;
    await run(async () => {
      const c = await TcpStream.connect(`127.0.0.1:${port}`);
      const buf = Buffer.alloc(64);
      const err = await guard(rejectionOf(t, c.read(buf)), 5000, 'read on a reset connection');
      t.is(err.code, 'ECONNRESET');
      t.is(err.syscall, 'recv');
      t.is(err.buf, buf);
      t.is(typeof err.errno, 'number');
      // The connection is gone: a write now fails EPIPE.
      const w = Buffer.from('x');
      const werr = await rejectionOf(t, c.write(w));
      t.is(werr.code, 'EPIPE');
      t.is(werr.buf, w);
      await c.close();
    });
  } finally {
    srv.close();
  }
});

rtTest('writing to a reset peer rejects ECONNRESET or EPIPE (no SIGPIPE)', async (t) => {
  // Reset once the client has sent something, so the reset cannot race the client's connect.
  const srv = await resettingServer();
  try {
    await run(async () => {
      const c = await TcpStream.connect({ host: '127.0.0.1', port: srv.port });
      await c.writeAll(Buffer.from('hello'));
      for (let i = 0; i < 400 && srv.resets() === 0; i++) await sleep(5);
      t.is(srv.resets(), 1);
      const chunk = Buffer.alloc(65536, 1);
      let err: AnyErr | undefined;
      for (let i = 0; i < 1000 && err === undefined; i++) {
        try {
          await c.write(chunk);
        } catch (e) {
          err = e as AnyErr;
        }
      }
      t.truthy(err, 'a write failed');
      t.true(err!.code === 'ECONNRESET' || err!.code === 'EPIPE', `code ${err!.code}`);
      t.is(err!.syscall, 'send');
      t.is(err!.buf, chunk);
      await c.close();
    });
  } finally {
    srv.close();
  }
});

rtTest('connect to a closed port rejects ECONNREFUSED and leaks no fd', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const port = l.localAddr.port;
    await l.close();
    const fds0 = fdCount();
    for (const addr of [`127.0.0.1:${port}`, { host: '127.0.0.1', port }, `localhost:${port}`]) {
      const err = await rejectionOf(t, TcpStream.connect(addr));
      t.is(err.code, 'ECONNREFUSED', JSON.stringify(addr));
      t.is(err.syscall, 'connect');
    }
    t.is(fdCount(), fds0, 'the failed sockets are closed');
  });
});

rtTest('binding a busy port with reusePort: false rejects EADDRINUSE; two reusePort listeners share it', async (t) => {
  await run(async () => {
    const a = await TcpListener.bind('127.0.0.1:0', { reusePort: false });
    const port = a.localAddr.port;
    const fds0 = fdCount();
    const err = await rejectionOf(t, TcpListener.bind(`127.0.0.1:${port}`, { reusePort: false }));
    t.is(err.code, 'EADDRINUSE');
    t.is(err.syscall, 'bind');
    // reusePort on the second alone does not help: the first did not opt in.
    t.is((await rejectionOf(t, TcpListener.bind(`127.0.0.1:${port}`))).code, 'EADDRINUSE');
    t.is(fdCount(), fds0, 'failed binds close their sockets');
    await a.close();

    // Both with SO_REUSEPORT (the default): both bind, and connections reach them.
    const b1 = await TcpListener.bind('127.0.0.1:0');
    const b2 = await TcpListener.bind(`127.0.0.1:${b1.localAddr.port}`);
    t.is(b2.localAddr.port, b1.localAddr.port);
    const ac = new AbortController();
    const accepted: TcpStream[] = [];
    const loops = [b1, b2].map((l) =>
      spawn(async () => {
        for (;;) {
          try {
            accepted.push((await l.accept({ signal: ac.signal }))[0]);
          } catch (e) {
            if ((e as AnyErr).name === 'AbortError') return;
            throw e;
          }
        }
      }),
    );
    const clients = await Promise.all(Array.from({ length: 16 }, () => TcpStream.connect(addrOf(b1))));
    for (let i = 0; i < 200 && accepted.length < 16; i++) await sleep(2);
    ac.abort();
    await Promise.all(loops);
    t.is(accepted.length, 16);
    for (const s of [...clients, ...accepted, b1, b2]) await s.close();
  });
});

rtTest('IPv6: echo over [::1] with IPv6 addresses on both ends', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('[::1]:0');
    t.deepEqual(l.localAddr, { address: '::1', port: l.localAddr.port, family: 'IPv6' });
    t.true(l.localAddr.port > 0);
    const server = spawn(async () => {
      const [s, peer] = await l.accept();
      t.deepEqual(s.peerAddr, peer);
      return [peer, await echo(s)] as const;
    });
    const c = await TcpStream.connect(`[::1]:${l.localAddr.port}`);
    t.deepEqual(c.peerAddr, { address: '::1', port: l.localAddr.port, family: 'IPv6' });
    t.is(c.localAddr.address, '::1');
    t.is(c.localAddr.family, 'IPv6');
    const src = randomBytes(100_000);
    const writer = spawn(async () => {
      await c.writeAll(src);
      await c.shutdown();
    });
    const got = await guard(readToEnd(c), 5000, 'IPv6 echo');
    const [[peer, n]] = await Promise.all([server, writer]);
    t.true(got.equals(src));
    t.is(n, src.length);
    t.deepEqual(peer, c.localAddr, "the server's peer is the client's local address");
    await c.close();
    // { host, port } form too.
    const l2 = l;
    const acc = l2.accept();
    const c2 = await TcpStream.connect({ host: '::1', port: l2.localAddr.port });
    const [s2] = await acc;
    t.is(s2.localAddr.port, l2.localAddr.port);
    for (const s of [c2, s2, l2]) await s.close();
  });
}, 30_000, noIpv6);

// ---------------------------------------------------------------------------------------------------
// cancellation

rtTest('a read aborted by its signal rejects AbortError with the same buffer; the stream stays usable', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const buf = Buffer.alloc(32, 0x55);
    const ac = new AbortController();
    const reason = new Error('cancel the read');
    const p = c.read(buf, { signal: ac.signal });
    await sleep(5);
    t.is(stats().opsInFlight, 1);
    ac.abort(reason);
    const err = await rejectionOf(t, p);
    t.is(err.name, 'AbortError');
    t.is(err.code, 'ABORT_ERR');
    t.is(err.buf, buf, '.buf is the very buffer that was lent');
    t.is(err.cause, reason);
    t.is(stats().opsInFlight, 0, 'rejected only after the kernel answered');
    t.true(buf.every((b) => b === 0x55), 'the cancelled read wrote nothing');

    // A signal aborted before the call: rejects at once, with the buffer.
    const b2 = Buffer.alloc(4);
    const e2 = await rejectionOf(t, c.read(b2, { signal: AbortSignal.abort() }));
    t.is(e2.name, 'AbortError');
    t.is(e2.buf, b2);

    // Data written afterwards arrives complete and in order.
    const data = randomBytes(300_000);
    const writer = spawn(() => s.writeAll(data));
    const got = Buffer.alloc(data.length);
    const [n, back] = await guard(c.readExact(got), 5000, 'read after abort');
    await writer;
    t.is(n, data.length);
    t.is(back, got);
    t.true(got.equals(data), 'no byte lost or duplicated');
    await c.close();
    await s.close();
  });
});

rtTest('cancellation race: 500 reads aborted at random points racing 1-byte writes lose and reorder no byte', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const ITER = 500;
    const received: number[] = [];
    let written = 0;
    let aborted = 0;
    let won = 0;
    let abortedThenWon = 0;
    for (let i = 0; i < ITER; i++) {
      const buf = Buffer.alloc(4, 0xff);
      const ac = new AbortController();
      const p = c.read(buf, { signal: ac.signal });
      let writeDone: Promise<void> | undefined;
      // Half the bytes go through the driver, half are written by a plain write(2): the kernel then
      // finishes the read while JS has not reaped it yet, so an abort right after races the completion.
      const viaDriver = Math.random() < 0.5;
      const ws = randomStep();
      const writer = later(ws, () => {
        if (viaDriver) writeDone = s.write(Buffer.from([i & 0xff])).then(([n]) => void (written += n));
        else written += writeSync(s.fd, Buffer.from([i & 0xff]));
      });
      const aborter = later(Math.random() < 0.3 ? ws : randomStep(), () => ac.abort());
      try {
        const [n, b] = await guard(p, 5000, `read #${i}`);
        if (b !== buf) t.fail('read resolved with another buffer');
        for (let k = 0; k < n; k++) received.push(buf[k]!);
        won++;
        if (ac.signal.aborted) abortedThenWon++;
      } catch (e) {
        const err = e as AnyErr;
        if (err.name !== 'AbortError') throw err;
        if (err.buf !== buf) t.fail('AbortError without its buffer');
        if (!buf.every((x) => x === 0xff)) t.fail('a cancelled read wrote into the buffer');
        aborted++;
      }
      await Promise.all([writer, aborter]);
      await writeDone;
      // What a cancelled read did not take is still in the socket: take it now, so the next read
      // starts on an empty socket again.
      const pending = written - received.length;
      if (pending > 0) {
        const rest = Buffer.alloc(pending);
        await guard(c.readExact(rest), 2000, `${pending} bytes lost`);
        received.push(...rest);
      }
    }
    t.log(`${won} reads won (${abortedThenWon} of them after their abort), ${aborted} were cancelled`);
    t.is(written, ITER);
    t.is(received.length, ITER);
    t.deepEqual(
      received,
      Array.from({ length: ITER }, (_, i) => i & 0xff),
    );
    t.true(won > 0);
    t.true(aborted > 0);
    // Nothing extra is waiting in the socket.
    await s.shutdown();
    t.is((await guard(c.read(Buffer.alloc(8)), 2000, 'EOF'))[0], 0);
    t.is(stats().opsInFlight, 0);
    await c.close();
    await s.close();
  });
});

for (const mode of ['default', 'single-shot'] as const) {
  rtTest(`200 accepts aborted by their signals, some racing connections: no connection or fd is leaked (${mode} accept)`, async (t) => {
    const fds0 = fdCount();
    // RINGIO_ACCEPT_MULTISHOT=0 makes a listener use one AcceptOp per accept() on io_uring too; the mode is
    // chosen at a listener's first accept().
    const saved = process.env.RINGIO_ACCEPT_MULTISHOT;
    if (mode === 'single-shot') process.env.RINGIO_ACCEPT_MULTISHOT = '0';
    try {
      await run(async () => {
        const l = await TcpListener.bind('127.0.0.1:0');
        const addr = addrOf(l);
        const clients: TcpStream[] = [];
        const serverSide = new Map<number, TcpStream>(); // client port -> accepted stream
        let aborted = 0;
        let won = 0;
        for (let i = 0; i < 200; i++) {
          const ac = new AbortController();
          const p = l.accept({ signal: ac.signal });
          let conn: Promise<void> | undefined;
          if (i % 2 === 1) conn = TcpStream.connect(addr).then((c) => void clients.push(c));
          const step = randomStep();
          if (conn !== undefined && step === 9) {
            // Abort once the client is connected: the kernel may have completed the accept already.
            await conn;
            ac.abort();
          } else {
            await later(step, () => ac.abort());
          }
          try {
            const [s, peer] = await guard(p, 5000, `accept #${i}`);
            serverSide.set(peer.port, s);
            won++;
          } catch (e) {
            const err = e as AnyErr;
            if (err.name !== 'AbortError') throw err;
            aborted++;
          }
          await conn;
        }
        t.log(`${won} accepts won, ${aborted} were aborted, ${clients.length} clients`);
        t.true(aborted > 0);
        t.is(won + aborted, 200);
        // Take whatever is still in the backlog.
        let drained = 0;
        for (let i = 0; i < clients.length; i++) {
          try {
            const [s, peer] = await l.accept({ signal: AbortSignal.timeout(100) });
            serverSide.set(peer.port, s);
            drained++;
          } catch (e) {
            if ((e as AnyErr).name !== 'AbortError') throw e;
            break;
          }
        }
        // Every other client's connection was accepted for an aborted accept: the runtime must have closed
        // it, so that client reads EOF (or a reset). A leaked server fd would leave the read hanging.
        let closedByRuntime = 0;
        for (const c of clients) {
          if (serverSide.has(c.localAddr.port)) continue;
          try {
            const [n] = await guard(c.read(Buffer.alloc(8)), 3000, `client ${c.localAddr.port}: server end neither accepted nor closed`);
            t.is(n, 0);
          } catch (e) {
            if ((e as AnyErr).code !== 'ECONNRESET') throw e;
          }
          closedByRuntime++;
        }
        t.log(`${drained} drained from the backlog, ${closedByRuntime} closed by the runtime`);
        t.is(won + drained + closedByRuntime, clients.length);
        t.is(serverSide.size, won + drained);
        for (const s of [...clients, ...serverSide.values(), l]) await s.close();
        t.is(stats().opsInFlight, 0);
      });
    } finally {
      if (saved === undefined) delete process.env.RINGIO_ACCEPT_MULTISHOT;
      else process.env.RINGIO_ACCEPT_MULTISHOT = saved;
    }
    t.is(fdCount(), fds0, 'back to the baseline fd count');
  });
}

// ---------------------------------------------------------------------------------------------------
// concurrency, zero copy

rtTest('split halves used concurrently: 4 MiB each way at once, checksummed', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const [cr, cw] = c.intoSplit();
    const [sr, sw] = s.intoSplit();
    t.is(cr.fd, c.fd);
    t.is(cw.fd, c.fd);
    const up = randomBytes(4 * MiB);
    const down = randomBytes(4 * MiB);
    const [wUp, [nUp, hUp], wDown, [nDown, hDown]] = await guard(
      Promise.all([
        spawn(() => writeChunked(cw, up)),
        spawn(() => hashToEnd(sr, 50_000)),
        spawn(() => writeChunked(sw, down)),
        spawn(() => hashToEnd(cr, 70_001)),
      ]),
      20_000,
      'split transfer',
    );
    t.is(wUp, up.length);
    t.is(wDown, down.length);
    t.is(nUp, up.length);
    t.is(nDown, down.length);
    t.is(hUp, sha256(up), 'client -> server is byte-exact');
    t.is(hDown, sha256(down), 'server -> client is byte-exact');
    // Closing a half closes the stream.
    await cw.close();
    t.true(c.closed);
    t.is(cr.fd, -1);
    await sr.close();
    t.true(s.closed);
  });
});

rtTest('writeZeroCopy of 16 MiB arrives byte-exact; a window with offset/length too', async (t) => {
  await run(async () => {
    const zc = stats().features.includes('op:SEND_ZC') && stats().driver === 'uring';
    t.log(zc ? 'using SEND_ZC' : `no SEND_ZC on ${stats().driver}: plain sends`);
    const [c, s] = await connectedPair();
    const src = randomBytes(16 * MiB);
    const reader = spawn(() => hashToEnd(s, 256 * 1024));
    const [n, b] = await guard(c.writeZeroCopy(src), 20_000, 'writeZeroCopy');
    t.is(n, src.length);
    t.is(b, src);
    // A window: only bytes [offset, offset + length) go out.
    const [m, b2] = await c.writeZeroCopy(src, { offset: 12345, length: 3 * MiB + 7 });
    t.is(m, 3 * MiB + 7);
    t.is(b2, src);
    await c.shutdown();
    const [got, hash] = await guard(reader, 20_000, 'sink');
    t.is(got, src.length + 3 * MiB + 7);
    t.is(hash, createHash('sha256').update(src).update(src.subarray(12345, 12345 + 3 * MiB + 7)).digest('hex'));
    await c.close();
    await s.close();
  });
});

rtTest('writev and readv move several buffers in one call, in order', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const parts = [Buffer.from('alpha-'), Buffer.from('beta-'), randomBytes(1000)];
    const total = parts.reduce((a, p) => a + p.length, 0);
    const [n, bufs] = await c.writev(parts);
    t.is(n, total);
    t.is(bufs, parts);
    const dst = [Buffer.alloc(4), Buffer.alloc(6), Buffer.alloc(2000)];
    let got = 0;
    const flat = Buffer.concat(parts);
    const out = Buffer.alloc(total);
    // readv may return short: collect until everything arrived.
    for (let i = 0; i < 100 && got < total; i++) {
      const [k, back] = await s.readv(dst);
      t.is(back, dst);
      Buffer.concat(dst).copy(out, got, 0, k);
      got += k;
    }
    t.is(got, total);
    t.true(out.equals(flat));
    await c.close();
    await s.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// the closed-socket contract

rtTest('after close every op rejects ERR_RINGIO_CLOSED with its buffer; close is idempotent', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const fd = c.fd;
    t.true(fd >= 0);
    t.false(c.closed);
    await c.close();
    t.true(c.closed);
    t.is(c.fd, -1);
    await c.close(); // idempotent
    const buf = Buffer.alloc(8);
    const bufs = [Buffer.alloc(2), Buffer.alloc(3)];
    const cases: [string, () => Promise<unknown>, unknown][] = [
      ['read', () => c.read(buf), buf],
      ['readExact', () => c.readExact(buf), buf],
      ['readv', () => c.readv(bufs), bufs],
      ['write', () => c.write(buf), buf],
      ['writeAll', () => c.writeAll(buf), buf],
      ['writev', () => c.writev(bufs), bufs],
      ['writeZeroCopy', () => c.writeZeroCopy(buf), buf],
    ];
    for (const [name, call, want] of cases) {
      const err = await rejectionOf(t, call());
      t.is(err.code, 'ERR_RINGIO_CLOSED', name);
      t.is(err.buf, want, `${name}: .buf`);
    }
    t.is((await rejectionOf(t, c.shutdown())).code, 'ERR_RINGIO_CLOSED');
    t.throws(() => c.setNoDelay(true), { code: 'ERR_RINGIO_CLOSED' });
    t.throws(() => c.setKeepAlive(true, 1000), { code: 'ERR_RINGIO_CLOSED' });
    // Halves of a closed stream are closed too.
    const [r, w] = c.intoSplit();
    t.is((await rejectionOf(t, r.read(buf))).code, 'ERR_RINGIO_CLOSED');
    t.is((await rejectionOf(t, w.write(buf))).code, 'ERR_RINGIO_CLOSED');
    // The peer sees end of stream.
    t.is((await guard(s.read(Buffer.alloc(8)), 2000, 'peer EOF'))[0], 0);
    await s.close();

    // A closed listener.
    const l = await TcpListener.bind('127.0.0.1:0');
    await l.close();
    t.is(l.fd, -1);
    t.is((await rejectionOf(t, l.accept())).code, 'ERR_RINGIO_CLOSED');
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('a read and a write pending at close reject ERR_RINGIO_CLOSED with their buffers; accept too', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const rbuf = Buffer.alloc(16, 0x33);
    const pr = c.read(rbuf);
    // A write that cannot finish: the peer never reads 64 MiB.
    const big = Buffer.alloc(64 * MiB, 1);
    const pw = c.writeAll(big);
    pr.catch(() => {});
    pw.catch(() => {});
    await sleep(50);
    t.true(stats().opsInFlight >= 2);
    await guard(c.close(), 5000, 'close with ops pending');
    t.is(stats().opsInFlight, 0, 'close waited for the kernel to answer the cancelled ops');
    const er = await rejectionOf(t, pr);
    t.is(er.code, 'ERR_RINGIO_CLOSED');
    t.is(er.buf, rbuf);
    t.true(rbuf.every((b) => b === 0x33));
    const ew = await rejectionOf(t, pw);
    t.is(ew.code, 'ERR_RINGIO_CLOSED');
    t.is(ew.buf, big);
    await s.close();

    const l = await TcpListener.bind('127.0.0.1:0');
    const pa = l.accept();
    await sleep(5);
    await l.close();
    t.is((await rejectionOf(t, pa)).code, 'ERR_RINGIO_CLOSED');
  });
});

// ---------------------------------------------------------------------------------------------------
// bad input

rtTest('bad input: TypeError / RangeError, never a kernel error', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const buf = Buffer.alloc(8);
    // buffers
    await t.throwsAsync(c.read('abc' as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(c.write([1, 2] as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(c.read(new ArrayBuffer(8) as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(c.readExact(null as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(c.writeAll({} as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(c.writeZeroCopy('x' as unknown as Buffer), { instanceOf: TypeError });
    await t.throwsAsync(c.readv('x' as unknown as Buffer[]), { instanceOf: TypeError });
    await t.throwsAsync(c.writev([buf, 'x' as unknown as Buffer]), { instanceOf: TypeError });
    await t.throwsAsync(c.readv([]), { instanceOf: RangeError });
    await t.throwsAsync(c.writev(new Array(1025).fill(buf)), { instanceOf: RangeError });
    // windows
    await t.throwsAsync(c.read(buf, { offset: -1 }), { instanceOf: RangeError });
    await t.throwsAsync(c.read(buf, { offset: 9 }), { instanceOf: RangeError });
    await t.throwsAsync(c.read(buf, { offset: 1.5 }), { instanceOf: RangeError });
    await t.throwsAsync(c.read(buf, { offset: 4, length: 5 }), { instanceOf: RangeError });
    await t.throwsAsync(c.write(buf, { length: -1 }), { instanceOf: RangeError });
    await t.throwsAsync(c.writeAll(buf, { offset: 2, length: 7 }), { instanceOf: RangeError });
    await t.throwsAsync(c.readExact(buf, { length: 9 }), { instanceOf: RangeError });
    await t.throwsAsync(c.writeZeroCopy(buf, { offset: 8, length: 1 }), { instanceOf: RangeError });
    t.throws(() => c.setKeepAlive(true, -1), { instanceOf: RangeError });
    t.throws(() => c.setKeepAlive(true, Number.NaN), { instanceOf: RangeError });
    // addresses
    for (const bad of ['nohost', '[::1]', '[::1]80', '127.0.0.1:', '127.0.0.1:abc', '127.0.0.1:-1', '::1:80', '']) {
      await t.throwsAsync(TcpStream.connect(bad), { instanceOf: TypeError }, `connect '${bad}'`);
      await t.throwsAsync(TcpListener.bind(bad), { instanceOf: TypeError }, `bind '${bad}'`);
    }
    for (const bad of ['1.2.3.4:99999', '127.0.0.1:65536', '[::1]:70000']) {
      await t.throwsAsync(TcpStream.connect(bad), { instanceOf: RangeError }, `connect '${bad}'`);
    }
    await t.throwsAsync(TcpStream.connect({ host: '127.0.0.1', port: 1.5 }), { instanceOf: TypeError });
    await t.throwsAsync(TcpStream.connect({ host: '127.0.0.1', port: '80' as unknown as number }), { instanceOf: TypeError });
    await t.throwsAsync(TcpStream.connect({ host: '127.0.0.1', port: -1 }), { instanceOf: RangeError });
    await t.throwsAsync(TcpStream.connect({ host: 5 as unknown as string, port: 80 }), { instanceOf: TypeError });
    await t.throwsAsync(TcpStream.connect(null as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(TcpStream.connect(8080 as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(TcpListener.bind('127.0.0.1:0', { backlog: 0 }), { instanceOf: RangeError });
    await t.throwsAsync(TcpListener.bind('127.0.0.1:0', { backlog: 1.5 }), { instanceOf: RangeError });
    // The stream is unharmed by all of that.
    await c.writeAll(Buffer.from('still fine'));
    const got = Buffer.alloc(10);
    await s.readExact(got);
    t.is(got.toString(), 'still fine');
    await c.close();
    await s.close();
    t.is(stats().opsInFlight, 0);
  });
});

// ---------------------------------------------------------------------------------------------------
// addresses, listener iteration, options, readExact

rtTest('peerAddr / localAddr on both ends agree with the listener and accept()', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const port = l.localAddr.port;
    t.true(Number.isInteger(port) && port > 0 && port < 65536);
    t.deepEqual(l.localAddr, { address: '127.0.0.1', port, family: 'IPv4' });
    const acc = l.accept();
    const c = await TcpStream.connect(`localhost:${port}`);
    const [s, peer] = await acc;
    t.deepEqual(c.peerAddr, { address: '127.0.0.1', port, family: 'IPv4' });
    t.deepEqual(s.localAddr, { address: '127.0.0.1', port, family: 'IPv4' });
    t.is(c.localAddr.address, '127.0.0.1');
    t.is(c.localAddr.family, 'IPv4');
    t.not(c.localAddr.port, port);
    t.deepEqual(peer, c.localAddr, "accept's peer address is the client's local address");
    t.deepEqual(s.peerAddr, c.localAddr);
    for (const x of [c, s, l]) await x.close();

    // A listener on 0.0.0.0 reports it; a client through 127.0.0.1 sees 127.0.0.1 on the server side.
    const any = await TcpListener.bind({ host: '0.0.0.0', port: 0 });
    t.is(any.localAddr.address, '0.0.0.0');
    const acc2 = any.accept();
    const c2 = await TcpStream.connect({ host: '127.0.0.1', port: any.localAddr.port });
    const [s2] = await acc2;
    t.is(s2.localAddr.address, '127.0.0.1');
    for (const x of [c2, s2, any]) await x.close();
  });
});

rtTest('for await over a listener yields each connection and ends once the listener is closed', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const seen: number[] = [];
    const loop = spawn(async () => {
      for await (const [s, peer] of l) {
        t.deepEqual(s.peerAddr, peer);
        const b = Buffer.alloc(1);
        await s.readExact(b);
        seen.push(b[0]!);
        await s.close();
      }
      return 'ended';
    });
    for (let i = 0; i < 5; i++) {
      const c = await TcpStream.connect(addrOf(l));
      await c.writeAll(Buffer.from([i]));
      t.is((await guard(c.read(Buffer.alloc(1)), 2000, 'server closes'))[0], 0);
      await c.close();
    }
    t.deepEqual(seen, [0, 1, 2, 3, 4]);
    await sleep(5); // the loop is now waiting in accept()
    await l.close();
    t.is(await guard(loop, 2000, 'for await ends after close'), 'ended');
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('leaving a for await loop keeps the listener open (a new loop takes the next connection); an ended iterator stays done; accept() on a closed listener rejects', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const clients: TcpStream[] = [];
    for (let round = 0; round < 2; round++) {
      const c = TcpStream.connect(addrOf(l));
      for await (const [s, peer] of l) {
        t.is(peer.address, '127.0.0.1');
        await s.close();
        break;
      }
      clients.push(await c);
      t.false(l.closed, `round ${round}: break does not close the listener`);
    }
    const it = l[Symbol.asyncIterator]();
    const pending = it.next();
    await sleep(5);
    await l.close();
    t.deepEqual(await guard(pending, 2000, 'the waiting next() ends'), { value: undefined, done: true });
    t.deepEqual(await it.next(), { value: undefined, done: true });
    const accepting = l.accept(); // a promise, not a synchronous throw
    t.is((await rejectionOf(t, accepting)).code, 'ERR_RINGIO_CLOSED');
    for (const c of clients) await c.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('setNoDelay / setKeepAlive set the socket options, return the stream, and throw once closed', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const acc = l.accept();
    const c = await TcpStream.connect(addrOf(l), { noDelay: false });
    const [s] = await acc;
    t.is(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY), 0, 'noDelay: false');
    t.not(sys.getsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY), 0, 'accepted streams have TCP_NODELAY');
    t.is(c.setNoDelay(true), c);
    t.not(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY), 0);
    t.is(c.setNoDelay(false), c);
    t.is(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY), 0);
    t.is(c.setNoDelay(), c);
    t.not(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY), 0);

    t.is(sys.getsockopt(c.fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    t.is(c.setKeepAlive(true, 5000), c);
    t.not(sys.getsockopt(c.fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    t.is(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_KEEPIDLE), 5);
    t.is(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_KEEPINTVL), 5);
    t.is(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_KEEPCNT), 9);
    t.is(c.setKeepAlive(true, 200), c); // rounds up to 1 s
    t.is(sys.getsockopt(c.fd, IPPROTO_TCP, TCP_KEEPIDLE), 1);
    t.is(c.setKeepAlive(false), c);
    t.is(sys.getsockopt(c.fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    t.notThrows(() => s.setKeepAlive());

    // Options do not disturb the stream.
    await c.writeAll(Buffer.from('ok'));
    const b = Buffer.alloc(2);
    await s.readExact(b);
    t.is(b.toString(), 'ok');
    await c.close();
    t.throws(() => c.setNoDelay(), { code: 'ERR_RINGIO_CLOSED' });
    t.throws(() => c.setKeepAlive(false), { code: 'ERR_RINGIO_CLOSED' });
    await s.close();
    await l.close();
  });
});

rtTest('readExact fills a window; at EOF it rejects ERR_RINGIO_UNEXPECTED_EOF with .n and .buf', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    // Success across several short reads, into a window.
    const dst = Buffer.alloc(20, 0xaa);
    const pr = c.readExact(dst, { offset: 3, length: 12 });
    for (const piece of ['abc', 'defg', 'hijkl']) {
      await s.writeAll(Buffer.from(piece));
      await sleep(2);
    }
    const [n, b] = await guard(pr, 2000, 'readExact');
    t.is(n, 12);
    t.is(b, dst);
    t.is(dst.subarray(3, 15).toString(), 'abcdefghijkl');
    t.true(dst.subarray(0, 3).every((x) => x === 0xaa));
    t.true(dst.subarray(15).every((x) => x === 0xaa));

    // The peer writes 5 bytes and closes: a 10-byte readExact fails after 5.
    await s.writeAll(Buffer.from('12345'));
    await s.close();
    const buf = Buffer.alloc(10);
    const err = await guard(rejectionOf(t, c.readExact(buf)), 2000, 'readExact at EOF');
    t.is(err.code, 'ERR_RINGIO_UNEXPECTED_EOF');
    t.is(err.n, 5);
    t.is(err.buf, buf);
    t.is(buf.subarray(0, 5).toString(), '12345');
    t.true(err.message.includes('5'));
    // At EOF with nothing read, n is 0.
    const e2 = await rejectionOf(t, c.readExact(Buffer.alloc(1)));
    t.is(e2.code, 'ERR_RINGIO_UNEXPECTED_EOF');
    t.is(e2.n, 0);
    // A zero-length readExact resolves at once.
    t.deepEqual((await c.readExact(buf, { length: 0 }))[0], 0);
    await c.close();
  });
});


// Regression (found by the fuzz tier): io_uring's READV/WRITEV honour O_NONBLOCK, so readv on a socket
// with nothing to read and writev on a full one rejected EAGAIN instead of waiting.
rtTest('readv waits for data and writev waits for room (no EAGAIN), and close() cancels a waiting readv', async (t) => {
  await run(async () => {
    const [c, s] = await connectedPair();
    const bufs = [Buffer.alloc(3), Buffer.alloc(5)];
    const pending = s.readv(bufs);
    await sleep(5);
    await c.writeAll(Buffer.from('abcdefgh'));
    const [n, got] = await guard(pending, 10_000, 'readv');
    t.is(n, 8);
    t.is(got, bufs);
    t.is(Buffer.concat(got).toString(), 'abcdefgh');

    // Fill the socket (nobody reads s), then a writev must wait, and finish once s drains.
    const chunk = Buffer.alloc(1 << 20, 7);
    let sent = 0;
    for (;;) {
      const [w] = await guard(c.writev([chunk.subarray(0, 1 << 19), chunk.subarray(1 << 19)]), 10_000, 'writev');
      sent += w;
      if (w < chunk.length) break; // short: the socket is full now
    }
    const full = c.writev([chunk]);
    const drain = spawn(() => hashToEnd(s, 1 << 16));
    const [w] = await guard(full, 10_000, 'writev on a full socket');
    t.true(w > 0);
    sent += w;
    await c.shutdown();
    const [received] = await guard(drain, 20_000, 'drain');
    t.is(received, sent);

    await c.close();
    await s.close();

    // A readv waiting on an idle socket is cancelled by close().
    const [c2, s2] = await connectedPair();
    const waiting = s2.readv([Buffer.alloc(4)]);
    await sleep(5);
    await s2.close();
    const err = await rejectionOf(t, waiting);
    t.is(err.code, 'ERR_RINGIO_CLOSED');
    await c2.close();
    t.is(stats().opsInFlight, 0);
  });
});

rtTest('fromFd adopts socket fds: a listener and a stream made from dup()ed fds work and own them', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
    const l2 = TcpListener.fromFd(sys.dup(l.fd));
    t.deepEqual(l2.localAddr, l.localAddr);
    const c = await TcpStream.connect(l.localAddr);
    const [s] = await l2.accept();
    const s2 = TcpStream.fromFd(sys.dup(s.fd));
    await c.writeAll(Buffer.from('hi'));
    const [n, buf] = await s2.read(Buffer.alloc(8));
    t.is(Buffer.from(buf.subarray(0, n)).toString(), 'hi');
    await s2.close();
    t.is(s2.fd, -1, 'the stream owned its fd and closed it');
    // The original fd is its own: the connection still works through it.
    await s.writeAll(Buffer.from('yo'));
    const [m, back] = await c.read(Buffer.alloc(8));
    t.is(Buffer.from(back.subarray(0, m)).toString(), 'yo');
    t.throws(() => TcpStream.fromFd(-1), { instanceOf: RangeError });
    t.throws(() => TcpListener.fromFd(1.5), { instanceOf: TypeError });
    await Promise.all([c.close(), s.close(), l.close(), l2.close()]);
  });
});

rtTest('accept() back to back and concurrently: every peer address is its own client (the reused accept op)', async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const clients = await Promise.all(Array.from({ length: 24 }, () => TcpStream.connect({ host: '127.0.0.1', port: l.localAddr.port })));
    const want = clients.map((c) => c.localAddr.port).sort((a, b) => a - b);
    const got: TcpStream[] = [];
    // Sequential accepts, then a few at once (each then has an op of its own).
    for (let i = 0; i < 12; i++) got.push((await l.accept())[0]);
    for (const [s] of await Promise.all(Array.from({ length: 12 }, () => l.accept()))) got.push(s);
    t.deepEqual(
      got.map((s) => s.peerAddr.port).sort((a, b) => a - b),
      want,
    );
    // Each connection's own peer: the server side names the port, the client reads it on that connection.
    await Promise.all(got.map((s) => s.writeAll(Buffer.from(String(s.peerAddr.port).padStart(5, '0')))));
    for (const c of clients) {
      const [, b] = await c.readExact(Buffer.alloc(5));
      t.is(Number(b.toString()), c.localAddr.port);
    }
    await Promise.all([...clients, ...got].map((s) => s.close()));
    await l.close();
  });
});

rtTest("accept()'s peer: read on first ask where the accept gave none (multishot), the same answers; a connection reset before accept() is handed out, its peerAddr ENOTCONN", async (t) => {
  await run(async () => {
    const l = await TcpListener.bind('127.0.0.1:0');
    const first = l.accept(); // arms the multishot accept (io_uring)
    const c1 = await TcpStream.connect(addrOf(l));
    const pair = await first;
    t.true(Array.isArray(pair));
    t.is(pair.length, 2);
    const [s1, peer1] = pair;
    t.deepEqual({ ...peer1 }, { address: '127.0.0.1', port: c1.localAddr.port, family: 'IPv4' });
    t.is(pair[1], s1.peerAddr, 'the tuple and the stream give the same object');
    t.deepEqual([...pair], [s1, s1.peerAddr]);
    t.deepEqual(JSON.parse(JSON.stringify(pair[1])), { address: '127.0.0.1', port: c1.localAddr.port, family: 'IPv4' });
    t.is(pair.map((x) => x).length, 2);
    pair[1] = { address: '10.0.0.1', port: 1, family: 'IPv4' };
    t.is(pair[1].address, '10.0.0.1', 'element 1 is writable, as any array element');

    // A client that resets its connection once the kernel has accepted it, before accept() takes it.
    const rst = net.connect(l.localAddr.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => rst.once('connect', resolve).once('error', reject));
    const rstPort = rst.localPort!;
    await sleep(20); // the multishot accept (io_uring) or the backlog (epoll) holds it
    rst.resetAndDestroy();
    await sleep(20);
    const [s2] = await guard(l.accept(), 3000, 'the reset connection');
    if (stats().features.includes('ACCEPT_MULTISHOT')) {
      // No address came with the fd, and the connection is gone: getpeername answers ENOTCONN.
      const e = t.throws(() => s2.peerAddr) as AnyErr;
      t.is(e.code, 'ENOTCONN');
      t.is(e.syscall, 'getpeername');
    } else {
      // accept4 gave the address with the fd.
      t.is(s2.peerAddr.port, rstPort);
    }
    // It reads the reset (or end of stream, should the kernel have taken the RST as a close).
    const read = await s2.read(Buffer.alloc(8)).then(
      ([n]) => `n=${n}`,
      (e: AnyErr) => e.code,
    );
    t.true(read === 'ECONNRESET' || read === 'n=0', read);
    await Promise.all([c1.close(), s1.close(), s2.close(), l.close()]);
  });
});
