// Preloaded into ringio-proxy by bench/proxy-http-cost.mjs (`node --import`): on SIGUSR2 it writes one
// line `COST {...}` to stderr with the runtime's counters (ops submitted, completions, enters) and,
// when RINGIO_COST_PROMISES=1, the promises created so far (an async_hooks init hook, which costs CPU:
// the bench measures time in runs without it). The runtime module is the proxy's own (same file).
import { createHook } from 'node:async_hooks';

let promises = 0;
if (process.env.RINGIO_COST_PROMISES === '1') {
  createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  }).enable();
}
const runtimeUrl = process.env.RINGIO_COST_RUNTIME;
process.on('SIGUSR2', async () => {
  let s = {};
  try {
    const { stats } = await import(runtimeUrl);
    s = stats();
  } catch (e) {
    s = { error: String(e?.message ?? e) };
  }
  const u = process.cpuUsage();
  process.stderr.write(`COST ${JSON.stringify({ promises, submitted: s.submitted, completions: s.completions, enters: s.enters, wakeups: s.wakeups, cpuUs: u.user + u.system, userUs: u.user, sysUs: u.system, error: s.error })}\n`);
});

// RINGIO_COST_HEAPPROF=<file>: SIGUSR1 starts V8's sampling heap profiler (collected objects included,
// so it shows where the bytes per request are allocated), the next SIGUSR1 writes its profile to <file>.
const heapFile = process.env.RINGIO_COST_HEAPPROF;
if (heapFile) {
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  let on = false;
  process.on('SIGUSR1', () => {
    if (!on) {
      on = true;
      session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return;
    }
    session.post('HeapProfiler.stopSampling', (err, r) => {
      writeFileSync(heapFile, JSON.stringify(err ? { error: String(err) } : r.profile));
      process.stderr.write('HEAPPROF written\n');
    });
  });
}
