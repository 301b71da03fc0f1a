/**
 * This thread's handle per cell uid (share.ts rule: one handle per cell per thread). Below share.ts and
 * the primitives: channel, oneshot and watch register the handles they make here, and share.ts looks
 * up the handle a descriptor revives to, so neither imports the other.
 */
import type { SharedHandle } from './shared.js';

const handles = new Map<number, WeakRef<SharedHandle>>();
const forget = new FinalizationRegistry<number>((uid) => {
  const ref = handles.get(uid);
  if (ref !== undefined && ref.deref() === undefined) handles.delete(uid);
});

/** This thread's live handle of the cell `uid`, if any. */
export function handleOf(uid: number): SharedHandle | undefined {
  return handles.get(uid)?.deref();
}

/** Registers a handle made on this thread: a descriptor of its cell revived here returns it. */
export function registerHandle<T extends SharedHandle>(h: T): T {
  handles.set(h._cell.uid, new WeakRef(h));
  forget.register(h, h._cell.uid);
  return h;
}
