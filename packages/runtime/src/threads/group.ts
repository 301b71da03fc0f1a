/**
 * start(main, { threads: N }): one runtime per thread, N threads, one result array.
 *
 * The calling thread is thread 0; it starts N−1 worker threads. A worker has to find `main` again,
 * since functions do not cross threads. It imports the module that called start() (or the module
 * named by a `{ module, export }` spec) and then:
 *  - if that module calls start() again at the same place (a top-level start), that call is claimed:
 *    it runs main as this thread's member and never settles in the worker, so the code after start()
 *    runs only on the calling thread;
 *  - else, if the module exports a function with main's name and source, that function is main;
 *  - else the group fails with ERR_RINGIO_THREAD_ENTRY, saying what to do.
 *
 * Rules:
 *  1. start() settles on thread 0 only after every thread's main has settled and every worker has
 *     exited (or was terminated, shutdownTimeout after being asked to stop), but see rule 2 for a
 *     thread 0 that ignores its signal.
 *  2. The first error of any thread wins. On it, every thread's ctx.signal is aborted; the error is
 *     reported once they have all stopped, or once shutdownTimeout has passed if thread 0's main is
 *     still running then (it ignores its signal and cannot be terminated: it may go on running).
 *  3. Results and errors travel by postMessage: results are structured-cloned; errors keep their
 *     class, message, stack and own properties such as `code` (wire.ts).
 *  4. No error is lost silently: one that start() does not reject with (a later error of another
 *     thread, or thread 0's after start() already rejected) is printed to stderr with its stack,
 *     unless it is only the shutdown's echo (an AbortError or ERR_RINGIO_CLOSED).
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type MessagePort } from 'node:worker_threads';
import { native } from '../addon.js';
import { ringioError } from '../errors.js';
import { checkModuleSpec, loadExport, type ModuleSpec } from './module-spec.js';
import { prepareShared, reviveShared } from './share.js';

export { checkModuleSpec, isModuleSpec, loadExport, type ModuleSpec } from './module-spec.js';
import { fromWire, toWire, type WireError } from './wire.js';


/** What a worker needs to build its runtime; plain data. */
export interface ThreadConfig {
  driver: string;
  entries: number;
  budget: number;
  blockingThreads: number;
  /** The CPU to pin this thread to, or -1. */
  cpu: number;
}

interface Entry {
  module: string;
  export?: string;
  /** Where start() was called (url:line:col), for the claim. */
  site?: string;
  name?: string;
  source?: string;
}

interface MemberData {
  threadId: number;
  threads: number;
  shared: unknown;
  entry: Entry;
  config: ThreadConfig;
}

type Main = (ctx: { threadId: number; threads: number; shared: unknown; signal: AbortSignal }) => unknown;

/** How a thread runs main on a fresh runtime (runtime.ts provides it; it owns the runtime's life). */
export type RunThread = (
  main: Main,
  ctx: { threadId: number; threads: number; shared: unknown },
  config: ThreadConfig,
  onRuntime: (requestShutdown: (reason?: unknown) => void) => void,
) => Promise<unknown>;

/** This package's folder (dist/ and src/ both: stack frames may be source-mapped). */
const SELF = fileURLToPath(import.meta.url);
const PACKAGE_DIR = SELF.slice(0, SELF.lastIndexOf('/dist/threads/'));

/**
 * The first stack frame outside this package: `{ url, site }`, or undefined. Read from V8's raw call
 * sites, not from error.stack, which --enable-source-maps rewrites to point at sources (.ts files) a
 * worker could not import.
 */
export function callerSite(): { url: string; site: string } | undefined {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  let frames: NodeJS.CallSite[] = [];
  try {
    Error.prepareStackTrace = (_e, callSites) => callSites;
    Error.stackTraceLimit = 30;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, callerSite);
    frames = (holder.stack as NodeJS.CallSite[] | undefined) ?? [];
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
  for (const f of frames) {
    const file = f.getFileName();
    if (file === undefined || file === null || file.startsWith('node:')) continue;
    let url: string;
    try {
      url = file.startsWith('file:') ? file : pathToFileURL(file).href;
      const path = fileURLToPath(url);
      if (path === PACKAGE_DIR || path.startsWith(PACKAGE_DIR + '/')) continue;
    } catch {
      continue;
    }
    return { url, site: `${url}:${f.getLineNumber()}:${f.getColumnNumber()}` };
  }
  return undefined;
}

/** The CPU for each thread: `pin: true` cycles through this thread's allowed CPUs. */
export function pinPlan(pin: unknown, threads: number): number[] | undefined {
  if (pin === undefined || pin === false) return undefined;
  let cpus: number[];
  if (pin === true) {
    cpus = native.ringio_thread_affinity();
  } else if (Array.isArray(pin)) {
    if (pin.length === 0) throw new RangeError('pin: the CPU list is empty');
    for (const c of pin) {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c >= 1024) {
        throw new RangeError(`pin: CPUs must be integers in 0..1023, got ${String(c)}`);
      }
    }
    cpus = pin as number[];
  } else {
    throw new TypeError('pin must be true, false or an array of CPU numbers');
  }
  return Array.from({ length: threads }, (_, i) => cpus[i % cpus.length]!);
}

// ---- thread 0 ------------------------------------------------------------------------------------

interface Outcome {
  ok: boolean;
  value?: unknown;
  error?: unknown;
}

export async function runGroup(
  main: Main | ModuleSpec,
  site: { url: string; site: string } | undefined,
  threads: number,
  shared: unknown,
  configs: ThreadConfig[],
  shutdownTimeout: number,
  runThread: RunThread,
): Promise<unknown[]> {
  const m = member;
  if (m !== undefined) {
    // A worker imports the module that holds main; a start() at that module's top level runs again
    // here. Starting a group from here would make groups of groups without end.
    throw ringioError(
      'ERR_RINGIO_THREAD_ENTRY',
      `thread ${m.data.threadId} of a start() group cannot start a group of its own (start() at ` +
        `${site?.site ?? 'an unknown place'}). Worker threads import ${m.data.entry.module} to find main, so ` +
        `a start() call at its top level runs in every worker: guard it with worker_threads' isMainThread, ` +
        `or call start() from another module.`,
    );
  }
  let entry: Entry;
  let main0: Main | undefined;
  if (typeof main === 'function') {
    if (site === undefined) {
      throw ringioError('ERR_RINGIO_THREAD_ENTRY', 'cannot tell which module called start(); pass { module, export } instead');
    }
    entry = { module: site.url, site: site.site, name: main.name, source: Function.prototype.toString.call(main) };
    main0 = main;
  } else {
    entry = checkModuleSpec(main, 'start');
  }
  const wireShared = prepareShared(shared);
  if (threads > 1) {
    try {
      structuredClone(wireShared);
    } catch (e) {
      throw ringioError('ERR_RINGIO_NOT_CLONEABLE', `start: shared cannot be handed to other threads: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  const outcomes: Outcome[] = new Array(threads);
  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  let failed = false;
  let firstError: unknown;
  let stop0: ((reason?: unknown) => void) | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  let settled = false;
  let terminated = false;
  let giveUp: ((e: unknown) => void) | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    giveUp = reject;
  });
  gaveUp.catch(() => {});
  const fail = (e: unknown, threadId: number): void => {
    if (failed) {
      // A worker terminated by us exits with ERR_RINGIO_THREAD_EXIT: our doing, not news.
      if (!(terminated && threadId > 0)) printLost(e, threadId, settled);
      return;
    }
    failed = true;
    firstError = e;
    stop0?.(e);
    for (const w of workers) w.postMessage({ t: 'shutdown' });
    // Rule 1: a thread that does not stop when asked is terminated; rule 2: thread 0 cannot be, so if
    // its main is still running then, start() rejects without it.
    killTimer = setTimeout(() => {
      terminated = true;
      for (const w of workers) void w.terminate();
      if (outcomes[0] === undefined) giveUp!(firstError);
    }, shutdownTimeout);
    killTimer.unref();
  };

  const done: Promise<void>[] = [];
  for (let i = 1; i < threads; i++) {
    const data: MemberData = { threadId: i, threads, shared: wireShared, entry, config: configs[i]! };
    let w: Worker;
    try {
      w = new Worker(new URL('../thread-entry.js', import.meta.url), {
        workerData: { ringio: data },
        argv: process.argv.slice(2),
      });
    } catch (e) {
      const err =
        (e as Error)?.name === 'DataCloneError'
          ? ringioError('ERR_RINGIO_NOT_CLONEABLE', `start: shared cannot be handed to other threads: ${(e as Error).message}`, { cause: e })
          : e;
      fail(err, i);
      break;
    }
    workers.push(w);
    exited.push(new Promise<void>((resolve) => w.once('exit', () => resolve())));
    done.push(
      new Promise<void>((resolve) => {
        const settle = (o: Outcome): void => {
          if (outcomes[i] !== undefined) return;
          outcomes[i] = o;
          if (!o.ok) fail(o.error, i);
          resolve();
        };
        w.on('message', (m: { t: string; ok: boolean; value?: unknown; error?: WireError }) => {
          if (m?.t !== 'result') return;
          settle(m.ok ? { ok: true, value: m.value } : { ok: false, error: fromWire(m.error!) });
        });
        w.once('error', (e) => settle({ ok: false, error: e }));
        w.once('exit', (code) =>
          settle({
            ok: false,
            error: ringioError('ERR_RINGIO_THREAD_EXIT', `thread ${i} exited (code ${code}) before main settled`, { threadId: i }),
          }),
        );
      }),
    );
  }

  done.push(
    (async () => {
      try {
        const fn = main0 ?? (await loadExport<Main>(entry as { module: string; export: string }));
        const value = await runThread(fn, { threadId: 0, threads, shared }, configs[0]!, (stop) => {
          stop0 = stop;
          if (failed) stop(firstError);
        });
        outcomes[0] = { ok: true, value };
      } catch (e) {
        outcomes[0] = { ok: false, error: e };
        fail(e, 0);
      }
    })(),
  );

  try {
    await Promise.race([Promise.all(done), gaveUp]);
    // Rule 1: wait for the workers to exit; one that lingers after its result is terminated.
    const lingerTimer = setTimeout(() => {
      terminated = true;
      for (const w of workers) void w.terminate();
    }, shutdownTimeout);
    await Promise.all(exited);
    clearTimeout(lingerTimer);
    if (killTimer !== undefined) clearTimeout(killTimer);
  } finally {
    settled = true;
  }
  if (failed) throw firstError;
  return outcomes.map((o) => o.value);
}

/** Rule 4: prints an error that start() does not reject with. */
function printLost(e: unknown, threadId: number, afterSettle: boolean): void {
  const err = e as { name?: string; code?: string; stack?: string } | null;
  if (err?.name === 'AbortError' || err?.code === 'ERR_RINGIO_CLOSED') return;
  const why = afterSettle
    ? 'after start() had already rejected with the first error'
    : 'after another thread; start() rejects with the first error only';
  process.stderr.write(`ringio: thread ${threadId} failed ${why}:\n${err?.stack ?? String(e)}\n`);
}

// ---- a worker thread -----------------------------------------------------------------------------

interface Member {
  data: MemberData;
  port: MessagePort;
  claimed: boolean;
  runThread: RunThread;
}

let member: Member | undefined;
let stopMember: ((reason?: unknown) => void) | undefined;
let stopRequested = false;

/** Called by the worker's entry script before it imports the user's module. */
export function becomeMember(data: MemberData, port: MessagePort, runThread: RunThread): void {
  const m: Member = { data, port, claimed: false, runThread };
  member = m;
  port.on('message', (msg: { t?: string }) => {
    if (msg?.t !== 'shutdown') return;
    stopRequested = true;
    stopMember?.();
  });
  const entry = data.entry;
  const fail = (e: unknown): void => post(m, { t: 'result', ok: false, error: toWire(e) });
  if (entry.site === undefined) {
    loadExport<Main>(entry as { module: string; export: string }).then((fn) => runMember(m, fn), fail);
    return;
  }
  import(entry.module).then(
    (mod: Record<string, unknown>) => {
      if (m.claimed) return;
      const fn = mod[entry.name ?? ''];
      if (typeof fn === 'function' && Function.prototype.toString.call(fn) === entry.source) {
        m.claimed = true;
        runMember(m, fn as Main);
        return;
      }
      // start() may still come, after some awaiting at the module's top level; give it a while.
      setTimeout(() => {
        if (m.claimed) return;
        m.claimed = true;
        fail(
          ringioError(
            'ERR_RINGIO_THREAD_ENTRY',
            `thread ${data.threadId} imported ${entry.module} but found no start() call at ${entry.site} and no ` +
              `exported function '${entry.name}'. Call start() at the top level of that module, export main, ` +
              `or pass start({ module, export }, opts).`,
          ),
        );
      }, 10_000).unref();
    },
    (e) => {
      if (!m.claimed) {
        m.claimed = true;
        fail(e);
      }
    },
  );
}

/**
 * In a worker: if this start() call is the one the thread was made for, claims it and runs main as
 * the member; returns true. Other start() calls in a member thread are refused.
 */
export function claim(main: Main, site: string | undefined): boolean {
  const m = member;
  if (m === undefined) return false;
  if (m.claimed || site !== m.data.entry.site) {
    throw ringioError(
      'ERR_RINGIO_THREAD_ENTRY',
      `thread ${m.data.threadId} of a start() group was made for the start() call at ${m.data.entry.site}; ` +
        `this start() call (${site ?? 'unknown place'}) cannot run here`,
    );
  }
  m.claimed = true;
  runMember(m, main);
  return true;
}

function runMember(m: Member, main: Main): void {
  const d = m.data;
  m.runThread(main, { threadId: d.threadId, threads: d.threads, shared: reviveShared(d.shared) }, d.config, (stop) => {
    stopMember = stop;
    if (stopRequested) stop();
  }).then(
    (value) => post(m, { t: 'result', ok: true, value }),
    (e) => post(m, { t: 'result', ok: false, error: toWire(e) }),
  );
}

function post(m: Member, msg: { t: string; ok: boolean; value?: unknown; error?: WireError }): void {
  try {
    m.port.postMessage(msg);
  } catch (e) {
    m.port.postMessage({
      t: 'result',
      ok: false,
      error: toWire(
        ringioError('ERR_RINGIO_NOT_CLONEABLE', `thread ${m.data.threadId}'s result cannot be sent to thread 0: ${(e as Error).message}`),
      ),
    });
  }
  // Nothing else keeps this thread: once main's runtime is gone, the worker exits on its own.
  m.port.unref();
}

/** True in a worker thread made by start() (its member, claimed or not). */
export function isMemberThread(): boolean {
  return member !== undefined;
}
