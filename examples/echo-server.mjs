#!/usr/bin/env node
// A TCP echo server on ringio: echoes every byte back, for as long as it runs.
// Usage: node examples/echo-server.mjs --port P [--threads N|auto] [--pin] [--driver uring|epoll|auto] [--host 127.0.0.1]
//        [--reads callback|pooled|rented] [--writes queued|awaited]
// --reads callback (default): stream.readLeases(handler) hands each received lease to a callback as it
// arrives, and the callback sends it back with stream.send(lease): no promise and no await per message,
// and with readLeases' `recycle` no lease object either (under 10 bytes allocated a message at 64 and
// 256 connections, about 30 at one, against 600 with --reads pooled and 1,100 with awaited writes:
// docs/benchmarks.md). --reads pooled: `await stream.readLease()` per
// message, then --writes queued (default: stream.send(lease), awaiting flush() only when send() says the
// queue is full) or --writes awaited (`await stream.writeAll(lease.buf)`, the way before send()). A
// waiting connection holds no buffer in all three. --reads rented: one 16 KiB buffer per connection,
// rented to every read (the way before pooled reads). The older ways are kept for comparison.
// The port may also be the last argument (as the reference instruments in ../shared/bench pass it).
// With --threads N, N threads each run their own runtime and their own listener on the same port
// (SO_REUSEPORT): the kernel spreads connections over them. --pin pins thread i to CPU i (mod the
// CPUs this process may use).
import { spawn, start, stats, watch } from '@ringio/runtime';
import { TcpListener } from '@ringio/net';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback;
};
const last = argv[argv.length - 1];
const port = Number(opt('port', /^\d+$/.test(last ?? '') ? last : '7000'));
const host = opt('host', '127.0.0.1');
const driver = opt('driver', process.env.RINGIO_DRIVER || 'auto');
const threadsArg = opt('threads', '1');
const threads = threadsArg === 'auto' ? 'auto' : Number(threadsArg);
const pin = argv.includes('--pin');
const reads = opt('reads', 'callback');
if (reads !== 'callback' && reads !== 'pooled' && reads !== 'rented') throw new TypeError(`--reads must be callback, pooled or rented, got ${reads}`);
const writes = opt('writes', 'queued');
if (writes !== 'queued' && writes !== 'awaited') throw new TypeError(`--writes must be queued or awaited, got ${writes}`);
const quiet = (e) => e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ERR_RINGIO_CLOSED';

// Each loop below runs inside serve(): a peer that resets or goes away ends its connection quietly, and
// the stream is closed whatever happened.
async function serve(stream, loop) {
  try {
    await loop(stream);
  } catch (e) {
    if (!quiet(e)) throw e;
  } finally {
    await stream.close().catch((e) => {
      if (!quiet(e)) throw e;
    });
  }
}

async function echoRented(stream) {
  // One rented buffer per connection: it goes to the kernel and comes back with every read and write.
  // The loop allocates nothing of its own per message: one options object per connection, and the
  // results are indexed rather than destructured (destructuring runs the array iterator, whose objects
  // V8 does not always optimise away across an await). What is left per message is the runtime's:
  // one promise per op and its [n, buf] result.
  let buf = Buffer.allocUnsafe(16384);
  const wopts = { length: 0 };
  for (;;) {
    const r = await stream.read(buf);
    const n = r[0];
    if (n === 0) break;
    wopts.length = n;
    buf = (await stream.writeAll(r[1], wopts))[1];
  }
}

async function echoConsumed(stream) {
  // Pooled reads handed to a callback as they arrive (readLeases), queued writes (send): no promise and
  // no await per message at all. Returning flush()'s promise pauses reading while the queue is full.
  // `recycle`: the handler keeps no lease past send() (which releases it once sent), so the lease
  // objects are recycled and a message allocates nothing for its lease.
  await stream.readLeases(
    (lease) => {
      if (!stream.send(lease)) return stream.flush();
    },
    { recycle: true },
  );
  await stream.flush();
}

async function echoQueued(stream) {
  // Pooled reads, queued writes: no promise and no await per write. send() owns the lease from the
  // call on (released once its bytes are sent, or if send throws); false means the queue is full, so
  // wait for it to empty before reading more. A failed send surfaces on the next send, flush,
  // readLease or close.
  for (;;) {
    const lease = await stream.readLease();
    if (lease === null) break;
    if (!stream.send(lease)) await stream.flush();
  }
  await stream.flush();
}

async function echo(stream) {
  // Pooled reads: a waiting connection holds no buffer. Each read leases a buffer from the runtime's
  // pool (the kernel picks it when bytes arrive); it is sent back as it is and released. One options
  // object per connection, not per message.
  const wopts = { length: 0 };
  for (;;) {
    const lease = await stream.readLease();
    if (lease === null) break;
    try {
      wopts.length = lease.length;
      await stream.writeAll(lease.buf, wopts);
    } finally {
      lease.release();
    }
  }
}

// Thread 0 gets the signals; a watch tells every thread to stop.
const stopping = watch(false);

await start(
  async ({ threadId, threads: n, shared, signal }) => {
    const listener = await TcpListener.bind({ host, port }, { reusePort: true });
    const stop = () => listener.close();
    if (threadId === 0) {
      const all = () => shared.stopping.set(true);
      process.once('SIGINT', all);
      process.once('SIGTERM', all);
    }
    shared.stopping.changed({ signal }).then(stop, stop);
    signal.addEventListener('abort', stop);
    // Said once the signals are handled: a supervisor may signal as soon as it reads this.
    const s = stats();
    console.error(
      `ringio echo on ${host}:${listener.localAddr.port}, thread ${threadId + 1}/${n}, driver ${s.driver}` +
        (s.fallbackReason ? ` (${s.fallbackReason})` : ''),
    );
    const loop = reads === 'rented' ? echoRented : reads === 'callback' ? echoConsumed : writes === 'queued' ? echoQueued : echo;
    for await (const [stream] of listener) spawn(() => serve(stream, loop));
  },
  { driver, threads, pin, shared: { stopping } },
);
