/**
 * A thread's own slabs: carving and taking blocks out of them, the partial lists, collecting
 * notices of remote frees, and giving empty slabs back to the pool.
 *
 * A thread owns the slabs it took from the pool. It alone touches their [O] fields (local free
 * list, BUMP, INUSE, partial-list links). Each class has at most one current slab (TH_CUR) that
 * refills come from, and a partial list (TH_PARTIAL .. TH_PARTIAL_TAIL) of other owned slabs with
 * free blocks.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import { CP_REFILL, crashPoint } from './crash.js';
import type { ThreadContext } from './context.js';
import { HeapCorruptionError, hex } from './errors.js';
import { releaseEmptySlab } from './pool.js';
import { noteTouched, ownedSlabs } from './slots.js';
import { collectRemote, notifyOwner, stateOf, takeNotices } from './remote.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { FREE_LINK_W, G_UNSURE, SLOT_BYTES, SLOT_SHIFT, SM_SPAN, SM_TOUCHED, LISTED_CURRENT, LISTED_NONE, LISTED_PARTIAL, MAG_ENTRY_WORDS, MAG_STATE, SM_BUMP,
  SM_CLS1, SM_DATA, SM_FREE, SM_INUSE, SM_LISTED, SM_NFREE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_OWNER,
  SM_PART_NEXT, SM_PART_PREV, SM_REMOTE, SM_STATE, ST_CACHED, ST_FREE, TH_CUR, TH_PARTIAL, TH_PARTIAL_TAIL } = layout;
const { COUNT, SIZE, FD_WORDS, FD_SHIFT, FD_INV, FD_MASK, FREE_DIV } = classes;

/**
 * A refill carves at most this many bytes of never-used blocks (at least one block) beyond the
 * slab's touched marks: the heap cannot give a page back once it is written, so a class a
 * program uses a little should not claim a magazine's worth of fresh pages at its first refill.
 * Below the marks (a slab taken again from the pool) a batch is as large as the magazine takes:
 * with one block a refill there, tcl_lists (slabs of 16 KiB blocks that go to the pool and come
 * back 386 times a run) ran at 5.7 against 6.3 M ops/s before this limit, and at 6.5 with it
 * (alternated in one process). Peak footprint over peak live, before -> after: gawk_records
 * 1.96 -> 1.94, jq_customers 1.18 -> 1.17, lua_inventory and xmllint_format unchanged (1.06,
 * 1.07); traces of other programs: gcc_cc1 (the compiler on one file) 1.63 -> 1.53, perl_words
 * 1.22 -> 1.17, sqlite_shop 1.38 -> 1.37, bc_pi (80 KiB live in some 40 classes) 1.00 -> 0.57
 * MiB. Freed blocks on a slab's list are taken without this limit. W1, W2 and W3 at one thread
 * unchanged (alternated in one process: 44.3 / 43.7, 12.3 / 12.4, 68.2 / 68.4 M ops/s; W1 41.8 /
 * 42.6 with the marks).
 */
export const CARVE_BYTES = 4096;
const CARVE_MAX = Int32Array.from(SIZE, (s) => Math.max(1, Math.floor(CARVE_BYTES / s)));

/**
 * The end of the bytes of the slab at `head` (`span` slots) touched without a gap from its start
 * (SM_TOUCHED of each slot in turn, up to the first not touched to its end): the pages below are
 * resident. large.ts touchedBytes is the other bound, up to the last byte touched anywhere in a
 * run (what may be non-zero), and is not a substitute here.
 */
function touchedEnd(t: ThreadContext, head: number, span: number): number {
  const i32 = t.i32;
  for (let s = head; s < head + span; s++) {
    const touched = i32[t.metaW(s) + SM_TOUCHED];
    if (touched < SLOT_BYTES) return (s << SLOT_SHIFT) + touched;
  }
  return (head + span) << SLOT_SHIFT;
}

/**
 * Moves up to `n` blocks of the owned slab `slot` into the magazine of `cls`, first from its
 * local free list, then never-used blocks, in batches: the entries are written above the top,
 * reversed so that malloc pops them in list order (the most recently freed first) and carved
 * blocks in address order; then the top is raised (states still FREE), the states are set to
 * CACHED, and only then the slab's list head or BUMP and its counts move. A thread stopped
 * anywhere in a batch leaves entries the reclaim can sort out: a magazine entry whose state
 * is still FREE is not taken, and one whose state says CACHED but that the slab has not given
 * up yet (still on its list, or at or above BUMP) is fixed by repairRefill before the reclaim
 * drains the magazine.
 */
export function takeBlocks(t: ThreadContext, slot: number, cls: number, n: number): number {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  const topW = t.topW + cls;
  if (i32[mW + SM_FREE] === 0 && Atomics.load(i32, mW + SM_REMOTE) !== 0) collectRemote(t, mW, cls);
  let got = 0;
  if (i32[mW + SM_FREE] !== 0) got = takeListed(t, mW, cls, topW, n);
  const count = COUNT[cls];
  const bump = i32[mW + SM_BUMP];
  if (got < n && bump < count) {
    const size = SIZE[cls];
    const data = i32[mW + SM_DATA] + bump * size;
    // Blocks below the slots' touched marks cost no new page (a slab taken again from the pool):
    // as many as the magazine takes; fresh ones at most CARVE_BYTES' worth, at least one.
    let k = Math.min(n - got, count - bump);
    if (k > CARVE_MAX[cls]) {
      const touchedBlocks = Math.floor((touchedEnd(t, slot, i32[mW + SM_SPAN]) - data) / size); // < 0 when none
      k = Math.max(CARVE_MAX[cls], Math.min(k, touchedBlocks));
    }
    const state = i32[mW + SM_STATE] + bump;
    const top = i32[topW];
    noteTouched(t, data, data + k * size); // first: a thread that dies in the batch leaves no page uncounted
    // Block bump + j goes to entry k - 1 - j: the lowest address on top, popped first.
    for (let j = 0, w = top + (k - 1) * MAG_ENTRY_WORDS; j < k; j++, w -= MAG_ENTRY_WORDS) {
      i32[w] = data + j * size;
      i32[w + MAG_STATE] = state + j;
    }
    i32[topW] = top + k * MAG_ENTRY_WORDS;
    crashPoint(CP_REFILL);
    const bytes = t.bytes;
    for (let j = 0; j < k; j++) bytes[state + j] = ST_CACHED;
    crashPoint(CP_REFILL);
    i32[mW + SM_BUMP] = bump + k;
    i32[mW + SM_INUSE] += k;
    crashPoint(CP_REFILL);
    got += k;
  }
  return got;
}

/** takeBlocks' first half: up to `n` blocks off the slab's (non-empty) local free list. */
function takeListed(t: ThreadContext, mW: number, cls: number, topW: number, n: number): number {
  const i32 = t.i32;
  const bytes = t.bytes;
  const data = i32[mW + SM_DATA];
  const state = i32[mW + SM_STATE];
  const span = COUNT[cls] * SIZE[cls];
  const bump = i32[mW + SM_BUMP];
  const d = cls * FD_WORDS;
  const shift = FREE_DIV[d + FD_SHIFT];
  const inv = FREE_DIV[d + FD_INV];
  const mask = FREE_DIV[d + FD_MASK];
  const top = i32[topW];
  let b = i32[mW + SM_FREE];
  let st = stateOf(i32, mW, cls, b);
  let w = top;
  let got = 0;
  // Entries in list order from the top down; each link checked before it is followed (it lives
  // in the freed block itself: a write after free would send us anywhere).
  for (;;) {
    i32[w] = b;
    i32[w + MAG_STATE] = st;
    w += MAG_ENTRY_WORDS;
    got++;
    const next = i32[(b >>> 2) + FREE_LINK_W];
    if (next !== 0) {
      const off = next - data;
      const idx = Math.imul(off >>> shift, inv);
      if (off < 0 || off >= span || (off & mask) !== 0 || idx >>> 0 >= bump || bytes[state + idx] !== ST_FREE) {
        freeListCorrupted(t, mW, cls, b, next); // nothing committed yet
      }
      st = state + idx;
    }
    b = next;
    if (b === 0 || got === n) break;
  }
  // Reverse, so that the list's first block is on top.
  for (let lo = top, hi = w - MAG_ENTRY_WORDS; lo < hi; lo += MAG_ENTRY_WORDS, hi -= MAG_ENTRY_WORDS) {
    const lb = i32[lo];
    const ls = i32[lo + MAG_STATE];
    i32[lo] = i32[hi];
    i32[lo + MAG_STATE] = i32[hi + MAG_STATE];
    i32[hi] = lb;
    i32[hi + MAG_STATE] = ls;
  }
  i32[topW] = w;
  crashPoint(CP_REFILL);
  for (let e = top; e < w; e += MAG_ENTRY_WORDS) bytes[i32[e + MAG_STATE]] = ST_CACHED;
  crashPoint(CP_REFILL);
  i32[mW + SM_FREE] = b;
  i32[mW + SM_NFREE] -= got;
  i32[mW + SM_INUSE] += got;
  crashPoint(CP_REFILL);
  return got;
}

/**
 * Reclaim, before a dead thread's magazine of `cls` is drained: if it died inside a refill batch
 * from its current slab (takeBlocks), its magazine may hold CACHED blocks the slab has not given
 * up yet. BUMP is moved past the carved ones, and the list and counts are rebuilt from the
 * states (which leaves CACHED blocks off the list and counts them as in use, as the drain that
 * follows expects).
 */
export function repairRefill(t: ThreadContext, cls: number): void {
  const i32 = t.i32;
  const slot = i32[t.thW + TH_CUR + cls];
  if (slot === 0) return;
  const mW = t.metaW(slot);
  if (i32[mW + SM_OWNER] !== t.slot || i32[mW + SM_CLS1] - 1 !== cls) return;
  const data = i32[mW + SM_DATA];
  const size = SIZE[cls];
  const count = COUNT[cls];
  const end = Math.min(i32[t.topW + cls], t.magazineBase(cls) + t.magCapCls[cls] * MAG_ENTRY_WORDS);
  let bump = i32[mW + SM_BUMP];
  for (let w = t.magazineBase(cls); w < end; w += MAG_ENTRY_WORDS) {
    const off = i32[w] - data;
    if (off < 0 || off >= count * size || off % size !== 0) continue;
    const idx = off / size;
    if (idx >= bump && t.bytes[i32[w + MAG_STATE]] === ST_CACHED) bump = idx + 1;
  }
  if (bump > i32[mW + SM_BUMP]) noteTouched(t, data + i32[mW + SM_BUMP] * size, data + bump * size);
  i32[mW + SM_BUMP] = bump;
  rebuildFreeList(t, mW, cls);
}

/**
 * A local free list link that is not a free block of its slab: the block was written after it
 * was freed. The list is rebuilt from the block state bytes (the truth), so the heap stays
 * usable, and the write is reported.
 */
function freeListCorrupted(t: ThreadContext, mW: number, cls: number, b: number, next: number): never {
  rebuildFreeList(t, mW, cls);
  throw new HeapCorruptionError(
    `malloc(size): the free ${SIZE[cls]}-byte block at ${hex(b)} links to ${hex(next >>> 0)}, which is not a free ` +
      `block of its slab: something wrote into the block after it was freed (a use after free). The slab's free ` +
      'list was rebuilt from its block states',
  );
}

/** Recomputes a slab's local free list, NFREE and INUSE from its block state bytes. */
export function rebuildFreeList(t: ThreadContext, mW: number, cls: number): void {
  const i32 = t.i32;
  const bytes = t.bytes;
  const state = i32[mW + SM_STATE];
  const data = i32[mW + SM_DATA];
  const bump = Math.min(i32[mW + SM_BUMP], COUNT[cls]);
  let head = 0;
  let nfree = 0;
  for (let idx = bump - 1; idx >= 0; idx--) {
    if (bytes[state + idx] !== ST_FREE) continue;
    const blk = data + idx * SIZE[cls];
    i32[(blk >>> 2) + FREE_LINK_W] = head;
    head = blk;
    nfree++;
  }
  i32[mW + SM_FREE] = head;
  i32[mW + SM_NFREE] = nfree;
  i32[mW + SM_INUSE] = bump - nfree;
  // Blocks at or above BUMP were never handed out (a refill batch may have been cut short).
  for (let idx = bump; idx < COUNT[cls]; idx++) bytes[state + idx] = ST_FREE;
}

// ---- Partial list: owned slabs of one class with local free blocks, not current -------------
// Doubly linked through SM_PART_NEXT/PREV, from TH_PARTIAL (first) to TH_PARTIAL_TAIL (last).
// Refills take from the front; empty slabs (INUSE == 0) are kept at the back, so refills prefer
// slabs in use (which lets the empty ones go back) and the periodic drain finds the empty ones
// from the tail without walking the whole list.

function partialInsert(t: ThreadContext, slot: number, cls: number, atTail: boolean): void {
  const i32 = t.i32;
  const headW = t.thW + TH_PARTIAL + cls;
  const tailW = t.thW + TH_PARTIAL_TAIL + cls;
  const mW = t.metaW(slot);
  if (atTail) {
    const last = i32[tailW];
    i32[mW + SM_PART_PREV] = last;
    i32[mW + SM_PART_NEXT] = 0;
    if (last !== 0) i32[t.metaW(last) + SM_PART_NEXT] = slot;
    else i32[headW] = slot;
    i32[tailW] = slot;
  } else {
    const first = i32[headW];
    i32[mW + SM_PART_NEXT] = first;
    i32[mW + SM_PART_PREV] = 0;
    if (first !== 0) i32[t.metaW(first) + SM_PART_PREV] = slot;
    else i32[tailW] = slot;
    i32[headW] = slot;
  }
  i32[mW + SM_LISTED] = LISTED_PARTIAL;
}

function partialUnlink(t: ThreadContext, slot: number, cls: number): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  const prev = i32[mW + SM_PART_PREV];
  const next = i32[mW + SM_PART_NEXT];
  if (prev !== 0) i32[t.metaW(prev) + SM_PART_NEXT] = next;
  else i32[t.thW + TH_PARTIAL + cls] = next;
  if (next !== 0) i32[t.metaW(next) + SM_PART_PREV] = prev;
  else i32[t.thW + TH_PARTIAL_TAIL + cls] = prev;
  i32[mW + SM_LISTED] = LISTED_NONE;
}

/** The first slab on the partial list of `cls`, taken off it; 0 when the list is empty. */
export function partialPop(t: ThreadContext, cls: number): number {
  const slot = t.i32[t.thW + TH_PARTIAL + cls];
  if (slot !== 0) partialUnlink(t, slot, cls);
  return slot;
}

/**
 * After blocks came back to an owned slab: an empty slab goes back to the pool, unless a notice
 * for it is still pending (which will bring it back here) or `keep` says the thread is still
 * allocating (a drain of a full magazine): then it stays current, or goes to the back of the
 * partial list, until the periodic drain sweeps it. That hysteresis keeps a thread from giving
 * back and taking again the same slab on every drain. A slab with free blocks on no list goes on
 * the partial list.
 */
export function afterBlocksReturned(t: ThreadContext, slot: number, cls: number, keep: boolean): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  const listed = i32[mW + SM_LISTED];
  if (listed === LISTED_CURRENT && keep) return;
  const empty = i32[mW + SM_INUSE] === 0;
  if (empty && !keep && Atomics.load(i32, mW + SM_NOTIFIED) === 0) {
    if (listed === LISTED_PARTIAL) partialUnlink(t, slot, cls);
    else if (listed === LISTED_CURRENT) i32[t.thW + TH_CUR + cls] = 0;
    i32[mW + SM_LISTED] = LISTED_NONE;
    releaseEmptySlab(t, slot, cls);
  } else if (listed === LISTED_NONE && i32[mW + SM_NFREE] > 0) {
    partialInsert(t, slot, cls, empty);
  } else if (listed === LISTED_PARTIAL && empty && i32[mW + SM_PART_NEXT] !== 0) {
    partialUnlink(t, slot, cls); // now empty: to the back, with the other empty ones
    partialInsert(t, slot, cls, true);
  }
}

/**
 * Takes t's notice list whole and collects the remote frees of every slab on it; then, when a
 * reclaimer marked notice flags unsure since t last looked (G_UNSURE), settles those of t's slabs.
 */
export function processNotices(t: ThreadContext): number {
  const i32 = t.i32;
  const unsure = Atomics.load(i32, G_UNSURE); // before the take (see settleUnsure)
  let slot = takeNotices(t);
  let n = 0;
  while (slot !== 0 && n < t.slotLimit) {
    const mW = t.metaW(slot);
    const next = Atomics.load(i32, mW + SM_NOTICE_NEXT);
    Atomics.store(i32, mW + SM_NOTIFIED, 0); // before collecting: a later push notifies again
    if (Atomics.load(i32, mW + SM_OWNER) === t.slot) {
      const cls = i32[mW + SM_CLS1] - 1;
      collectRemote(t, mW, cls);
      afterBlocksReturned(t, slot, cls, true);
    }
    n++;
    slot = next;
  }
  if (unsure !== t.unsureSeen) n += settleUnsure(t, unsure);
  return n;
}

/**
 * Settles the notice flags of t's slabs that a reclaimer marked -e for e <= `epoch` (reclaim.ts
 * markUnsureNotice): the freer that set the flag died between its CAS and its push, or after the
 * push. Its death came before the mark's epoch, and so before the take of t's notice list that
 * processNotices made after reading `epoch`: a slab it pushed was on that list or an earlier one,
 * and taking it off stored 0 over the mark (or came first, and the mark's CAS failed). A mark
 * still there was never pushed, and no live freer waits on it (the flag stayed nonzero): cleared
 * by CAS, and the slab's remote list collected. Marks of a later epoch wait for the next look.
 * A scan of the slot table, made only after a reclaim found a freer stopped in that window.
 */
function settleUnsure(t: ThreadContext, epoch: number): number {
  const i32 = t.i32;
  t.unsureSeen = epoch;
  let n = 0;
  for (const slot of ownedSlabs(t, t.slot)) {
    const mW = t.metaW(slot);
    const flag = Atomics.load(i32, mW + SM_NOTIFIED);
    if (flag >= 0 || -flag > epoch) continue;
    if (Atomics.compareExchange(i32, mW + SM_NOTIFIED, flag, 0) !== flag) continue;
    const cls = i32[mW + SM_CLS1] - 1;
    collectRemote(t, mW, cls);
    afterBlocksReturned(t, slot, cls, true);
    n++;
  }
  return n;
}

/** After a push onto another slab's remote list: notify its owner, or adopt it if it has none. */
export function notifyOrAdopt(t: ThreadContext, slot: number): void {
  if (!notifyOwner(t, slot)) return;
  const mW = t.metaW(slot);
  const cls = t.i32[mW + SM_CLS1] - 1;
  collectRemote(t, mW, cls);
  afterBlocksReturned(t, slot, cls, false);
}

/**
 * Gives every empty slab on the partial list of `cls` (they are at its back) and an empty
 * current slab back to the pool.
 */
export function releaseEmptyPartials(t: ThreadContext, cls: number): void {
  const i32 = t.i32;
  let slot = i32[t.thW + TH_PARTIAL_TAIL + cls];
  let n = 0;
  while (slot !== 0 && n++ < t.slotLimit) {
    const mW = t.metaW(slot);
    if (i32[mW + SM_INUSE] !== 0) break;
    const prev = i32[mW + SM_PART_PREV];
    afterBlocksReturned(t, slot, cls, false);
    slot = prev;
  }
  const cur = i32[t.thW + TH_CUR + cls];
  if (cur !== 0) afterBlocksReturned(t, cur, cls, false);
}
