/**
 * The one typed view of the native addon. Everything native goes through `native`; nothing else in the
 * project loads the binary.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DriverInfo {
  driver: 'uring' | 'epoll';
  fallbackReason: string | null;
  features: string[];
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

export interface NativeAddon {
  ringio_driver_open(
    opts: DriverOpenOptions,
    sq: Int32Array,
    cq: Int32Array,
    stats: Float64Array,
    onCompletions: (count: number) => void,
  ): DriverInfo;
  /** Submits `count` records from the submission area; with `reap`, returns completions written. */
  ringio_driver_submit(count: number, bufs: Uint8Array[], reap: boolean): number;
  ringio_driver_reap(): number;
  ringio_driver_close(): void;
  /** Registers a byte array's memory; returns its id, or -1 if it cannot be registered. */
  ringio_buf_register(view: Uint8Array): number;
  /** Frees an id whose array has been collected. */
  ringio_buf_release(id: number): void;
  /** Ids in use. */
  ringio_buf_registered(): number;
  ringio_layout(): Record<string, number>;
  ringio_source_hash(): string;
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
}

/** The repository root: the folder holding binding.gyp, build/ and prebuilds/. */
export function addonRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('ringio: cannot find binding.gyp above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;

/**
 * RINGIO_ADDON names a .node file to load instead (the sanitizer build, build-asan/: npm run
 * build:asan); else build/Release when built from source, else the prebuild.
 */
export const native: NativeAddon = process.env.RINGIO_ADDON
  ? (require(process.env.RINGIO_ADDON) as NativeAddon)
  : nodeGypBuild(addonRoot());
