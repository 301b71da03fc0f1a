// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/**
 * Cloned<T>: the type a value has after a structured clone (postMessage, what spawnBlocking's results
 * go through): a Buffer arrives as a plain Uint8Array, class instances as plain objects with their own
 * data properties (no methods, no prototype), Maps, Sets, arrays, Dates, RegExps, typed arrays,
 * ArrayBuffers and Errors keep their kind. Functions and symbols cannot be cloned (the value is refused
 * at run time): they map to `never`.
 */
export type Cloned<T> = T extends Buffer
  ? Uint8Array
  : T extends string | number | boolean | bigint | null | undefined | void
    ? T
    : T extends symbol | AnyFunction
      ? never
      : T extends ArrayBufferView | ArrayBufferLike | Date | RegExp | Error
        ? T
        : T extends ReadonlyMap<infer K, infer V>
          ? Map<Cloned<K>, Cloned<V>>
          : T extends ReadonlySet<infer V>
            ? Set<Cloned<V>>
            : T extends readonly unknown[]
              ? { -readonly [I in keyof T]: Cloned<T[I]> }
              : { -readonly [K in keyof T as T[K] extends AnyFunction ? never : K extends symbol ? never : K]: Cloned<T[K]> };
