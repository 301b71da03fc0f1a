/**
 * Header fields as a view over the bytes they arrived in: four offsets per field in an Int32Array, and
 * strings only when asked (get, getAll, iteration).
 *
 * A server request's HeaderView points into the connection's rented read buffer and is valid while the
 * handler runs (see docs/api/http.md). A client response's view owns a copy of its head, except a proxied
 * one (forward.send), which points into the connection's read buffer until its body is read.
 */
import { eqLower } from './parse.js';

function lowerName(name: unknown): string {
  if (typeof name !== 'string') throw new TypeError('header name must be a string');
  return name.toLowerCase();
}

/** A message's header fields, read from the bytes they arrived in: lookups by case-insensitive name, strings made only when asked. A server request's view is valid while the handler runs. */
export class HeaderView implements Iterable<[string, string]> {
  /** @internal */ _buf: Buffer;
  /** @internal */ _offs: Int32Array;
  /** @internal */ _count: number;
  /** @internal Per field, its name's code (HeadParser.names). */
  _names: Uint8Array;
  /**
   * @internal Whether a Connection field may list a name other than keep-alive and close (the
   * scanner's CONN_OTHER): when false, forward.connectionNamesOf needs no look at the fields.
   */
  _connNames: boolean;

  /** @internal */
  constructor(buf: Buffer, offs: Int32Array, count: number, names: Uint8Array, connNames = true) {
    this._buf = buf;
    this._offs = offs;
    this._count = count;
    this._names = names;
    this._connNames = connNames;
  }

  /** How many field lines there are (a name sent twice counts twice). */
  get size(): number {
    return this._count;
  }

  #find(lname: string, from: number): number {
    const b = this._buf;
    const o = this._offs;
    const len = lname.length;
    for (let i = from; i < this._count; i++) {
      const n0 = o[4 * i]!;
      if (o[4 * i + 1]! - n0 === len && eqLower(b, n0, n0 + len, lname)) return i;
    }
    return -1;
  }

  #value(i: number): string {
    return this._buf.latin1Slice(this._offs[4 * i + 2]!, this._offs[4 * i + 3]!);
  }

  /** The value of `name` (case-insensitive); several fields of that name are joined with ', '. */
  get(name: string): string | null {
    const lname = lowerName(name);
    let i = this.#find(lname, 0);
    if (i < 0) return null;
    let v = this.#value(i);
    while ((i = this.#find(lname, i + 1)) >= 0) v += ', ' + this.#value(i);
    return v;
  }

  /** Every value of `name`, one per field line, in order. */
  getAll(name: string): string[] {
    const lname = lowerName(name);
    const out: string[] = [];
    for (let i = this.#find(lname, 0); i >= 0; i = this.#find(lname, i + 1)) out.push(this.#value(i));
    return out;
  }

  /** Whether a field with this name (case-insensitive) is present. */
  has(name: string): boolean {
    return this.#find(lowerName(name), 0) >= 0;
  }

  /** The raw [name, value] pairs in arrival order, names as sent. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (let i = 0; i < this._count; i++) {
      yield [this._buf.latin1Slice(this._offs[4 * i]!, this._offs[4 * i + 1]!), this.#value(i)];
    }
  }

  /** The raw [name, value] pairs in arrival order, names as sent (the same as iterating the view). */
  entries(): IterableIterator<[string, string]> {
    return this[Symbol.iterator]();
  }

  /** node:http's shape: lower-case names; repeated fields joined with ', ' (set-cookie: an array). */
  toObject(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = Object.create(null);
    for (const [n, v] of this) {
      const k = n.toLowerCase();
      const prev = out[k];
      if (k === 'set-cookie') {
        if (prev === undefined) out[k] = [v];
        else (prev as string[]).push(v);
      } else out[k] = prev === undefined ? v : `${prev as string}, ${v}`;
    }
    return out;
  }

  /** @internal Rebases onto a copy of the head (the read buffer is about to be reused). */
  _rebase(buf: Buffer, delta: number): void {
    this._buf = buf;
    const o = this._offs;
    for (let i = 0; i < 4 * this._count; i++) o[i] = o[i]! - delta;
  }
}
