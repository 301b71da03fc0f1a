/**
 * Binary upgrade (--upgrade): the new process takes the listening sockets over SCM_RIGHTS, serves, and
 * the old one stops accepting, drains and exits, with a load generator running throughout. Also
 * SIGTERM (drain, then exit) and SIGINT (exit now).
 */
import test from 'ava';
import { join } from 'node:path';
import { churn, connect, freePort, httpGet, parsePrometheus, readBytes, runProxy, startProxy, tempDir, upstream, proxyTest } from './proxy-helpers.js';

const tmp = tempDir();
test.after.always(tmp.cleanup);

const serial = proxyTest;

function config(port: number, admin: number, up: number, sock: string, unixListen: string, drain = '20s'): string {
  return (
    `[runtime]\nthreads = 2\n[admin]\nlisten = "127.0.0.1:${admin}"\n[upgrade]\nsocket = "${sock}"\ndrain_timeout = "${drain}"\n` +
    `[servers.main]\nlisten = "127.0.0.1:${port}"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:${up}" }]\n` +
    `[servers.local]\nlisten = "unix:${unixListen}"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:${up}" }]\n`
  );
}

serial('--upgrade under load: no failed or dropped connection; the old process drains and exits 0', async (t) => {
  const up = await upstream();
  t.teardown(() => up.close());
  const [port, admin] = [await freePort(), await freePort()];
  const sock = join(tmp.dir, 'up.sock');
  const unixListen = join(tmp.dir, 'l.sock');
  const file = tmp.file('upgrade.toml', config(port, admin, up.port, sock, unixListen));
  const oldP = await startProxy(file);
  t.teardown(() => oldP.stop('SIGKILL'));

  const long = await connect(port);
  long.write('old');
  t.is((await readBytes(long, 3)).toString(), 'old');

  const tcpLoad = churn(port, 8);
  const unixLoad = churn(unixListen, 4);
  while (tcpLoad.ok < 100 || unixLoad.ok < 30) await new Promise((r) => setTimeout(r, 20));

  const newP = runProxy(file, ['--upgrade']);
  t.teardown(() => newP.stop('SIGKILL'));
  const received = await newP.waitFor('upgrade_received', 30000);
  t.is(received.oldPid, oldP.child.pid);
  t.is(received.sockets, 3, 'two servers and the admin listener');
  await newP.waitFor('started', 30000);
  await oldP.waitFor('upgrade_handed_over', 30000);

  // The old process drains: the connection it holds still relays, then ends.
  long.write('still old');
  t.is((await readBytes(long, 9)).toString(), 'still old');
  const okAt = tcpLoad.ok;
  while (tcpLoad.ok < okAt + 100) await new Promise((r) => setTimeout(r, 20));
  long.end();
  const oldExit = await oldP.exited;
  t.is(oldExit.code, 0, oldP.stderr);
  t.like(oldP.logs.find((l) => l.event === 'drained'), { forced: 0, handedOver: true });

  const okAfter = tcpLoad.ok;
  while (tcpLoad.ok < okAfter + 100) await new Promise((r) => setTimeout(r, 20));
  const [tr, ur] = [await tcpLoad.stop(), await unixLoad.stop()];
  t.is(tr.failed, 0, tr.errors.join('\n'));
  t.is(ur.failed, 0, ur.errors.join('\n'));
  // The new process serves the same admin socket.
  const m = parsePrometheus((await httpGet(admin, '/metrics')).body);
  t.true((m.get('ringio_proxy_connections_total{server="main"}') ?? 0) > 0);
  // And can itself be upgraded later: its upgrade socket answers.
  const again = await connect(sock);
  again.destroy();
  t.is((await newP.stop()).code, 0);
});

serial('--upgrade without a running proxy fails with a clear message and binds nothing', async (t) => {
  const [port, admin] = [await freePort(), await freePort()];
  const file = tmp.file('lonely.toml', config(port, admin, 1, join(tmp.dir, 'none.sock'), join(tmp.dir, 'n.sock')));
  const p = runProxy(file, ['--upgrade']);
  const r = await p.exited;
  t.is(r.code, 1);
  t.regex(p.stderr, /cannot reach the running proxy at .*none\.sock: ENOENT/);
  await t.throwsAsync(connect(port), { code: 'ECONNREFUSED' });
});

serial('SIGTERM drains up to drain_timeout then exits 0; SIGINT exits at once', async (t) => {
  const up = await upstream();
  t.teardown(() => up.close());
  const [port, admin] = [await freePort(), await freePort()];
  const file = tmp.file('term.toml', config(port, admin, up.port, join(tmp.dir, 't.sock'), join(tmp.dir, 'tl.sock'), '300ms'));
  const p = await startProxy(file);
  const s = await connect(port);
  s.write('x');
  await readBytes(s, 1);
  p.child.kill('SIGTERM');
  await p.waitFor('stopping');
  const r = await p.exited;
  t.is(r.code, 0);
  t.like(p.logs.find((l) => l.event === 'drained'), { forced: 1, handedOver: false });
  s.destroy();

  const q = await startProxy(file);
  const s2 = await connect(port);
  s2.write('y');
  await readBytes(s2, 1);
  q.child.kill('SIGINT');
  const r2 = await q.exited;
  t.is(r2.code, 130);
  s2.destroy();
});
