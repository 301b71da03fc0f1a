#!/usr/bin/env node
// The soak: npm run soak -- [--conns 15000] [--seconds 60] [--rate 5000] [--warm S]
// [--drivers uring,epoll] [--variants echo,node-http,ringio-http]. For each variant and driver, a server process (scripts/soak/server.mjs:
// one ringio runtime) and a load generator in its own process (scripts/soak/client.mjs, node:net) run:
//   ramp-up: `conns` connections opened, each checked by one round trip, then `warm` seconds of traffic
//            (default: 5 round trips per connection);
//   steady:  `seconds` of round trips over all of them, `rate` per second in all, each checked byte for byte;
//   close:   the client ends every connection; the server's fds must come back to where they were.
// Figures per run: errors (client and server), the server's RSS after ramp-up and at the end (both after
// a full GC, each the median of three samples a second of traffic apart) and their drift (growth must
// stay within 5%: a leak grows; a drop is memory given back, reported but not a failure), with the heap and external memory in 10-second steps in between, its fds before, at ramp-up and after close (must be
// back to the first). Exits 1 if a run misses any of these. The load average is printed with each run:
// the machine is shared.
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = join(dirname(fileURLToPath(import.meta.url)), 'soak');
const { values } = parseArgs({
  options: {
    conns: { type: 'string', default: '15000' },
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '5000' },
    warm: { type: 'string' },
    drivers: { type: 'string', default: 'uring,epoll' },
    variants: { type: 'string', default: 'echo,node-http,ringio-http' },
  },
});
const conns = Number(values.conns);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
// Default warm-up: long enough for every connection to make 5 round trips at the steady rate.
const warm = values.warm === undefined ? Math.ceil((5 * conns) / rate) : Number(values.warm);
for (const [k, v] of [['conns', conns], ['seconds', seconds], ['rate', rate]]) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${k} must be a positive integer`);
    process.exit(2);
  }
}

/** The next message of type t from a child (rejects if it exits first or takes longer than ms). */
function next(child, t, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no '${t}' from ${child.spawnargs.slice(-3).join(' ')} within ${ms} ms`)), ms);
    const onMsg = (m) => {
      if (m?.t === t) done(null, m);
    };
    const onExit = (code, sig) => done(new Error(`${child.spawnargs.slice(-3).join(' ')} exited (${code ?? sig}) before '${t}'`));
    function done(err, m) {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
      err ? reject(err) : resolve(m);
    }
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

const stats = async (server) => {
  server.send({ t: 'stats' });
  return next(server, 'stats', 60_000);
};
/**
 * The server's figures at a point of the run: three samples, each after one more second of traffic;
 * the one with the median RSS (one sample catches the allocator mid-way too easily).
 */
async function settled(server, client) {
  const samples = [];
  for (let i = 0; i < 3; i++) {
    client.send({ t: 'run', seconds: 1, rate });
    await next(client, 'ran', 600_000);
    samples.push(await stats(server));
  }
  return samples.sort((a, b) => a.rss - b.rss)[1];
}
const mb = (b) => (b / 1048576).toFixed(1);
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

async function soak(variant, driver) {
  const server = fork(join(here, 'server.mjs'), [driver, variant], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let client;
  try {
    const ready = await next(server, 'ready', 30_000);
    const base = await stats(server);
    client = fork(join(here, 'client.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await next(client, 'hello', 30_000);
    const t0 = performance.now();
    client.send({ t: 'ramp', port: ready.port, conns, protocol: ready.protocol });
    const ramped = await next(client, 'ramped', 600_000);
    const rampMs = performance.now() - t0;
    // Ramp-up ends with a warm-up at the steady rate (JIT, pools, the heap reach their working size),
    // so that the RSS compared with the end's is the working set, not a cold process.
    client.send({ t: 'run', seconds: warm, rate });
    await next(client, 'ran', warm * 1000 + 600_000);
    const atRamp = await settled(server, client);
    // The steady phase in 10-second steps, with the server's memory after each: a leak climbs step
    // after step, a working set levels off.
    const curve = [];
    let roundTrips = 0;
    for (let done = 0; done < seconds; ) {
      const step = Math.min(10, seconds - done);
      client.send({ t: 'run', seconds: step, rate });
      const ran = await next(client, 'ran', step * 1000 + 600_000);
      roundTrips += ran.roundTrips;
      done += step;
      const s = await stats(server);
      curve.push(`${done}s: rss ${mb(s.rss)} heap ${mb(s.heapUsed)} external ${mb(s.external)} MB`);
      console.log(`  ${curve.at(-1)}`);
    }
    const atEnd = await settled(server, client);
    const loadAtEnd = load();
    client.send({ t: 'close' });
    const closed = await next(client, 'closed', 300_000);
    let after = await stats(server);
    for (let i = 0; i < 600 && after.fds > base.fds; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await stats(server);
    }
    server.send({ t: 'stop' });
    const done = await next(server, 'done', 60_000);
    const drift = (atEnd.rss - atRamp.rss) / atRamp.rss;
    const errors = closed.errors + done.errors;
    const r = {
      variant,
      driver: ready.driver,
      conns,
      open: ramped.open,
      rampS: (rampMs / 1000).toFixed(1),
      roundTrips,
      errors,
      rss: { base: mb(base.rss), ramp: mb(atRamp.rss), end: mb(atEnd.rss), drift: `${(drift * 100).toFixed(1)}%` },
      heapUsed: { ramp: mb(atRamp.heapUsed), end: mb(atEnd.heapUsed) },
      external: { ramp: mb(atRamp.external), end: mb(atEnd.external) },
      fds: { base: base.fds, ramp: atRamp.fds, after: after.fds },
      opsInFlightAfter: after.opsInFlight,
      load: loadAtEnd,
      ok: errors === 0 && ramped.open === conns && drift <= 0.05 && after.fds === base.fds && atRamp.fds >= base.fds + conns,
    };
    if (errors > 0) r.errorSamples = [...closed.samples, ...done.errorSamples ?? [], ...after.errorSamples];
    return r;
  } finally {
    if (client?.exitCode === null) client.kill('SIGKILL');
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

let failed = false;
const rows = [];
for (const variant of values.variants.split(',')) {
  for (const driver of values.drivers.split(',')) {
    console.log(`\n=== soak: ${variant} on ${driver}, ${conns} connections, ${seconds} s at ~${rate} round trips/s (load ${load()}) ===`);
    let r;
    try {
      r = await soak(variant, driver);
    } catch (e) {
      failed = true;
      console.log(`FAILED: ${e.message}`);
      continue;
    }
    console.log(JSON.stringify(r, null, 1));
    if (!r.ok) failed = true;
    rows.push(r);
  }
}
console.log('\n| variant | driver | connections | ramp-up | round trips | errors | RSS after ramp-up → end (drift) | fds before / at ramp-up / after close | load avg |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.variant} | ${r.driver} | ${r.open}/${r.conns} | ${r.rampS} s | ${r.roundTrips} in ${seconds} s | ${r.errors} | ${r.rss.ramp} → ${r.rss.end} MB (${r.rss.drift}) | ${r.fds.base} / ${r.fds.ramp} / ${r.fds.after} | ${r.load} |`,
  );
}
console.log(failed ? '\nsoak: FAILED' : '\nsoak: every run met its figures');
process.exit(failed ? 1 : 0);
