/**
 * The one typed view of the native addon. Everything native goes through `native`; nothing else in the
 * project loads the binary.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromNative } from './errors.js';

export interface DriverInfo {
  driver: 'uring' | 'epoll';
  fallbackReason: string | null;
  features: string[];
  /** Kernel features the driver probed for and runs without, each "NAME: why". */
  degraded: string[];
  entries: number;
  kernel: string;
}

export interface DriverOpenOptions {
  driver: 'uring' | 'epoll' | 'auto';
  entries: number;
  fault?: string;
  /** io_uring setup flags, for experiments: 'defer' tries DEFER_TASKRUN first, 'none' uses no flags. */
  setup?: string;
}

export interface NativeOpRow {
  opcode: number;
  name: string;
  /** io_uring: without it, 'auto' falls back to epoll; else it is optional (op:NAME when present). */
  required: boolean;
  /** The epoll backend can run it. */
  epoll: boolean;
  /** epoll: the syscall may block, so it runs on the file pool. */
  pool: boolean;
  /** epoll: a short result means the fd's direction is drained. */
  drainedWhenShort: boolean;
}

export interface NativeAddon {
  ringio_driver_open(
    opts: DriverOpenOptions,
    sq: Int32Array,
    cq: Int32Array,
    stats: Float64Array,
    onCompletions: (count: number) => void,
  ): DriverInfo;
  /** Submits `count` records from the submission area; with `reap`, returns completions written. */
  ringio_driver_submit(count: number, bufs: Uint8Array[], nbufs: number, reap: boolean): number;
  ringio_driver_reap(): number;
  ringio_driver_close(): void;
  /** Registers the driver's provided-buffer pool, empty, for up to `max` buffers: "" when in place, else why not. */
  ringio_pbuf_open(size: number, max: number, recycle: Int32Array): string;
  /** Adds `count` buffers in `mem` to the pool as its next ids: "" when done, else why not. */
  ringio_pbuf_grow(mem: Uint8Array, count: number): string;
  /** Registers a byte array's memory; returns its id, or -1 if it cannot be registered. */
  ringio_buf_register(view: Uint8Array): number;
  /** Frees an id whose array has been collected. */
  ringio_buf_release(id: number): void;
  /** Ids in use. */
  ringio_buf_registered(): number;
  ringio_layout(): Record<string, number>;
  ringio_source_hash(): string;
  /** The native op table (addon/ops.cc), one row per opcode. */
  ringio_ops(): NativeOpRow[];
  ringio_sys_pipe(): [number, number];
  ringio_sys_eventfd(initval: number): number;
  ringio_sys_close(fd: number): void;
  ringio_sys_align_offset(buf: Uint8Array, alignment: number): number;
  ringio_sys_set_nonblock(fd: number, on: boolean): void;
  ringio_net_socket(domain: number, type: number): number;
  ringio_net_socketpair(domain: number, type: number): [number, number];
  ringio_net_bind(fd: number, sockaddr: Uint8Array, len: number): void;
  ringio_net_listen(fd: number, backlog: number): void;
  ringio_net_setsockopt(fd: number, level: number, name: number, value: number): void;
  ringio_net_getsockopt(fd: number, level: number, name: number): number;
  ringio_net_sockname(fd: number, buf: Uint8Array, peer: boolean): number;
  /** accept4 without waiting: the new fd, or -1 when none is queued. */
  ringio_net_accept(fd: number): number;
  /** shutdown(2) at once: 0, or -errno (not thrown). */
  ringio_net_shutdown(fd: number, how: number): number;
  /** sendmsg with SCM_RIGHTS, without waiting; returns bytes sent. */
  ringio_net_send_fds(fd: number, data: Uint8Array, fds: number[]): number;
  /** recvmsg taking SCM_RIGHTS fds, without waiting: [bytes, fds]. */
  ringio_net_recv_fds(fd: number, buf: Uint8Array, maxFds: number): [number, number[]];
  ringio_sys_dup(fd: number): number;
  /** Gives this thread a doorbell; `onWake(n)` receives tokens in `area[0..n)`. Returns its key. */
  ringio_thread_register(area: Int32Array, onWake: (count: number) => void): number;
  ringio_thread_unregister(): void;
  /** Keeps the loop alive (or not) while this thread awaits other threads. */
  ringio_thread_ref(on: boolean): void;
  /** Queues `token` on the doorbell `key` and wakes its thread if it sleeps. Any thread. */
  ringio_thread_wake(key: number, token: number): boolean;
  /** [tokens received, eventfd writes that woke this thread] */
  ringio_thread_counters(): [number, number];
  ringio_thread_uid(): number;
  ringio_thread_pin(cpus: number[]): void;
  ringio_thread_affinity(): number[];
  /** TLS over memory BIOs (addon/tls.cc; wrapped by tls-native.ts). */
  ringio_tls_ctx_new(opts: NativeTlsContextOptions): number;
  ringio_tls_ctx_sni(parent: number, child: number, name: string): void;
  ringio_tls_ctx_free(id: number): void;
  ringio_tls_new(ctx: number, servername?: string, checkHost?: string): number;
  ringio_tls_free(id: number): void;
  ringio_tls_read(id: number, cin: Uint8Array | null, cinOff: number, cinLen: number, out: Uint8Array, outOff: number, outLen: number): number;
  ringio_tls_write(id: number, plain: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outLen: number): number;
  ringio_tls_take(id: number, out: Uint8Array, off: number, len: number): number;
  ringio_tls_shutdown(id: number): number;
  ringio_tls_error(id: number): { reason?: string; library?: string; verifyCode?: string; verifyMessage?: string };
  ringio_tls_info(id: number): { protocol?: string; cipher?: string; alpn?: string | null; servername?: string | null; verifyCode?: string | null };
  ringio_tls_counts(): [number, number];
}

/** ringio_tls_ctx_new's options (PEM bytes; alpn in wire format). */
export interface NativeTlsContextOptions {
  /** A server context (else a client one). */
  server: boolean;
  /** The certificate chain, PEM, leaf first. */
  cert?: Uint8Array;
  /** The private key, PEM. */
  key?: Uint8Array;
  /** The key's passphrase. */
  passphrase?: string;
  /** Client: the CAs to trust, PEM (one or several certificates). */
  ca?: Uint8Array;
  /** Client: verify the peer (SSL_VERIFY_PEER). */
  verify?: boolean;
  /** ALPN protocols in wire format (length-prefixed), in order of preference. */
  alpn?: Uint8Array;
  /** 'TLSv1.3' to refuse TLS 1.2 (default: TLS 1.2 and up). */
  minVersion?: string;
}

/**
 * The folder the addon loads from (node-gyp-build looks in its build/Release, then its prebuilds/). In the
 * repository, where this package sits at packages/runtime below binding.gyp: the top level, so a source
 * build (`npm run build:native`) wins over the committed prebuild. Installed from its tarball: this
 * package's own folder, whose prebuilds/ was copied in when it was packed (scripts/pack-prebuild.mjs).
 */
export function addonRoot(): string {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
  const repo = join(pkg, '..', '..');
  return existsSync(join(repo, 'binding.gyp')) && existsSync(join(repo, 'addon')) ? repo : pkg;
}

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;

/**
 * RINGIO_ADDON names a .node file to load instead (the sanitizer build, build-asan/: npm run
 * build:asan); else build/Release when built from source, else the prebuild.
 */
function load(): NativeAddon {
  if (process.env.RINGIO_ADDON) return require(process.env.RINGIO_ADDON) as NativeAddon;
  const dir = addonRoot();
  try {
    return nodeGypBuild(dir);
  } catch (e) {
    throw new Error(
      `ringio: no usable native addon in ${dir} (build/Release or prebuilds/${process.platform}-${process.arch}). ` +
        'The published prebuild covers Linux x64 with glibc; elsewhere build the addon from the repository ' +
        'with liburing-dev installed (`npm run build:native`).\n' +
        String((e as Error)?.message ?? e),
      { cause: e },
    );
  }
}


/**
 * Entry points called per batch, per op or per cross-thread wake, left unwrapped: they throw only
 * TypeErrors and RangeErrors for bad arguments (or ERR_RINGIO_CLOSED when called after close, which
 * the runtime never does), and a wrapper would cost every call.
 */
const HOT = new Set<string>([
  'ringio_driver_submit',
  'ringio_driver_reap',
  'ringio_buf_register',
  'ringio_buf_release',
  'ringio_buf_registered',
  'ringio_thread_wake',
  'ringio_thread_ref',
  // Per TLS record batch (tls-native.ts): TypeErrors and RangeErrors for bad windows only; TlsStream
  // checks that its session is live before each call, and OpenSSL's failures come back as -1.
  'ringio_tls_read',
  'ringio_tls_write',
  'ringio_tls_take',
]);

/**
 * The boundary: every other entry point converts what the addon throws into ringio's errors
 * (errors.ts fromNative): a system error becomes a SystemError, an ERR_RINGIO_* code its family's class.
 */
function convertErrors(raw: NativeAddon): NativeAddon {
  const out: Record<string, unknown> = {};
  // Own names, not entries: node-addon-api defines an Addon's instance methods as non-enumerable.
  for (const name of Object.getOwnPropertyNames(raw)) {
    const fn = (raw as unknown as Record<string, unknown>)[name];
    if (typeof fn !== 'function' || HOT.has(name)) {
      out[name] = fn;
      continue;
    }
    out[name] = (...args: unknown[]): unknown => {
      try {
        return (fn as (...a: unknown[]) => unknown).apply(raw, args);
      } catch (e) {
        throw fromNative(e);
      }
    };
  }
  return out as unknown as NativeAddon;
}

export const native: NativeAddon = convertErrors(load());
