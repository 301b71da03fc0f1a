/**
 * The buffer registry. Byte arrays that ops use again and again (a File's rented read buffers, a
 * stream's receive buffer) get an id in the addon, which keeps their data pointer and length; a record
 * then names the array by id (AK_REG) and the addon resolves it from a table instead of looking the array
 * up in the batch's list and asking for its data (`napi_get_element` + `napi_get_typedarray_info`,
 * 40–120 ns and about 700 instructions per op).
 *
 * Rules:
 *  1. An array is registered the second time an op uses it, so a one-shot buffer costs one WeakMap
 *     entry and nothing in the addon.
 *  2. `ids` maps each registered array to its id. It is a WeakMap, so it yields ids only for arrays that
 *     are alive; an id goes back to the addon only through `finals`, after its array was collected. So
 *     an id written into a record always names the array that record was written for, and that array
 *     stays referenced by its op until the op's final completion.
 *  3. Only plain Uint8Arrays and Buffers are registered (their `length` is the intrinsic one), and not
 *     over a resizable or growable buffer (their length may change). Right before each flush the driver
 *     checks every registered array in the batch for detachment (`length` 0): a detached one goes the
 *     plain way, where the addon fails the op with EFAULT, so a stale pointer never reaches the kernel.
 *     The addon does not repeat that check: through a weak reference (napi_get_reference_value +
 *     napi_is_detached_arraybuffer) it cost 12–15% of the QD 64 read rate in cache misses, against ~90
 *     instructions. An array transferred while its op is in flight is outside any check, registered or
 *     not: the kernel may be writing already (the rented-buffer contract: hands off until it settles).
 *  4. Module state, so one registry per thread, as the addon's instance data behind it is per thread.
 *     It outlives any one runtime: a buffer registered under one runtime keeps its id under the next.
 */
import { native } from '../addon.js';

/** Used once; registered on the next use. */
const SEEN = -1;
/** Cannot be registered (not plain, resizable, empty, or the addon said no): always the plain path. */
const NEVER = -2;

const ids = new WeakMap<Uint8Array, number>();
const finals = new FinalizationRegistry<number>((id) => native.ringio_buf_release(id));

/** The array's registry id, or -1 for the plain path. Registers the array on its second use. */
export function bufferId(buf: Uint8Array): number {
  const id = ids.get(buf);
  if (id !== undefined && id >= 0) return id;
  return firstUses(buf, id);
}

function firstUses(buf: Uint8Array, id: number | undefined): number {
  if (id === undefined) {
    ids.set(buf, SEEN);
    return -1;
  }
  if (id === NEVER) return -1;
  const backing = buf.buffer as ArrayBufferLike & { resizable?: boolean; growable?: boolean };
  const proto = Object.getPrototypeOf(buf) as unknown;
  const plain = (proto === Uint8Array.prototype || proto === Buffer.prototype) && !Object.prototype.hasOwnProperty.call(buf, 'length');
  const fresh = !plain || backing.resizable === true || backing.growable === true || buf.length === 0 ? -1 : native.ringio_buf_register(buf);
  if (fresh < 0) {
    ids.set(buf, NEVER);
    return -1;
  }
  ids.set(buf, fresh);
  finals.register(buf, fresh);
  return fresh;
}

/** Ids in use in the addon (live arrays, and collected ones whose release has not run yet). */
export function registeredBuffers(): number {
  return native.ringio_buf_registered();
}
