/**
 * Allocations above MAX_SMALL: a run of slab slots inside one SuperSlab (up to 1 MiB), or a run
 * of whole SuperSlabs. Taken and given back under the global lock; usable size is the run.
 */
import {
  F_LARGE_ALLOCS, F_LARGE_LIVE_BYTES, FULL_MASK, G_CARVED, K_LARGE, LARGE_FREED, LARGE_LIVE, SLOTS_PER_SUPER,
  SLOT_BYTES, SLOT_SHIFT, SM_CLS, SM_DATA, SM_FREED_CLS, SM_HEAD, SM_KIND, SM_LARGE, SM_SHIFT, SM_SPAN, SM_STATE, SS_TABLE_W,
  SUPER_BYTES, SUPER_SHIFT, MAX_HEAP_BYTES,
} from './layout.js';
import type { HeapInternals } from './heap.js';
import { lockAcquire, lockRelease, tryLockAcquire } from './lock.js';
import { carveSuperSlabs, commitTaken, findSlots, returnSlots, returnStage1Slabs } from './pool.js';

const SLOTS_SHIFT_IN_SUPER = SUPER_SHIFT - SLOT_SHIFT;

/** A large run of at least `size` bytes aligned to `align` (<= SUPER_BYTES); 0 when out of memory. */
export function largeAlloc(h: HeapInternals, size: number, align: number, mayBlock: boolean): number {
  if (size > MAX_HEAP_BYTES) return 0;
  const slots = Math.max(1, Math.ceil(size / SLOT_BYTES));
  if (mayBlock) lockAcquire(h);
  else if (!tryLockAcquire(h)) return 0;
  let head = 0;
  let span = slots;
  try {
    if (slots <= SLOTS_PER_SUPER) {
      const alignSlots = Math.max(1, Math.min(SLOTS_PER_SUPER, align / SLOT_BYTES));
      head = findSlots(h, slots, alignSlots, false);
      if (head === 0 && returnStage1Slabs(h) > 0) head = findSlots(h, slots, alignSlots, false);
      if (head === 0) head = carveSuperSlabs(h, 1);
    } else {
      const supers = Math.ceil(size / SUPER_BYTES);
      span = supers * SLOTS_PER_SUPER;
      head = findWholeSupers(h, supers, false);
      if (head === 0 && returnStage1Slabs(h) > 0) head = findWholeSupers(h, supers, false);
      if (head === 0) head = findWholeSupers(h, supers, true);
    }
    if (head !== 0) {
      const i32 = h.i32;
      for (let s = head; s < head + span; s++) {
        const mW = h.smW + (s << SM_SHIFT);
        i32[mW + SM_KIND] = K_LARGE;
        i32[mW + SM_CLS] = -1;
        i32[mW + SM_DATA] = head << SLOT_SHIFT;
        i32[mW + SM_STATE] = 0;
        i32[mW + SM_HEAD] = head;
        i32[mW + SM_SPAN] = span;
        i32[mW + SM_LARGE] = 0;
        i32[mW + SM_FREED_CLS] = 0;
      }
      i32[h.smW + (head << SM_SHIFT) + SM_LARGE] = LARGE_LIVE;
      commitTaken(h, head, span);
      h.f64[F_LARGE_LIVE_BYTES] += span * SLOT_BYTES;
      h.f64[F_LARGE_ALLOCS]++;
    }
  } finally {
    lockRelease(h);
  }
  return head << SLOT_SHIFT;
}

/** [L] `n` wholly free SuperSlabs in a row; with `carve`, extending the carved area when needed. */
function findWholeSupers(h: HeapInternals, n: number, carve: boolean): number {
  const i32 = h.i32;
  const carved = Atomics.load(i32, G_CARVED);
  let runStart = 0;
  let run = 0;
  for (let sup = h.geo.metaSupers; sup < carved; sup++) {
    if (i32[SS_TABLE_W + sup] === FULL_MASK) {
      if (run === 0) runStart = sup;
      if (++run === n) return runStart << SLOTS_SHIFT_IN_SUPER;
    } else run = 0;
  }
  if (!carve) return 0;
  // A run of free SuperSlabs at the end of the carved area continues into fresh ones.
  const fresh = carveSuperSlabs(h, n - run);
  if (fresh === 0) return 0;
  return (run > 0 ? runStart : fresh >>> SLOTS_SHIFT_IN_SUPER) << SLOTS_SHIFT_IN_SUPER;
}

/** Frees a live large run (the caller validated it). */
export function largeFree(h: HeapInternals, head: number): void {
  lockAcquire(h);
  try {
    const i32 = h.i32;
    const hW = h.smW + (head << SM_SHIFT);
    h.f64[F_LARGE_LIVE_BYTES] -= i32[hW + SM_SPAN] * SLOT_BYTES;
    returnSlots(h, head);
    i32[hW + SM_LARGE] = LARGE_FREED;
  } finally {
    lockRelease(h);
  }
}
