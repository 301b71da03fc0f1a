#!/usr/bin/env node
// Scenario: stream.pipeline of 1 GiB in 64 KiB chunks over loopback TCP, sender and receiver in separate
// processes (receiver pinned to CPU 0, sender to CPU 1, when taskset exists). Cases: both ends on
// node:net sockets (the anchor), and both ends on ringio sockets through toDuplex, on io_uring and on
// epoll. The sender pipes a Readable of 64 KiB chunks (recycled from a pool, so the source costs the same
// in every case) into the socket's Duplex; the receiver pipes the socket's Duplex into a Writable that
// counts. Throughput is timed by the receiver, from accept to the last byte. Rounds are interleaved;
// figures are medians, and the ratio is to node:net's median of the same run.
// Usage: node bench/pipeline.mjs [--rounds 5] [--mib 1024]
// (Internal roles: --role recv|send --impl net|ringio [--driver uring|epoll] [--port P] [--bytes N])
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { arg, emit, has, interleave, median, table } from './lib.mjs';

const CHUNK = 64 * 1024;
const role = arg('role', undefined);

/** Total bytes from `chunks` chunks of a 64-buffer pool (backpressure keeps far fewer than 64 in flight). */
function source(bytes) {
  const pool = Array.from({ length: 64 }, (_, i) => Buffer.alloc(CHUNK, i));
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes / CHUNK; i++) yield pool[i % pool.length];
    })(),
  );
}

function counter() {
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: CHUNK,
    write(chunk, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  return { sink, bytes: () => bytes };
}

/** Receiver: prints its port on stderr, accepts one connection, drains it, prints one JSON line. */
async function receive(impl, driver) {
  const report = (t0, n, cpu0) => {
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(JSON.stringify({ bytes: n, ms, cpu_ms: (cpu.user + cpu.system) / 1000 }) + '\n');
  };
  if (impl === 'net') {
    const server = net.createServer(async (sock) => {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const c = counter();
      await pipeline(sock, c.sink);
      report(t0, c.bytes(), cpu0);
      server.close();
    });
    server.listen(0, '127.0.0.1', () => console.error(`listening on 127.0.0.1:${server.address().port}`));
    return;
  }
  const { start } = await import('@ringio/runtime');
  const { TcpListener } = await import('@ringio/net');
  const { toDuplex } = await import('@ringio/compat');
  await start(
    async () => {
      const l = await TcpListener.bind('127.0.0.1:0');
      console.error(`listening on 127.0.0.1:${l.localAddr.port}`);
      const [stream] = await l.accept();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await l.close();
      const d = toDuplex(stream);
      const c = counter();
      await pipeline(d, c.sink);
      report(t0, c.bytes(), cpu0);
      d.destroy();
    },
    { driver },
  );
}

/**
 * Sender: connects, pipes `bytes` into the socket, ends it, prints its CPU time (from after loading its
 * modules) as one JSON line.
 */
async function send(impl, driver, port, bytes) {
  const ringio =
    impl === 'net'
      ? undefined
      : await Promise.all([import('@ringio/runtime'), import('@ringio/net'), import('@ringio/compat')]);
  const cpu0 = process.cpuUsage();
  const done = () => {
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(JSON.stringify({ cpu_ms: (cpu.user + cpu.system) / 1000 }) + '\n');
  };
  if (ringio === undefined) {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    await pipeline(source(bytes), sock);
    done();
    return;
  }
  const [{ start }, { TcpStream }, { toDuplex }] = ringio;
  await start(
    async () => {
      const d = toDuplex(await TcpStream.connect({ host: '127.0.0.1', port }));
      await pipeline(source(bytes), d);
      d.destroy();
      done();
    },
    { driver },
  );
}

if (role === 'recv') {
  await receive(arg('impl'), arg('driver', 'auto'));
} else if (role === 'send') {
  await send(arg('impl'), arg('driver', 'auto'), Number(arg('port')), Number(arg('bytes')));
} else {
  const rounds = Number(arg('rounds', 5));
  const bytes = Number(arg('mib', 1024)) * 1024 * 1024;
  const self = fileURLToPath(import.meta.url);
  const pinned = has('taskset');
  if (!pinned) console.error('taskset not found: sender and receiver are not pinned');
  const run = (cpu, args) => {
    const full = [process.execPath, self, ...args];
    return pinned ? spawn('taskset', ['-c', String(cpu), ...full], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const lastJson = (child) =>
    new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c) => (out += c));
      child.stderr.setEncoding('utf8').on('data', (c) => (err += c));
      child.on('exit', (code) => {
        const line = out.trim().split('\n').pop();
        if (code !== 0 || !line) reject(new Error(`exit ${code}: ${err.trim()}`));
        else resolve(JSON.parse(line));
      });
    });
  const cases = [
    { name: 'node_net', impl: 'net' },
    { name: 'ringio_uring', impl: 'ringio', driver: 'uring' },
    { name: 'ringio_epoll', impl: 'ringio', driver: 'epoll' },
  ];
  const once = async (c) => {
    const extra = c.driver ? ['--driver', c.driver] : [];
    const recv = run(0, ['--role', 'recv', '--impl', c.impl, ...extra]);
    const result = lastJson(recv);
    const port = await new Promise((resolve, reject) => {
      let err = '';
      recv.stderr.on('data', (chunk) => {
        err += chunk;
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      recv.on('exit', () => reject(new Error(`receiver exited: ${err}`)));
    });
    const sender = await lastJson(run(1, ['--role', 'send', '--impl', c.impl, ...extra, '--port', String(port), '--bytes', String(bytes)]));
    const r = await result;
    if (r.bytes !== bytes) throw new Error(`${c.name}: received ${r.bytes} of ${bytes} bytes`);
    return { mib_s: bytes / 1048576 / (r.ms / 1000), recv_cpu_ms: r.cpu_ms, send_cpu_ms: sender.cpu_ms };
  };
  const runs = await interleave(
    rounds,
    cases.map((c) => ({ name: c.name, run: () => once(c) })),
    { describe: (m) => `${m.mib_s.toFixed(0)} MiB/s` },
  );
  const med = (name, f) => median(runs.get(name).map(f));
  const base = med('node_net', (m) => m.mib_s);
  const out = [];
  for (const c of cases) {
    if (runs.get(c.name).length === 0) continue;
    const mib = med(c.name, (m) => m.mib_s);
    out.push({
      bench: 'pipeline',
      case: c.name,
      mib: bytes / 1048576,
      rounds: runs.get(c.name).length,
      mib_per_s: Math.round(mib),
      ratio_to_node_net: Number((mib / base).toFixed(3)),
      recv_cpu_ms_per_gib: Math.round(med(c.name, (m) => m.recv_cpu_ms) / (bytes / 2 ** 30)),
      send_cpu_ms_per_gib: Math.round(med(c.name, (m) => m.send_cpu_ms) / (bytes / 2 ** 30)),
    });
  }
  table(out.map(({ bench, ...r }) => r));
  emit(out);
}
