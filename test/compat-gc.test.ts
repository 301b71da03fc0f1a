/**
 * compat: a closed connection's objects die young. toDuplex keeps each runtime's live Duplexes for its
 * shutdown (rule 6 of to-duplex.ts); that bookkeeping must not keep closed ones alive through V8's
 * scavenges (rule 9). With a long-lived Set, each rehash of its (old) table linked it to the next (young)
 * table, and a scavenge kept everything such a chain reached: each connection's whole object graph
 * (the Duplex, node:http's parser and messages, the stream) was promoted to old space and waited there for
 * a full GC: 10-14% of what the young generation allocated, against 0.1% without it.
 */
import { fixture, runNode, rtTest } from './helpers.js';

rtTest(
  'toDuplex under node:http: closed connections are not promoted to old space (no bookkeeping keeps them through scavenges)',
  async (t) => {
    const requests = 6000;
    const r = await runNode(['--trace-gc-nvp', fixture('compat-gc-survival.mjs'), String(requests)], 100_000);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const measuring = lines.indexOf('MEASURE');
    t.true(measuring >= 0, 'the fixture printed MEASURE');
    const field = (line: string, key: string): number => Number(new RegExp(` ${key}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
    let promoted = 0;
    let allocated = 0;
    let scavenges = 0;
    for (const line of lines.slice(measuring + 1)) {
      if (!line.includes(' gc=s ')) continue;
      scavenges++;
      promoted += field(line, 'promoted');
      allocated += field(line, 'allocated');
    }
    const done = lines.find((l) => l.startsWith('{'));
    t.deepEqual(JSON.parse(done ?? '{}'), { answered: requests }, 'every request was answered');
    t.true(scavenges >= 3, `${scavenges} scavenges while measuring`);
    const survival = (100 * promoted) / allocated;
    t.log(`${scavenges} scavenges; ${survival.toFixed(2)}% of the young generation's allocations promoted`);
    t.true(survival < 6, `${survival.toFixed(2)}% of the young generation's allocations promoted (closed connections kept alive)`);
  },
  120_000,
);
