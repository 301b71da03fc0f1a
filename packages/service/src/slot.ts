/**
 * A Slot holds a thread's current chain. A connection takes slot.get() when it is accepted and keeps
 * that service to its end; a commit replaces what later connections get, never what running ones have.
 */
import { ringioError } from '@ringio/runtime';

/** A thread's current service (chain): get() gives what a new connection uses, a commit replaces it for later connections only. */
export class Slot<S> {
  #current: S | undefined;
  #version = 0;

  constructor(initial?: S) {
    if (initial !== undefined) {
      this.#current = initial;
      this.#version = 1;
    }
  }

  /** The current service. Throws ERR_RINGIO_CLOSED when the slot is empty (nothing deployed yet, or cleared). */
  get(): S {
    if (this.#current === undefined) throw ringioError('ERR_RINGIO_CLOSED', 'the slot holds no service');
    return this.#current;
  }

  /** The current service, or undefined. */
  peek(): S | undefined {
    return this.#current;
  }

  /** How many times a service was set (0: never). */
  get version(): number {
    return this.#version;
  }

  /** Replaces the service; returns the one it replaced. */
  set(service: S): S | undefined {
    const old = this.#current;
    this.#current = service;
    this.#version++;
    return old;
  }

  /** Empties the slot; returns what it held. */
  clear(): S | undefined {
    const old = this.#current;
    this.#current = undefined;
    return old;
  }
}
