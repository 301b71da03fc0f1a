// Helpers of the type tests (not a test itself: files starting with '_' are not counted).
/** True when A and B are the same type (not merely assignable either way). */
export type Eq<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Fails to compile unless T is `true`: assertType<Eq<typeof x, number>>(). */
export function assertType<T extends true>(): T | void {}
