/**
 * The service model (Monolake's service-async, for Node): a Service answers call(req); a Layer wraps an
 * inner service once, when the chain is built; a Factory makes a service, optionally from the one it
 * replaces (make(old), Monolake's make_via_ref), so state such as pools and counters survives a rebuild.
 */

/** Anything with call(req). The result may be a value or a promise. */
export interface Service<Req, Res> {
  /** Answers one request (a value or a promise of one). */
  call(req: Req): Res | PromiseLike<Res>;
}

/** A service that wraps another: `inner` is how make(old) finds the old inner service. */
export interface Wrapper<Inner> {
  /** The wrapped service. */
  readonly inner: Inner;
}

/** Wraps an inner service into an outer one. Called once per chain build, never per request. */
export interface Layer<Inner, Outer> {
  /** Returns the outer service around `inner`. */
  layer(inner: Inner): Outer;
}

/**
 * Makes a service. `old` is the service this one replaces in a slot (undefined on the first build): a
 * factory may take state from it. A failing make (throw or rejection) fails the deploy that asked.
 */
export interface Factory<S> {
  /** Makes the service; `old` is the one it replaces (undefined on the first build). */
  make(old?: S): S | Promise<S>;
}

/** Wraps a factory into a factory, the way a Layer wraps a service. */
export interface FactoryLayer<Inner, Outer> {
  /** Returns the factory of the outer service around what `inner` makes. */
  wrap(inner: Factory<Inner>): Factory<Outer>;
}

/** Applies layers innermost first: stack(svc, a, b) is b.layer(a.layer(svc)). */
export function stack<S>(service: S, ...layers: Layer<any, any>[]): any {
  let s: unknown = service;
  for (const l of layers) s = l.layer(s);
  return s;
}

/** Applies factory layers innermost first, like stack(). */
export function stackFactory<S>(factory: Factory<S>, ...layers: FactoryLayer<any, any>[]): Factory<any> {
  let f: Factory<unknown> = factory as Factory<unknown>;
  for (const l of layers) f = l.wrap(f);
  return f;
}

/** A factory that always returns the same service (no state to carry). */
export function constFactory<S>(service: S): Factory<S> {
  return { make: () => service };
}

/**
 * Finds the old counterpart of a layer: `old` itself, or the first service down its `.inner` links
 * that `match` accepts (a layer that was removed in between is skipped). Undefined when none matches.
 */
export function findOld<T>(old: unknown, match: (s: unknown) => s is T): T | undefined {
  let o = old;
  for (let depth = 0; o !== null && typeof o === 'object' && depth < 64; depth++) {
    if (match(o)) return o;
    o = (o as Partial<Wrapper<unknown>>).inner;
  }
  return undefined;
}

/**
 * The usual FactoryLayer for a wrapping service: make(old) finds this layer's old counterpart in the
 * old chain (with `match`; without it, `old` itself), makes the inner service from the counterpart's
 * inner (or from `old` when this layer is new), then builds the outer one with `build(inner, prev)` so
 * that `build` can carry `prev`'s state over.
 */
export function wrapFactory<Inner, Outer extends Wrapper<Inner>>(
  build: (inner: Inner, old: Outer | undefined) => Outer,
  match?: (s: unknown) => s is Outer,
): FactoryLayer<Inner, Outer> {
  return {
    wrap(innerFactory: Factory<Inner>): Factory<Outer> {
      return {
        async make(old?: Outer): Promise<Outer> {
          const prev = match ? findOld(old, match) : old;
          const inner = await innerFactory.make((prev !== undefined ? prev.inner : old) as Inner | undefined);
          return build(inner, prev);
        },
      };
    },
  };
}

/** A FactoryLayer that is there or not (Monolake's Option<Layer>): when `on` is false it wraps nothing. */
export function optionalFactory<S>(on: boolean, layer: FactoryLayer<S, S>): FactoryLayer<S, S> {
  return on ? layer : { wrap: (f) => f };
}
