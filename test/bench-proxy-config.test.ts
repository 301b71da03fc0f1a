/**
 * bench/lib.mjs's pieces the proxy benchmarks share: the ringio-proxy config they write (it must stay one
 * that @ringio/proxy accepts, TLS line included), and boostArgv (the boosted command keeps its pid, which
 * the benchmarks read /proc/PID/stat and schedstat by), and the hypervisor's steal share per round.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '@ringio/proxy';
import { makeCert, opensslMissing } from './tls-helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Lib {
  ringioProxyConfig(dir: string, o: { port: number; upPort: number; driver: string; extra?: string }): string;
  boostArgv(argv: string[]): string[];
  cpuTicks(): Record<string, { busy: number; idle: number; steal: number }>;
  stealShare(c0: Record<string, { busy: number; idle: number; steal: number }>, c1: Record<string, { busy: number; idle: number; steal: number }>): number;
}
const lib = (await import(`${root}bench/lib.mjs`)) as Lib;

test('ringioProxyConfig writes a config @ringio/proxy accepts: one thread, the driver, one route to the upstream, TLS when asked', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringio-bench-conf-'));
  try {
    const plain = parseConfig(readFileSync(lib.ringioProxyConfig(dir, { port: 18080, upPort: 18081, driver: 'epoll' }), 'utf8'));
    t.is(plain.runtime.threads, 1);
    t.is(plain.runtime.driver, 'epoll');
    const server = Object.values(plain.servers)[0]!;
    t.is(server.protocol, 'http');
    t.is(server.listen, '127.0.0.1:18080');
    t.is(server.routes.length, 1);
    t.is(server.routes[0]!.upstreams[0]!.url, 'http://127.0.0.1:18081');
    t.is(server.tls, null);
    if (opensslMissing !== null) {
      t.log(`TLS line not checked: ${opensslMissing}`);
      return;
    }
    const pem = makeCert(['localhost']);
    writeFileSync(join(dir, 'cert.pem'), pem.cert);
    writeFileSync(join(dir, 'key.pem'), pem.key);
    const file = lib.ringioProxyConfig(dir, { port: 18082, upPort: 18081, driver: 'uring', extra: `tls = { cert = "${join(dir, 'cert.pem')}", key = "${join(dir, 'key.pem')}" }\n` });
    const tls = parseConfig(readFileSync(file, 'utf8'), file);
    const tlsServer = Object.values(tls.servers)[0]!;
    t.is(tlsServer.tls?.length, 1);
    t.is(tlsServer.tls?.[0]!.cert, pem.cert.toString());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boostArgv runs the command in the same process (its pid is the one spawn returned)', async (t) => {
  const [cmd, ...args] = lib.boostArgv(['sh', '-c', 'echo $$']);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  t.is(Number(out.trim()), child.pid!);
});

test('cpuTicks reads every CPU of /proc/stat; stealShare is the stolen share of all CPUs\' ticks between two readings', (t) => {
  const now = lib.cpuTicks();
  const cpus = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  t.is(Object.keys(now).length, cpus);
  for (const c of Object.values(now)) {
    t.true(Number.isFinite(c.busy) && Number.isFinite(c.idle) && Number.isFinite(c.steal));
    t.true(c.busy + c.idle > 0);
  }
  const a = { 0: { busy: 100, idle: 100, steal: 10 }, 1: { busy: 50, idle: 50, steal: 0 } };
  // CPU 0: 60 busy + 10 idle + 30 stolen; CPU 1: 90 busy + 10 idle: 30 of 200 ticks stolen.
  const b = { 0: { busy: 160, idle: 110, steal: 40 }, 1: { busy: 140, idle: 60, steal: 0 } };
  t.is(lib.stealShare(a, b), 0.15);
  t.is(lib.stealShare(a, a), 0, 'no ticks between the readings: no steal, not NaN');
  // A CPU that came online between the readings is left out rather than counted from zero.
  t.is(lib.stealShare(a, { ...b, 2: { busy: 1e6, idle: 0, steal: 1e6 } }), 0.15);
});
