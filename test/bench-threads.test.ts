/**
 * bench/lib.mjs's helperSeconds, which bench/compat.mjs reports per request as `helpers`: the CPU of a
 * process's threads other than its main one (V8's compile and GC workers, worker threads), so that a
 * round in which they took the pinned CPU from the main thread is told from a slow server. A child
 * process burns the same work on its main thread and then on a worker; only the worker's counts.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const lib = (await import(`${root}bench/lib.mjs`)) as { helperSeconds(pid: number): number };

// The child: a worker that waits; on "main" the main thread burns WORK, on "worker" the worker does.
const child = `
const { Worker } = require('node:worker_threads');
const burn = 'let x = 0; for (let i = 0; i < 150e6; i++) x = (x + i) | 0; return x;';
const w = new Worker(\`const { parentPort } = require('node:worker_threads'); const burn = () => { ${'${burn}'} }; parentPort.on('message', () => parentPort.postMessage(burn()));\`, { eval: true });
const burnMain = new Function(burn);
w.once('online', () => console.log('ready'));
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'main') console.log('done', burnMain());
  else if (l === 'worker') { w.once('message', (x) => console.log('done', x)); w.postMessage(0); }
  else { w.terminate(); process.stdin.destroy(); }
});
`;

test("helperSeconds counts the other threads' CPU, not the main thread's", async (t) => {
  const p = spawn(process.execPath, ['-e', child], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => String((await lines.next()).value);
  try {
    t.is(await next(), 'ready');
    const h0 = lib.helperSeconds(p.pid!);
    p.stdin!.write('main\n');
    t.regex(await next(), /^done/);
    const h1 = lib.helperSeconds(p.pid!);
    p.stdin!.write('worker\n');
    t.regex(await next(), /^done/);
    const h2 = lib.helperSeconds(p.pid!);
    const onMain = h1 - h0;
    const onWorker = h2 - h1;
    t.log(`helper CPU while the main thread burned: ${(onMain * 1e3).toFixed(1)} ms; while the worker did: ${(onWorker * 1e3).toFixed(1)} ms`);
    t.true(onWorker > 0.02, 'the worker thread burned CPU: helperSeconds grew');
    t.true(onMain < onWorker / 3, "the main thread's CPU is not counted");
  } finally {
    p.stdin!.end('quit\n');
    p.kill();
  }
});

test('helperSeconds of a process that is gone is 0', (t) => {
  t.is(lib.helperSeconds(2 ** 22 + 12345), 0);
});
