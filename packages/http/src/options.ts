/** Option checking: a bad value names its key. */

export function optInt(opts: Record<string, unknown>, key: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = opts[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`options.${key} must be a number, got ${typeof v}`);
  if (v === Infinity && max === Infinity) return v;
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`options.${key} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** A timeout in ms: 0 turns it off. */
export function optMs(opts: Record<string, unknown>, key: string, def: number): number {
  return optInt(opts, key, def, 0, 2 ** 31 - 1);
}

export function optBool(opts: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = opts[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new TypeError(`options.${key} must be a boolean, got ${typeof v}`);
  return v;
}

export function checkKeys(opts: Record<string, unknown>, known: readonly string[], what: string): void {
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) throw new TypeError(`${what}: unknown option '${k}'`);
  }
}
