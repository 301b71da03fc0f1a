// The soak's load generator, in its own process (a process may hold 20,000 fds here: 15,000 client
// sockets and 15,000 server sockets do not fit in one). Driven by scripts/soak.mjs over IPC:
//   { t: 'ramp', port, conns, protocol }  opens `conns` connections (a few hundred connecting at a
//                                        time), each checked by one round trip; answers { t: 'ramped' }
//   { t: 'run', seconds, rate }          round trips over every connection for `seconds`, at about
//                                        `rate` per second in all (each connection, in turn, one at a
//                                        time); answers { t: 'ran', roundTrips, errors }
//   { t: 'close' }                       ends every connection (FIN) and waits for 'close'
// A round trip is checked byte for byte: echo gets its own random message back; http gets a 200 with
// the body 'hello world\n'. Anything else (a connect error, a reset, a wrong byte, an early close) is
// counted as an error, with a few samples.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const conns = [];
let errors = 0;
const samples = [];
const fail = (what) => {
  errors++;
  if (samples.length < 5) samples.push(what);
};
let protocol = 'echo';
const HTTP_REQ = Buffer.from('GET / HTTP/1.1\r\nHost: soak\r\n\r\n');
const HTTP_BODY = 'hello world\n';

class Conn {
  constructor(id, port) {
    this.id = id;
    this.pending = null; // { resolve, expect | http }
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', (e) => {
      if (!this.ending) fail(`conn ${this.id}: ${e.code ?? e.message}`);
    });
    this.sock.on('close', () => {
      this.closed = true;
      if (!this.ending) fail(`conn ${this.id}: closed by the server`);
      this.settle(false);
    });
  }
  connected() {
    return new Promise((resolve) => {
      this.sock.once('connect', () => resolve(true));
      this.sock.once('close', () => resolve(false));
    });
  }
  settle(ok) {
    const p = this.pending;
    this.pending = null;
    this.buf = Buffer.alloc(0);
    p?.resolve(ok);
  }
  onData(d) {
    if (this.pending === null) {
      fail(`conn ${this.id}: ${d.length} bytes nobody asked for`);
      return;
    }
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    if (protocol === 'echo') {
      const want = this.pending.expect;
      if (this.buf.length < want.length) return;
      if (this.buf.length > want.length || !this.buf.equals(want)) fail(`conn ${this.id}: echo differs`);
      this.settle(true);
      return;
    }
    const head = this.buf.indexOf('\r\n\r\n');
    if (head < 0) return;
    const headers = this.buf.toString('latin1', 0, head);
    const m = /\r\ncontent-length: *(\d+)/i.exec(headers);
    const len = m ? Number(m[1]) : -1;
    if (this.buf.length < head + 4 + Math.max(len, 0)) return;
    const body = this.buf.toString('latin1', head + 4);
    if (!headers.startsWith('HTTP/1.1 200') || body !== HTTP_BODY) fail(`conn ${this.id}: bad response ${JSON.stringify(headers.slice(0, 40))} ${JSON.stringify(body)}`);
    this.settle(true);
  }
  roundTrip() {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      if (protocol === 'echo') {
        const msg = randomBytes(16 + (this.id % 240));
        this.pending = { resolve, expect: msg };
        this.sock.write(msg);
      } else {
        this.pending = { resolve };
        this.sock.write(HTTP_REQ);
      }
    });
  }
}

async function ramp(port, n) {
  const BATCH = 250;
  for (let i = 0; i < n; i += BATCH) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + BATCH); k++) {
      const c = new Conn(k, port);
      conns.push(c);
      batch.push(c.connected().then((ok) => (ok ? c.roundTrip() : false)));
    }
    await Promise.all(batch);
  }
}

async function run(seconds, rate) {
  const until = performance.now() + seconds * 1000;
  let roundTrips = 0;
  let next = 0;
  const TICK = 50;
  const perTick = Math.max(1, Math.round((rate * TICK) / 1000));
  const inflight = new Set();
  while (performance.now() < until) {
    const t0 = performance.now();
    for (let k = 0; k < perTick; k++) {
      const c = conns[next++ % conns.length];
      if (c.pending !== null || c.closed) continue;
      const p = c.roundTrip().then((ok) => {
        if (ok) roundTrips++;
        inflight.delete(p);
      });
      inflight.add(p);
    }
    const wait = TICK - (performance.now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  }
  await Promise.all(inflight);
  return roundTrips;
}

async function closeAll() {
  await Promise.all(
    conns.map(
      (c) =>
        new Promise((resolve) => {
          c.ending = true;
          if (c.closed) return resolve();
          c.sock.once('close', resolve);
          c.sock.end();
        }),
    ),
  );
  conns.length = 0;
}

process.on('message', async (m) => {
  if (m.t === 'ramp') {
    protocol = m.protocol;
    await ramp(m.port, m.conns);
    process.send({ t: 'ramped', open: conns.filter((c) => !c.closed).length, errors, samples });
  } else if (m.t === 'run') {
    const roundTrips = await run(m.seconds, m.rate);
    process.send({ t: 'ran', roundTrips, open: conns.filter((c) => !c.closed).length, errors, samples });
  } else if (m.t === 'close') {
    await closeAll();
    process.send({ t: 'closed', errors, samples });
    process.disconnect();
  }
});
process.send({ t: 'hello' });
