/**
 * The slow paths of malloc and free (the page.c of this project): refill an empty magazine
 * from the thread's slabs, drain a full one back, collect remote frees, and hand empty slabs
 * back to the pool.
 *
 * A thread owns the slabs it took from the pool. It alone touches their [O] fields (local free
 * list, BUMP, INUSE, partial-list links). Blocks of another thread's slab are pushed onto that
 * slab's remote list with one CAS per chain; the first push after the owner last looked also puts
 * the slab on the owner's notice list, so that the owner collects it on its next slow path.
 */
import {
  G_GEN, MAG_ENTRY_WORDS, OWNER_NONE, SLOT_SHIFT, SM_BUMP, SM_CLS, SM_DATA, SM_FREE, SM_HEAD,
  SM_INUSE, SM_LISTED, SM_NFREE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_OWNER, SM_PART_NEXT, SM_PART_PREV, SM_REMOTE,
  SM_COLLECTS, SM_SHIFT, SM_STATE, ST_ALLOCATED, ST_CACHED, ST_FREE, ST_PENDING, TF_DRAINS, TF_REFILLS, TF_REMOTE_FREES,
  TH_COLLECT_MW, TH_COLLECT_NEXT, TH_CUR, TH_INFLIGHT, TH_JOURNAL_CLS, TH_JOURNAL_DONE, TH_JOURNAL_N, TH_JOURNAL_W, TH_NOTICE, TH_PARTIAL,
  magazineWords,
} from './layout.js';
import { COUNT, SIZE } from './size-classes.js';
import type { HeapInternals } from './heap.js';
import { HeapStateError } from './errors.js';
import { releaseEmptySlab, takeSlab, adoptSlab } from './pool.js';

const LISTED_NONE = 0;
const LISTED_PARTIAL = 1;
const LISTED_CURRENT = 2;

/** Word index of the first magazine entry of class `cls` (the empty sentinel is just before it). */
export function magazineBase(h: HeapInternals, cls: number): number {
  return h.thW + h.geo.magW + cls * magazineWords(h.geo.magCap) + MAG_ENTRY_WORDS;
}

/** Word index of the head slot's meta of the slab holding `block`. */
export function slabMetaOf(h: HeapInternals, block: number): number {
  const i32 = h.i32;
  const head = i32[h.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD];
  return h.smW + (head << SM_SHIFT);
}

function stateOf(i32: Int32Array, mW: number, cls: number, block: number): number {
  return i32[mW + SM_STATE] + (((block - i32[mW + SM_DATA]) / SIZE[cls]) | 0);
}

export function ensureViews(h: HeapInternals): void {
  if (h.i32[G_GEN] !== h.gen) h.refreshViews();
}

/** malloc's slow path: the magazine of `cls` is empty. Returns a block or 0 (out of memory). */
export function mallocRefill(h: HeapInternals, cls: number): number {
  return allocFromClass(h, cls, true);
}

/** Pops a block of class `cls`, refilling the magazine first when it is empty. */
export function allocFromClass(h: HeapInternals, cls: number, mayBlock: boolean): number {
  if (h.detached) throw new HeapStateError('malloc(size): this thread has detached from the heap');
  ensureViews(h);
  const i32 = h.i32;
  const topW = h.topW + cls;
  if (i32[topW] === magazineBase(h, cls) && refillMagazine(h, cls, mayBlock) === 0) return 0;
  const t = i32[topW] - 2;
  const block = i32[t];
  i32[topW] = t;
  h.bytes[i32[t + 1]] = ST_ALLOCATED;
  return block;
}

/**
 * Moves up to refillCls[cls] blocks into the (empty) magazine: from the current slab (local
 * list, then its remote list taken whole, then never-used blocks), then from slabs on the
 * partial list, then from slabs the notice list names, then from a slab from the pool.
 */
export function refillMagazine(h: HeapInternals, cls: number, mayBlock: boolean): number {
  const want = h.refillCls[cls];
  const i32 = h.i32;
  const curW = h.thW + TH_CUR + cls;
  h.tf64[h.tfW + TF_REFILLS]++;
  let noticed = false;
  for (;;) {
    const cur = i32[curW];
    if (cur !== 0) {
      const got = takeBlocks(h, cur, cls, want);
      if (got > 0) return got;
      i32[h.smW + (cur << SM_SHIFT) + SM_LISTED] = LISTED_NONE; // full: stays ours, on no list
      i32[curW] = 0;
    }
    const next = partialPop(h, cls);
    if (next !== 0) {
      i32[h.smW + (next << SM_SHIFT) + SM_LISTED] = LISTED_CURRENT;
      i32[curW] = next;
      continue;
    }
    if (!noticed) {
      noticed = true;
      if (processNotices(h) > 0) continue;
    }
    const slab = takeSlab(h, cls, mayBlock);
    if (slab === 0) return 0;
    i32[h.smW + (slab << SM_SHIFT) + SM_LISTED] = LISTED_CURRENT;
    i32[curW] = slab;
  }
}

/**
 * Moves up to `n` blocks of the owned slab `slot` into the magazine. Every block is committed
 * on its own (list head, counts, magazine top) before the next, so a thread stopped at any
 * loop back-edge leaves each block either on the slab's list or in its magazine.
 */
function takeBlocks(h: HeapInternals, slot: number, cls: number, n: number): number {
  const i32 = h.i32;
  const bytes = h.bytes;
  const mW = h.smW + (slot << SM_SHIFT);
  const topW = h.topW + cls;
  let got = 0;
  if (i32[mW + SM_FREE] === 0 && Atomics.load(i32, mW + SM_REMOTE) !== 0) collectRemote(h, mW, cls);
  while (got < n && i32[mW + SM_FREE] !== 0) {
    const b = i32[mW + SM_FREE];
    const st = stateOf(i32, mW, cls, b);
    const t = i32[topW];
    i32[mW + SM_FREE] = i32[b >>> 2];
    i32[mW + SM_NFREE]--;
    i32[mW + SM_INUSE]++;
    bytes[st] = ST_CACHED;
    i32[t] = b;
    i32[t + 1] = st;
    i32[topW] = t + 2;
    got++;
  }
  const count = COUNT[cls];
  if (got < n && i32[mW + SM_BUMP] < count) {
    const size = SIZE[cls];
    const data = i32[mW + SM_DATA];
    const state = i32[mW + SM_STATE];
    while (got < n && i32[mW + SM_BUMP] < count) {
      const bump = i32[mW + SM_BUMP];
      const t = i32[topW];
      i32[mW + SM_BUMP] = bump + 1;
      i32[mW + SM_INUSE]++;
      bytes[state + bump] = ST_CACHED;
      i32[t] = data + bump * size;
      i32[t + 1] = state + bump;
      i32[topW] = t + 2;
      got++;
    }
  }
  return got;
}

/**
 * Takes the slab's whole remote list with one exchange and moves it to the local list, one
 * block at a time; TH_COLLECT_* record where it is, so a reclaimer can finish the walk.
 */
export function collectRemote(h: HeapInternals, mW: number, cls: number): number {
  const i32 = h.i32;
  if (Atomics.load(i32, mW + SM_REMOTE) === 0) return 0;
  // Announce the collection before taking the list: a reclaimer deciding whether a dead
  // thread's chain was published looks at TH_COLLECT_MW and SM_COLLECTS (resolveInflight).
  i32[h.thW + TH_COLLECT_NEXT] = -1;
  Atomics.store(i32, h.thW + TH_COLLECT_MW, mW);
  Atomics.add(i32, mW + SM_COLLECTS, 1);
  const first = Atomics.exchange(i32, mW + SM_REMOTE, 0);
  i32[h.thW + TH_COLLECT_NEXT] = first;
  const n = finishCollect(h, mW, cls, first);
  Atomics.store(i32, h.thW + TH_COLLECT_MW, 0);
  return n;
}

/** Moves the taken remote chain starting at `b` onto the slab's local list. */
export function finishCollect(h: HeapInternals, mW: number, cls: number, b: number): number {
  const i32 = h.i32;
  const bytes = h.bytes;
  const nextW = h.thW + TH_COLLECT_NEXT;
  let n = 0;
  const limit = COUNT[cls];
  while (b !== 0 && n < limit) {
    const next = i32[b >>> 2];
    const st = stateOf(i32, mW, cls, b);
    bytes[st] = ST_FREE;
    i32[b >>> 2] = i32[mW + SM_FREE];
    i32[mW + SM_FREE] = b;
    i32[mW + SM_NFREE]++;
    i32[mW + SM_INUSE]--;
    i32[nextW] = next;
    n++;
    b = next;
  }
  return n;
}

// ---- Partial list: owned slabs of one class with local free blocks, not current -----------

function partialPush(h: HeapInternals, slot: number, cls: number): void {
  const i32 = h.i32;
  const headW = h.thW + TH_PARTIAL + cls;
  const mW = h.smW + (slot << SM_SHIFT);
  const first = i32[headW];
  i32[mW + SM_PART_NEXT] = first;
  i32[mW + SM_PART_PREV] = 0;
  if (first !== 0) i32[h.smW + (first << SM_SHIFT) + SM_PART_PREV] = slot;
  i32[headW] = slot;
  i32[mW + SM_LISTED] = LISTED_PARTIAL;
}

function partialUnlink(h: HeapInternals, slot: number, cls: number): void {
  const i32 = h.i32;
  const mW = h.smW + (slot << SM_SHIFT);
  const prev = i32[mW + SM_PART_PREV];
  const next = i32[mW + SM_PART_NEXT];
  if (prev !== 0) i32[h.smW + (prev << SM_SHIFT) + SM_PART_NEXT] = next;
  else i32[h.thW + TH_PARTIAL + cls] = next;
  if (next !== 0) i32[h.smW + (next << SM_SHIFT) + SM_PART_PREV] = prev;
  i32[mW + SM_LISTED] = LISTED_NONE;
}

function partialPop(h: HeapInternals, cls: number): number {
  const slot = h.i32[h.thW + TH_PARTIAL + cls];
  if (slot !== 0) partialUnlink(h, slot, cls);
  return slot;
}

/**
 * After blocks came back to an owned slab: an empty slab goes back to the pool, unless a notice
 * for it is still pending (which will bring it back here) or `keep` says the thread is still
 * allocating (a drain of a full magazine): then it stays current or on the partial list, until
 * the periodic drain sweeps it. That hysteresis keeps a thread from giving back and taking again
 * the same slab on every drain. A slab with free blocks on no list goes on the partial list.
 */
export function afterBlocksReturned(h: HeapInternals, slot: number, cls: number, keep: boolean): void {
  const i32 = h.i32;
  const mW = h.smW + (slot << SM_SHIFT);
  const listed = i32[mW + SM_LISTED];
  if (listed === LISTED_CURRENT && keep) return;
  if (!keep && i32[mW + SM_INUSE] === 0 && Atomics.load(i32, mW + SM_NOTIFIED) === 0) {
    if (listed === LISTED_PARTIAL) partialUnlink(h, slot, cls);
    else if (listed === LISTED_CURRENT) i32[h.thW + TH_CUR + cls] = 0;
    i32[mW + SM_LISTED] = LISTED_NONE;
    releaseEmptySlab(h, slot, cls);
  } else if (listed === LISTED_NONE && i32[mW + SM_NFREE] > 0) {
    partialPush(h, slot, cls);
  }
}

/** Takes this thread's notice list whole and collects the remote frees of every slab on it. */
export function processNotices(h: HeapInternals): number {
  const i32 = h.i32;
  let slot = Atomics.exchange(i32, h.thW + TH_NOTICE, 0);
  let n = 0;
  while (slot !== 0 && n < h.slotLimit) {
    const mW = h.smW + (slot << SM_SHIFT);
    const next = Atomics.load(i32, mW + SM_NOTICE_NEXT);
    Atomics.store(i32, mW + SM_NOTIFIED, 0); // before collecting: a later push notifies again
    if (Atomics.load(i32, mW + SM_OWNER) === h.tid) {
      const cls = i32[mW + SM_CLS];
      collectRemote(h, mW, cls);
      afterBlocksReturned(h, slot, cls, true);
    }
    n++;
    slot = next;
  }
  return n;
}

// ---- Drain -------------------------------------------------------------------------------
//
// A drain first copies the entries into the thread's journal (TH_JOURNAL_*), then removes them
// from the magazine, then processes the journal: TH_JOURNAL_DONE says how many words are done,
// TH_INFLIGHT how many blocks of a remote chain are between their first PENDING state and the
// CAS that publishes them. A reclaimer can so finish a drain of a thread that died inside one.

/** Copies magazine words [fromW, fromW + words) into the journal and marks it valid. */
export function journalEntries(h: HeapInternals, cls: number, src: Int32Array, fromW: number, words: number): void {
  const i32 = h.i32;
  const jW = h.thW + TH_JOURNAL_W;
  for (let i = 0; i < words; i++) i32[jW + i] = src[fromW + i];
  i32[h.thW + TH_JOURNAL_CLS] = cls;
  i32[h.thW + TH_JOURNAL_DONE] = 0;
  i32[h.thW + TH_INFLIGHT] = 0;
  i32[h.thW + TH_JOURNAL_N] = words; // valid from here on
}

/**
 * Returns the journal's entries from TH_JOURNAL_DONE on to their slabs: blocks of our own slabs
 * onto the local list, the others as one chain per run of blocks of the same slab onto that
 * slab's remote list. `keep`: see afterBlocksReturned.
 */
export function drainJournal(h: HeapInternals, cls: number, keep: boolean): void {
  const i32 = h.i32;
  const bytes = h.bytes;
  const tid = h.tid;
  const jW = h.thW + TH_JOURNAL_W;
  const doneW = h.thW + TH_JOURNAL_DONE;
  const end = jW + i32[h.thW + TH_JOURNAL_N];
  while (jW + i32[doneW] < end) {
    const t = jW + i32[doneW];
    const b = i32[t];
    const mW = slabMetaOf(h, b);
    const slot = (mW - h.smW) >>> SM_SHIFT;
    if (i32[mW + SM_OWNER] === tid) {
      // One block onto our own slab's local list: plain writes, no call, then the progress word.
      bytes[i32[t + 1]] = ST_FREE;
      i32[b >>> 2] = i32[mW + SM_FREE];
      i32[mW + SM_FREE] = b;
      i32[mW + SM_NFREE]++;
      i32[mW + SM_INUSE]--;
      i32[doneW] += 2;
      if (t + 2 >= end || slabMetaOf(h, i32[t + 2]) !== mW) afterBlocksReturned(h, slot, cls, keep);
      continue;
    }
    // Another thread's (or an abandoned) slab: a chain of the consecutive entries of that slab.
    let n = 1;
    while (t + 2 * n < end && slabMetaOf(h, i32[t + 2 * n]) === mW) n++;
    i32[h.thW + TH_INFLIGHT] = n;
    for (let k = 0; k < n; k++) {
      const e = t + 2 * k;
      bytes[i32[e + 1]] = ST_PENDING;
      if (k + 1 < n) i32[i32[e] >>> 2] = i32[e + 2];
    }
    publishChain(i32, mW, b, i32[t + 2 * (n - 1)]);
    i32[doneW] += 2 * n;
    i32[h.thW + TH_INFLIGHT] = 0;
    h.tf64[h.tfW + TF_REMOTE_FREES] += n;
    notifyOwner(h, slot);
  }
  i32[h.thW + TH_JOURNAL_N] = 0;
}

/** Pushes the chain first..last onto the slab's remote list (a Treiber push of a whole chain). */
export function publishChain(i32: Int32Array, mW: number, first: number, last: number): void {
  for (;;) {
    const old = Atomics.load(i32, mW + SM_REMOTE);
    i32[last >>> 2] = old;
    if (Atomics.compareExchange(i32, mW + SM_REMOTE, old, first) === old) return;
  }
}

/** After a push: the first one since the owner last looked puts the slab on its notice list. */
export function notifyOwner(h: HeapInternals, slot: number): void {
  const i32 = h.i32;
  const mW = h.smW + (slot << SM_SHIFT);
  if (Atomics.load(i32, mW + SM_NOTIFIED) !== 0) return;
  if (Atomics.compareExchange(i32, mW + SM_NOTIFIED, 0, 1) !== 0) return;
  const owner = Atomics.load(i32, mW + SM_OWNER);
  if (owner >= 0) {
    const noticeW = h.geo.threadsW + owner * h.geo.threadWords + TH_NOTICE;
    for (;;) {
      const old = Atomics.load(i32, noticeW);
      Atomics.store(i32, mW + SM_NOTICE_NEXT, old);
      if (Atomics.compareExchange(i32, noticeW, old, slot) === old) break;
    }
  } else {
    Atomics.store(i32, mW + SM_NOTIFIED, 0);
    if (owner === OWNER_NONE && adoptSlab(h, slot)) {
      const cls = i32[mW + SM_CLS];
      collectRemote(h, mW, cls);
      afterBlocksReturned(h, slot, cls, false);
    }
  }
}

/** free's slow path when the magazine is full: drain its older half, then push the block. */
export function freeDrainFull(h: HeapInternals, cls: number, block: number, st: number): void {
  const i32 = h.i32;
  const base = magazineBase(h, cls);
  const topW = h.topW + cls;
  const top = i32[topW];
  const half = ((top - base) >>> 2) << 1; // half the entries, in words
  journalEntries(h, cls, i32, base, half);
  for (let w = base + half; w < top; w++) i32[w - half] = i32[w]; // close the gap
  i32[topW] = top - half;
  h.tf64[h.tfW + TF_DRAINS]++;
  drainJournal(h, cls, true);
  // Now there is room: the fast path's push.
  const t = i32[topW];
  h.bytes[st] = ST_CACHED;
  i32[t] = block;
  i32[t + 1] = st;
  i32[topW] = t + 2;
}

/**
 * Every drainInterval frees of a class: drain that whole magazine (an empty current slab goes
 * back too) and look at notices.
 */
export function drainPeriodic(h: HeapInternals, cls: number): void {
  h.i32[h.drainW + cls] = h.drainInterval;
  drainClass(h, cls);
  processNotices(h);
  releaseEmptyPartials(h, cls);
}

/** Gives every empty slab on the partial list of `cls` (and an empty current slab) back to the pool. */
export function releaseEmptyPartials(h: HeapInternals, cls: number): void {
  const i32 = h.i32;
  let slot = i32[h.thW + TH_PARTIAL + cls];
  let n = 0;
  while (slot !== 0 && n++ < h.slotLimit) {
    const next = i32[h.smW + (slot << SM_SHIFT) + SM_PART_NEXT];
    afterBlocksReturned(h, slot, cls, false);
    slot = next;
  }
  const cur = i32[h.thW + TH_CUR + cls];
  if (cur !== 0) afterBlocksReturned(h, cur, cls, false);
}

/** Empties the magazine of `cls` back into the slabs; empty slabs, the current one too, go to the pool. */
export function drainClass(h: HeapInternals, cls: number): void {
  const i32 = h.i32;
  const base = magazineBase(h, cls);
  const topW = h.topW + cls;
  const n = i32[topW] - base;
  if (n === 0) return;
  journalEntries(h, cls, i32, base, n);
  i32[topW] = base;
  h.tf64[h.tfW + TF_DRAINS]++;
  drainJournal(h, cls, false);
}
