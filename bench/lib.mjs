// Shared helpers for the micro-benchmarks: interleaved rounds, medians, and the output format
// (a human table on stderr; one JSON object per case as the last stdout lines).

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** Runs each case once per round, in interleaved order, and returns per-case arrays of results. */
export async function interleave(rounds, cases) {
  const results = new Map(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) results.get(c.name).push(await c.run());
  }
  return results;
}

export function table(rows) {
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padStart(width[i])).join('  ');
  process.stderr.write(line(cols) + '\n' + rows.map((r) => line(cols.map((c) => r[c]))).join('\n') + '\n');
}

export function emit(objects) {
  for (const o of objects) process.stdout.write(JSON.stringify(o) + '\n');
}
