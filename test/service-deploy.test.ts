/**
 * Two-phase deploys across threads: prepare everywhere, commit only if every thread prepared, else
 * abort everywhere and keep the old chain. Runs a 3-thread group from test/fixtures/service-deploy.mjs.
 */
import test from 'ava';
import { pathToFileURL } from 'node:url';
import { start } from '@ringio/runtime';
import { deployPlane, Deployer, type DeployReport } from '@ringio/service';
import { DRIVER, fixture, rt, unavailable } from './helpers.js';

interface Step {
  report: DeployReport;
  slots: Record<string, { name: string; gen: number; answer: string; calls: number; version: number } | undefined>[];
}

test.serial('a deploy commits on every thread; one thread failing prepare keeps the old chain everywhere', async (t) => {
  if (unavailable !== null) return void t.pass(unavailable);
  t.timeout(60_000);
  const threads = 3;
  const res = (await start(
    { module: pathToFileURL(fixture('service-deploy.mjs')), export: 'deployMain' },
    { threads, driver: DRIVER, shared: { plane: deployPlane(threads), failOnThread: 1 } },
  )) as (Step[] | null)[];
  const steps = res[0]!;
  t.is(res.length, threads);

  // 1: a first deploy commits everywhere.
  const [s1, s2, s3, s4, s5] = steps as [Step, Step, Step, Step, Step];
  t.true(s1.report.ok);
  t.deepEqual(s1.report.threads.map((r) => [r.threadId, r.prepared, r.outcome]), [[0, true, 'committed'], [1, true, 'committed'], [2, true, 'committed']]);
  for (const slots of s1.slots) t.like(slots.a, { name: 'v1', gen: 1, answer: 'v1:ping' });

  // 2: thread 1's prepare fails: nothing changes anywhere, b is not added either, and the report says why.
  t.false(s2.report.ok);
  t.deepEqual(s2.report.threads.map((r) => [r.threadId, r.prepared, r.outcome]), [[0, true, 'aborted'], [1, false, 'aborted'], [2, true, 'aborted']]);
  t.is(s2.report.threads[1]!.code, 'EFIXTURE');
  t.regex(s2.report.threads[1]!.error!, /prepare refused on thread 1/);
  t.regex(s2.report.error!, /^thread 1: /);
  for (const slots of s2.slots) {
    t.like(slots.a, { name: 'v1', gen: 1, version: 1 });
    t.is(slots.b, undefined);
  }

  // 3: the next deploy builds from the chain that is current (v1), not from the aborted one; state carries over.
  t.true(s3.report.ok);
  for (const slots of s3.slots) {
    t.like(slots.a, { name: 'v3', gen: 2, version: 2 });
    // the counter object came from v1: two pings by the describe queries plus this one
    t.is(slots.a!.calls, 3);
  }

  // 4: a spec whose export is missing fails on every thread; the old chain stays.
  t.false(s4.report.ok);
  t.true(s4.report.threads.every((r) => !r.prepared && /missingExport/.test(r.error ?? '')));
  for (const slots of s4.slots) t.like(slots.a, { name: 'v3' });

  // 5: removal and addition in one deploy.
  t.true(s5.report.ok);
  for (const slots of s5.slots) {
    t.is(slots.a, undefined);
    t.like(slots.c, { name: 'c1', gen: 1 });
  }
});

test.serial('deploy checks its arguments; a thread that never answers fails the prepare (timeout)', async (t) => {
  if (unavailable !== null) return void t.pass(unavailable);
  await rt(async () => {
    const plane = deployPlane(2);
    const d = new Deployer(plane);
    await t.throwsAsync(d.deploy('x' as never), { instanceOf: TypeError });
    await t.throwsAsync(d.deploy([{ key: 1 as never, spec: null }]), { instanceOf: TypeError, message: /changes\[0\]\.key/ });
    await t.throwsAsync(d.deploy([{ key: 'a', spec: { module: 'relative.mjs' } }]), { instanceOf: TypeError, message: /module must be a file URL/ });
    t.throws(() => deployPlane(0), { instanceOf: RangeError });
    // Nobody serves the plane here: both threads are reported as not answering, and the deploy is aborted.
    const r = await d.deploy([{ key: 'a', spec: null }], { timeout: 200 });
    t.false(r.ok);
    t.deepEqual(r.threads.map((x) => [x.prepared, x.outcome]), [[false, 'aborted'], [false, 'aborted']]);
    t.regex(r.threads[0]!.error!, /no answer to prepare within 200 ms/);
    for (const ch of plane.commands) ch.close();
    plane.replies.close();
  });
});
