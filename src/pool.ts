/**
 * The global shared pool: hands slabs to threads in three stages, each counted.
 *   Stage 1  pop an EMPTY slab of the same class from a lock-free per-class LIFO. The head word
 *            packs an ABA tag above the slot index: (tag << 15) | slot, and every successful
 *            push or pop increments the tag, so a stale CAS fails.
 *   Stage 2  under the global lock, take UNUSED slots of any carved SuperSlab for any class
 *            (multi-class sharing): 1, 2, 4, 8 or 16 slots aligned to the span.
 *   Stage 3  under the global lock, carve a fresh SuperSlab, growing the buffer if it may grow.
 * Before Stage 2 the lock holder adopts an abandoned slab of the class (left by a detached or
 * dead thread) if there is one.
 *
 * Critical sections write slot metas first and commit with the SuperSlab's free mask (or
 * G_CARVED), so a holder that dies half-way leaves a state repairPool() puts right.
 */
import {
  ABANDONED_W, F_ADOPTED, F_PEAK_CARVED, F_SLOTS_RETURNED, F_STAGE2, F_STAGE3, FULL_MASK, G_BUFFER_SUPERS, G_CARVED,
  G_GEN, G_MAX_SUPERS, G_S1_KEEP, G_STAGE1, G_STAGE1_PUSHES, G_TEST_DELAY, G_TEST_NO_TAG, K_FREE, K_SLAB, OWNER_NONE,
  OWNER_POOL, S1_COUNT_W, S1_HEAD_W, S1_SLOT_BITS, S1_SLOT_MASK, SLOTS_PER_SUPER, SLOT_SHIFT, SM_ABANDON_LISTED,
  SM_ABANDON_NEXT, SM_BUMP, SM_FREED_CLS, SM_FREED_DATA, SM_CLS, SM_DATA, SM_FREE, SM_HEAD, SM_INUSE, SM_KIND, SM_LARGE, SM_LISTED, SM_NFREE,
  SM_NOTIFIED, SM_OWNER, SM_POOL_NEXT, SM_REMOTE, SM_SHIFT, SM_SPAN, SM_STATE, SM_STATES_W, SM_STATE_BYTES, SS_TABLE_W, SUPER_BYTES, SUPER_SHIFT,
  TF_SLABS, TH_PUSHING, TH_RETURNING,
} from './layout.js';
import { COUNT, HDR, META_STATES, NUM_CLASSES, SPAN } from './size-classes.js';
import type { HeapInternals } from './heap.js';
import { lockAcquire, lockRelease, tryLockAcquire } from './lock.js';
import { collectRemote } from './refill.js';

// ---- Stage 1: lock-free per-class LIFO of EMPTY slabs -----------------------------------

function testDelay(i32: Int32Array): void {
  const n = Atomics.load(i32, G_TEST_DELAY);
  if (n === 0) return;
  let x = 0;
  for (let i = 0; i < n; i++) x = (x + i) | 0;
  if (x === 0x7fffffff) Atomics.add(i32, G_TEST_DELAY, 0); // keeps the loop from being removed
}

function nextHead(i32: Int32Array, head: number, slot: number): number {
  if (Atomics.load(i32, G_TEST_NO_TAG) !== 0) return slot;
  return ((((head >>> S1_SLOT_BITS) + 1) << S1_SLOT_BITS) | slot) | 0;
}

export function stage1Pop(h: HeapInternals, cls: number): number {
  const i32 = h.i32;
  const headW = S1_HEAD_W + cls;
  for (;;) {
    const head = Atomics.load(i32, headW);
    const slot = head & S1_SLOT_MASK;
    if (slot === 0) return 0;
    const next = Atomics.load(i32, h.smW + (slot << SM_SHIFT) + SM_POOL_NEXT);
    testDelay(i32);
    if (Atomics.compareExchange(i32, headW, head, nextHead(i32, head, next)) === head) {
      Atomics.sub(i32, S1_COUNT_W + cls, 1);
      return slot;
    }
  }
}

export function stage1Push(h: HeapInternals, cls: number, slot: number): void {
  const i32 = h.i32;
  const headW = S1_HEAD_W + cls;
  const mW = h.smW + (slot << SM_SHIFT);
  i32[h.thW + TH_PUSHING] = slot; // journal: see repairStage1Push
  Atomics.add(i32, S1_COUNT_W + cls, 1); // counted with the POOL mark, before the CAS
  Atomics.store(i32, mW + SM_OWNER, OWNER_POOL);
  for (;;) {
    const head = Atomics.load(i32, headW);
    Atomics.store(i32, mW + SM_POOL_NEXT, head & S1_SLOT_MASK);
    testDelay(i32);
    if (Atomics.compareExchange(i32, headW, head, nextHead(i32, head, slot)) === head) break;
  }
  Atomics.add(i32, G_STAGE1_PUSHES, 1);
  i32[h.thW + TH_PUSHING] = 0;
}

/**
 * A thread died inside stage1Push of `slot` (TH_PUSHING). If the slab says POOLED but is on no
 * Stage-1 list, the CAS never happened: push it. Membership is decided on a private copy of the
 * list (taken whole with one CAS, which is ABA-free) that is then put back in one CAS.
 */
export function repairStage1Push(h: HeapInternals, slot: number): void {
  const i32 = h.i32;
  const mW = h.smW + (slot << SM_SHIFT);
  if (Atomics.load(i32, mW + SM_OWNER) !== OWNER_POOL) return; // not marked yet, or popped since
  const cls = i32[mW + SM_CLS];
  const headW = S1_HEAD_W + cls;
  let first = 0;
  for (;;) {
    const head = Atomics.load(i32, headW);
    if (Atomics.compareExchange(i32, headW, head, nextHead(i32, head, 0)) === head) {
      first = head & S1_SLOT_MASK;
      break;
    }
  }
  let member = false;
  let last = 0;
  for (let s = first, n = 0; s !== 0 && n < h.slotLimit; n++) {
    if (s === slot) member = true;
    last = s;
    s = Atomics.load(i32, h.smW + (s << SM_SHIFT) + SM_POOL_NEXT);
  }
  if (!member) {
    Atomics.store(i32, mW + SM_POOL_NEXT, first);
    if (first === 0) last = slot;
    first = slot;
  }
  if (first === 0) return;
  for (;;) {
    const head = Atomics.load(i32, headW);
    Atomics.store(i32, h.smW + (last << SM_SHIFT) + SM_POOL_NEXT, head & S1_SLOT_MASK);
    if (Atomics.compareExchange(i32, headW, head, nextHead(i32, head, first)) === head) return;
  }
}

/**
 * An owned slab whose blocks are all back: to Stage 1 while its class keeps fewer than
 * stage1Keep there (reuse without the lock), else its slots to Stage 2 (any class). Never waits:
 * when the lock is busy the slab goes to Stage 1 anyway (Stage-1 slabs give their slots back
 * before the heap grows), so tryMalloc, whose refill may get here, never blocks.
 */
export function releaseEmptySlab(h: HeapInternals, slot: number, cls: number): void {
  const i32 = h.i32;
  if (Atomics.load(i32, S1_COUNT_W + cls) < i32[G_S1_KEEP] || !tryLockAcquire(h)) {
    stage1Push(h, cls, slot);
    return;
  }
  try {
    i32[h.thW + TH_RETURNING] = slot; // journal: see finishJournals
    Atomics.store(i32, h.smW + (slot << SM_SHIFT) + SM_OWNER, OWNER_POOL);
    returnSlots(h, slot);
    i32[h.thW + TH_RETURNING] = 0;
  } finally {
    lockRelease(h);
  }
}

// ---- Taking a slab ------------------------------------------------------------------------

/**
 * A slab of class `cls` owned by the calling thread, or 0 when the heap is full (or, with
 * mayBlock false, when the lock is busy).
 */
export function takeSlab(h: HeapInternals, cls: number, mayBlock: boolean): number {
  let i32 = h.i32;
  let slot = stage1Pop(h, cls);
  // Another thread may have grown the buffer and carved the slab we get: views first.
  if (i32[G_GEN] !== h.gen) {
    h.refreshViews();
    i32 = h.i32;
  }
  if (slot !== 0) {
    Atomics.add(i32, G_STAGE1, 1);
    Atomics.store(i32, h.smW + (slot << SM_SHIFT) + SM_OWNER, h.tid);
    h.tf64[h.tfW + TF_SLABS]++;
    return slot;
  }
  if (mayBlock) lockAcquire(h);
  else if (!tryLockAcquire(h)) return 0;
  try {
    slot = adoptAbandoned(h, cls);
    if (slot === 0) {
      const span = SPAN[cls];
      slot = findSlots(h, span, span, false);
      if (slot === 0 && returnStage1Slabs(h) > 0) slot = findSlots(h, span, span, false);
      if (slot !== 0) h.f64[F_STAGE2]++;
      else {
        slot = carveSuperSlabs(h, 1);
        if (slot !== 0) h.f64[F_STAGE3]++;
      }
      if (slot !== 0) {
        initSlab(h, slot, cls);
        commitTaken(h, slot, span);
      }
    }
  } finally {
    lockRelease(h);
  }
  if (slot !== 0) h.tf64[h.tfW + TF_SLABS]++;
  return slot;
}

/** [L] Writes the metas of a fresh slab owned by the caller; the state bytes are zeroed (FREE). */
function initSlab(h: HeapInternals, head: number, cls: number): void {
  const i32 = h.i32;
  const span = SPAN[cls];
  const start = head << SLOT_SHIFT;
  const state = slabStateBase(h, head, cls);
  for (let s = head; s < head + span; s++) {
    const mW = h.smW + (s << SM_SHIFT);
    i32[mW + SM_KIND] = K_SLAB;
    i32[mW + SM_CLS] = cls;
    i32[mW + SM_DATA] = start + HDR[cls];
    i32[mW + SM_STATE] = state;
    i32[mW + SM_HEAD] = head;
    i32[mW + SM_SPAN] = span;
    i32[mW + SM_LARGE] = 0;
    i32[mW + SM_FREED_CLS] = 0;
  }
  const mW = h.smW + (head << SM_SHIFT);
  i32[mW + SM_BUMP] = 0;
  i32[mW + SM_FREE] = 0;
  i32[mW + SM_NFREE] = 0;
  i32[mW + SM_INUSE] = 0;
  i32[mW + SM_LISTED] = 0;
  Atomics.store(i32, mW + SM_REMOTE, 0);
  Atomics.store(i32, mW + SM_NOTIFIED, 0);
  Atomics.store(i32, mW + SM_OWNER, h.tid);
  h.bytes.fill(0, state, state + (META_STATES[cls] !== 0 ? SM_STATE_BYTES : HDR[cls]));
}

/** Byte offset of block 0's state byte: the slab's start, or its head meta entry (META_STATES). */
export function slabStateBase(h: HeapInternals, head: number, cls: number): number {
  if (META_STATES[cls] !== 0) return (h.smW + (head << SM_SHIFT) + SM_STATES_W) * 4;
  return head << SLOT_SHIFT;
}

/** [L] Clears the free-mask bits of slots [head, head + span): the commit point of a take. */
export function commitTaken(h: HeapInternals, head: number, span: number): void {
  const i32 = h.i32;
  for (let s = head; s < head + span; ) {
    const sup = (s << SLOT_SHIFT) >>> SUPER_SHIFT;
    const first = s & (SLOTS_PER_SUPER - 1);
    const n = Math.min(span - (s - head), SLOTS_PER_SUPER - first);
    const bits = n === 32 ? -1 : ((1 << n) - 1) << first;
    i32[SS_TABLE_W + sup] &= ~bits;
    s += n;
  }
}

/** [L] Gives the slots of a slab or large run back (UNUSED): metas first, then the free mask. */
export function returnSlots(h: HeapInternals, head: number): void {
  const i32 = h.i32;
  const hW = h.smW + (head << SM_SHIFT);
  const span = i32[hW + SM_SPAN];
  if (i32[hW + SM_ABANDON_LISTED] !== 0) abandonedUnlink(h, i32[hW + SM_CLS], head);
  const cls = i32[hW + SM_KIND] === K_SLAB ? i32[hW + SM_CLS] : -1;
  for (let s = head; s < head + span; s++) {
    const mW = h.smW + (s << SM_SHIFT);
    i32[mW + SM_FREED_CLS] = cls + 1;
    i32[mW + SM_FREED_DATA] = i32[mW + SM_DATA];
    i32[mW + SM_KIND] = K_FREE;
    i32[mW + SM_CLS] = -1;
  }
  for (let s = head; s < head + span; s++) {
    const sup = (s << SLOT_SHIFT) >>> SUPER_SHIFT;
    i32[SS_TABLE_W + sup] |= 1 << (s & (SLOTS_PER_SUPER - 1));
  }
  h.f64[F_SLOTS_RETURNED] += span;
}

/**
 * [L] First slot of `count` free slots in one SuperSlab, starting at a multiple of `align`.
 * SuperSlabs already in use are preferred to wholly free ones (kept for large runs and
 * other spans). 0 when none.
 */
export function findSlots(h: HeapInternals, count: number, align: number, wholeOnly: boolean): number {
  const i32 = h.i32;
  const carved = Atomics.load(i32, G_CARVED);
  const want = count >= SLOTS_PER_SUPER ? FULL_MASK : ((1 << count) - 1);
  let fallback = 0;
  for (let sup = h.geo.metaSupers; sup < carved; sup++) {
    const mask = i32[SS_TABLE_W + sup];
    if (mask === 0) continue;
    if (wholeOnly && mask !== FULL_MASK) continue;
    for (let first = 0; first + count <= SLOTS_PER_SUPER; first += align) {
      const bits = want << first;
      if ((mask & bits) === bits) {
        const slot = (sup << (SUPER_SHIFT - SLOT_SHIFT)) + first;
        if (mask !== FULL_MASK) return slot;
        if (fallback === 0) fallback = slot;
        break;
      }
    }
  }
  return fallback;
}

/**
 * [L] Carves `n` fresh SuperSlabs after the last carved one (growing the buffer if it may grow);
 * returns the first slot, or 0 when the heap cannot grow that far.
 */
export function carveSuperSlabs(h: HeapInternals, n: number): number {
  const i32 = h.i32;
  const carved = Atomics.load(i32, G_CARVED);
  const need = carved + n;
  if (need > i32[G_MAX_SUPERS]) return 0;
  if (need > Atomics.load(i32, G_BUFFER_SUPERS) && !growBuffer(h, need)) return 0;
  if (h.i32[G_GEN] !== h.gen) h.refreshViews();
  const v = h.i32;
  for (let sup = carved; sup < need; sup++) {
    for (let k = 0; k < SLOTS_PER_SUPER; k++) {
      const mW = h.smW + (((sup << (SUPER_SHIFT - SLOT_SHIFT)) + k) << SM_SHIFT);
      v[mW + SM_KIND] = K_FREE;
      v[mW + SM_CLS] = -1;
    }
    v[SS_TABLE_W + sup] = FULL_MASK;
  }
  Atomics.store(v, G_CARVED, need); // commit
  if (need > h.f64[F_PEAK_CARVED]) h.f64[F_PEAK_CARVED] = need;
  return carved << (SUPER_SHIFT - SLOT_SHIFT);
}

/** [L] Grows a growable buffer to at least `supers` SuperSlabs (a quarter more when it can). */
function growBuffer(h: HeapInternals, supers: number): boolean {
  const buf = h.buffer as SharedArrayBuffer & { growable?: boolean; maxByteLength?: number; grow?(n: number): void };
  if (!buf.growable || typeof buf.grow !== 'function') return false;
  const maxSupers = Math.min(h.i32[G_MAX_SUPERS], Math.floor((buf.maxByteLength ?? 0) / SUPER_BYTES));
  if (supers > maxSupers) return false;
  const current = Math.floor(buf.byteLength / SUPER_BYTES);
  const target = Math.min(maxSupers, Math.max(supers, current + (current >>> 2)));
  try {
    if (target * SUPER_BYTES > buf.byteLength) buf.grow(target * SUPER_BYTES);
  } catch {
    return false;
  }
  const i32 = h.i32;
  Atomics.store(i32, G_BUFFER_SUPERS, Math.floor(buf.byteLength / SUPER_BYTES));
  Atomics.add(i32, G_GEN, 1);
  h.refreshViews();
  return true;
}

/**
 * [L] Before the heap grows: every EMPTY slab waiting in any class's Stage-1 list gives its slots
 * back (UNUSED), so that memory kept for reuse by one class never makes the heap grow for
 * another. Returns the slabs given back.
 */
export function returnStage1Slabs(h: HeapInternals): number {
  let n = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    for (let slot = stage1Pop(h, c); slot !== 0; slot = stage1Pop(h, c)) {
      h.i32[h.thW + TH_RETURNING] = slot;
      returnSlots(h, slot);
      h.i32[h.thW + TH_RETURNING] = 0;
      n++;
    }
  }
  return n;
}

// ---- Abandoned slabs ------------------------------------------------------------------------

/** [L] Puts an abandoned slab (owner OWNER_NONE) on its class's abandoned list. */
export function abandonedPush(h: HeapInternals, cls: number, slot: number): void {
  const i32 = h.i32;
  const mW = h.smW + (slot << SM_SHIFT);
  if (i32[mW + SM_ABANDON_LISTED] !== 0) return;
  i32[mW + SM_ABANDON_NEXT] = i32[ABANDONED_W + cls];
  i32[mW + SM_ABANDON_LISTED] = 1;
  i32[ABANDONED_W + cls] = slot;
}

function abandonedUnlink(h: HeapInternals, cls: number, slot: number): void {
  const i32 = h.i32;
  let prevW = ABANDONED_W + cls;
  let s = i32[prevW];
  let guard = 0;
  while (s !== 0 && guard++ < h.geo.maxSupers * SLOTS_PER_SUPER) {
    const mW = h.smW + (s << SM_SHIFT);
    if (s === slot) {
      i32[prevW] = i32[mW + SM_ABANDON_NEXT];
      i32[mW + SM_ABANDON_LISTED] = 0;
      return;
    }
    prevW = mW + SM_ABANDON_NEXT;
    s = i32[prevW];
  }
}

/** Takes ownership of an abandoned slab with one CAS; true when the caller now owns it. */
export function adoptSlab(h: HeapInternals, slot: number): boolean {
  const i32 = h.i32;
  const mW = h.smW + (slot << SM_SHIFT);
  if (Atomics.compareExchange(i32, mW + SM_OWNER, OWNER_NONE, h.tid) !== OWNER_NONE) return false;
  i32[mW + SM_LISTED] = 0;
  // A notice posted to the previous owner is lost with it; the caller collects the remote list
  // next, so clearing the flag first means any later push notifies the new owner.
  Atomics.store(i32, mW + SM_NOTIFIED, 0);
  return true;
}

/** [L] An abandoned slab of `cls` with free blocks, now owned by the caller; 0 when none. */
function adoptAbandoned(h: HeapInternals, cls: number): number {
  const i32 = h.i32;
  for (;;) {
    const slot = i32[ABANDONED_W + cls];
    if (slot === 0) return 0;
    const mW = h.smW + (slot << SM_SHIFT);
    i32[ABANDONED_W + cls] = i32[mW + SM_ABANDON_NEXT];
    i32[mW + SM_ABANDON_LISTED] = 0;
    if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_CLS] !== cls || i32[mW + SM_HEAD] !== slot) continue;
    if (!adoptSlab(h, slot)) continue; // adopted meanwhile by a remote free, or pooled
    h.f64[F_ADOPTED]++;
    collectRemote(h, mW, cls);
    // Every block back, free blocks on the list, or blocks never carved: usable now.
    if (i32[mW + SM_INUSE] === 0 || i32[mW + SM_NFREE] > 0 || i32[mW + SM_BUMP] < COUNT[cls]) return slot;
    // full: keep it as ours (remote frees will notify us) and look further
  }
}

// ---- Repair after a lock holder died ------------------------------------------------------

/**
 * [L] Puts the pool right after the lock was taken from a dead holder: a slot whose free bit is
 * set but whose meta says otherwise was being taken (reset it to UNUSED); a slot whose meta says
 * UNUSED but whose bit is clear was being given back (set the bit).
 */
export function repairPool(h: HeapInternals): void {
  const i32 = h.i32;
  const carved = Atomics.load(i32, G_CARVED);
  for (let sup = h.geo.metaSupers; sup < carved; sup++) {
    let mask = i32[SS_TABLE_W + sup];
    for (let k = 0; k < SLOTS_PER_SUPER; k++) {
      const slot = (sup << (SUPER_SHIFT - SLOT_SHIFT)) + k;
      const mW = h.smW + (slot << SM_SHIFT);
      const bit = 1 << k;
      if ((mask & bit) !== 0 && i32[mW + SM_KIND] !== K_FREE) {
        i32[mW + SM_KIND] = K_FREE;
        i32[mW + SM_CLS] = -1;
      } else if ((mask & bit) === 0 && i32[mW + SM_KIND] === K_FREE) {
        mask |= bit;
      }
    }
    i32[SS_TABLE_W + sup] = mask;
  }
}
