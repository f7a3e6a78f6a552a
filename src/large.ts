/**
 * Allocations above MAX_SMALL: a run of slab slots inside one SuperSlab (up to 1 MiB), or, above,
 * a run of slots in a row across SuperSlab boundaries (whole SuperSlabs when it must be aligned to
 * more than a slot). Taken and given back under the global lock; usable size is the run.
 */
import {
  F_LARGE_ALLOCS, F_LARGE_LIVE_BYTES, K_LARGE, LARGE_FREED, LARGE_LIVE, MAX_HEAP_BYTES, SLOTS_PER_SUPER, SLOTS_SHIFT_IN_SUPER,
  SLOT_BYTES, SLOT_SHIFT, SM_CLS1, SM_DATA, SM_FREED_CLS, SM_HEAD, SM_KIND, SM_LARGE, SM_SPAN, SM_STATE, SUPER_BYTES,
} from './layout.js';
import { CP_LARGE, crashPoint } from './crash.js';
import type { ThreadContext } from './context.js';
import { lockAcquire, lockRelease, tryLockAcquire } from './lock.js';
import {
  carveSuperSlabs, commitTaken, findRun, findSlots, findWholeSupers, freeSlotsAtEnd, freeSupersAtEnd, noteTouched, returnSlots,
} from './slots.js';
import { returnStage1Slabs } from './pool.js';

/** A large run of at least `size` bytes aligned to `align` (<= SUPER_BYTES); 0 when out of memory. */
export function largeAlloc(t: ThreadContext, size: number, align: number, mayBlock: boolean): number {
  if (size > MAX_HEAP_BYTES) return 0;
  const slots = Math.max(1, Math.ceil(size / SLOT_BYTES));
  if (mayBlock) lockAcquire(t);
  else if (!tryLockAcquire(t)) return 0;
  let head = 0;
  let span = slots;
  try {
    if (slots <= SLOTS_PER_SUPER) {
      const alignSlots = Math.max(1, Math.min(SLOTS_PER_SUPER, align / SLOT_BYTES));
      head = findSlots(t, slots, alignSlots);
      if (head === 0 && returnStage1Slabs(t) > 0) head = findSlots(t, slots, alignSlots);
      if (head === 0) head = carveSuperSlabs(t, 1);
    } else if (align <= SLOT_BYTES) {
      // Slots in a row, wherever they are free: a request just above 1 MiB takes 17 slots, not
      // two SuperSlabs, and fits in the free slots of SuperSlabs that are partly in use.
      head = findRun(t, slots);
      if (head === 0 && returnStage1Slabs(t) > 0) head = findRun(t, slots);
      if (head === 0) {
        const atEnd = freeSlotsAtEnd(t);
        const fresh = carveSuperSlabs(t, Math.ceil((slots - atEnd) / SLOTS_PER_SUPER));
        if (fresh !== 0) head = fresh - atEnd;
      }
    } else {
      const supers = Math.ceil(size / SUPER_BYTES);
      span = supers << SLOTS_SHIFT_IN_SUPER;
      head = findWholeSupers(t, supers);
      if (head === 0 && returnStage1Slabs(t) > 0) head = findWholeSupers(t, supers);
      if (head === 0) {
        // A run of free SuperSlabs at the end of the carved area continues into fresh ones.
        const atEnd = freeSupersAtEnd(t);
        const fresh = carveSuperSlabs(t, supers - atEnd);
        if (fresh !== 0) head = fresh - (atEnd << SLOTS_SHIFT_IN_SUPER);
      }
    }
    if (head !== 0) {
      const i32 = t.i32;
      for (let s = head; s < head + span; s++) {
        const mW = t.metaW(s);
        i32[mW + SM_KIND] = K_LARGE;
        i32[mW + SM_CLS1] = 0;
        i32[mW + SM_DATA] = head << SLOT_SHIFT;
        i32[mW + SM_STATE] = 0;
        i32[mW + SM_HEAD] = head;
        i32[mW + SM_SPAN] = span;
        i32[mW + SM_LARGE] = 0;
        i32[mW + SM_FREED_CLS] = 0;
      }
      i32[t.metaW(head) + SM_LARGE] = LARGE_LIVE;
      noteTouched(t, head << SLOT_SHIFT, (head + span) << SLOT_SHIFT); // the run is the usable size
      crashPoint(CP_LARGE);
      commitTaken(t, head, span);
      crashPoint(CP_LARGE);
      t.f64[F_LARGE_LIVE_BYTES] += span * SLOT_BYTES;
      t.f64[F_LARGE_ALLOCS]++;
    }
  } finally {
    lockRelease(t);
  }
  return head << SLOT_SHIFT;
}

/** Frees a live large run (the caller validated it). */
export function largeFree(t: ThreadContext, head: number): void {
  lockAcquire(t);
  try {
    const i32 = t.i32;
    const hW = t.metaW(head);
    crashPoint(CP_LARGE);
    t.f64[F_LARGE_LIVE_BYTES] -= i32[hW + SM_SPAN] * SLOT_BYTES;
    returnSlots(t, head);
    i32[hW + SM_LARGE] = LARGE_FREED;
  } finally {
    lockRelease(t);
  }
}
