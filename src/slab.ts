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
import { collectRemote, notifyOwner, stateOf, takeNotices } from './remote.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { FREE_LINK_W, LISTED_CURRENT, LISTED_NONE, LISTED_PARTIAL, MAG_ENTRY_WORDS, MAG_STATE, SM_BUMP,
  SM_CLS1, SM_DATA, SM_FREE, SM_INUSE, SM_LISTED, SM_NFREE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_OWNER,
  SM_PART_NEXT, SM_PART_PREV, SM_REMOTE, SM_STATE, ST_CACHED, ST_FREE, TH_CUR, TH_PARTIAL, TH_PARTIAL_TAIL } = layout;
const { COUNT, SIZE, FD_WORDS, FD_SHIFT, FD_INV, FD_MASK, FREE_DIV } = classes;

/**
 * Moves up to `n` blocks of the owned slab `slot` into the magazine of `cls`. Every block is
 * committed on its own (list head, counts, magazine top) before the next, so a thread stopped at
 * any loop back-edge leaves each block either on the slab's list or in its magazine.
 */
export function takeBlocks(t: ThreadContext, slot: number, cls: number, n: number): number {
  const i32 = t.i32;
  const bytes = t.bytes;
  const mW = t.metaW(slot);
  const topW = t.topW + cls;
  let got = 0;
  if (i32[mW + SM_FREE] === 0 && Atomics.load(i32, mW + SM_REMOTE) !== 0) collectRemote(t, mW, cls);
  while (got < n && i32[mW + SM_FREE] !== 0) {
    crashPoint(CP_REFILL);
    const b = i32[mW + SM_FREE];
    const st = stateOf(i32, mW, cls, b);
    const top = i32[topW];
    const next = i32[(b >>> 2) + FREE_LINK_W];
    // The link lives in the freed block itself: a write after free would send us anywhere.
    if (next !== 0 && !isFreeBlock(t, mW, cls, next)) freeListCorrupted(t, mW, cls, b, next);
    i32[mW + SM_FREE] = next;
    i32[mW + SM_NFREE]--;
    i32[mW + SM_INUSE]++;
    bytes[st] = ST_CACHED;
    i32[top] = b;
    i32[top + MAG_STATE] = st;
    i32[topW] = top + MAG_ENTRY_WORDS;
    got++;
  }
  const count = COUNT[cls];
  if (got < n && i32[mW + SM_BUMP] < count) {
    const size = SIZE[cls];
    const data = i32[mW + SM_DATA];
    const state = i32[mW + SM_STATE];
    while (got < n && i32[mW + SM_BUMP] < count) {
      crashPoint(CP_REFILL);
      const bump = i32[mW + SM_BUMP];
      const top = i32[topW];
      i32[mW + SM_BUMP] = bump + 1;
      i32[mW + SM_INUSE]++;
      bytes[state + bump] = ST_CACHED;
      i32[top] = data + bump * size;
      i32[top + MAG_STATE] = state + bump;
      i32[topW] = top + MAG_ENTRY_WORDS;
      got++;
    }
  }
  return got;
}

/** Whether `b` is a FREE block of the slab (head meta `mW`, class `cls`): what a list link must be. */
function isFreeBlock(t: ThreadContext, mW: number, cls: number, b: number): boolean {
  const i32 = t.i32;
  // Exact division by the block size as in free(), on offsets inside the slab's blocks.
  const off = b - i32[mW + SM_DATA];
  const d = cls * FD_WORDS;
  const idx = Math.imul(off >>> FREE_DIV[d + FD_SHIFT], FREE_DIV[d + FD_INV]);
  if (off < 0 || off >= COUNT[cls] * SIZE[cls] || (off & FREE_DIV[d + FD_MASK]) !== 0) return false; // the range free()'s division is tested on
  return idx >>> 0 < i32[mW + SM_BUMP] && t.bytes[i32[mW + SM_STATE] + idx] === ST_FREE;
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

/** Takes t's notice list whole and collects the remote frees of every slab on it. */
export function processNotices(t: ThreadContext): number {
  const i32 = t.i32;
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
