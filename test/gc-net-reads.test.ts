/**
 * GC tier for @ringio/net: socket reads in flight whose buffers are referenced only by the runtime.
 * Full and minor GCs (which compact and move objects) and heap churn run while 64 reads wait on 64 TCP
 * connections (or UDP sockets); then the peers write distinct random payloads. Every byte must land in
 * the buffer the caller gets back, including small Uint8Arrays that V8 allocates on its moving heap,
 * readv's buffer arrays, and recvFrom's sender address.
 */
import test from 'ava';
import { TcpListener, TcpStream, UdpSocket } from '@ringio/net';
import { stats } from '@ringio/runtime';
import { bufferCases, canary, churn, fdCount, gc, guard, randomBytes, rt, unavailable, type BufferCase } from './helpers.js';

if (unavailable !== null) console.log(`gc-net-reads: skipping: ${unavailable}`);
const serial = unavailable === null ? test.serial : test.serial.skip;

const CONNS = 64;

/** CONNS connected TCP pairs; the listener is closed again (so no accept stays in flight). */
async function tcpPairs(): Promise<{ clients: TcpStream[]; servers: TcpStream[] }> {
  const l = await TcpListener.bind('127.0.0.1:0');
  const servers = new Map<number, TcpStream>();
  const accepting = (async () => {
    for (let i = 0; i < CONNS; i++) {
      const [s, peer] = await l.accept();
      servers.set(peer.port, s);
    }
  })();
  const clients = await Promise.all(Array.from({ length: CONNS }, () => TcpStream.connect(`127.0.0.1:${l.localAddr.port}`)));
  await accepting;
  await l.close();
  // Pair each client with its own server end.
  return { clients, servers: clients.map((c) => servers.get(c.localAddr.port)!) };
}

/**
 * Submits one read per stream into a fresh buffer and returns only the promises and weak references:
 * no strong reference to a buffer survives this call outside the runtime.
 */
function submitReads(streams: TcpStream[], c: BufferCase): { reads: Promise<[number, Uint8Array]>[]; refs: WeakRef<Uint8Array>[] } {
  const reads: Promise<[number, Uint8Array]>[] = [];
  const refs: WeakRef<Uint8Array>[] = [];
  for (const s of streams) {
    const buf = c.make();
    refs.push(new WeakRef(buf));
    reads.push(s.read(buf, c.window ?? {}));
  }
  return { reads, refs };
}

for (const c of bufferCases) {
  serial(`TCP reads survive GC while only the runtime holds their buffers: ${c.title}`, async (t) => {
    t.timeout(60_000);
    t.is(typeof gc, 'function', 'run with --expose-gc');
    const fds0 = fdCount();
    await rt(async () => {
      const { clients, servers } = await tcpPairs();
      const { reads, refs } = submitReads(clients, c);
      const dead = canary();
      let settledEarly = 0;
      for (const p of reads) void p.then(() => settledEarly++, () => settledEarly++);
      t.is(stats().opsInFlight, CONNS);

      await churn(50);

      t.is(dead.deref(), undefined, 'the GC loop collects unreferenced buffers');
      t.is(settledEarly, 0, 'no read finished before any data was written');
      t.is(stats().opsInFlight, CONNS);
      t.true(
        refs.every((r) => r.deref() !== undefined),
        'the runtime keeps every in-flight buffer alive',
      );

      const payloads = servers.map(() => randomBytes(c.size));
      const written = await Promise.all(servers.map((s, i) => s.writeAll(payloads[i]!)));
      t.deepEqual(
        written.map(([n]) => n),
        new Array(CONNS).fill(c.size),
      );
      // More churn between the data arriving and the caller looking at it.
      await churn(3);

      const results = await guard(Promise.all(reads), 10_000, 'reads');
      let bad = 0;
      for (let i = 0; i < CONNS; i++) {
        const [n, buf] = results[i]!;
        t.is(n, c.size, `connection ${i}: bytes read`);
        t.true(buf === refs[i]!.deref(), `connection ${i}: the same buffer comes back`);
        const off = c.window?.offset ?? 0;
        const got = Buffer.from(buf.buffer, buf.byteOffset + off, n);
        if (!got.equals(payloads[i]!)) {
          bad++;
          t.fail(`connection ${i}: payload mismatch: got ${got.toString('hex')} want ${payloads[i]!.toString('hex')}`);
        }
        if (c.window !== undefined) {
          const before = Buffer.from(buf.buffer, buf.byteOffset, off);
          const after = Buffer.from(buf.buffer, buf.byteOffset + off + n, buf.byteLength - off - n);
          t.true(before.every((b) => b === 0xee) && after.every((b) => b === 0xee), `connection ${i}: bytes outside the window untouched`);
        }
      }
      t.is(bad, 0);
      t.is(stats().opsInFlight, 0);
      for (const s of [...clients, ...servers]) await s.close();
    });
    t.is(fdCount(), fds0, 'every socket and the runtime itself are closed');
  });
}

serial('TCP readv survives GC: arrays of two 16-byte Uint8Arrays (on V8 heap) held only by the runtime', async (t) => {
  t.timeout(60_000);
  t.is(typeof gc, 'function', 'run with --expose-gc');
  await rt(async () => {
    const { clients, servers } = await tcpPairs();
    const reads: Promise<[number, Uint8Array[]]>[] = [];
    const refs: WeakRef<Uint8Array>[][] = [];
    (() => {
      for (const s of clients) {
        const bufs = [new Uint8Array(16), new Uint8Array(16)];
        refs.push(bufs.map((b) => new WeakRef(b)));
        reads.push(s.readv(bufs));
      }
    })();
    const dead = canary();
    await churn(50);
    t.is(dead.deref(), undefined);
    t.is(stats().opsInFlight, CONNS);
    const payloads = servers.map(() => randomBytes(32));
    await Promise.all(servers.map((s, i) => s.writeAll(payloads[i]!)));
    await churn(3);
    const results = await guard(Promise.all(reads), 10_000, 'readv');
    let bad = 0;
    for (let i = 0; i < CONNS; i++) {
      const [n, bufs] = results[i]!;
      if (n !== 32 || bufs[0] !== refs[i]![0]!.deref() || bufs[1] !== refs[i]![1]!.deref()) bad++;
      else if (!Buffer.concat(bufs).equals(payloads[i]!)) bad++;
    }
    t.is(bad, 0, 'every readv got its 32 bytes into its own two buffers');
    for (const s of [...clients, ...servers]) await s.close();
  });
});

serial('UDP recvFrom survives GC: 32-byte Uint8Arrays (on V8 heap) and the sender address', async (t) => {
  t.timeout(60_000);
  t.is(typeof gc, 'function', 'run with --expose-gc');
  await rt(async () => {
    const sender = await UdpSocket.bind('127.0.0.1:0');
    const receivers = await Promise.all(Array.from({ length: CONNS }, () => UdpSocket.bind('127.0.0.1:0')));
    const reads: Promise<[number, Uint8Array, { address: string; port: number; family: string }]>[] = [];
    const refs: WeakRef<Uint8Array>[] = [];
    (() => {
      for (const r of receivers) {
        const buf = new Uint8Array(32);
        refs.push(new WeakRef(buf));
        reads.push(r.recvFrom(buf));
      }
    })();
    const dead = canary();
    await churn(50);
    t.is(dead.deref(), undefined);
    t.is(stats().opsInFlight, CONNS);
    t.true(refs.every((r) => r.deref() !== undefined));
    const payloads = receivers.map(() => randomBytes(32));
    await Promise.all(receivers.map((r, i) => sender.sendTo(payloads[i]!, `127.0.0.1:${r.localAddr.port}`)));
    await churn(3);
    const results = await guard(Promise.all(reads), 10_000, 'recvFrom');
    let bad = 0;
    for (let i = 0; i < CONNS; i++) {
      const [n, buf, from] = results[i]!;
      if (n !== 32 || buf !== refs[i]!.deref() || !Buffer.from(buf).equals(payloads[i]!)) bad++;
      if (from.address !== '127.0.0.1' || from.port !== sender.localAddr.port) bad++;
    }
    t.is(bad, 0, 'every datagram and sender address landed intact');
    for (const s of [sender, ...receivers]) await s.close();
  });
});
