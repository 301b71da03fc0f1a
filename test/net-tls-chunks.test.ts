/**
 * TlsStream.readChunks on the driver under test, against node:tls clients: every byte arrives in order,
 * each chunk a Buffer of its own (kept ones are not overwritten by later reads), with the end of the
 * stream after the last; a handler that pauses (returns a promise) loses nothing; a handler that throws,
 * a peer's reset and close() end it with their errors; read() and readChunks() exclude each other; a
 * socket without leases reads in a loop with the same results; and compat's toDuplex over a TlsStream
 * reads through readChunks (never through read()). Writes one at a time (the one-send path, settled by
 * the send's completion) resolve [length, the caller's buffer] in order, and fail with the peer's reset.
 */
import { once } from 'node:events';
import { promiseHooks } from 'node:v8';
import net from 'node:net';
import tls from 'node:tls';
import { toDuplex } from '@ringio/compat';
import { TcpListener, TlsContext, TlsStream, tlsCounts, type SocketStream, type TcpStream } from '@ringio/net';
import { spawn } from '@ringio/runtime';
import { guard, randomBytes, rejectionOf, rtTest, run, sha256 } from './helpers.js';
import { makeCert, opensslMissing } from './tls-helpers.js';

const A = opensslMissing === null ? makeCert(['a.test', 'localhost']) : undefined;
const tlsTest = (title: string, fn: Parameters<typeof rtTest>[1]): void => rtTest(title, fn, 60_000, opensslMissing);

/** A ringio TLS server: `serve` runs on the first accepted TlsStream (over `wrap(socket)`), closed after. */
async function oneServer(
  serve: (t: TlsStream) => Promise<void>,
  wrap: (s: TcpStream) => SocketStream = (s) => s,
): Promise<{ port: number; done: Promise<void>; close(): Promise<void> }> {
  const ctx = TlsContext.server({ cert: A!.cert, key: A!.key });
  const l = await TcpListener.bind('127.0.0.1:0');
  const done = spawn(async () => {
    const [s] = await l.accept();
    const t = await TlsStream.accept(wrap(s), ctx);
    try {
      await serve(t);
    } finally {
      await t.close();
    }
  });
  return {
    port: l.localAddr.port,
    done,
    async close() {
      await l.close();
      ctx.close();
      await new Promise((r) => setTimeout(r, 50));
    },
  };
}

/** A node:tls client that writes `parts` (as soon as it is connected), then ends (close_notify) unless `end` is false. */
function client(port: number, parts: Buffer[], end = true, socket?: net.Socket): tls.TLSSocket {
  const c = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca: A!.cert, ...(socket ? { socket } : {}) });
  c.on('error', () => {});
  c.once('secureConnect', () => {
    for (const p of parts) c.write(p);
    if (end) c.end();
  });
  return c;
}

/** Sizes from one byte to past a record (16 KiB) and a pool buffer. */
function pieces(src: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < src.length; i++) {
    const n = Math.min(src.length - at, i % 7 === 3 ? 40_000 : 1 + ((i * 7919) % 5000));
    out.push(src.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** A TcpStream seen without readLease/readLeases: TlsStream reads it with read(). */
function unpooled(s: TcpStream): SocketStream {
  return {
    get fd() {
      return s.fd;
    },
    read: (b: Uint8Array, o?: object) => s.read(b, o),
    write: (b: Uint8Array, o?: object) => s.write(b, o),
    writeAll: (b: Uint8Array, o?: object) => s.writeAll(b, o),
    shutdown: () => s.shutdown(),
    close: () => s.close(),
  } as unknown as SocketStream;
}

for (const [how, wrap] of [['pooled', undefined], ['without leases', unpooled]] as const) {
  tlsTest(`TlsStream.readChunks (${how}): 1.5 MiB in pieces arrive in order, each chunk its own Buffer, then the end`, async (t) => {
    await run(async () => {
      const src = randomBytes(1536 * 1024);
      const kept: Buffer[] = [];
      let ended = false;
      const srv = await oneServer(async (s) => {
        await s.readChunks((chunk) => {
          t.true(Buffer.isBuffer(chunk));
          t.true(chunk.length > 0);
          kept.push(chunk);
        });
        ended = true;
        t.deepEqual((await s.read(Buffer.alloc(16)))[0], 0); // after the end, read() sees it too
      }, wrap);
      const c = client(srv.port, pieces(src));
      await guard(srv.done, 30_000, 'the server');
      t.true(ended);
      const got = Buffer.concat(kept);
      t.is(got.length, src.length);
      t.is(sha256(got), sha256(src)); // kept chunks were not overwritten by later reads
      c.destroy();
      await srv.close();
      t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
    });
  });

  tlsTest(`TlsStream.readChunks (${how}): a handler that pauses (returns a promise) loses nothing and keeps the order`, async (t) => {
    await run(async () => {
      const src = randomBytes(768 * 1024);
      const kept: Buffer[] = [];
      let pauses = 0;
      let inPause = false;
      const srv = await oneServer(async (s) => {
        await s.readChunks((chunk) => {
          t.false(inPause, 'no chunk is handed over while the handler pauses');
          kept.push(chunk);
          if (kept.length % 3 !== 0) return undefined;
          pauses++;
          inPause = true;
          return new Promise<void>((r) =>
            setTimeout(() => {
              inPause = false;
              r();
            }, 5),
          );
        });
      }, wrap);
      const c = client(srv.port, pieces(src));
      await guard(srv.done, 30_000, 'the server');
      t.true(pauses > 0);
      t.is(sha256(Buffer.concat(kept)), sha256(src));
      c.destroy();
      await srv.close();
    });
  });
}

tlsTest('TlsStream.readChunks: the handler throwing, a reset and close() end it with their errors; read() and readChunks() exclude each other', async (t) => {
  await run(async () => {
    // The handler throws: readChunks rejects with that error.
    const boom = new Error('boom');
    let srv = await oneServer(async (s) => {
      t.is(await rejectionOf(t, s.readChunks(() => {
        throw boom;
      })), boom as never);
    });
    let c = client(srv.port, [Buffer.from('hello')], false);
    await guard(srv.done, 20_000, 'the server');
    c.destroy();
    await srv.close();

    // The peer resets: ECONNRESET after what came before it.
    const got: Buffer[] = [];
    srv = await oneServer(async (s) => {
      const e = await rejectionOf(t, s.readChunks((chunk) => {
        got.push(chunk);
      }));
      t.is(e.code, 'ECONNRESET');
    });
    const tcp = net.connect(srv.port, '127.0.0.1');
    tcp.on('error', () => {});
    c = client(srv.port, [Buffer.from('before the reset')], false, tcp);
    await once(c, 'secureConnect');
    await new Promise((r) => setTimeout(r, 100));
    tcp.resetAndDestroy(); // RST under the TLS session
    await guard(srv.done, 20_000, 'the server');
    t.is(Buffer.concat(got).toString(), 'before the reset');
    await srv.close();

    // close() while it waits (and while its handler pauses): ERR_RINGIO_CLOSED; read() meanwhile waits, a second readChunks is a TypeError.
    for (const paused of [false, true]) {
      srv = await oneServer(async (s) => {
        let first!: () => void;
        const arrived = new Promise<void>((r) => (first = r));
        const reading = s.readChunks(() => {
          first();
          return paused ? new Promise(() => {}) : undefined;
        });
        const e2 = await rejectionOf(t, s.readChunks(() => {}));
        t.true(e2 instanceof TypeError);
        const read = s.read(Buffer.alloc(16)).then(
          () => 'resolved',
          (e: { code?: string }) => e.code,
        );
        await arrived;
        await s.close();
        t.is((await rejectionOf(t, reading)).code, 'ERR_RINGIO_CLOSED');
        t.is(await read, 'ERR_RINGIO_CLOSED');
      });
      c = client(srv.port, [Buffer.from('x'), Buffer.from('y')], false);
      await guard(srv.done, 20_000, 'the server');
      c.destroy();
      await srv.close();
    }
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});

tlsTest('compat toDuplex over a TlsStream reads through readChunks, never read()', async (t) => {
  await run(async () => {
    const src = randomBytes(512 * 1024);
    const srv = await oneServer(async (s) => {
      let reads = 0;
      const read = s.read.bind(s);
      s.read = ((b: Uint8Array, o?: object) => {
        reads++;
        return read(b, o);
      }) as typeof s.read;
      const d = toDuplex(s);
      const parts: Buffer[] = [];
      d.on('data', (b: Buffer) => parts.push(b));
      await guard(once(d, 'end'), 30_000, "the Duplex's end");
      t.is(reads, 0);
      t.is(d.bytesRead, src.length);
      t.is(sha256(Buffer.concat(parts)), sha256(src));
      d.destroy();
      await once(d, 'close');
    });
    const c = client(srv.port, pieces(src));
    await guard(srv.done, 30_000, 'the server');
    c.destroy();
    await srv.close();
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});

tlsTest('TlsStream one-send writes (settled by the send itself): [length, buf] of the caller, in order; a reset peer fails them with its code', async (t) => {
  await run(async () => {
    const src = randomBytes(200 * 1024);
    let failure: { code?: string } | undefined;
    const srv = await oneServer(async (s) => {
      // One at a time, each after the last resolved: every one takes the one-send path, whose only
      // promise is the write's own (the send settles it: no promise of the op's, no then on it).
      // Counted with a promise hook (the client in this process polls with a few more: the 0.3 a write).
      let promises = 0;
      const stop = promiseHooks.onInit(() => promises++);
      let writes = 0;
      try {
        for (let at = 0; at < src.length; at += 1000) {
          const win = src.subarray(at, Math.min(src.length, at + 1000));
          const r = await s.writeAll(win);
          writes++;
          t.is(r[0], win.length);
          t.is(r[1], win);
        }
      } finally {
        stop();
      }
      // The loop's own await costs 2 (the async frame's); the write 1 (was 2: the op's, and the then on it).
      t.true(promises <= 3.3 * writes, `${promises} promises for ${writes} writes`);
      await new Promise((r) => setTimeout(r, 200)); // the client reads it all, then resets
      for (let i = 0; i < 2000 && failure === undefined; i++) {
        await s.writeAll(src.subarray(0, 4096)).catch((e: { code?: string }) => (failure = e));
      }
    });
    const raw = net.connect(srv.port, '127.0.0.1');
    raw.on('error', () => {});
    const c = client(srv.port, [], false, raw);
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    for (let i = 0; i < 200 && Buffer.concat(parts).length < src.length; i++) await new Promise((r) => setTimeout(r, 10));
    t.is(sha256(Buffer.concat(parts)), sha256(src));
    raw.resetAndDestroy();
    await guard(srv.done, 30_000, 'the server');
    t.true(failure !== undefined && ['EPIPE', 'ECONNRESET'].includes(failure.code ?? ''), String(failure?.code));
    await srv.close();
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});

tlsTest('TlsStream._writeAllTo (no promise): settles [length, buf] from the send, in order with writeAll() made meanwhile; a reset peer rejects with its code', async (t) => {
  await run(async () => {
    const src = randomBytes(300 * 1024);
    let failure: { code?: string } | undefined;
    const srv = await oneServer(async (s) => {
      type To = { _writeAllTo(b: Uint8Array, n: number, res: (r: [number, Uint8Array]) => void, rej: (e: unknown) => void): void };
      const to = s as unknown as To;
      const settled: string[] = [];
      const writeTo = (b: Uint8Array, name: string): Promise<[number, Uint8Array]> =>
        new Promise((resolve, reject) =>
          to._writeAllTo(
            b,
            b.length,
            (r) => {
              settled.push(name);
              resolve(r);
            },
            reject,
          ),
        );
      // Windows of 1000 bytes: each _writeAllTo goes out while the write before it may still be in
      // flight, and a writeAll() and a large one (over 64 KiB: the chain) between them must queue behind.
      const waits: Promise<[number, Uint8Array]>[] = [];
      const wins: Uint8Array[] = [];
      let at = 0;
      for (let i = 0; at < src.length; i++) {
        const n = i === 7 ? 100 * 1024 : 1000;
        const win = src.subarray(at, Math.min(src.length, at + n));
        at += win.length;
        wins.push(win);
        if (i % 3 === 1) {
          const p = s.writeAll(win);
          void p.then(() => settled.push(`w${i}`));
          waits.push(p);
        } else waits.push(writeTo(win, `w${i}`));
      }
      const results = await Promise.all(waits);
      for (let i = 0; i < wins.length; i++) {
        t.is(results[i]![0], wins[i]!.length);
        t.is(results[i]![1], wins[i], 'the caller’s own buffer');
      }
      t.deepEqual(
        settled,
        wins.map((_, i) => `w${i}`),
        'settled in the order they were made',
      );
      // One at a time, each from the last's settlement: no promise of the write's own.
      let promises = 0;
      const stop = promiseHooks.onInit(() => promises++);
      let writes = 0;
      await new Promise<void>((done, fail) => {
        const next = (): void => {
          if (writes === 100) return done();
          writes++;
          to._writeAllTo(src.subarray(0, 100), 100, next, fail);
        };
        next();
      });
      stop();
      // The one left is the driver's flush job (a reaction on a settled promise), one per batch of
      // submissions: each write here is a batch of its own. writeAll() costs one more, its own.
      t.true(promises <= 1.3 * writes, `${promises} promises for ${writes} writes`);
      await new Promise((r) => setTimeout(r, 200)); // the client reads it all, then resets
      for (let i = 0; i < 2000 && failure === undefined; i++) {
        await writeTo(src.subarray(0, 4096), 'late').catch((e: { code?: string }) => (failure = e));
      }
    });
    const raw = net.connect(srv.port, '127.0.0.1');
    raw.on('error', () => {});
    const c = client(srv.port, [], false, raw);
    const parts: Buffer[] = [];
    c.on('data', (b: Buffer) => parts.push(b));
    const want = src.length + 100 * 100;
    for (let i = 0; i < 300 && Buffer.concat(parts).length < want; i++) await new Promise((r) => setTimeout(r, 10));
    const got = Buffer.concat(parts);
    t.is(sha256(got.subarray(0, src.length)), sha256(src));
    raw.resetAndDestroy();
    await guard(srv.done, 30_000, 'the server');
    t.true(failure !== undefined && ['EPIPE', 'ECONNRESET'].includes(failure.code ?? ''), String(failure?.code));
    await srv.close();
    t.deepEqual(tlsCounts(), { contexts: 0, sessions: 0 });
  });
});
