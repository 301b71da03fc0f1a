/**
 * The L4 TCP proxy, as a program (ringio-proxy in a child process on the driver under test): relaying,
 * Unix listeners and upstreams, balance policies, upstreams that are down, refuse or reset, half-close
 * both ways, PROXY protocol v1/v2, max_connections, idle_timeout, splice modes, /metrics and /config.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { TcpListener } from '@ringio/net';
import { DRIVER } from './helpers.js';
import { connect, ended, freePort, httpGet, parsePrometheus, readBytes, roundTrip, startProxy, tempDir, upstream, type ProxyProc, proxyTest } from './proxy-helpers.js';

const tmp = tempDir();
test.after.always(tmp.cleanup);

function serverToml(name: string, listen: string, ups: string[], extra = ''): string {
  return `[servers.${name}]\nlisten = "${listen}"\nprotocol = "tcp"\nupstreams = [${ups.map((u) => `{ addr = "${u}" }`).join(', ')}]\n${extra}\n`;
}

async function withProxy(text: string, fn: (p: ProxyProc) => Promise<void>): Promise<void> {
  const file = tmp.file(`p${Math.random().toString(36).slice(2)}.toml`, text);
  const p = await startProxy(file);
  try {
    await fn(p);
  } finally {
    const r = await p.stop();
    if (r.code !== 0) throw new Error(`the proxy exited with ${r.code}/${r.signal}:\n${p.stderr}`);
  }
}

const serial = proxyTest;

serial('relays TCP and Unix listeners to TCP and Unix upstreams; admin /metrics parses; /config shows the config', async (t) => {
  const upTcp = await upstream();
  const upUnix = await upstream({ path: join(tmp.dir, 'up.sock') });
  t.teardown(() => Promise.all([upTcp.close(), upUnix.close()]));
  const [port, admin] = [await freePort(), await freePort()];
  const lsock = join(tmp.dir, 'l.sock');
  const text = `[runtime]\nthreads = 2\n[admin]\nlisten = "127.0.0.1:${admin}"\n` + serverToml('tcp', `127.0.0.1:${port}`, [`unix:${upUnix.path}`]) + serverToml('unix', `unix:${lsock}`, [`127.0.0.1:${upTcp.port}`]);
  await withProxy(text, async () => {
    for (let i = 0; i < 6; i++) t.is(await roundTrip(port, `hello ${i}`), `hello ${i}`);
    for (let i = 0; i < 6; i++) t.is(await roundTrip(lsock, `unix ${i}`), `unix ${i}`);
    t.is(upUnix.accepted, 6);
    t.is(upTcp.accepted, 6);
    const m = await httpGet(admin, '/metrics');
    t.is(m.status, 200);
    t.regex(m.type, /^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(m.body);
    t.is(samples.get('ringio_proxy_connections_total{server="tcp"}'), 6);
    t.is(samples.get('ringio_proxy_connections_total{server="unix"}'), 6);
    t.is(samples.get('ringio_proxy_bytes_total{server="tcp",direction="upstream"}'), 'hello 0'.length * 6);
    t.is(samples.get(`ringio_proxy_upstream_connections_total{server="unix",upstream="127.0.0.1:${upTcp.port}"}`), 6);
    t.is(samples.get('ringio_proxy_threads'), 2);
    t.is(samples.get('ringio_proxy_config_generation'), 1);
    const c = await httpGet(admin, '/config');
    t.is(c.status, 200);
    t.like(JSON.parse(c.body), { generation: 1, runtime: { threads: 2 }, servers: { tcp: { listen: `127.0.0.1:${port}` } } });
    t.is((await httpGet(admin, '/nope')).status, 404);
  });
});

serial('balance: round_robin alternates, weighted follows weights, least_conn prefers the idle one, random uses all', async (t) => {
  const a = await upstream({ mode: 'tag', tag: 'A' });
  const b = await upstream({ mode: 'tag', tag: 'B' });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const ups = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
  const text =
    serverToml('rr', `127.0.0.1:${ports[0]}`, ups, 'balance = "round_robin"') +
    `[servers.w]\nlisten = "127.0.0.1:${ports[1]}"\nprotocol = "tcp"\nupstreams = [{ addr = "${ups[0]}", weight = 3 }, { addr = "${ups[1]}", weight = 1 }]\nbalance = "weighted"\n` +
    serverToml('lc', `127.0.0.1:${ports[2]}`, ups, 'balance = "least_conn"') +
    serverToml('rnd', `127.0.0.1:${ports[3]}`, ups, 'balance = "random"');
  const tagOf = async (port: number): Promise<string> => {
    const s = await connect(port);
    const tag = (await readBytes(s, 1)).toString();
    s.destroy();
    return tag;
  };
  await withProxy(text, async () => {
    const rr: string[] = [];
    for (let i = 0; i < 8; i++) rr.push(await tagOf(ports[0]!));
    t.is(rr.filter((x) => x === 'A').length, 4, rr.join(''));
    for (let i = 1; i < rr.length; i++) t.not(rr[i], rr[i - 1], `round robin alternates: ${rr.join('')}`);
    const w: string[] = [];
    for (let i = 0; i < 8; i++) w.push(await tagOf(ports[1]!));
    t.is(w.filter((x) => x === 'A').length, 6, w.join(''));
    // least_conn: with one connection held open, the next goes to the other upstream; held connections spread evenly.
    const held: import('node:net').Socket[] = [];
    const tags: string[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await connect(ports[2]!);
      held.push(s);
      tags.push((await readBytes(s, 1)).toString());
    }
    t.not(tags[1], tags[0], tags.join(''));
    t.not(tags[3], tags[2], tags.join(''));
    t.is(tags.filter((x) => x === 'A').length, 2, tags.join(''));
    for (const s of held) s.destroy();
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) seen.add(await tagOf(ports[3]!));
    t.is(seen.size, 2);
  });
});

serial('an upstream that is down is skipped and backed off; all down closes the client; metrics count it', async (t) => {
  const good = await upstream();
  t.teardown(() => good.close());
  const [dead, port, port2, admin] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const text =
    `[admin]\nlisten = "127.0.0.1:${admin}"\n` +
    serverToml('s', `127.0.0.1:${port}`, [`127.0.0.1:${dead}`, `127.0.0.1:${good.port}`], 'backoff_min = "10s"') +
    serverToml('none', `127.0.0.1:${port2}`, [`127.0.0.1:${dead}`, `unix:${join(tmp.dir, 'missing.sock')}`]);
  await withProxy(text, async (p) => {
    for (let i = 0; i < 6; i++) t.is(await roundTrip(port, `m${i}`), `m${i}`);
    t.is(good.accepted, 6);
    const down = await p.waitFor('upstream_down', 5000, (l) => l.server === 's');
    t.like(down, { level: 'warn', upstream: `127.0.0.1:${dead}`, error: 'ECONNREFUSED' });
    const s = await connect(port2);
    s.write('anyone?');
    // Closed without a byte (a reset, since the proxy never read what the client sent).
    t.is((await readBytes(s, 100).catch(() => Buffer.alloc(0))).length, 0, 'no bytes: the client is closed');
    s.destroy();
    const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
    // Backed off after the first refusal: only one failed connect for 6 connections.
    t.is(m.get(`ringio_proxy_upstream_connect_failures_total{server="s",upstream="127.0.0.1:${dead}"}`), 1);
    t.is(m.get(`ringio_proxy_upstream_up{server="s",upstream="127.0.0.1:${dead}"}`), 0);
    t.is(m.get(`ringio_proxy_upstream_up{server="s",upstream="127.0.0.1:${good.port}"}`), 1);
    t.is(m.get('ringio_proxy_connection_errors_total{server="none",code="ERR_RINGIO_NO_UPSTREAM"}'), 1);
  });
});

serial('an upstream that resets: the client connection is closed, the proxy keeps serving', async (t) => {
  const rst = await upstream({ mode: 'reset' });
  const good = await upstream();
  t.teardown(() => Promise.all([rst.close(), good.close()]));
  const [p1, p2] = [await freePort(), await freePort()];
  const admin = await freePort();
  const text = `[admin]\nlisten = "127.0.0.1:${admin}"\n` + serverToml('r', `127.0.0.1:${p1}`, [`127.0.0.1:${rst.port}`]) + serverToml('g', `127.0.0.1:${p2}`, [`127.0.0.1:${good.port}`]);
  await withProxy(text, async (p) => {
    const fds = () => readdirSync(`/proc/${p.child.pid}/fd`).length;
    const before = fds();
    for (let i = 0; i < 20; i++) {
      const s = await connect(p1);
      s.write('boom');
      const got = await readBytes(s, 100).catch(() => Buffer.alloc(0));
      t.is(got.length, 0);
      s.destroy();
    }
    t.is(await roundTrip(p2, 'still here'), 'still here');
    // Every connection is gone and no fd leaked (a client that resets mid-stream included).
    for (let i = 0; i < 20; i++) {
      const c = await connect(p2);
      c.write('x'.repeat(1000));
      c.resetAndDestroy();
    }
    let active = -1;
    for (let i = 0; i < 200 && active !== 0; i++) {
      const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
      active = (m.get('ringio_proxy_connections_active{server="r"}') ?? 0) + (m.get('ringio_proxy_connections_active{server="g"}') ?? 0);
      if (active !== 0) await new Promise((r) => setTimeout(r, 25));
    }
    t.is(active, 0);
    // The admin connection that answered the last /metrics may still be closing: give it a moment.
    for (let i = 0; i < 100 && fds() !== before; i++) await new Promise((r) => setTimeout(r, 20));
    t.is(fds(), before);
  });
});

serial('half-close passes through both ways', async (t) => {
  const up = await upstream();
  const net = await import('node:net');
  // An upstream that says hello and ends its side at once, then reports what it received.
  let received = '';
  const gotAll = new Promise<void>((resolve) => {
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      s.end('bye-first');
      s.on('data', (d) => (received += d));
      s.on('end', () => resolve());
    });
    srv.listen(0, '127.0.0.1');
    t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
    (globalThis as { halfSrv?: typeof srv }).halfSrv = srv;
  });
  const srv = (globalThis as { halfSrv?: import('node:net').Server }).halfSrv!;
  await new Promise((r) => (srv.listening ? r(null) : srv.once('listening', r)));
  t.teardown(() => up.close());
  const [p1, p2] = [await freePort(), await freePort()];
  const text = serverToml('echo', `127.0.0.1:${p1}`, [`127.0.0.1:${up.port}`]) + serverToml('first', `127.0.0.1:${p2}`, [`127.0.0.1:${(srv.address() as import('node:net').AddressInfo).port}`]);
  await withProxy(text, async () => {
    // Client ends first: the upstream sees the end, still answers, then ends too.
    const c = await connect(p1);
    c.write('abc');
    c.end();
    const back = await readBytes(c, 1 << 20);
    t.is(back.toString(), 'abc');
    t.true(c.readableEnded, 'the upstream end reached the client');
    c.destroy();
    // Upstream ends first: the client sees the end and can still send.
    const d = await connect(p2);
    const hello = await readBytes(d, 9);
    t.is(hello.toString(), 'bye-first');
    await ended(d);
    d.write('late data');
    d.end();
    await gotAll;
    t.is(received, 'late data');
    d.destroy();
  });
});

serial('PROXY protocol v1 and v2 headers reach the upstream', async (t) => {
  const v1 = await upstream();
  const v2 = await upstream();
  t.teardown(() => Promise.all([v1.close(), v2.close()]));
  const [p1, p2] = [await freePort(), await freePort()];
  const text = serverToml('v1', `127.0.0.1:${p1}`, [`127.0.0.1:${v1.port}`], 'proxy_protocol = "v1"') + serverToml('v2', `127.0.0.1:${p2}`, [`127.0.0.1:${v2.port}`], 'proxy_protocol = "v2"');
  await withProxy(text, async () => {
    const s = await connect(p1);
    const local = s.localPort;
    const header = `PROXY TCP4 127.0.0.1 127.0.0.1 ${local} ${p1}\r\n`;
    s.write('payload');
    const got = (await readBytes(s, header.length + 7)).toString();
    t.is(got, header + 'payload');
    s.destroy();
    const s2 = await connect(p2);
    s2.write('x');
    const b = await readBytes(s2, 16 + 12 + 1);
    t.deepEqual([...b.subarray(0, 12)], [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    t.is(b[12], 0x21);
    t.is(b[13], 0x11);
    t.is(b.readUInt16BE(14), 12);
    t.deepEqual([...b.subarray(16, 24)], [127, 0, 0, 1, 127, 0, 0, 1]);
    t.is(b.readUInt16BE(24), s2.localPort!);
    t.is(b.readUInt16BE(26), p2);
    t.is(b.subarray(28).toString(), 'x');
    s2.destroy();
  });
});

serial('max_connections refuses the connection over the limit; idle_timeout closes a quiet one', async (t) => {
  const up = await upstream();
  t.teardown(() => up.close());
  const [p1, p2, admin] = [await freePort(), await freePort(), await freePort()];
  // Two threads: the limit counts over both (whichever thread accepts the second connection refuses it).
  const text = `[runtime]\nthreads = 2\n[admin]\nlisten = "127.0.0.1:${admin}"\n` + serverToml('lim', `127.0.0.1:${p1}`, [`127.0.0.1:${up.port}`], 'max_connections = 1') + serverToml('idle', `127.0.0.1:${p2}`, [`127.0.0.1:${up.port}`], 'idle_timeout = "200ms"');
  await withProxy(text, async () => {
    const first = await connect(p1);
    first.write('one');
    t.is((await readBytes(first, 3)).toString(), 'one');
    for (let i = 0; i < 4; i++) {
      const second = await connect(p1);
      second.write('two');
      t.is((await readBytes(second, 3).catch(() => Buffer.alloc(0))).length, 0, 'over the limit: closed');
      second.destroy();
    }
    first.destroy();
    // Once the first is gone, a new one is served (the count went back down).
    let served = '';
    for (let i = 0; i < 50 && served !== 'three'; i++) served = await roundTrip(p1, 'three').catch(() => '');
    t.is(served, 'three');
    const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
    // At least the second one; retries above may have come before the proxy saw the first one close.
    t.true((m.get('ringio_proxy_connection_errors_total{server="lim",code="ERR_RINGIO_OVERLOADED"}') ?? 0) >= 1);

    const quiet = await connect(p2);
    quiet.write('ping');
    t.is((await readBytes(quiet, 4)).toString(), 'ping');
    t.truthy(await ended(quiet, 15000), 'the idle connection was closed by the proxy');
    quiet.destroy();
  });
});

serial('bulk transfers are intact with splice auto, always and never (8 MiB each way)', async (t) => {
  const up = await upstream();
  t.teardown(() => up.close());
  const ports = [await freePort(), await freePort(), await freePort()];
  const text = ['auto', 'always', 'never'].map((m, i) => serverToml(m, `127.0.0.1:${ports[i]!}`, [`127.0.0.1:${up.port}`], `splice = "${m}"\nbuffer_size = 65536`)).join('');
  await withProxy(text, async () => {
    const data = randomBytes(8 << 20);
    const want = createHash('sha256').update(data).digest('hex');
    for (const port of ports) {
      const s = await connect(port!);
      const reading = readBytes(s, data.length, 60000);
      s.write(data);
      s.end();
      const got = await reading;
      t.is(got.length, data.length);
      t.is(createHash('sha256').update(got).digest('hex'), want);
      s.destroy();
    }
  });
});

serial('access_log writes one line per connection', async (t) => {
  const up = await upstream();
  t.teardown(() => up.close());
  const port = await freePort();
  await withProxy(serverToml('logged', `127.0.0.1:${port}`, [`127.0.0.1:${up.port}`], 'access_log = true'), async (p) => {
    t.is(await roundTrip(port, 'abcd'), 'abcd');
    const l = await p.waitFor('access', 5000);
    t.like(l, { server: 'logged', upstream: `127.0.0.1:${up.port}`, up: 4, down: 4 });
  });
});

serial('connect_timeout gives up on an upstream that never completes the handshake; the next one serves', async (t) => {
  // A listener that never accepts, with its queue full: the kernel drops new SYNs, so a connect hangs.
  const hole = await TcpListener.bind('127.0.0.1:0', { reusePort: false, backlog: 1 });
  const fillers: net.Socket[] = [];
  t.teardown(async () => {
    for (const f of fillers) f.destroy();
    await hole.close();
  });
  for (let i = 0; i < 4; i++) fillers.push(net.connect(hole.localAddr.port, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 300));
  const good = await upstream();
  t.teardown(() => good.close());
  const [p1, p2] = [await freePort(), await freePort()];
  const blackhole = `127.0.0.1:${hole.localAddr.port}`;
  const text =
    `[runtime]\npin = [0]\n` +
    serverToml('two', `127.0.0.1:${p1}`, [blackhole, `127.0.0.1:${good.port}`], 'connect_timeout = "300ms"\nconnect_attempts = 2\nbackoff_min = "5s"\nbackoff_max = "10s"\nbacklog = 16') +
    serverToml('one', `127.0.0.1:${p2}`, [blackhole], 'connect_timeout = "200ms"\nconnect_attempts = 1');
  await withProxy(text, async (p) => {
    const started = p.logs.find((l) => l.event === 'started')!;
    if (DRIVER !== 'auto') t.is(started.driver, DRIVER);
    t.is(await roundTrip(p1, 'via the next one'), 'via the next one');
    const down = await p.waitFor('upstream_down', 5000, (l) => l.server === 'two');
    t.like(down, { upstream: blackhole, error: 'ERR_RINGIO_TIMEOUT', streak: 1 });
    const s = await connect(p2);
    t.is((await readBytes(s, 10).catch(() => Buffer.alloc(0))).length, 0, 'only one attempt, and it timed out: closed');
    s.destroy();
  });
});
