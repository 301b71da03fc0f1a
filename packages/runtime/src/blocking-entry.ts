/**
 * The script of a spawnBlocking worker (threads/blocking.ts): runs one job at a time and posts the
 * result back, moving any ArrayBuffers in it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { native } from './addon.js';
import { ringioError } from './errors.js';
import type { JobMsg } from './threads/blocking.js';
import { loadExport } from './threads/module-spec.js';
import { toWire } from './threads/wire.js';

if (parentPort === null) throw new Error('@ringio/runtime blocking-entry runs in a spawnBlocking worker only');
const port = parentPort;
// A worker inherits the CPU pin of the thread that made it; undo that (blocking.ts).
const cpus = (workerData as { cpus?: number[] } | null)?.cpus;
if (cpus !== undefined) native.ringio_thread_pin(cpus);
const fns = new Map<number, (...args: unknown[]) => unknown>();

async function resolveFn(m: JobMsg): Promise<(...args: unknown[]) => unknown> {
  if (m.fn !== 0) {
    let fn = fns.get(m.fn);
    if (fn === undefined) {
      fn = new Function(`return (${m.src});`)() as (...args: unknown[]) => unknown;
      fns.set(m.fn, fn);
    }
    return fn;
  }
  return loadExport<(...args: unknown[]) => unknown>({ module: m.module!, export: m.export! });
}

/** ArrayBuffers a result holds at its top level or one level down: moved back, not copied. */
function transferables(v: unknown): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const add = (x: unknown): void => {
    if (x instanceof ArrayBuffer) out.add(x);
    else if (ArrayBuffer.isView(x) && x.buffer instanceof ArrayBuffer) out.add(x.buffer);
  };
  add(v);
  if (Array.isArray(v)) v.forEach(add);
  else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(add);
  return [...out];
}

port.on('message', (m: JobMsg) => {
  void (async () => {
    try {
      const fn = await resolveFn(m);
      const value = await fn(...m.args);
      const list = transferables(value);
      try {
        port.postMessage({ id: m.id, ok: true, value }, list);
      } catch {
        // Some buffer cannot move: send a copy instead; a value that cannot be cloned at all fails.
        try {
          port.postMessage({ id: m.id, ok: true, value });
        } catch (e) {
          throw ringioError('ERR_RINGIO_NOT_CLONEABLE', `spawnBlocking: the result cannot be sent back: ${(e as Error).message}`);
        }
      }
    } catch (e) {
      if (e instanceof ReferenceError && m.fn !== 0) {
        const note = ' (spawnBlocking ships fn as source text, so it cannot use variables from the scope it was written in)';
        const first = e.message;
        e.message += note;
        if (e.stack !== undefined) e.stack = e.stack.replace(first, e.message);
      }
      try {
        port.postMessage({ id: m.id, ok: false, error: toWire(e) });
      } catch {
        port.postMessage({ id: m.id, ok: false, error: toWire(new Error(String(e))) });
      }
    }
  })();
});
