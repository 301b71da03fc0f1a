/**
 * The shared half of a cross-thread primitive: one growable SharedArrayBuffer holding a header, two
 * waiter bitmaps and a byte ring of length-prefixed records. Every thread that holds the primitive
 * has its own JS object over the same buffer.
 *
 * Rules:
 *  1. Every header word and every ring byte is read and written only under the cell's lock (a
 *     futex-style mutex on word 0), so plain typed-array accesses inside it are race-free. Critical
 *     sections copy bytes and flip counters; nothing in them waits.
 *  2. A thread that must wait sets its doorbell's bit in the right bitmap in the same critical section
 *     in which it found it must wait. Whoever changes the state takes (reads and clears) the bits of
 *     the other side in the critical section that made the change, and rings those doorbells after
 *     unlocking. Together with the doorbell's own protocol no wake is lost.
 *  3. The ring only grows, doubling, up to MAX_RING. It grows while no one reads it: under the lock.
 */
import { readFileSync } from 'node:fs';
import { native } from '../addon.js';
import { ringioError } from '../errors.js';

export const KIND_CHANNEL = 1;
export const KIND_ONESHOT = 2;
export const KIND_WATCH = 3;

// Header words (Int32).
const H_LOCK = 0;
export const H_UID = 1;
export const H_KIND = 2;
export const H_CAP = 3;
export const H_COUNT = 4;
export const H_CLOSED = 5;
const H_HEAD = 6;
const H_TAIL = 7;
const H_USED = 8;
const H_RING = 9;
/** Free for the primitive kind: oneshot flags, watch version. */
export const H_AUX0 = 10;
export const H_AUX1 = 11;
const H_ANY0 = 12; // nonzero when bitmap 0 has a bit set
const H_ANY1 = 13;
const BITS0 = 16;
const BITS1 = 48;
const BIT_WORDS = 32; // 1024 doorbells
const HEADER_BYTES = 80 * 4;
const REC_HEADER = 8;
const WRAP = 0xffffffff;

/** A record payload can be at most this big (a growable buffer reserves address space, not memory). */
export const MAX_RING = 256 * 1024 * 1024;

/** The two sides of a primitive that can wait: receivers (or watchers) and senders. */
export const SIDE_RECV = 0;
export const SIDE_SEND = 1;

export interface Popped {
  tag: number;
  bytes: Uint8Array;
}

const align8 = (n: number): number => (n + 7) & ~7;

/** Growable SharedArrayBuffers (ES2024) are in Node 20's V8; TypeScript's es2022 lib lacks them. */
interface GrowableSAB extends SharedArrayBuffer {
  grow(newLength: number): void;
}
const GrowableSAB = SharedArrayBuffer as unknown as new (length: number, opts: { maxByteLength: number }) => GrowableSAB;

// ---- the address-space guard -------------------------------------------------------------------
// A growable buffer is a memory mapping of its own (two, once part of it is in use). The kernel caps a
// process's mappings (vm.max_map_count, 65530 by default), and V8 treats a failed reservation as a
// fatal out-of-memory: the process dies. So before making a cell we make sure the mappings have room,
// reading /proc/self/maps only once per batch of creations sized to stay clear of the cap.
const MAP_HEADROOM = 8192; // mappings left for V8's heap, libraries, thread stacks
let creationsBeforeCheck = 0;

function mapLimit(): number {
  try {
    return Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim()) || 65530;
  } catch {
    return 65530;
  }
}

function mappingCount(): number {
  try {
    const maps = readFileSync('/proc/self/maps');
    let n = 0;
    for (let i = maps.indexOf(10); i >= 0; i = maps.indexOf(10, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

function reserveMapping(): void {
  if (creationsBeforeCheck-- > 0) return;
  const limit = mapLimit();
  const room = limit - MAP_HEADROOM - mappingCount();
  if (room <= 0) {
    creationsBeforeCheck = 0;
    throw ringioError(
      'ERR_RINGIO_TOO_MANY_PRIMITIVES',
      `too many live channels, oneshots and watches: each is a memory mapping and the process is near its limit ` +
        `of ${limit} (vm.max_map_count); drop unused ones or raise the limit`,
    );
  }
  // Each creation adds at most 2 mappings; other threads create too, so check again well before.
  creationsBeforeCheck = Math.floor(room / 16);
}

export class Cell {
  readonly sab: SharedArrayBuffer;
  readonly w: Int32Array;
  private readonly u32: Uint32Array;
  private readonly u8: Uint8Array;
  readonly uid: number;

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    // Length-tracking views: they follow the buffer when another thread grows it.
    this.w = new Int32Array(sab);
    this.u32 = new Uint32Array(sab);
    this.u8 = new Uint8Array(sab);
    this.uid = this.w[H_UID]! >>> 0;
  }

  static create(kind: number, capacity: number, ringBytes: number): Cell {
    reserveMapping();
    const sab = new GrowableSAB(HEADER_BYTES + ringBytes, { maxByteLength: HEADER_BYTES + MAX_RING });
    const w = new Int32Array(sab);
    w[H_UID] = native.ringio_thread_uid() | 0;
    w[H_KIND] = kind;
    w[H_CAP] = capacity;
    w[H_RING] = ringBytes;
    return new Cell(sab);
  }

  get kind(): number {
    return Atomics.load(this.w, H_KIND);
  }

  lock(): void {
    if (Atomics.compareExchange(this.w, H_LOCK, 0, 1) !== 0) this.lockSlow();
  }

  private lockSlow(): void {
    const w = this.w;
    for (let spin = 0; spin < 200; spin++) {
      if (Atomics.load(w, H_LOCK) === 0 && Atomics.compareExchange(w, H_LOCK, 0, 1) === 0) return;
    }
    // Contended: mark it (2) and sleep on the word until the holder hands it over.
    while (Atomics.exchange(w, H_LOCK, 2) !== 0) Atomics.wait(w, H_LOCK, 2, 5);
  }

  unlock(): void {
    if (Atomics.exchange(this.w, H_LOCK, 0) === 2) Atomics.notify(this.w, H_LOCK, 1);
  }

  // ---- waiter bitmaps (under the lock) --------------------------------------------------------

  setBit(side: number, key: number): void {
    const base = side === SIDE_RECV ? BITS0 : BITS1;
    this.w[base + (key >>> 5)]! |= 1 << (key & 31);
    this.w[side === SIDE_RECV ? H_ANY0 : H_ANY1] = 1;
  }

  /** Reads and clears one side's bitmap: the doorbell keys to ring after unlocking, or null. */
  takeBits(side: number): number[] | null {
    const any = side === SIDE_RECV ? H_ANY0 : H_ANY1;
    const w = this.w;
    if (w[any] === 0) return null;
    w[any] = 0;
    const base = side === SIDE_RECV ? BITS0 : BITS1;
    const keys: number[] = [];
    for (let i = 0; i < BIT_WORDS; i++) {
      let m = w[base + i]!;
      if (m === 0) continue;
      w[base + i] = 0;
      while (m !== 0) {
        const b = 31 - Math.clz32(m & -m);
        keys.push(i * 32 + b);
        m &= m - 1;
      }
    }
    return keys;
  }

  // ---- the record ring (under the lock) -------------------------------------------------------

  get count(): number {
    return this.w[H_COUNT]!;
  }

  get capacity(): number {
    return this.w[H_CAP]!;
  }

  get closed(): boolean {
    return this.w[H_CLOSED] !== 0;
  }

  /**
   * Appends a record. Returns false when the count is at capacity or the ring cannot make room
   * (it grows first when it may). Throws RangeError for a payload that could never fit.
   */
  push(tag: number, bytes: Uint8Array): boolean {
    const w = this.w;
    if (w[H_COUNT]! >= w[H_CAP]!) return false;
    const need = REC_HEADER + align8(bytes.length);
    if (need > MAX_RING) {
      throw new RangeError(`a message of ${bytes.length} bytes is larger than the ${MAX_RING} byte limit`);
    }
    let pos = this.reserve(need);
    if (pos < 0) {
      if (!this.grow(need)) return false;
      pos = this.reserve(need);
      if (pos < 0) return false;
    }
    const at = HEADER_BYTES + pos;
    this.u32[at >>> 2] = bytes.length;
    this.u32[(at >>> 2) + 1] = tag;
    this.u8.set(bytes, at + REC_HEADER);
    w[H_COUNT]!++;
    return true;
  }

  /** Finds `need` contiguous bytes at the tail, wrapping if needed; -1 if there is no room. */
  private reserve(need: number): number {
    const w = this.w;
    const ring = w[H_RING]!;
    let used = w[H_USED]!;
    if (used === 0) {
      w[H_HEAD] = 0;
      w[H_TAIL] = 0;
    }
    const head = w[H_HEAD]!;
    const tail = w[H_TAIL]!;
    let pos: number;
    if (used === 0 || tail > head) {
      if (ring - tail >= need) {
        pos = tail;
      } else if (head >= need) {
        // Wrap: the bytes left at the end are skipped (a marker, if there is room for one).
        if (ring - tail >= REC_HEADER) this.u32[(HEADER_BYTES + tail) >>> 2] = WRAP;
        used += ring - tail;
        pos = 0;
      } else {
        return -1;
      }
    } else if (head - tail >= need) {
      pos = tail; // tail < head, or tail === head with the ring full (then head - tail is 0)
    } else {
      return -1;
    }
    w[H_TAIL] = pos + need;
    w[H_USED] = used + need;
    return pos;
  }

  /** Doubles the ring until `need` more bytes fit, re-laying the records out from offset 0. */
  private grow(need: number): boolean {
    const w = this.w;
    const ring = w[H_RING]!;
    let size = ring;
    while (size - this.liveBytes() < need) {
      if (size >= MAX_RING) return false;
      size = Math.min(MAX_RING, size * 2);
    }
    if (size === ring) return false; // it would fit in a linear layout, but the wrap is in the way
    const records = this.drainAll();
    (this.sab as GrowableSAB).grow(HEADER_BYTES + size);
    w[H_RING] = size;
    w[H_HEAD] = 0;
    w[H_TAIL] = 0;
    w[H_USED] = 0;
    const cap = w[H_CAP]!;
    w[H_CAP] = 0x7fffffff; // re-append without the count check
    w[H_COUNT] = 0;
    for (const r of records) this.push(r.tag, r.bytes);
    w[H_CAP] = cap;
    return true;
  }

  /** Bytes the records would take laid out without gaps. */
  private liveBytes(): number {
    let total = 0;
    let at = this.w[H_HEAD]!;
    const ring = this.w[H_RING]!;
    for (let i = 0, n = this.w[H_COUNT]!; i < n; i++) {
      if (at === ring || (ring - at >= REC_HEADER && this.u32[(HEADER_BYTES + at) >>> 2] === WRAP)) at = 0;
      const len = this.u32[(HEADER_BYTES + at) >>> 2]!;
      const size = REC_HEADER + align8(len);
      total += size;
      at += size;
    }
    return total;
  }

  private drainAll(): Popped[] {
    const out: Popped[] = [];
    while (this.w[H_COUNT]! > 0) out.push(this.pop()!);
    return out;
  }

  /** Removes the oldest record (a copy, not a view of shared memory), or returns null if empty. */
  pop(): Popped | null {
    const w = this.w;
    if (w[H_COUNT] === 0) return null;
    const ring = w[H_RING]!;
    let head = w[H_HEAD]!;
    if (head === ring || (ring - head >= REC_HEADER && this.u32[(HEADER_BYTES + head) >>> 2] === WRAP)) {
      w[H_USED]! -= ring - head;
      head = 0;
    }
    const at = HEADER_BYTES + head;
    const len = this.u32[at >>> 2]!;
    const tag = this.u32[(at >>> 2) + 1]!;
    const bytes = this.u8.slice(at + REC_HEADER, at + REC_HEADER + len);
    const size = REC_HEADER + align8(len);
    w[H_HEAD] = head + size;
    w[H_USED]! -= size;
    if (--w[H_COUNT]! === 0) {
      w[H_HEAD] = 0;
      w[H_TAIL] = 0;
      w[H_USED] = 0;
    }
    return { tag, bytes };
  }

  /** Replaces the single record (watch): the ring holds one value, grown to fit. */
  replace(tag: number, bytes: Uint8Array): void {
    const need = REC_HEADER + align8(bytes.length);
    if (need > MAX_RING) {
      throw new RangeError(`a value of ${bytes.length} bytes is larger than the ${MAX_RING} byte limit`);
    }
    const w = this.w;
    let size = w[H_RING]!;
    if (size < need) {
      while (size < need) size *= 2;
      size = Math.min(size, MAX_RING);
      (this.sab as GrowableSAB).grow(HEADER_BYTES + size);
      w[H_RING] = size;
    }
    this.u32[HEADER_BYTES >>> 2] = bytes.length;
    this.u32[(HEADER_BYTES >>> 2) + 1] = tag;
    this.u8.set(bytes, HEADER_BYTES + REC_HEADER);
    w[H_COUNT] = 1;
  }

  /** Copies the single record (watch). */
  peek(): Popped {
    const len = this.u32[HEADER_BYTES >>> 2]!;
    const tag = this.u32[(HEADER_BYTES >>> 2) + 1]!;
    return { tag, bytes: this.u8.slice(HEADER_BYTES + REC_HEADER, HEADER_BYTES + REC_HEADER + len) };
  }
}
