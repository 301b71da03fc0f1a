/**
 * Every example server stops on SIGINT and SIGTERM, with one thread and with two (signals reach thread 0
 * only, so the others must be told), also with a client connected. The process must exit on its own
 * with code 0; a generous kill timer only keeps a server that ignores the signal from hanging the suite.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DRIVER, rtTest } from './helpers.js';

const example = (name: string): string => fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));

interface Case {
  file: string;
  /** Extra arguments; `--port 0` and `--threads N` are added where the example takes them. */
  args: string[];
  threads: number[];
  /** A stderr/stdout line that says one thread is serving; group 1, if any, is its port (its thread id with perThread). */
  ready: RegExp;
  perThread?: boolean;
}

const cases: Case[] = [
  { file: 'echo-server.mjs', args: [], threads: [1, 2], ready: /^ringio echo on 127\.0\.0\.1:(\d+)/m },
  { file: 'http-server.mjs', args: [], threads: [1, 2], ready: /^ringio http on 127\.0\.0\.1:(\d+)/m },
  // Each thread logs the config generations it sees (a late thread may see generation 2 first).
  { file: 'config-broadcast.mjs', args: [], threads: [1, 2], ready: /^thread (\d+)\/\d+: now serving config generation \d+$/m, perThread: true },
  { file: 'tls-echo.mjs', args: [], threads: [1], ready: /^ringio TLS echo on 127\.0\.0\.1:(\d+)/m },
  { file: 'node-net-echo.mjs', args: [], threads: [1], ready: /^node:net echo on 127\.0\.0\.1:(\d+)/m },
  { file: 'node-http-server.mjs', args: [], threads: [1], ready: /^node:http on 127\.0\.0\.1:(\d+)/m },
];

/** How many threads said they serve, and the first port said (none with perThread). */
function countMatches(text: string, c: Case): { n: number; port: number | undefined } {
  const g = new RegExp(c.ready.source, 'gm');
  let n = 0;
  let port: number | undefined;
  const threads = new Set<string>();
  for (const m of text.matchAll(g)) {
    n++;
    if (c.perThread) threads.add(m[1]!);
    else if (m[1] !== undefined) port ??= Number(m[1]);
  }
  return { n: c.perThread ? threads.size : n, port };
}

for (const c of cases) {
  for (const threads of c.threads) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      rtTest(`examples/${c.file} --threads ${threads} stops on ${sig}`, async (t) => {
        const args = [example(c.file), '--port', '0', ...c.args];
        if (c.file !== 'tls-echo.mjs' && !c.file.startsWith('node-')) args.push('--threads', String(threads));
        if (!c.file.startsWith('node-') && c.file !== 'config-broadcast.mjs') args.push('--driver', DRIVER === 'auto' ? 'auto' : DRIVER);
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        const onData = (chunk: Buffer): void => {
          out += chunk.toString('utf8');
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.on('exit', (code, signal) => resolve({ code, signal })),
        );
        const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
        let client: Socket | undefined;
        try {
          // Ready: every thread says it serves.
          let port: number | undefined;
          for (;;) {
            const m = countMatches(out, c);
            if (m.n >= threads) {
              port = m.port;
              break;
            }
            if (child.exitCode !== null || child.signalCode !== null) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            t.fail(`the example ended (${child.exitCode ?? child.signalCode}) before it said it serves:\n${out}`);
            return;
          }
          if (port !== undefined) {
            // A client stays connected across the signal: the server must not wait for it.
            client = connect(port, '127.0.0.1');
            client.on('error', () => {});
            await new Promise<void>((resolve, reject) => {
              client!.once('connect', resolve);
              client!.once('error', reject);
            });
          }
          child.kill(sig);
          const r = await exited;
          t.is(r.signal, null, `the example did not stop on ${sig} by itself (killed):\n${out}`);
          t.is(r.code, 0, out);
        } finally {
          clearTimeout(killer);
          client?.destroy();
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      }, 60_000);
    }
  }
}
