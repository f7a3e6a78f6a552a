/**
 * The slot table: the SuperSlab free masks and the slot meta entries of slabs and large runs,
 * and the abandoned lists. Every function here runs under the global lock ([L]) except where it
 * says otherwise; none takes the lock itself, so the lock (which repairs this table after a dead
 * holder) sits above this file.
 *
 * A critical section writes slot metas first and commits with the SuperSlab's free mask (or
 * G_CARVED), so a holder that dies half-way leaves a state repairSlotTable() puts right.
 */
import {
  ABANDONED_W, DEBUG_MARK_W, F_LARGE_HELD_BYTES, F_SLOTS_RETURNED, FULL_MASK, G_BUFFER_SUPERS, G_CARVED, G_DEBUG, G_GEN, G_MAX_SUPERS, K_FREE,
  K_LARGE, K_SLAB, LARGE_CLAIMED, LOCK_BEAT_BYTES, LARGE_FREED, LARGE_LIVE, LARGE_POOLED, LARGE_RESIZING, OWNER_RETURNING, SLOT_BYTES, SLOTS_PER_SUPER, SLOT_SHIFT, SM_ABANDON_LISTED, SM_ABANDON_NEXT, SM_BUMP, SM_CLS1, SM_DATA, SM_FREE_REGIONS,
  SM_FREED_CLS, SM_FREED_DATA, SM_HEAD, SM_INUSE, SM_KIND, SM_LARGE, SM_LISTED, SM_NFREE, SM_OWNER,
  SM_REMOTE, SM_SPAN, SM_STATE, SM_STATES_W, SM_STATE_BYTES, SM_TOUCHED, SS_TABLE_W, SUPER_BYTES, SLOTS_SHIFT_IN_SUPER, clearUnsureMark,
} from './layout.js';
import { CP_GIVE_BACK, CP_GROWTH, CP_LARGE, crashPoint } from './crash.js';
import { HDR, META_STATES, SPAN } from './size-classes.js';
import type { ThreadContext } from './context.js';

/** Byte offset of block 0's state byte: the slab's start, or its head meta entry (META_STATES). */
export function slabStateBase(t: ThreadContext, head: number, cls: number): number {
  if (META_STATES[cls] !== 0) return (t.metaW(head) + SM_STATES_W) * 4;
  return head << SLOT_SHIFT;
}

/**
 * Raises SM_TOUCHED of the slots under the bytes [from, end) (offsets into the buffer, within one
 * slab or large run) so that each slot's mark covers them. Called by whoever holds the slots
 * (see SM_TOUCHED).
 */
export function noteTouched(t: ThreadContext, from: number, end: number): void {
  const i32 = t.i32;
  for (let s = from >>> SLOT_SHIFT, last = (end - 1) >>> SLOT_SHIFT; s <= last; s++) {
    const w = t.metaW(s) + SM_TOUCHED;
    const upTo = Math.min(end - (s << SLOT_SHIFT), SLOT_BYTES);
    if (upTo > i32[w]) i32[w] = upTo;
  }
}

/**
 * The offset just past the last byte the heap ever handed out or wrote in the slots [head, head +
 * span) (SM_TOUCHED, which never decreases), or the first slot's start where it wrote none there:
 * every byte from it to the end of the slots reads as zero, as the buffer was created or grown.
 */
export function touchedTo(t: ThreadContext, head: number, span: number): number {
  const i32 = t.i32;
  for (let s = head + span - 1; s >= head; s--) {
    const mark = i32[t.metaW(s) + SM_TOUCHED];
    if (mark > 0) return (s << SLOT_SHIFT) + mark;
  }
  return head << SLOT_SHIFT;
}

/** Bytes from the start of the run [head, head + span) that may be non-zero (touchedTo): what calloc zeroes and debug mode clears of a large run. */
export function touchedBytes(t: ThreadContext, head: number, span: number): number {
  return touchedTo(t, head, span) - (head << SLOT_SHIFT);
}

/** [L] Writes the metas of a fresh slab owned by t's slot; its state bytes are zeroed (FREE). */
export function initSlab(t: ThreadContext, head: number, cls: number): void {
  const span = SPAN[cls];
  const start = head << SLOT_SHIFT;
  clearStaleMarks(t, head, head + span, cls + 1, start + HDR[cls]);
  const i32 = t.i32;
  const state = slabStateBase(t, head, cls);
  for (let s = head; s < head + span; s++) {
    const mW = t.metaW(s);
    i32[mW + SM_KIND] = K_SLAB;
    i32[mW + SM_CLS1] = cls + 1;
    i32[mW + SM_DATA] = start + HDR[cls];
    i32[mW + SM_STATE] = state;
    i32[mW + SM_HEAD] = head;
    i32[mW + SM_SPAN] = span;
    i32[mW + SM_LARGE] = 0;
    i32[mW + SM_FREED_CLS] = 0;
  }
  const mW = t.metaW(head);
  i32[mW + SM_BUMP] = 0;
  i32[mW + SM_FREE_REGIONS] = 0;
  i32[mW + SM_NFREE] = 0;
  i32[mW + SM_INUSE] = 0;
  i32[mW + SM_LISTED] = 0;
  Atomics.store(i32, mW + SM_REMOTE, 0);
  // A notice flag is left as it is: a slab given back may be on the notice list of the thread that
  // gave it back, whose late notice came after (remote.ts notifyOwner); that thread's look clears
  // it and notices the new owner of the slab's remote frees meanwhile (slab.ts processNotices).
  clearUnsureMark(i32, mW);
  Atomics.store(i32, mW + SM_OWNER, t.slot);
  // The state bytes zeroed (FREE), by whole words (both kinds start on a word and hold whole
  // words): `bytes.fill` on a SharedArrayBuffer stores byte by byte in the runtime (see slab.ts
  // setStates), which for the 4 KiB of the 16-byte class's states was 99% of initSlab's time in a
  // profile of lua_inventory. A header on a slot no slab or run ever touched (SM_TOUCHED 0) reads
  // as zero, as the buffer was created or grown (the mark never decreases; calloc trusts it the
  // same way: slab.ts takeBlocks' CLEAN blocks), and is left as it is.
  if (META_STATES[cls] !== 0) i32.fill(0, state >>> 2, (state + SM_STATE_BYTES) >>> 2);
  else if (i32[mW + SM_TOUCHED] !== 0) i32.fill(0, state >>> 2, (state + HDR[cls]) >>> 2);
  if (HDR[cls] !== 0) noteTouched(t, start, start + HDR[cls]);
}

/**
 * Debug mode (debug.ts), by whoever makes slots [from, end) a slab of class `cls1` - 1 (0: a large
 * run) whose block 0 is at `data`: the words where freed blocks of the slots' last life keep their
 * marks (DEBUG_MARK_W of every 16 bytes, below SM_TOUCHED) are zeroed, unless that life had the
 * same blocks (the same class and data, recorded by giveBack: a slab given back and made again,
 * a run freed and made again at its head), whose marks stay valid: the memory was no one's in
 * between, and a write found there is a write after free. A mark names its block's offset and
 * usable size only, not the slab it lived in, so one left from an earlier life was taken for a
 * block's own when a later slab of that class put a block there again: if a slab of another
 * class in between had handed out a block over the old canary or size record but not over the
 * mark, an intact heap was reported written after free (test/options-stress.test.ts under debug
 * mode: a 40 KiB block's size record under a 28 KiB block of the slab that came after).
 */
export function clearStaleMarks(t: ThreadContext, from: number, end: number, cls1: number, data: number): void {
  if (t.i32[G_DEBUG] !== 1) return;
  t.ensureViews(); // the slots may lie beyond this thread's views (another thread grew the buffer)
  const i32 = t.i32;
  let cleared = 0; // bytes since the lock's last heartbeat (ThreadContext.beatLock; the callers hold the lock)
  for (let s = from; s < end; s++) {
    const mW = t.metaW(s);
    if (i32[mW + SM_FREED_CLS] === cls1 && i32[mW + SM_FREED_DATA] === data) continue;
    const start = s << SLOT_SHIFT;
    for (let w = (start >>> 2) + DEBUG_MARK_W, e = (start + i32[mW + SM_TOUCHED]) >>> 2; w < e; w += 4) i32[w] = 0;
    cleared += i32[mW + SM_TOUCHED];
    if (cleared >= LOCK_BEAT_BYTES) {
      t.beatLock();
      cleared = 0;
    }
  }
}

/** [L] Clears the free-mask bits of slots [head, head + span): the commit point of a take. */
export function commitTaken(t: ThreadContext, head: number, span: number): void {
  const i32 = t.i32;
  for (let s = head; s < head + span; ) {
    const sup = s >>> SLOTS_SHIFT_IN_SUPER;
    const first = s & (SLOTS_PER_SUPER - 1);
    const n = Math.min(span - (s - head), SLOTS_PER_SUPER - first);
    const bits = n === SLOTS_PER_SUPER ? FULL_MASK : ((1 << n) - 1) << first;
    i32[SS_TABLE_W + sup] &= ~bits;
    s += n;
  }
}

/** [L] Gives the slots of a slab or large run back (UNUSED): metas first, then the free mask. */
export function returnSlots(t: ThreadContext, head: number): void {
  const i32 = t.i32;
  const hW = t.metaW(head);
  if (i32[hW + SM_ABANDON_LISTED] !== 0) abandonedUnlink(t, (i32[hW + SM_CLS1] - 1), head);
  const kind = i32[hW + SM_KIND];
  giveBack(t, head, head + i32[hW + SM_SPAN], kind === K_SLAB ? i32[hW + SM_CLS1] : 0, CP_GIVE_BACK, kind === K_LARGE);
}

/**
 * [L] Slots [from, end) back to UNUSED: their metas first (recording the class + 1 and data of
 * what they held, so that a late second free is still a double free; for a large run whose head
 * is `from`, `runFreed`, its head marked LARGE_FREED right after the head is UNUSED, so that a
 * second free of a run whose give-back was cut off after that is a double free too), then,
 * after a crash point of `path`, their free-mask bits.
 */
function giveBack(t: ThreadContext, from: number, end: number, freedCls1: number, path: number, runFreed = false): void {
  const i32 = t.i32;
  for (let s = from; s < end; s++) {
    const mW = t.metaW(s);
    i32[mW + SM_FREED_CLS] = freedCls1;
    i32[mW + SM_FREED_DATA] = i32[mW + SM_DATA];
    i32[mW + SM_KIND] = K_FREE;
    if (runFreed && s === from) i32[mW + SM_LARGE] = LARGE_FREED; // after K_FREE: never a K_LARGE head marked freed
    i32[mW + SM_CLS1] = 0;
  }
  crashPoint(path);
  for (let s = from; s < end; s++) markFree(i32, s);
  t.f64[F_SLOTS_RETURNED] += end - from;
}

/** [L] Whether slot `s` is UNUSED by the free masks. */
function isFree(i32: Int32Array, s: number): boolean {
  return ((i32[SS_TABLE_W + (s >>> SLOTS_SHIFT_IN_SUPER)] >>> (s & (SLOTS_PER_SUPER - 1))) & 1) !== 0;
}

/** [L] Sets slot `s`'s free-mask bit. */
function markFree(i32: Int32Array, s: number): void {
  i32[SS_TABLE_W + (s >>> SLOTS_SHIFT_IN_SUPER)] |= 1 << (s & (SLOTS_PER_SUPER - 1));
}

/**
 * [L] Slots free in a row right after the run [head, head + span), up to `want` of them: in the
 * same SuperSlab when the run may not cross one (a grown span of at most SLOTS_PER_SUPER), else
 * across SuperSlab boundaries up to the end of the carved area.
 */
export function freeSlotsAfter(t: ThreadContext, head: number, span: number, want: number): number {
  const i32 = t.i32;
  const end = head + span;
  const limit = span + want <= SLOTS_PER_SUPER
    ? ((head >>> SLOTS_SHIFT_IN_SUPER) + 1) << SLOTS_SHIFT_IN_SUPER
    : Atomics.load(i32, G_CARVED) << SLOTS_SHIFT_IN_SUPER;
  let n = 0;
  for (let s = end; n < want && s < limit && isFree(i32, s); s++) n++;
  return n;
}

/** [L] Writes the metas of slots [from, end) as slots of the large run at `head` of `span` slots (not yet LARGE_LIVE). */
export function writeRunMetas(t: ThreadContext, head: number, from: number, end: number, span: number): void {
  const i32 = t.i32;
  for (let s = from; s < end; s++) {
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
}

/**
 * [L] Grows the live large run at `head` from `span` to `newSpan` slots, in place: the slots
 * after it are free (freeSlotsAfter). Metas of the new slots first (still free in the mask, a
 * dead holder's repair resets them), then the mask (taken, but beyond the head's span: repair
 * gives them back), then the head's span, the commit point.
 */
export function growRun(t: ThreadContext, head: number, span: number, newSpan: number): void {
  const i32 = t.i32;
  writeRunMetas(t, head, head + span, head + newSpan, newSpan);
  noteTouched(t, (head + span) << SLOT_SHIFT, (head + newSpan) << SLOT_SHIFT);
  crashPoint(CP_LARGE);
  commitTaken(t, head + span, newSpan - span);
  crashPoint(CP_LARGE);
  i32[t.metaW(head) + SM_SPAN] = newSpan; // commit (the other slots keep theirs: see SM_SPAN)
  crashPoint(CP_LARGE);
  t.f64[F_LARGE_HELD_BYTES] += (newSpan - span) * SLOT_BYTES;
}

/**
 * [L] Shrinks the live large run at `head` from `span` to `newSpan` slots, in place: the head's
 * span first (the commit point: the slots beyond it are then a dead holder's to give back, see
 * repairSlotTable), then the tail's metas, then its free-mask bits.
 */
export function shrinkRun(t: ThreadContext, head: number, span: number, newSpan: number): void {
  const i32 = t.i32;
  i32[t.metaW(head) + SM_SPAN] = newSpan; // commit (the other slots keep theirs: see SM_SPAN)
  t.f64[F_LARGE_HELD_BYTES] -= (span - newSpan) * SLOT_BYTES;
  crashPoint(CP_LARGE);
  giveBack(t, head + newSpan, head + span, 0, CP_LARGE);
}

/**
 * [L] First slot of `count` free slots in one SuperSlab, starting at a multiple of `align`.
 * SuperSlabs already in use are preferred to wholly free ones (kept for large runs and
 * other spans). 0 when none.
 */
export function findSlots(t: ThreadContext, count: number, align: number): number {
  const i32 = t.i32;
  const carved = Atomics.load(i32, G_CARVED);
  const want = count >= SLOTS_PER_SUPER ? FULL_MASK : (1 << count) - 1;
  let fallback = 0;
  for (let sup = t.geo.metaSupers; sup < carved; sup++) {
    const mask = i32[SS_TABLE_W + sup];
    if (mask === 0) continue;
    for (let first = 0; first + count <= SLOTS_PER_SUPER; first += align) {
      const bits = want << first;
      if ((mask & bits) === bits) {
        const slot = (sup << SLOTS_SHIFT_IN_SUPER) + first;
        if (mask !== FULL_MASK) return slot;
        if (fallback === 0) fallback = slot;
        break;
      }
    }
  }
  return fallback;
}

/**
 * [L] A free slot that no block or run ever used (SM_TOUCHED 0), in a SuperSlab in use before a
 * wholly free one (kept for large runs); 0 when none is carved.
 */
export function findUntouchedSlot(t: ThreadContext): number {
  const i32 = t.i32;
  const carved = Atomics.load(i32, G_CARVED);
  let fallback = 0;
  for (let sup = t.geo.metaSupers; sup < carved; sup++) {
    let mask = i32[SS_TABLE_W + sup];
    if (mask === 0 || (mask === FULL_MASK && fallback !== 0)) continue;
    const whole = mask === FULL_MASK;
    while (mask !== 0) {
      const first = 31 - Math.clz32(mask & -mask);
      mask &= mask - 1;
      const slot = (sup << SLOTS_SHIFT_IN_SUPER) + first;
      if (i32[t.metaW(slot) + SM_TOUCHED] !== 0) continue;
      if (!whole) return slot;
      if (fallback === 0) fallback = slot;
      break;
    }
  }
  return fallback;
}

/** [L] `n` wholly free SuperSlabs in a row (first slot), 0 when none. */
export function findWholeSupers(t: ThreadContext, n: number): number {
  const i32 = t.i32;
  const carved = Atomics.load(i32, G_CARVED);
  let run = 0;
  for (let sup = t.geo.metaSupers; sup < carved; sup++) {
    if (i32[SS_TABLE_W + sup] !== FULL_MASK) run = 0;
    else if (++run === n) return (sup - n + 1) << SLOTS_SHIFT_IN_SUPER;
  }
  return 0;
}

/**
 * [L] The first run of `n` free slots in a row (n > SLOTS_PER_SUPER: across SuperSlab
 * boundaries, starting anywhere), 0 when none. Such a run is the free slots at the top of one
 * SuperSlab, then wholly free ones, then free slots at the bottom of the next: each SuperSlab's
 * mask is looked at as a whole (bit by bit, the scan took a third of the time of a program
 * allocating and freeing blocks of 1-2 MiB).
 */
export function findRun(t: ThreadContext, n: number): number {
  const i32 = t.i32;
  const carved = Atomics.load(i32, G_CARVED);
  let run = 0;
  let start = 0;
  for (let sup = t.geo.metaSupers; sup < carved; sup++) {
    const mask = i32[SS_TABLE_W + sup];
    if (mask === FULL_MASK) {
      if (run === 0) start = sup << SLOTS_SHIFT_IN_SUPER;
      run += SLOTS_PER_SUPER;
      if (run >= n) return start;
      continue;
    }
    const taken = ~mask; // a bit set below bit SLOTS_PER_SUPER, as mask is not FULL_MASK
    if (run > 0 && run + (31 - Math.clz32(taken & -taken)) >= n) return start; // its free slots at the bottom end the run
    const top = Math.clz32(~(mask << (32 - SLOTS_PER_SUPER))); // its free slots at the top start one
    run = top;
    start = ((sup + 1) << SLOTS_SHIFT_IN_SUPER) - top;
  }
  return 0;
}

/** [L] Free slots at the end of the carved area (a run may start there and go on into fresh SuperSlabs). */
export function freeSlotsAtEnd(t: ThreadContext): number {
  const i32 = t.i32;
  let n = 0;
  for (let sup = Atomics.load(i32, G_CARVED) - 1; sup >= t.geo.metaSupers; sup--) {
    const mask = i32[SS_TABLE_W + sup];
    if (mask === FULL_MASK) {
      n += SLOTS_PER_SUPER;
      continue;
    }
    for (let k = SLOTS_PER_SUPER - 1; k >= 0 && ((mask >>> k) & 1) !== 0; k--) n++;
    break;
  }
  return n;
}

/** [L] Wholly free SuperSlabs at the end of the carved area (a large run may start there). */
export function freeSupersAtEnd(t: ThreadContext): number {
  const i32 = t.i32;
  let run = 0;
  for (let sup = Atomics.load(i32, G_CARVED) - 1; sup >= t.geo.metaSupers && i32[SS_TABLE_W + sup] === FULL_MASK; sup--) run++;
  return run;
}

/**
 * [L] Carves `n` fresh SuperSlabs after the last carved one (growing the buffer if it may grow);
 * returns the first slot, or 0 when the heap cannot grow that far.
 */
export function carveSuperSlabs(t: ThreadContext, n: number): number {
  const carved = Atomics.load(t.i32, G_CARVED);
  const need = carved + n;
  if (need > t.i32[G_MAX_SUPERS]) return 0;
  // Fresh memory is not carved while this thread's deep magazines hold a SuperSlab's worth of
  // blocks or more, which its caller gives back first and then asks again (magazine.ts
  // refillMagazine and giveBackDeep, alloc.ts largeAllocOrFlush), as the Stage-1 slabs are
  // (pool.ts returnStage1Slabs). Before, 64 MiB of 16,000-byte blocks freed into a deep magazine
  // and then 64 MiB of 100-byte blocks carved, and grew a growable heap, 66 MiB more than either
  // phase alone (an audit; test/capacity-phases.test.ts).
  if (t.deepHoldsSuper()) return 0;
  if (need > Atomics.load(t.i32, G_BUFFER_SUPERS) && !growBuffer(t, need)) return 0;
  t.ensureViews();
  const i32 = t.i32;
  for (let sup = carved; sup < need; sup++) {
    for (let k = 0; k < SLOTS_PER_SUPER; k++) {
      const mW = t.metaW((sup << SLOTS_SHIFT_IN_SUPER) + k);
      i32[mW + SM_KIND] = K_FREE;
      i32[mW + SM_CLS1] = 0;
    }
    i32[SS_TABLE_W + sup] = FULL_MASK;
    crashPoint(CP_GROWTH);
  }
  Atomics.store(i32, G_CARVED, need); // commit
  crashPoint(CP_GROWTH);
  return carved << SLOTS_SHIFT_IN_SUPER;
}

/** [L] Grows a growable buffer to at least `supers` SuperSlabs (a quarter more when it can). */
function growBuffer(t: ThreadContext, supers: number): boolean {
  const buf = t.buffer as SharedArrayBuffer & { growable?: boolean; maxByteLength?: number; grow?(n: number): void };
  if (!buf.growable || typeof buf.grow !== 'function') return false;
  const maxSupers = Math.min(t.i32[G_MAX_SUPERS], Math.floor((buf.maxByteLength ?? 0) / SUPER_BYTES));
  if (supers > maxSupers) return false;
  const current = Math.floor(buf.byteLength / SUPER_BYTES);
  // A buffer already long enough (a grower stopped after its grow, before the header said so)
  // is taken as it is: the header catches up below, and the buffer does not grow again.
  const target = current >= supers ? current : Math.min(maxSupers, Math.max(supers, current + (current >>> 2)));
  try {
    if (target * SUPER_BYTES > buf.byteLength) buf.grow(target * SUPER_BYTES);
  } catch {
    return false;
  }
  // The generation first: a holder killed between the two leaves a G_BUFFER_SUPERS that is too
  // small (the next carve grows again, a no-op), never one beyond other threads' views.
  crashPoint(CP_GROWTH);
  Atomics.add(t.i32, G_GEN, 1);
  crashPoint(CP_GROWTH);
  Atomics.store(t.i32, G_BUFFER_SUPERS, Math.floor(buf.byteLength / SUPER_BYTES));
  t.refreshViews();
  return true;
}

/** Every slab head owned by thread slot `slot` (a scan of the carved slot metas). */
export function ownedSlabs(t: ThreadContext, slot: number): number[] {
  const i32 = t.i32;
  const out: number[] = [];
  const end = Atomics.load(i32, G_CARVED) << SLOTS_SHIFT_IN_SUPER;
  for (let s = t.geo.metaSupers << SLOTS_SHIFT_IN_SUPER; s < end; s++) {
    const mW = t.metaW(s);
    if (i32[mW + SM_KIND] === K_SLAB && i32[mW + SM_HEAD] === s && Atomics.load(i32, mW + SM_OWNER) === slot) out.push(s);
  }
  return out;
}

// ---- Abandoned slabs ------------------------------------------------------------------------

/** [L] Puts an abandoned slab (owner OWNER_NONE) on its class's abandoned list. */
export function abandonedPush(t: ThreadContext, cls: number, slot: number): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  if (i32[mW + SM_ABANDON_LISTED] !== 0) return;
  i32[mW + SM_ABANDON_NEXT] = i32[ABANDONED_W + cls];
  i32[mW + SM_ABANDON_LISTED] = 1;
  i32[ABANDONED_W + cls] = slot;
}

/** [L] Takes `slot` off the abandoned list of `cls`. */
export function abandonedUnlink(t: ThreadContext, cls: number, slot: number): void {
  const i32 = t.i32;
  let prevW = ABANDONED_W + cls;
  let s = i32[prevW];
  let guard = 0;
  while (s !== 0 && guard++ < t.geo.maxSupers * SLOTS_PER_SUPER) {
    const mW = t.metaW(s);
    if (s === slot) {
      i32[prevW] = i32[mW + SM_ABANDON_NEXT];
      i32[mW + SM_ABANDON_LISTED] = 0;
      return;
    }
    prevW = mW + SM_ABANDON_NEXT;
    s = i32[prevW];
  }
}

/**
 * [L] Puts the slot table right after the lock was taken from a dead holder: a slot whose free
 * bit is set but whose meta says otherwise was being taken (reset it to UNUSED); a slot whose
 * meta says UNUSED but whose bit is clear was being given back (set the bit). Then every taken
 * slot of a slab or large run must lie within the span its head gives, in a run whose slots all
 * agree and are all taken; one that does not was left by a give-back stopped half-way through
 * its metas, a run resized in place (large.ts) before or after its commit, or a take of more than
 * one SuperSlab's slots stopped before it committed them all: it is given back.
 */
export function repairSlotTable(t: ThreadContext): void {
  const i32 = t.i32;
  const carved = Atomics.load(i32, G_CARVED);
  for (let sup = t.geo.metaSupers; sup < carved; sup++) {
    let mask = i32[SS_TABLE_W + sup];
    for (let k = 0; k < SLOTS_PER_SUPER; k++) {
      const mW = t.metaW((sup << SLOTS_SHIFT_IN_SUPER) + k);
      const bit = 1 << k;
      if ((mask & bit) !== 0 && i32[mW + SM_KIND] !== K_FREE) {
        i32[mW + SM_KIND] = K_FREE;
        i32[mW + SM_CLS1] = 0;
      } else if ((mask & bit) === 0 && i32[mW + SM_KIND] === K_FREE) {
        mask |= bit;
      }
    }
    i32[SS_TABLE_W + sup] = mask;
  }
  const first = t.geo.metaSupers << SLOTS_SHIFT_IN_SUPER;
  const end = carved << SLOTS_SHIFT_IN_SUPER;
  const belongs = (s: number, head: number, kind: number): boolean =>
    !isFree(i32, s) && i32[t.metaW(s) + SM_KIND] === kind && i32[t.metaW(s) + SM_HEAD] === head;
  // Per head, once: 1 when its run is whole (every slot of its span taken and agreeing), 2 when not.
  const verdict = new Uint8Array(end - first);
  const whole = (head: number, kind: number): boolean => {
    if (head < first || head >= end) return false;
    if (verdict[head - first] === 0) {
      const span = i32[t.metaW(head) + SM_SPAN];
      const headKind = i32[t.metaW(head) + SM_KIND];
      let ok = headKind !== K_FREE && span >= 1 && head + span <= end;
      for (let k = head; ok && k < head + span; k++) ok = belongs(k, head, headKind);
      verdict[head - first] = ok ? 1 : 2;
    }
    return verdict[head - first] === 1 && i32[t.metaW(head) + SM_KIND] === kind;
  };
  const orphans: number[] = [];
  for (let s = first; s < end; s++) {
    const mW = t.metaW(s);
    const kind = i32[mW + SM_KIND];
    if (kind === K_FREE || isFree(i32, s)) continue;
    const head = i32[mW + SM_HEAD];
    if (!whole(head, kind) || s < head || s >= head + i32[t.metaW(head) + SM_SPAN]) orphans.push(s);
  }
  for (const s of orphans) {
    const mW = t.metaW(s);
    giveBack(t, s, s + 1, i32[mW + SM_KIND] === K_SLAB ? i32[mW + SM_CLS1] : 0, CP_GIVE_BACK);
  }
  // The held-bytes counter of large runs is written next to their commit: recount it (live,
  // claimed and pooled runs; not one marked RETURNING, whose give-back the reclaim finishes; a
  // dead thread's claimed run is given back by its reclaim, which takes its bytes out then).
  let largeBytes = 0;
  for (let s = first; s < end; s++) {
    const mW = t.metaW(s);
    if (i32[mW + SM_KIND] !== K_LARGE || i32[mW + SM_HEAD] !== s) continue;
    let mark = i32[mW + SM_LARGE];
    // A resize in place cut off (only the lock holder resizes, and the lock is being broken): live.
    if (mark === LARGE_RESIZING) i32[mW + SM_LARGE] = mark = LARGE_LIVE;
    if (mark === LARGE_LIVE || mark >= LARGE_CLAIMED || (mark === LARGE_POOLED && Atomics.load(i32, mW + SM_OWNER) !== OWNER_RETURNING)) {
      largeBytes += i32[mW + SM_SPAN] * SLOT_BYTES;
    }
  }
  t.f64[F_LARGE_HELD_BYTES] = largeBytes;
}
