/**
 * Allocations above MAX_SMALL: a run of slab slots inside one SuperSlab (up to 1 MiB), or, above,
 * a run of slots in a row across SuperSlab boundaries (whole SuperSlabs when it must be aligned to
 * more than a slot). Taken and given back under the global lock; usable size is the run. A freed
 * run of up to LARGE_POOL_SPANS slots waits in its span's large-run list (pool.ts), where the
 * next allocation of that span takes it without the lock.
 */
import {
  F_LARGE_ALLOCS, F_LARGE_HELD_BYTES, G_CARVED, G_LARGE_POOLED, LARGE_LIVE, LARGE_RESIZING, TH_PUSHING, largeClaimMark, LARGE_POOL_SPANS, MAX_HEAP_BYTES, SLOTS_PER_SUPER, SLOTS_SHIFT_IN_SUPER,
  SLOT_BYTES, SLOT_SHIFT, SM_HEAD, SM_KIND, K_LARGE, SM_LARGE, SM_RUN_GEN, SM_SPAN, SUPER_BYTES,
} from './layout.js';
import { CP_LARGE, crashPoint } from './crash.js';
import type { ThreadContext } from './context.js';
import { DoubleFreeError, HeapError, hex } from './errors.js';
import { WOULD_BLOCK, lockAcquire, lockRelease, tryLockAcquire } from './lock.js';
import {
  carveSuperSlabs, clearStaleMarks, commitTaken, findRun, findSlots, findWholeSupers, freeSlotsAfter, freeSlotsAtEnd, freeSupersAtEnd, growRun, noteTouched, touchedBytes,
  shrinkRun, writeRunMetas,
} from './slots.js';
import { POOL_NOT_LIVE, POOL_PUSHED, giveBackRun, largePoolReserve, largePoolPop, largePoolPush, returnLargeRuns, returnStage1Slabs } from './pool.js';

/**
 * A large run of at least `size` bytes aligned to `align` (<= SUPER_BYTES); 0 when out of memory.
 * With `room` (slot-aligned runs only), the run is placed before as many free slots as it has,
 * which stay free (largeAllocToGrow); not from the large-run pool then, and a run of 9 to 16
 * slots gets none (it must stay in one SuperSlab, and twice its slots do not fit in one).
 */
export function largeAlloc(t: ThreadContext, size: number, align: number, mayBlock: boolean, room = false): number {
  if (size > MAX_HEAP_BYTES) return 0;
  const slots = Math.max(1, Math.ceil(size / SLOT_BYTES));
  const extra = room && align <= SLOT_BYTES && (2 * slots <= SLOTS_PER_SUPER || slots > SLOTS_PER_SUPER) ? slots : 0;
  const want = slots + extra;
  if (want > MAX_HEAP_BYTES / SLOT_BYTES) return 0;
  if (extra === 0 && slots <= LARGE_POOL_SPANS && align <= SLOT_BYTES) {
    // A run of the same span freed earlier, without the lock (pool.ts largePoolPop).
    const pooled = largePoolPop(t, slots);
    if (pooled !== 0) {
      // (the pop set t.largeDirtyBytes)
      t.ensureViews(); // another thread may have grown the buffer and carved these slots
      return pooled << SLOT_SHIFT;
    }
  }
  if (mayBlock) lockAcquire(t);
  else if (!tryLockAcquire(t)) return 0;
  let head = 0;
  let span = slots;
  try {
    // Pooled runs give their slots back before any new slot is taken (pool.ts returnLargeRuns).
    if (Atomics.load(t.i32, G_LARGE_POOLED) > 0) returnLargeRuns(t, false);
    if (want <= SLOTS_PER_SUPER) {
      const alignSlots = Math.max(1, Math.min(SLOTS_PER_SUPER, align / SLOT_BYTES));
      head = findSlots(t, want, alignSlots);
      if (head === 0 && returnStage1Slabs(t) > 0) head = findSlots(t, want, alignSlots);
      if (head === 0) head = carveSuperSlabs(t, 1);
    } else if (align <= SLOT_BYTES) {
      // Slots in a row, wherever they are free: a request just above 1 MiB takes 17 slots, not
      // two SuperSlabs, and fits in the free slots of SuperSlabs that are partly in use.
      head = findRun(t, want);
      if (head === 0 && returnStage1Slabs(t) > 0) head = findRun(t, want);
      if (head === 0) {
        const atEnd = freeSlotsAtEnd(t);
        const fresh = carveSuperSlabs(t, Math.ceil((want - atEnd) / SLOTS_PER_SUPER));
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
    if (head !== 0) takeRun(t, head, span);
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
  return head << SLOT_SHIFT;
}

/** [L] Makes the free slots [head, head + span) a live large run. */
function takeRun(t: ThreadContext, head: number, span: number): void {
  clearStaleMarks(t, head, head + span, 0, head << SLOT_SHIFT);
  t.largeDirtyBytes = touchedBytes(t, head, span);
  writeRunMetas(t, head, head, head + span, span);
  noteTouched(t, head << SLOT_SHIFT, (head + span) << SLOT_SHIFT); // the run is the usable size
  if (t.debugLarge !== null) t.debugLarge(head << SLOT_SHIFT); // debug mode: the record before the run is live
  Atomics.add(t.i32, t.metaW(head) + SM_RUN_GEN, 1); // a new generation before it is live (layout.ts SM_RUN_GEN)
  t.i32[t.metaW(head) + SM_LARGE] = LARGE_LIVE;
  crashPoint(CP_LARGE);
  commitTaken(t, head, span);
  crashPoint(CP_LARGE);
  t.f64[F_LARGE_HELD_BYTES] += span * SLOT_BYTES;
  t.f64[F_LARGE_ALLOCS]++;
}

/**
 * The run realloc moves a growing block to: a run with as many free slots after it as it has,
 * left free and not handed out, so that the block's next growth takes them in place
 * (largeResize) instead of moving again, copying, and writing every page of a run in fresh
 * slots; where the heap cannot give that, a plain largeAlloc.
 */
export function largeAllocToGrow(t: ThreadContext, size: number): number {
  const p = largeAlloc(t, size, SLOT_BYTES, true, true);
  return p !== 0 ? p : largeAlloc(t, size, SLOT_BYTES, true);
}

/**
 * Frees a live large run (the caller validated it): with `keep`, into its span's large-run list
 * while the lists have room (no lock; pool.ts largePoolPush), else its slots back under the lock.
 * `span0`, nonzero (realloc's move, without `keep`): the span the caller copied, and `gen0` the run's
 * generation it read once the run was checked (runGeneration); where the live run has another span or
 * generation (resized in place since, or freed and taken again), it is left as it is and the call
 * throws a DoubleFreeError.
 */
export function largeFree(t: ThreadContext, head: number, keep: boolean, fn = 'free(ptr)', span0 = 0, gen0 = 0): void {
  const span = t.i32[t.metaW(head) + SM_SPAN];
  if (keep && largePoolReserve(t, head, span)) {
    const r = largePoolPush(t, head, span);
    if (r === POOL_PUSHED) return;
    // The claim's CAS fails where another thread freed the run since the caller checked it.
    if (r === POOL_NOT_LIVE) throw largeDoubleFree(fn, head, t.i32, t.metaW(head));
    // POOL_SPAN_CHANGED: resized in place since the span was read, live again: freed under the lock.
  }
  lockAcquire(t);
  try {
    // The caller checked the run before the lock, which it may have waited for: another thread
    // freeing the same run meanwhile (a double free; freeAsync on a main thread and free in a
    // worker, or two workers) gave it back first, and a second give-back corrupted the counts (an
    // audit). A free into a large-run list takes no lock, so the run is claimed by CAS (as that
    // free claims it), journaled in TH_PUSHING until given back (pool.ts repairStage1).
    const i32 = t.i32;
    const mW = t.metaW(head);
    if (i32[mW + SM_KIND] !== K_LARGE || i32[mW + SM_HEAD] !== head) throw largeDoubleFree(fn, head);
    // realloc's move claims the run only here, after its copy: another thread's realloc that
    // resized the run in place meanwhile returned it as live, and the copy missed its change (an
    // audit: both calls succeeded, the first caller holding a run this one then freed). The run
    // stays as that realloc left it, and this one is refused, as two reallocs of one block are.
    // Read before the claim, under the lock every resize in place takes: no claim to undo. The
    // generation also catches a shrink and a grow back to the same span, and a run freed and taken
    // again (layout.ts SM_RUN_GEN).
    if (span0 !== 0) refuseChangedRun(t, head, span0, gen0, fn);
    i32[t.thW + TH_PUSHING] = head;
    if (Atomics.compareExchange(i32, mW + SM_LARGE, LARGE_LIVE, largeClaimMark(t.slot)) !== LARGE_LIVE) {
      i32[t.thW + TH_PUSHING] = 0;
      throw largeDoubleFree(fn, head, i32, mW);
    }
    crashPoint(CP_LARGE);
    giveBackRun(t, head);
    i32[t.thW + TH_PUSHING] = 0;
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
}

/**
 * The DoubleFreeError of a large run that another thread freed, or is resizing with realloc, since
 * the caller checked it (largeFree, largeResize; after a failed claim, the mark says which).
 */
function largeDoubleFree(fn: string, head: number, i32?: Int32Array, mW = 0): DoubleFreeError {
  const resizing = i32 !== undefined && Atomics.load(i32, mW + SM_LARGE) === LARGE_RESIZING;
  return new DoubleFreeError(
    `${fn}: ${hex(head << SLOT_SHIFT)} is not allocated: ` +
      (resizing ? 'another thread is resizing it with realloc (a block passed to realloc is freed by it)' : 'the large block there was already freed (double free)'),
  );
}

/**
 * [L] realloc's move of the run at `head`, copied at `span0` slots and generation `gen0`
 * (runGeneration): throws a DoubleFreeError, changing nothing, where the run is live with another
 * span or generation (another thread resized it in place, or freed it and took it again, since the
 * move checked it). largeFree asks before its claim; debug mode's move before it fills the run.
 */
export function refuseChangedRun(t: ThreadContext, head: number, span0: number, gen0: number, fn: string): void {
  const i32 = t.i32;
  const mW = t.metaW(head);
  if ((i32[mW + SM_SPAN] !== span0 || Atomics.load(i32, mW + SM_RUN_GEN) !== gen0) && Atomics.load(i32, mW + SM_LARGE) === LARGE_LIVE) {
    throw new DoubleFreeError(
      `${fn}: ${hex(head << SLOT_SHIFT)} was resized in place, or freed and allocated again, by another thread while this realloc moved it (a block passed to realloc is freed by it)`,
    );
  }
}

/**
 * The generation of the large run whose head is the block `p` (layout.ts SM_RUN_GEN), read by
 * realloc's move once the run is checked, for its free to compare (largeFree's `gen0`).
 */
export function runGeneration(t: ThreadContext, p: number): number {
  return Atomics.load(t.i32, t.metaW(p >>> SLOT_SHIFT) + SM_RUN_GEN);
}

/** The span (slots) of the large run whose head is the block `p`, read with its generation by realloc's move. */
export function runSpan(t: ThreadContext, p: number): number {
  return t.i32[t.metaW(p >>> SLOT_SHIFT) + SM_SPAN];
}

/** growthRoom gives a run grown in place slots >>> LARGE_GROWTH_ROOM slots of room (a quarter). */
export const LARGE_GROWTH_ROOM = 2;

/**
 * A run grown in place by realloc to `slots` slots takes up to this many more, when they are free
 * right after it: a quarter of its size (LARGE_GROWTH_ROOM), so that a buffer grown a little at
 * a time takes the lock O(log n) times instead of at every step. A run of at most one
 * SuperSlab's slots stays in its SuperSlab (the room ends at the SuperSlab's end). No SuperSlab
 * is carved for room, and a run that moves or is allocated gets none.
 */
export function growthRoom(head: number, slots: number): number {
  const room = slots >>> LARGE_GROWTH_ROOM;
  if (slots > SLOTS_PER_SUPER) return room;
  const toEnd = SLOTS_PER_SUPER - ((head & (SLOTS_PER_SUPER - 1)) + slots);
  return room < toEnd ? room : toEnd;
}

/**
 * Resizes the live large run at `head` to `slots` slots where it is (realloc): a run shrinks by
 * giving its tail back; it grows over the free slots after it, and a run that reaches the end of
 * the carved area (more than one SuperSlab's slots) goes on into fresh SuperSlabs, and a run
 * that grows takes some room beyond `slots` where the slots are free (growthRoom). True when
 * resized; false (nothing changed) when the slots after it are taken, or when a run shrunk to at
 * most one SuperSlab's slots would cross a SuperSlab boundary (the caller then moves it).
 */
export function largeResize(t: ThreadContext, head: number, slots: number): boolean {
  lockAcquire(t);
  const i32 = t.i32;
  const mW = t.metaW(head);
  let claimed = false;
  try {
    // The caller checked the run before the lock, which it may have waited for: another thread
    // may have freed it meanwhile (a double free), into a large-run list without the lock. So the
    // run is claimed by CAS as a free claims it (and a free meanwhile is refused), and is live
    // again after (an audit: a pooled or given-back run was grown and returned as live).
    if (i32[mW + SM_KIND] !== K_LARGE || i32[mW + SM_HEAD] !== head) throw largeDoubleFree('realloc(ptr, size)', head);
    if (Atomics.compareExchange(i32, mW + SM_LARGE, LARGE_LIVE, LARGE_RESIZING) !== LARGE_LIVE) throw largeDoubleFree('realloc(ptr, size)', head);
    claimed = true;
    const span = i32[mW + SM_SPAN];
    if (slots < span) {
      // A run of at most one SuperSlab's slots lies in one SuperSlab: one that would cross moves.
      if (slots <= SLOTS_PER_SUPER && head >>> SLOTS_SHIFT_IN_SUPER !== (head + slots - 1) >>> SLOTS_SHIFT_IN_SUPER) return false;
      Atomics.add(i32, mW + SM_RUN_GEN, 1); // before the resize (layout.ts SM_RUN_GEN)
      shrinkRun(t, head, span, slots);
      return true;
    }
    const more = slots - span;
    const free = freeSlotsAfter(t, head, span, more);
    if (free < more) {
      // Only a run past one SuperSlab may go on into fresh ones, and only from the carved end.
      if (slots <= SLOTS_PER_SUPER || head + span + free !== Atomics.load(t.i32, G_CARVED) << SLOTS_SHIFT_IN_SUPER) return false;
      if (carveSuperSlabs(t, Math.ceil((more - free) / SLOTS_PER_SUPER)) === 0) return false;
    }
    Atomics.add(i32, mW + SM_RUN_GEN, 1); // before the resize (layout.ts SM_RUN_GEN)
    growRun(t, head, span, slots + freeSlotsAfter(t, head, slots, growthRoom(head, slots)));
    return true;
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    if (claimed) Atomics.store(i32, mW + SM_LARGE, LARGE_LIVE);
    lockRelease(t);
  }
}
