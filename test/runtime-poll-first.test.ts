/**
 * The adaptive IORING_RECVSEND_POLL_FIRST of the io_uring backend (docs/design/driver.md, "Kernel time
 * per op"): a single-shot RECV on an fd whose last RECV had to wait goes straight to the kernel's poll
 * instead of first failing a receive. What these tests hold on both drivers: the feature is probed and
 * reported (RECV_POLL_FIRST in stats().features, or its reason in stats().degraded), it can be turned off
 * (RINGIO_URING_SETUP=nopollfirst, as on a kernel without it), and reads behave the same either way:
 * request/response reads that wait, reads whose data is already there when the guess says "wait", a
 * MSG_DONTWAIT receive on an fd that was marked, which must read queued data or fail at once (io_uring;
 * the epoll engine waits for readiness first), and a cancelled read.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { RecvOp, TcpStream } from '@ringio/net';
import { sleep, stats, submit } from '@ringio/runtime';
import { rt, rtTest } from './helpers.js';

const MSG_DONTWAIT = 0x40;
const SETUPS = [undefined, 'nopollfirst'] as const;

/** Runs fn in a runtime started with RINGIO_URING_SETUP=setup (read when the runtime starts). */
async function withSetup<T>(setup: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.RINGIO_URING_SETUP;
  if (setup === undefined) delete process.env.RINGIO_URING_SETUP;
  else process.env.RINGIO_URING_SETUP = setup;
  try {
    return await rt(fn);
  } finally {
    if (before === undefined) delete process.env.RINGIO_URING_SETUP;
    else process.env.RINGIO_URING_SETUP = before;
  }
}

/** A node:net peer: `onConn` gets each connection. */
async function peer(onConn: (c: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((c) => {
    c.setNoDelay(true);
    c.on('error', () => {});
    onConn(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Reads exactly n bytes from s. */
async function readExactly(s: TcpStream, n: number): Promise<Buffer> {
  const out = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const [k] = await s.read(out, { offset: got });
    if (k === 0) throw new Error(`end of stream after ${got} of ${n} bytes`);
    got += k;
  }
  return out;
}

rtTest('RECV_POLL_FIRST is probed: listed in features, or its reason in stats().degraded; off with RINGIO_URING_SETUP=nopollfirst', async (t) => {
  for (const setup of SETUPS) {
    const s = await withSetup(setup, async () => stats());
    t.true(Array.isArray(s.degraded));
    for (const d of s.degraded) t.regex(d, /^[A-Z_]+: .+/, `"${d}" names the feature and why`);
    const on = s.features.includes('RECV_POLL_FIRST');
    const why = s.degraded.find((d) => d.startsWith('RECV_POLL_FIRST: '));
    if (s.driver === 'epoll') {
      t.false(on);
      t.deepEqual(s.degraded, [], 'epoll probes no io_uring feature');
      continue;
    }
    t.is(on, why === undefined, 'either the feature or its reason, never both');
    if (setup === 'nopollfirst') t.is(why, 'RECV_POLL_FIRST: disabled by RINGIO_URING_SETUP=nopollfirst');
    else if (!on) t.log(`this kernel runs without RECV_POLL_FIRST: ${why}`);
  }
});

rtTest('request/response reads that wait, then reads whose data is already there, are the same with and without poll-first', async (t) => {
  // The peer answers each 4-byte request after a pause (so every read waits and marks the fd), then,
  // asked with "BRST", sends 64 chunks at once before the client reads them (so the marked fd's next
  // reads find data already queued: the guess is wrong and must cost nothing but a poll that fires).
  const { server, port } = await peer((c) => {
    let pending = Buffer.alloc(0);
    c.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 4) {
        const req = pending.subarray(0, 4).toString();
        pending = pending.subarray(4);
        if (req === 'BRST') {
          for (let i = 0; i < 64; i++) c.write(Buffer.alloc(1000, i));
        } else {
          setTimeout(() => c.write(`ans:${req}`), 2);
        }
      }
    });
  });
  try {
    for (const setup of SETUPS) {
      await withSetup(setup, async () => {
        const s = await TcpStream.connect({ host: '127.0.0.1', port });
        try {
          for (let i = 0; i < 30; i++) {
            const req = String(1000 + i);
            await s.write(Buffer.from(req));
            t.is((await readExactly(s, 8)).toString(), `ans:${req}`, `${setup ?? 'default'}: answer ${i}`);
          }
          await s.write(Buffer.from('BRST'));
          await sleep(20); // the burst is queued in the socket before the next read is issued
          const burst = await readExactly(s, 64 * 1000);
          for (let i = 0; i < 64; i++) t.true(burst.subarray(i * 1000, (i + 1) * 1000).every((b) => b === i), `${setup ?? 'default'}: chunk ${i} in order`);
          // Small reads of queued data: every read finds data while the fd is marked from the waits.
          await s.write(Buffer.from('0042'));
          await sleep(20);
          const small = Buffer.alloc(1);
          let text = '';
          for (let i = 0; i < 8; i++) {
            const [n] = await s.read(small);
            t.is(n, 1);
            text += small.toString('latin1', 0, 1);
          }
          t.is(text, 'ans:0042');
        } finally {
          await s.close();
        }
      });
    }
  } finally {
    server.close();
  }
});

rtTest('a MSG_DONTWAIT receive on an fd whose last read waited reads queued data or fails EAGAIN at once; a cancelled waiting read rejects and the next one reads', async (t) => {
  const { server, port } = await peer((c) => c.on('data', (d) => setTimeout(() => c.write(d), 2)));
  try {
    for (const setup of SETUPS) {
      await withSetup(setup, async () => {
        const s = await TcpStream.connect({ host: '127.0.0.1', port });
        try {
          await s.write(Buffer.from('ping'));
          t.is((await readExactly(s, 4)).toString(), 'ping'); // waited: the fd is marked
          const buf = Buffer.alloc(16);
          if (stats().driver === 'uring') {
            // io_uring honours MSG_DONTWAIT on RECV (the epoll engine waits for readiness before any
            // recv, whatever its flags). A poll-first RECV would answer EAGAIN without looking, so a
            // MSG_DONTWAIT receive must be left alone: with data queued it reads it, on an empty
            // socket it fails at once. Each is issued while the fd is marked (its last read waited).
            await s.write(Buffer.from('abcd'));
            t.is((await readExactly(s, 4)).toString(), 'abcd');
            await s.write(Buffer.from('efgh'));
            await sleep(30); // the echo (2 ms later) is queued in the socket
            const [n] = await submit(new RecvOp(s.fd, buf, 0, buf.length, MSG_DONTWAIT));
            t.is(buf.toString('latin1', 0, n), 'efgh', `${setup ?? 'default'}: MSG_DONTWAIT reads queued data`);
            await s.write(Buffer.from('ijkl'));
            t.is((await readExactly(s, 4)).toString(), 'ijkl');
            const err = await t.throwsAsync(submit(new RecvOp(s.fd, buf, 0, buf.length, MSG_DONTWAIT)));
            t.is((err as NodeJS.ErrnoException).code, 'EAGAIN', `${setup ?? 'default'}: an empty socket answers EAGAIN, not a wait`);
          }

          const ctl = new AbortController();
          const pending = s.read(buf, { signal: ctl.signal });
          await sleep(5);
          ctl.abort();
          const aborted = await t.throwsAsync(pending);
          t.is((aborted as Error).name, 'AbortError');
          await s.write(Buffer.from('pong'));
          t.is((await readExactly(s, 4)).toString(), 'pong', `${setup ?? 'default'}: the read after a cancel`);
        } finally {
          await s.close();
        }
      });
    }
  } finally {
    server.close();
  }
});
