// @ringio/runtime from its tarball: the addon loads from the installed package's prebuild, and a pipe
// round trip, a timer, a second thread and a blocking job run on it.
import { createRequire } from 'node:module';
import { start, spawn, sleep, pipe, read, write, close, stats, spawnBlocking } from '@ringio/runtime';

// First, and the module's only multi-threaded start(): worker threads re-import this module and claim it.
const ids = await start(async ({ threadId }) => threadId, { threads: 2 });
if (JSON.stringify(ids) !== '[0,1]') throw new Error(`threads returned ${JSON.stringify(ids)}`);

const want = process.env.RINGIO_DRIVER;
const out = await start(async () => {
  const [r, w] = pipe();
  const reader = spawn(async () => {
    const [n, buf] = await read(r, Buffer.alloc(64));
    return buf.toString('utf8', 0, n);
  });
  await sleep(2);
  await write(w, Buffer.from('through the ring'));
  const got = await reader;
  await close(r);
  await close(w);
  const sum = await spawnBlocking((n) => { let s = 0; for (let i = 1; i <= n; i++) s += i; return s; }, 1000);
  return { got, sum, driver: stats().driver };
});
if (out.got !== 'through the ring') throw new Error(`pipe read ${JSON.stringify(out.got)}`);
if (out.sum !== 500500) throw new Error(`spawnBlocking returned ${out.sum}`);
if (want && want !== 'auto' && out.driver !== want) throw new Error(`driver ${out.driver}, wanted ${want}`);

// The addon that was loaded is the one inside this project's node_modules, not a build elsewhere.
const require = createRequire(import.meta.url);
const addons = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
const pkgDir = require.resolve('@ringio/runtime').replace(/\/dist\/index\.js$/, '');
if (addons.length !== 1 || !addons[0].startsWith(pkgDir + '/prebuilds/')) throw new Error(`addon loaded from ${addons.join(', ')}`);
console.log(`ok runtime: pipe, timer, spawnBlocking and 2 threads on ${out.driver}; addon ${addons[0].slice(pkgDir.length + 1)}`);
