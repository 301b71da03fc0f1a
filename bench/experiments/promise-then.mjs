// What a promise costs per await depending on what it resolves with (issue 16: readAt resolves [n, buf]).
// V8's ResolvePromise skips the `then` lookup only for non-objects, native promises and iterator-result
// objects; any other object (an array, a class instance) gets a full GetProperty('then') that misses
// along its prototype chain. Variants, each N awaits of a fresh promise, interleaved rounds, medians of
// CPU time per await (process.cpuUsage):
//   tuple    resolve([n, buf])              what File.readAt resolves with
//   number   resolve(n)                      no lookup (not an object)
//   object   resolve(new R(n, buf))          a class instance: same miss, one prototype fewer
//   ownThen  a = [n, buf]; a.then = undefined  the lookup hits an own property (changes the array's
//                                            shape and Object.keys: measured, not usable by the API)
//   node bench/experiments/promise-then.mjs [awaits=2000000] [rounds=5]
const N = Number(process.argv[2] ?? 2_000_000);
const rounds = Number(process.argv[3] ?? 5);
const buf = Buffer.alloc(16);
class R {
  constructor(n, b) {
    this.n = n;
    this.b = b;
  }
}
const make = {
  tuple: (i) => [i, buf],
  number: (i) => i,
  object: (i) => new R(i, buf),
  ownThen: (i) => {
    const a = [i, buf];
    a.then = undefined;
    return a;
  },
};
let settle;
const executor = (resolve) => {
  settle = resolve;
};
async function once(kind) {
  const f = make[kind];
  const t0 = process.cpuUsage();
  let sink = 0;
  for (let i = 0; i < N; i++) {
    const p = new Promise(executor);
    settle(f(i));
    const v = await p;
    sink += typeof v === 'number' ? v : 1;
  }
  const u = process.cpuUsage(t0);
  if (sink < 0) console.log(sink);
  return ((u.user + u.system) * 1000) / N;
}
const kinds = Object.keys(make);
const got = Object.fromEntries(kinds.map((k) => [k, []]));
for (let r = 0; r < rounds; r++) for (const k of kinds) got[k].push(await once(k));
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const [l1, l5] = (await import('node:os')).loadavg();
console.log(`${N} awaits per round, ${rounds} rounds, load ${l1.toFixed(1)} ${l5.toFixed(1)}`);
for (const k of kinds) console.log(`${k.padEnd(8)} ${median(got[k]).toFixed(1)} ns CPU per await (${(median(got[k]) - median(got.number)).toFixed(1)} over number)`);
