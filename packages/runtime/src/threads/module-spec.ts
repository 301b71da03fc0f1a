/**
 * `{ module, export }`: how start() and spawnBlocking name a function that another thread loads
 * itself, because a function cannot cross threads. Shared by thread 0, group members and the
 * spawnBlocking workers.
 */
import { pathToFileURL } from 'node:url';
import { ringioError } from '../errors.js';

/**
 * `{ module, export }`: a function named by its module and export, which another thread imports
 * itself (start() and spawnBlocking take it where a function cannot cross threads).
 */
export interface ModuleSpec {
  /** A file URL or an absolute path. */
  module: string | URL;
  /** The export's name (default 'default'). */
  export?: string;
}

export function isModuleSpec(v: unknown): v is ModuleSpec {
  return v !== null && typeof v === 'object' && 'module' in v;
}

export function checkModuleSpec(spec: ModuleSpec, what: string): { module: string; export: string } {
  const m = spec.module;
  let url: string;
  if (m instanceof URL) url = m.href;
  else if (typeof m === 'string' && m.startsWith('file:')) url = m;
  else if (typeof m === 'string' && m.startsWith('/')) url = pathToFileURL(m).href;
  else throw new TypeError(`${what}: module must be a file URL or an absolute path`);
  const exp = spec.export ?? 'default';
  if (typeof exp !== 'string') throw new TypeError(`${what}: export must be a string`);
  return { module: url, export: exp };
}

export async function loadExport<F = (...args: never[]) => unknown>(spec: { module: string; export: string }): Promise<F> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const fn = mod[spec.export] ?? (mod.default as Record<string, unknown> | undefined)?.[spec.export];
  if (typeof fn !== 'function') {
    throw ringioError('ERR_RINGIO_THREAD_ENTRY', `${spec.module} has no exported function '${spec.export}'`);
  }
  return fn as F;
}
