/**
 * pg (node-postgres) on ringio sockets against a real PostgreSQL server, on the driver under test. The
 * test starts its own throwaway cluster (initdb + pg_ctl from Debian's postgresql, which .ci/run
 * installs when missing) on a free port, with trust authentication, and removes it afterwards. Without
 * PostgreSQL's binaries the tests skip with the reason.
 *
 * The setup is one line: `stream: () => new Socket()` (pg calls socket.connect(port, host) itself).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Socket } from '@ringio/compat';
import test from 'ava';
import pg from 'pg';
import { fdCount, fdsBackTo, guard, rtTest, run } from './helpers.js';

/** The newest PostgreSQL's bin directory, or why there is none. */
function pgBinDir(): string | { missing: string } {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return { missing: 'PostgreSQL is not installed (/usr/lib/postgresql is missing; .ci/run installs postgresql)' };
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) return { missing: `no initdb/pg_ctl under ${root}` };
  return join(root, versions[0]!, 'bin');
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Cluster {
  port: number;
  stop(): void;
}

/** initdb and start a cluster in a temp dir (as the postgres user when we are root: the server refuses root). */
async function startCluster(bin: string): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'ringio-pg-'));
  const asRoot = process.getuid?.() === 0;
  const prefix: string[] = [];
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
    prefix.push('runuser', '-u', 'postgres', '--');
  }
  const sh = (cmd: string, args: string[]): void => {
    const all = [...prefix, cmd, ...args];
    const r = spawnSync(all[0]!, all.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${String(r.stderr)}${String(r.stdout)}`);
  };
  const data = join(dir, 'data');
  sh(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  sh(join(bin, 'pg_ctl'), [
    '-D', data, '-w', '-t', '60', '-l', join(dir, 'log'), '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`,
    'start',
  ]);
  return {
    port,
    stop() {
      try {
        sh(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

const bin = pgBinDir();
let cluster: Cluster | { missing: string } = { missing: 'not started' };

test.before(async () => {
  if (typeof bin !== 'string') {
    cluster = bin;
    return;
  }
  cluster = await startCluster(bin);
});

test.after.always(() => {
  if (!('missing' in cluster)) cluster.stop();
});

function pgTest(title: string, fn: (port: number) => Parameters<typeof rtTest>[1]): void {
  rtTest(
    title,
    async (t) => {
      if ('missing' in cluster) {
        t.log(`skipped: ${cluster.missing}`);
        t.pass();
        return;
      }
      await fn(cluster.port)(t);
    },
    60_000,
  );
}

pgTest('pg Pool on ringio sockets: queries, parameters, a transaction, 50 concurrent queries on 5 connections, and pool.end()', (port) => async (t) => {
  const fds0 = fdCount();
  await run(async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 5, stream: () => new Socket() });
    const r = await pool.query('SELECT $1::int + $2::int AS sum, $3::text AS t', [2, 3, 'ringio']);
    t.deepEqual(r.rows, [{ sum: 5, t: 'ringio' }]);
    await pool.query('CREATE TEMP TABLE IF NOT EXISTS x (i int)'); // temp: per connection, harmless
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('CREATE TEMP TABLE items (id serial, name text)');
      for (let i = 0; i < 20; i++) await client.query('INSERT INTO items (name) VALUES ($1)', [`item ${i}`]);
      const c = await client.query('SELECT count(*)::int AS n, max(name) AS m FROM items');
      t.deepEqual(c.rows, [{ n: 20, m: 'item 9' }]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.query('SELECT $1::int * 2 AS v, pg_sleep(0.005)', [i])));
    t.deepEqual(
      many.map((m) => m.rows[0].v),
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
    t.true(pool.totalCount <= 5);
    // A big result: 1 MiB of text in one row.
    const big = await pool.query("SELECT repeat('x', 1048576) AS s");
    t.is((big.rows[0].s as string).length, 1048576);
    // A server-side error comes back as pg's error, and the connection is still usable.
    const err = (await pool.query('SELECT * FROM no_such_table').catch((e: unknown) => e)) as { code?: string };
    t.is(err.code, '42P01');
    await pool.end();
  });
  t.is(await fdsBackTo(fds0), fds0, 'every connection closed');
});

pgTest('pg: a program that ends with await pool.end() exits 0 with nothing on stderr', (port) => async (t) => {
  const program = `
    import pg from 'pg';
    import { start } from '@ringio/runtime';
    import { Socket } from '@ringio/compat';
    await start(async () => {
      const pool = new pg.Pool({ host: '127.0.0.1', port: ${port}, user: 'postgres', database: 'postgres', max: 3, stream: () => new Socket() });
      const rows = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => pool.query('SELECT $1::int AS i', [i])));
      console.log(rows.map((r) => r.rows[0].i).join(','));
      await pool.end();
    });
  `;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', program], { cwd: root, encoding: 'utf8', timeout: 30_000, env: process.env });
  t.is(r.stderr, '');
  t.is(r.stdout.trim(), '1,2,3,4,5,6');
  t.is(r.status, 0);
});

pgTest('pg Client: a refused port fails with connect ECONNREFUSED and its address; an idle client whose server goes away errors, not crashes', (port) => async (t) => {
  await run(async () => {
    const dead = new pg.Client({ host: '127.0.0.1', port: 1, user: 'postgres', stream: () => new Socket() });
    const err = (await dead.connect().catch((e: unknown) => e)) as NodeJS.ErrnoException & { address?: string; port?: number };
    t.is(err.code, 'ECONNREFUSED');
    t.is(err.message, 'connect ECONNREFUSED 127.0.0.1:1');
    t.is(err.port, 1);
    const a = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', stream: () => new Socket() });
    await a.connect();
    const pid = (await a.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const errors: string[] = [];
    a.on('error', (e: Error) => errors.push(e.message));
    const ended = new Promise((resolve) => a.once('end', resolve));
    const b = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', stream: () => new Socket() });
    await b.connect();
    await b.query('SELECT pg_terminate_backend($1)', [pid]);
    await guard(ended, 10_000, "client a's end");
    t.true(errors.length >= 1, 'the terminated client reported an error');
    await b.end();
  });
});
