/**
 * bench/lib.mjs's round-by-round ratios (pairedRatio), which the proxy and compat benchmarks report
 * beside the ratio of medians: each result carries its round (interleave), a round missing either side
 * is left out rather than shifting the pairing, and the faster (or cheaper) of several anchors of the
 * same round is the one compared with.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

type Results = Map<string, { round: number; v: number }[]>;
interface Lib {
  interleave(rounds: number, cases: { name: string; run: () => Promise<{ v: number }> }[], opts: { describe: () => string; rotate: boolean }): Promise<Results>;
  pairedRatio(results: Results, a: string, bs: string[], f: (m: { v: number }) => number, opts?: { pick: 'max' | 'min' }): { median: number; rounds: number; ratios: number[]; over(x: number): number };
}
const lib = (await import(`${root}bench/lib.mjs`)) as Lib;

/** A case whose r-th run gives values[r], or fails where the value is NaN. */
function caseOf(name: string, values: number[]): { name: string; run: () => Promise<{ v: number }> } {
  let r = 0;
  return {
    name,
    run: async () => {
      const v = values[r++]!;
      if (Number.isNaN(v)) throw new Error('failed round');
      return { v };
    },
  };
}

test('bench pairedRatio: pairs by round, skips a round a side is missing, compares with the best anchor of the round', async (t) => {
  // a's round 2 fails; with `describe`, interleave reports a failed run on stderr and leaves it out.
  const cases = [caseOf('a', [10, 20, NaN, 40]), caseOf('n', [10, 10, 10, 10]), caseOf('p', [5, 4, 5, 8]), caseOf('q', [2, 5, 1, 10])];
  const err = console.error;
  console.error = () => {};
  let res: Results;
  try {
    res = await lib.interleave(4, cases, { describe: () => '', rotate: true });
  } finally {
    console.error = err;
  }
  t.deepEqual(res.get('a')!.map((m) => m.round), [0, 1, 3], 'each result carries its round; the failed one is left out');

  const vsN = lib.pairedRatio(res, 'a', ['n'], (m) => m.v);
  t.deepEqual(vsN.ratios, [1, 2, 4], 'round 3 pairs with round 3, not with the array position after the hole');
  t.is(vsN.rounds, 3);
  t.is(vsN.median, 2);
  t.is(vsN.over(2), 2);

  t.deepEqual(lib.pairedRatio(res, 'a', ['p', 'q'], (m) => m.v).ratios, [10 / 5, 20 / 5, 40 / 10], 'against the faster anchor of each round');
  t.deepEqual(lib.pairedRatio(res, 'a', ['p', 'q'], (m) => m.v, { pick: 'min' }).ratios, [10 / 2, 20 / 4, 40 / 8]);

  const none = lib.pairedRatio(res, 'a', ['missing'], (m) => m.v);
  t.is(none.rounds, 0);
  t.true(Number.isNaN(none.median));
});
