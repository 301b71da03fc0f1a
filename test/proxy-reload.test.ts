/**
 * Reload: on SIGHUP and on a change of the config file, the new config is deployed in two phases on
 * every thread while connections keep flowing; a bad config keeps the old one; a removed server stops
 * accepting while its open connections go on.
 */
import test from 'ava';
import net from 'node:net';
import { writeFileSync, renameSync } from 'node:fs';
import { churn, connect, freePort, httpGet, parsePrometheus, readBytes, roundTrip, startProxy, tempDir, upstream, proxyTest } from './proxy-helpers.js';

const tmp = tempDir();
test.after.always(tmp.cleanup);

function server(name: string, port: number, ups: number[], extra = ''): string {
  return `[servers.${name}]\nlisten = "127.0.0.1:${port}"\nprotocol = "tcp"\nupstreams = [${ups.map((u) => `{ addr = "127.0.0.1:${u}" }`).join(', ')}]\n${extra}\n`;
}

/** Replaces the file the way editors do (write a temp file, rename it over). */
function replaceFile(file: string, text: string): void {
  writeFileSync(file + '.tmp', text);
  renameSync(file + '.tmp', file);
}

const serial = proxyTest;

serial('reload on SIGHUP and on a file change while a load generator runs: 0 failed connections', async (t) => {
  const a = await upstream();
  const b = await upstream();
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [port, port2, admin] = [await freePort(), await freePort(), await freePort()];
  const head = `[runtime]\nthreads = 2\n[admin]\nlisten = "127.0.0.1:${admin}"\n`;
  const file = tmp.file('reload.toml', head + server('main', port, [a.port]) + server('extra', port2, [a.port]));
  const p = await startProxy(file);
  t.teardown(() => p.stop('SIGKILL'));

  // A connection to the server that the reload will remove: it must keep working.
  const longLived = await connect(port2);
  longLived.write('before');
  t.is((await readBytes(longLived, 6)).toString(), 'before');

  const load = churn(port, 8);
  while (load.ok < 50) await new Promise((r) => setTimeout(r, 20));
  // 1: SIGHUP with new upstreams, and without the extra server.
  writeFileSync(file, head + server('main', port, [b.port], 'balance = "least_conn"'));
  p.child.kill('SIGHUP');
  // SIGHUP or the file watch, whichever comes first, applies it; the other finds nothing new.
  const r1 = await p.waitFor('reloaded', 20000, (l) => l.generation === 2);
  t.like(r1, { changed: 1, removed: 1, added: 0 });
  const bBefore = b.accepted;
  const okBefore = load.ok;
  while (load.ok < okBefore + 50) await new Promise((r) => setTimeout(r, 20));
  t.true(b.accepted > bBefore, 'new connections go to the new upstream');

  // The removed server accepts no more, but the open connection still relays.
  const refused = await connect(port2).then(
    (s) => (s.destroy(), false),
    (e: { code?: string }) => e.code === 'ECONNREFUSED',
  );
  t.true(refused, 'the removed server stopped accepting');
  longLived.write('after');
  t.is((await readBytes(longLived, 5)).toString(), 'after');
  longLived.end();

  // 2: a file change (rename over, as editors do), no signal: the extra server comes back.
  replaceFile(file, head + server('main', port, [a.port, b.port]) + server('extra', port2, [b.port]));
  const r2 = await p.waitFor('reloaded', 20000, (l) => l.generation === 3);
  t.like(r2, { reason: 'file changed', added: 1, changed: 1, removed: 0 });
  // SIGHUP with nothing changed: read, compared, nothing deployed.
  p.child.kill('SIGHUP');
  t.like(await p.waitFor('reload_unchanged', 20000), { reason: 'SIGHUP' });
  t.is(await roundTrip(port2, 'extra again'), 'extra again');
  const okMid = load.ok;
  while (load.ok < okMid + 50) await new Promise((r) => setTimeout(r, 20));

  const res = await load.stop();
  t.is(res.failed, 0, res.errors.join('\n'));
  t.true(res.ok > 150);
  const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
  t.is(m.get('ringio_proxy_reloads_total{result="ok"}'), 2);
  t.is(m.get('ringio_proxy_config_generation'), 3);
  // Counters survive reloads (make(old)): every connection of the run is counted.
  t.true((m.get('ringio_proxy_connections_total{server="main"}') ?? 0) >= res.ok);
  const r = await p.stop();
  t.is(r.code, 0);
});

serial('a bad config or a listener that cannot bind keeps the old config running, and says why', async (t) => {
  const a = await upstream();
  t.teardown(() => a.close());
  const [port, busyPort, admin] = [await freePort(), await freePort(), await freePort()];
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(busyPort, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => busy.close(() => r())));
  const head = `[admin]\nlisten = "127.0.0.1:${admin}"\n`;
  const file = tmp.file('bad-reload.toml', head + server('main', port, [a.port]));
  const p = await startProxy(file);
  t.teardown(() => p.stop('SIGKILL'));

  writeFileSync(file, head + server('main', port, [a.port]) + 'balance = "sideways"\n');
  p.child.kill('SIGHUP');
  const f1 = await p.waitFor('reload_failed', 20000);
  t.regex(String(f1.error), /bad-reload\.toml:8: servers\.main\.balance: must be one of/);
  t.is(f1.kept, 'the running config');
  t.is(await roundTrip(port, 'still v1'), 'still v1');

  // A valid config whose new server cannot listen: nothing changes (the main server's change is not applied either).
  const b = await upstream({ mode: 'tag', tag: 'B' });
  t.teardown(() => b.close());
  writeFileSync(file, head + server('main', port, [b.port]) + server('clash', busyPort, [a.port]));
  p.child.kill('SIGHUP');
  const f2 = await p.waitFor('reload_failed', 20000, (l) => /clash/.test(String(l.error)));
  t.regex(String(f2.error), /servers\.clash\.listen: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  t.is(await roundTrip(port, 'still a'), 'still a');
  t.is(b.accepted, 0);
  const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
  // At least the two above (the file watch may have tried the same bad file once more).
  t.true((m.get('ringio_proxy_reloads_total{result="failed"}') ?? 0) >= 2);
  t.is(m.get('ringio_proxy_config_generation'), 1);
  t.is((await p.stop()).code, 0);
});

serial('a reload that one thread fails to prepare is aborted on every thread: the old chains keep serving', async (t) => {
  const a = await upstream({ mode: 'tag', tag: 'A' });
  const b = await upstream({ mode: 'tag', tag: 'B' });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [port, port2, admin] = [await freePort(), await freePort(), await freePort()];
  const head = `[runtime]\nthreads = 2\n[admin]\nlisten = "127.0.0.1:${admin}"\n`;
  const file = tmp.file('fault.toml', head + server('main', port, [a.port]));
  // Thread 1 refuses to prepare any deploy that touches servers.faulty.
  const p = await startProxy(file, [], { RINGIO_PROXY_FAULT: 'prepare:1:faulty' });
  t.teardown(() => p.stop('SIGKILL'));
  writeFileSync(file, head + server('main', port, [b.port]) + server('faulty', port2, [b.port]));
  p.child.kill('SIGHUP');
  const failed = await p.waitFor('reload_failed', 20000);
  t.regex(String(failed.error), /thread 1: injected prepare failure for servers\.faulty/);
  const perThread = await p.waitFor('deploy_thread_failed', 5000);
  t.like(perThread, { thread: 1 });
  t.true(
    p.logs.filter((l) => l.event === 'deploy_thread_failed').every((l) => l.thread === 1),
    'thread 0 prepared fine: only thread 1 is reported',
  );
  // Every thread still runs the old chain: connections reach A only, and the new server's socket is gone.
  const tags = new Set<string>();
  for (let i = 0; i < 16; i++) {
    const s = await connect(port);
    tags.add((await readBytes(s, 1)).toString());
    s.destroy();
  }
  t.deepEqual([...tags], ['A']);
  t.is(b.accepted, 0);
  await t.throwsAsync(connect(port2), { code: 'ECONNREFUSED' });
  const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
  t.is(m.get('ringio_proxy_config_generation'), 1);
  t.is((await p.stop()).code, 0);
});
