/**
 * Factories that cross threads: a FactorySpec is plain data, `{ module, export, args, inner? }`. Each
 * thread imports `module` and calls its export with `args` (and, for a factory layer, the inner
 * factory built from `inner`): `(args, inner?) => Factory | Promise<Factory>`. Functions cannot be
 * cloned to another thread; this can.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Factory } from './service.js';

/** A factory as plain data that can cross threads: each thread imports `module` and calls its export with `args` (and the inner factory built from `inner`). */
export interface FactorySpec {
  /** A file: URL or an absolute path. */
  module: string;
  /** The export's name (default 'default'). */
  export?: string;
  /** Plain data handed to the export (structured-cloned between threads). */
  args?: unknown;
  /** For a factory layer: the spec of the factory it wraps. */
  inner?: FactorySpec;
}

/** The shape of a FactorySpec's export: `(args, inner?) => Factory` (or a promise of one). */
export type FactoryMaker = (args: unknown, inner?: Factory<unknown>) => Factory<unknown> | Promise<Factory<unknown>>;

/** Checks a FactorySpec (and its inner ones) and returns it; a TypeError names the bad field (`what` prefixes it). */
export function checkFactorySpec(spec: unknown, what = 'spec'): FactorySpec {
  if (spec === null || typeof spec !== 'object') throw new TypeError(`${what} must be { module, export, args, inner? }`);
  const s = spec as FactorySpec;
  if (typeof s.module !== 'string' || !(s.module.startsWith('file:') || isAbsolute(s.module))) {
    throw new TypeError(`${what}.module must be a file URL or an absolute path`);
  }
  if (s.export !== undefined && typeof s.export !== 'string') throw new TypeError(`${what}.export must be a string`);
  if (s.inner !== undefined) checkFactorySpec(s.inner, `${what}.inner`);
  return s;
}

/** Imports and builds the factory a spec names, innermost first. */
export async function buildFactory<S = unknown>(spec: FactorySpec): Promise<Factory<S>> {
  checkFactorySpec(spec);
  const inner = spec.inner !== undefined ? await buildFactory(spec.inner) : undefined;
  const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
  const mod = (await import(url)) as Record<string, unknown>;
  const name = spec.export ?? 'default';
  const fn = mod[name];
  if (typeof fn !== 'function') throw new TypeError(`${spec.module} has no exported function '${name}'`);
  const f = await (fn as FactoryMaker)(spec.args, inner);
  if (f === null || typeof f !== 'object' || typeof (f as Factory<unknown>).make !== 'function') {
    throw new TypeError(`${spec.module}#${name} did not return a factory (an object with make())`);
  }
  return f as Factory<S>;
}
