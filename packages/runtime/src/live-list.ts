/**
 * LiveList: the bookkeeping of things that come and go by the thousand (a server's connections, its
 * handshakes under way), for the one moment that needs them all (a close, a shutdown, a drain).
 *
 * Why not a Set: a long-lived Set that gains and loses an entry per connection lives in V8's old space,
 * and each rehash of its table leaves the old table linked to the new one; a scavenge keeps whatever such
 * a chain reaches, so every connection's whole object graph (its parser, its messages, its stream) was
 * promoted to old space and waited there for a full GC. Measured: node:http over compat's Duplex promoted
 * 10-17% of the young generation against 0.1% with a list, @ringio/http's server 6-7% against under 1%
 * (docs/benchmarks.md, "New connections, branch ep1", and test/compat-gc, test/http-gc).
 *
 * A LiveList is a doubly linked list of small nodes: add() returns the node, and node.leave() (or
 * list.remove(node)) unlinks it and clears its links and value, so a node that left points at nothing
 * living and nothing living points at it. Leaving twice does nothing.
 */

/** One entry of a LiveList: what add() returns, for remove(). */
export class LiveNode<T> {
  /** @internal */
  _value: T | undefined;
  /** @internal */
  _prev: LiveNode<T> | undefined = undefined;
  /** @internal */
  _next: LiveNode<T> | undefined = undefined;
  /** @internal The list it is on; undefined once removed. */
  _list: LiveList<T> | undefined;

  /** @internal */
  constructor(value: T, list: LiveList<T>) {
    this._value = value;
    this._list = list;
  }

  /** The value while the node is on its list; undefined once removed. */
  get value(): T | undefined {
    return this._value;
  }

  /** Takes the node off its list and clears it. false (and nothing done) when it already left. */
  leave(): boolean {
    const list = this._list;
    if (list === undefined) return false;
    list._unlink(this);
    return true;
  }
}

/** A list of live values that lets a removed value die young (see the file's note). Not thread-safe: one runtime's. */
export class LiveList<T> {
  #head: LiveNode<T> | undefined;
  #size = 0;

  /** How many values are on the list. */
  get size(): number {
    return this.#size;
  }

  /** Puts `value` on the list (first); returns its node, for remove(). */
  add(value: T): LiveNode<T> {
    const node = new LiveNode(value, this);
    const head = this.#head;
    node._next = head;
    if (head !== undefined) head._prev = node;
    this.#head = node;
    this.#size++;
    return node;
  }

  /** Takes `node` off the list and clears it (as node.leave()). false (and nothing done) when it is not on this list. */
  remove(node: LiveNode<T>): boolean {
    if (node._list !== this) return false;
    this._unlink(node);
    return true;
  }

  /** @internal Unlinks a node of this list. */
  _unlink(node: LiveNode<T>): void {
    const prev = node._prev;
    const next = node._next;
    if (prev !== undefined) prev._next = next;
    else this.#head = next;
    if (next !== undefined) next._prev = prev;
    node._prev = node._next = undefined;
    node._list = undefined;
    node._value = undefined;
    this.#size--;
  }

  /** Takes the first value off the list (undefined when empty): drains it even while values remove others. */
  shift(): T | undefined {
    const node = this.#head;
    if (node === undefined) return undefined;
    const value = node._value as T;
    this._unlink(node);
    return value;
  }

  /**
   * Calls `fn` with each value, newest first, without an array. `fn` may take its own value off the list
   * (the walk has already stepped past it), not others: for that, act on values().
   */
  forEach(fn: (value: T) => void): void {
    for (let n = this.#head; n !== undefined; ) {
      const next = n._next;
      fn(n._value as T);
      n = next;
    }
  }

  /** The values on the list now, newest first, in a new array (safe to act on while they leave it). */
  values(): T[] {
    const out = new Array<T>(this.#size);
    let i = 0;
    for (let n = this.#head; n !== undefined; n = n._next) out[i++] = n._value as T;
    return out;
  }
}
