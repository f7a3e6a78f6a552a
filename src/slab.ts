/**
 * A thread's own slabs: carving and taking blocks out of them, the partial lists, collecting
 * notices of remote frees, and giving empty slabs back to the pool.
 *
 * A thread owns the slabs it took from the pool. It alone touches their [O] fields (free
 * regions and counts, BUMP, INUSE, partial-list links). Each class has at most one current slab
 * (TH_CUR) that refills come from, and a partial list (TH_PARTIAL .. TH_PARTIAL_TAIL) of other
 * owned slabs with free blocks.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import { CP_NOTICES, CP_REFILL, crashArmed, crashPoint } from './crash.js';
import { HeapCorruptionError } from './errors.js';
import type { ThreadContext } from './context.js';
import { releaseEmptySlab } from './pool.js';
import { noteTouched, ownedSlabs, touchedTo } from './slots.js';
import { collectRemote, notifyOwner, takeNotices } from './remote.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { G_UNSURE, SLOT_BYTES, SLOT_SHIFT, SM_SPAN, SM_TOUCHED, LISTED_CURRENT, LISTED_NONE, LISTED_PARTIAL, MAG_ENTRY_WORDS, MAG_STATE, SM_BUMP,
  K_SLAB, SM_HEAD, SM_KIND, SM_CLS1, SM_DATA, SM_FREE_REGIONS, SM_INUSE, SM_LISTED, SM_NFREE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_OWNER, NOTIFIED_WALK,
  SM_PART_NEXT, SM_PART_PREV, SM_REMOTE, SM_STATE, ST_CACHED, ST_CLEAN, ST_FREE, TH_CUR, TH_NOTICE_CUR, TH_NOTICE_REST, TH_PARTIAL, TH_PARTIAL_TAIL } = layout;
const { COUNT, REGION_SHIFT, SIZE } = classes;
const { isCached } = layout;

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
 * MiB. A slab's freed blocks are taken without this limit. W1, W2 and W3 at one thread
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
 * Moves up to `n` blocks of the owned slab `slot` into the magazine of `cls`: its FREE blocks
 * (takeFreed) if it has any, else never-used blocks, in a batch: the entries are written above
 * the top, so that malloc pops them in address order; then the top is raised (states still FREE), the
 * states are set to CACHED, and only then the slab's region bits or BUMP and its counts move. A
 * thread stopped anywhere in a batch leaves entries the reclaim can sort out: a magazine entry
 * whose state is still FREE is not taken, and one whose state says CACHED but that the slab has
 * not counted out yet (in NFREE, or at or above BUMP) is fixed by repairRefill before the
 * reclaim drains the magazine.
 */
export function takeBlocks(t: ThreadContext, slot: number, cls: number, n: number): number {
  const i32 = t.i32;
  const cp = crashArmed(); // (see crashArmed)
  const mW = t.metaW(slot);
  const topW = t.topW + cls;
  t.carvedFresh = false;
  if (t.kept[slot] !== 0) unmarkKept(t, slot, mW); // an empty current slab hands out blocks again
  if (i32[mW + SM_NFREE] === 0 && i32[mW + SM_REMOTE] !== 0) collectRemote(t, mW, cls); // a hint (layout.ts [H])
  let got = 0;
  if (i32[mW + SM_NFREE] !== 0) got = takeFreed(t, mW, cls, topW, n);
  const count = COUNT[cls];
  const bump = i32[mW + SM_BUMP];
  // Fresh blocks only when the slab has no free one: a refill that takes a few freed blocks and
  // carves the rest touches pages the freed blocks could have spared (gawk_records' footprint
  // 1.906x -> 1.869x its peak live bytes; the other traces' moved by under 0.001x; speed and W3's
  // 357 -> 365 refills the same within this machine's noise).
  if (got === 0 && bump < count) {
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
    // Blocks from here on were never handed out or written (CLEAN: calloc leaves them as they are),
    // read before the marks are raised for the batch.
    const clean = touchedTo(t, slot, i32[mW + SM_SPAN]);
    t.carvedFresh = data + k * size > clean;
    noteTouched(t, data, data + k * size); // first: a thread that dies in the batch leaves no page uncounted
    // Block bump + j goes to entry k - 1 - j: the lowest address on top, popped first. Two
    // running int32 sums rather than a multiply a block (this loop and the states' ran at about
    // 30 instructions a block each in V8's code: a fresh heap's mallocs spend them on every block).
    let p = data;
    let s = state;
    for (let w = (top + (k - 1) * MAG_ENTRY_WORDS) | 0; w >= top; w = (w - MAG_ENTRY_WORDS) | 0) {
      i32[w] = p;
      i32[(w + MAG_STATE) | 0] = s;
      p = (p + size) | 0;
      s = (s + 1) | 0;
    }
    i32[topW] = top + k * MAG_ENTRY_WORDS;
    if (cp) crashPoint(CP_REFILL);
    // Blocks from `clean` on are CLEAN, those below it CACHED, in ascending order as before.
    const firstClean = clean <= data ? 0 : Math.min(k, Math.ceil((clean - data) / size));
    setStates(t, state, firstClean, ST_CACHED);
    setStates(t, state + firstClean, k - firstClean, ST_CLEAN);
    if (cp) crashPoint(CP_REFILL);
    i32[mW + SM_BUMP] = bump + k;
    i32[mW + SM_INUSE] += k;
    if (cp) crashPoint(CP_REFILL);
    got += k;
  }
  return got;
}

/**
 * Sets the `n` state bytes from `from` to `v`, lowest first: single bytes up to a word boundary,
 * then whole words of four, then single bytes. For blocks a refill carves (at or above BUMP): no
 * other thread writes their states, so a word may hold four of them; a word is written only where
 * all four of its bytes are in the range, and the bytes next to the range are left alone.
 * (Not `bytes.fill`: on a SharedArrayBuffer it stores byte by byte in the runtime, 0.33-0.43 ns a
 * byte from 600 bytes up, after the cost of the call.)
 */
function setStates(t: ThreadContext, from: number, n: number, v: number): void {
  const bytes = t.bytes;
  const end = (from + n) | 0;
  let s = from;
  while (s < end && (s & 3) !== 0) bytes[s++] = v;
  const i32 = t.i32;
  const word = Math.imul(v, 0x01010101);
  for (let w = s >>> 2, wEnd = end >>> 2; w < wEnd; w++) i32[w] = word;
  s = s > (end & ~3) ? s : end & ~3;
  while (s < end) bytes[s++] = v;
}

/**
 * takeBlocks' first half: up to `n` of the slab's FREE blocks below BUMP (NFREE > 0), found by
 * their state bytes in the regions SM_FREE_REGIONS marks, lowest address first, a word of four
 * states at a time (ST_FREE is 0: a word with no zero byte holds none). A region scanned to its
 * end has no FREE block left and loses its bit. Nothing of the allocator is read from the freed
 * blocks themselves: their lines stay out of the cache until malloc hands them out, and a write
 * into a freed block cannot send a refill anywhere.
 */
function takeFreed(t: ThreadContext, mW: number, cls: number, topW: number, n: number): number {
  const i32 = t.i32;
  const cp = crashArmed(); // (see crashArmed)
  const bytes = t.bytes;
  const data = i32[mW + SM_DATA];
  const state = i32[mW + SM_STATE];
  const stateW = state >>> 2; // slab headers and meta entries are word-aligned
  const size = SIZE[cls];
  const bump = i32[mW + SM_BUMP];
  const rs = REGION_SHIFT[cls];
  const nfree = i32[mW + SM_NFREE];
  const want = nfree < n ? nfree : n;
  const top = i32[topW];
  let regions = i32[mW + SM_FREE_REGIONS];
  let got = 0;
  // Entries from top + want - 1 down, so that malloc pops the lowest address first.
  let w = top + (want - 1) * MAG_ENTRY_WORDS;
  while (got < want && regions !== 0) {
    const r = 31 - Math.clz32(regions & -regions);
    let idx = r << rs;
    const end = Math.min((r + 1) << rs, bump);
    while (idx < end && got < want) {
      if ((idx & 3) === 0 && idx + 4 <= end) {
        const v = i32[stateW + (idx >>> 2)];
        if (((v - 0x01010101) & ~v & 0x80808080) === 0) { // no zero byte: no FREE block among the four
          idx += 4;
          continue;
        }
        // Four FREE blocks (a slab whose blocks came back in a batch): four entries, no byte tests
        // (bench MICRO's batch of 10,000 x 128 B, alternated with the build before: 1.03-1.08x).
        if (v === 0 && got + 4 <= want) {
          const p = data + idx * size;
          const s = state + idx;
          i32[w] = p;
          i32[w + MAG_STATE] = s;
          i32[w - MAG_ENTRY_WORDS] = p + size;
          i32[w - MAG_ENTRY_WORDS + MAG_STATE] = s + 1;
          i32[w - 2 * MAG_ENTRY_WORDS] = p + 2 * size;
          i32[w - 2 * MAG_ENTRY_WORDS + MAG_STATE] = s + 2;
          i32[w - 3 * MAG_ENTRY_WORDS] = p + 3 * size;
          i32[w - 3 * MAG_ENTRY_WORDS + MAG_STATE] = s + 3;
          w -= 4 * MAG_ENTRY_WORDS;
          got += 4;
          idx += 4;
          continue;
        }
      }
      if (bytes[state + idx] === ST_FREE) {
        i32[w] = data + idx * size;
        i32[w + MAG_STATE] = state + idx;
        w -= MAG_ENTRY_WORDS;
        got++;
      }
      idx++;
    }
    if (idx < end) break; // stopped inside the region: its bit stays
    regions &= ~(1 << r);
  }
  if (got < want) {
    // NFREE counted blocks no region bit led to (never, unless the metadata was overwritten):
    // the entries found go down to the top, and the counts are taken from the states below.
    for (let k = 0; k < got; k++) {
      const from = w + (k + 1) * MAG_ENTRY_WORDS;
      i32[top + k * MAG_ENTRY_WORDS] = i32[from];
      i32[top + k * MAG_ENTRY_WORDS + MAG_STATE] = i32[from + MAG_STATE];
    }
  }
  const to = top + got * MAG_ENTRY_WORDS;
  i32[topW] = to;
  if (cp) crashPoint(CP_REFILL);
  for (let e = top; e < to; e += MAG_ENTRY_WORDS) bytes[i32[e + MAG_STATE]] = ST_CACHED;
  if (cp) crashPoint(CP_REFILL);
  i32[mW + SM_FREE_REGIONS] = regions;
  i32[mW + SM_NFREE] = nfree - got;
  i32[mW + SM_INUSE] += got;
  if (cp) crashPoint(CP_REFILL);
  if (got < want) recountFree(t, mW, cls);
  return got;
}

/**
 * Reclaim, before a dead thread's magazine of `cls` is drained: if it died inside a refill batch
 * from its current slab (takeBlocks), its magazine may hold CACHED blocks the slab has not given
 * up yet. BUMP is moved past the carved ones, and the counts and region bits are recounted from
 * the states (which counts CACHED blocks as in use, as the drain that follows expects).
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
  const end = Math.min(i32[t.topW + cls], t.magazineBase(cls) + t.magazineCap(cls) * MAG_ENTRY_WORDS);
  let bump = i32[mW + SM_BUMP];
  for (let w = t.magazineBase(cls); w < end; w += MAG_ENTRY_WORDS) {
    const off = i32[w] - data;
    if (off < 0 || off >= count * size || off % size !== 0) continue;
    const idx = off / size;
    if (idx >= bump && isCached(t.bytes[i32[w + MAG_STATE]])) bump = idx + 1;
  }
  if (bump > i32[mW + SM_BUMP]) noteTouched(t, data + i32[mW + SM_BUMP] * size, data + bump * size);
  i32[mW + SM_BUMP] = bump;
  recountFree(t, mW, cls);
}

/**
 * Recomputes a slab's NFREE, INUSE and FREE_REGIONS from its block state bytes (the truth), and
 * sets every block at or above BUMP FREE (a refill batch cut short may have marked some CACHED).
 */
export function recountFree(t: ThreadContext, mW: number, cls: number): void {
  const i32 = t.i32;
  const bytes = t.bytes;
  const state = i32[mW + SM_STATE];
  const bump = Math.min(i32[mW + SM_BUMP], COUNT[cls]);
  const rs = REGION_SHIFT[cls];
  let regions = 0;
  let nfree = 0;
  for (let idx = 0; idx < bump; idx++) {
    if (bytes[state + idx] !== ST_FREE) continue;
    regions |= 1 << (idx >>> rs);
    nfree++;
  }
  i32[mW + SM_FREE_REGIONS] = regions;
  i32[mW + SM_NFREE] = nfree;
  i32[mW + SM_INUSE] = bump - nfree;
  for (let idx = bump; idx < COUNT[cls]; idx++) bytes[state + idx] = ST_FREE;
}

// ---- Partial list: owned slabs of one class with free blocks, not current -------------------
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
  t.emptySeen[slot] = 0;
  unmarkKept(t, slot, mW);
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
 * the partial list. Nothing happens to a slab still in use (INUSE > 0) on a list: drainJournal
 * does not call this for one (keep it so when a step is added here).
 */
export function afterBlocksReturned(t: ThreadContext, slot: number, cls: number, keep: boolean): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  const listed = i32[mW + SM_LISTED];
  const empty = i32[mW + SM_INUSE] === 0;
  // Kept empty slabs stay within the thread's budget (layout.ts KEEP_EMPTY_BYTES).
  if (empty && keep && t.kept[slot] === 0 && t.keptBytes + (i32[mW + SM_SPAN] << SLOT_SHIFT) > t.keepBudget) keep = false;
  if (listed === LISTED_CURRENT && keep) {
    if (empty) markKept(t, slot, mW);
    return;
  }
  if (empty && !keep && Atomics.load(i32, mW + SM_NOTIFIED) === 0) {
    if (listed === LISTED_PARTIAL) partialUnlink(t, slot, cls);
    else if (listed === LISTED_CURRENT) i32[t.thW + TH_CUR + cls] = 0;
    i32[mW + SM_LISTED] = LISTED_NONE;
    unmarkKept(t, slot, mW);
    releaseEmptySlab(t, slot, cls);
    return;
  }
  if (listed === LISTED_NONE && i32[mW + SM_NFREE] > 0) {
    partialInsert(t, slot, cls, empty);
  } else if (listed === LISTED_PARTIAL && empty && i32[mW + SM_PART_NEXT] !== 0) {
    partialUnlink(t, slot, cls); // now empty: to the back, with the other empty ones
    partialInsert(t, slot, cls, true);
  }
  if (empty && i32[mW + SM_LISTED] !== LISTED_NONE) markKept(t, slot, mW);
}

/** Counts the empty slab `slot` (meta at `mW`) as kept by t (context.ts kept, keptBytes). */
function markKept(t: ThreadContext, slot: number, mW: number): void {
  if (t.kept[slot] !== 0) return;
  t.kept[slot] = 1;
  t.keptBytes += t.i32[mW + SM_SPAN] << SLOT_SHIFT;
}

/** The slab `slot` is no longer kept empty: it leaves its list, goes back, or hands out blocks. */
function unmarkKept(t: ThreadContext, slot: number, mW: number): void {
  if (t.kept[slot] === 0) return;
  t.kept[slot] = 0;
  const left = t.keptBytes - (t.i32[mW + SM_SPAN] << SLOT_SHIFT);
  t.keptBytes = left > 0 ? left : 0;
}

/**
 * Takes t's notice list whole and collects the remote frees of every slab on it; then, when a
 * reclaimer marked notice flags unsure since t last looked (G_UNSURE), settles those of t's slabs.
 * `last`: t's last look, before a detach or a reclaim gives its slabs up; the list stays closed
 * (remote.ts takeNotices).
 */
export function processNotices(t: ThreadContext, last = false): number {
  const unsure = Atomics.load(t.i32, G_UNSURE); // before the take (see settleUnsure)
  // A walk that did not finish (t died in it: this is its reclaim's look; or an exception cut it
  // off): its rest first, or those slabs kept their flags for good (an audit).
  finishNoticeWalk(t);
  let n = walkNotices(t, takeNotices(t, last));
  if (unsure !== t.unsureSeen) n += settleUnsure(t, unsure);
  return n;
}

/**
 * Walks a notice list t took (from `slot`): clears each slab's flag and collects its remote frees
 * (t's slab), or notices them to its owner (a slab t gave up since). TH_NOTICE_CUR and
 * TH_NOTICE_REST record where the walk is, so that a reclaim of t finishes it (finishNoticeWalk).
 */
export function walkNotices(t: ThreadContext, slot: number): number {
  const i32 = t.i32;
  const curW = t.thW + TH_NOTICE_CUR;
  const restW = t.thW + TH_NOTICE_REST;
  let n = 0;
  while (slot !== 0 && n < t.slotLimit) {
    if (slot >>> 0 >= t.slotLimit) {
      t.ensureViews(); // (a slab of memory the heap grew by since this thread's views)
      // A link no slab's: the heap's metadata was overwritten (V8's RangeError here before: an audit).
      if (slot >>> 0 >= t.slotLimit) throw new HeapCorruptionError(`a notice list of thread slot ${t.slot} links to slot ${slot}, which is no slot of the heap: its metadata was overwritten`);
    }
    const mW = t.metaW(slot);
    const next = Atomics.load(i32, mW + SM_NOTICE_NEXT);
    i32[restW] = next;
    i32[curW] = slot;
    crashPoint(CP_NOTICES);
    // The list's flag becomes the walker's own mark, then 0: stopped on either side of the store
    // to curW, the mark tells its reclaim that no later push set the flag (finishNoticeWalk).
    Atomics.store(i32, mW + SM_NOTIFIED, NOTIFIED_WALK);
    i32[curW] = -slot;
    crashPoint(CP_NOTICES);
    Atomics.compareExchange(i32, mW + SM_NOTIFIED, NOTIFIED_WALK, 0); // before collecting: a later push notifies again
    noticed(t, slot);
    n++;
    slot = next;
  }
  i32[curW] = 0;
  i32[restW] = 0;
  return n;
}

/** A notice of `slot` taken off t's list, its flag cleared: t's slab is collected; another's, noticed anew. */
function noticed(t: ThreadContext, slot: number): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_HEAD] !== slot) return;
  if (Atomics.load(i32, mW + SM_OWNER) === t.slot) {
    const cls = i32[mW + SM_CLS1] - 1;
    collectRemote(t, mW, cls);
    afterBlocksReturned(t, slot, cls, true);
  } else if (Atomics.load(i32, mW + SM_REMOTE) !== 0) {
    // A late notice of a slab t gave up since (pooled, maybe carved anew and another's now):
    // while it was on t's list its flag made remote frees of the slab skip their notices, so
    // a list not empty is noticed anew, to its owner (or adopted, as a remote freer would).
    notifyOrAdopt(t, slot);
  }
}

/**
 * A walk of a notice list that `dead` took and did not finish (it died: its reclaim; or an
 * exception cut the walk off: its own next look): the slab it was handling is finished (its flag
 * cleared unless the walk had), and so is the rest of the list.
 */
export function finishNoticeWalk(dead: ThreadContext): void {
  const i32 = dead.i32;
  const cur = i32[dead.thW + TH_NOTICE_CUR];
  const rest = i32[dead.thW + TH_NOTICE_REST];
  if (cur === 0 && rest === 0) return;
  const slot = cur < 0 ? -cur : cur;
  if (slot > 0 && slot < dead.slotLimit) {
    // Its mark cleared by CAS; no mark and cur > 0: stopped before the mark, the flag is still the
    // list's (nonzero: no push since). With cur < 0 and no mark, a flag there is a later push's.
    const fW = dead.metaW(slot) + SM_NOTIFIED;
    if (Atomics.compareExchange(i32, fW, NOTIFIED_WALK, 0) !== NOTIFIED_WALK && cur > 0) Atomics.store(i32, fW, 0);
    i32[dead.thW + TH_NOTICE_CUR] = -slot;
    noticed(dead, slot);
  }
  walkNotices(dead, rest > 0 && rest < dead.slotLimit ? rest : 0);
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
 * current slab back to the pool. `aged` (the periodic drain's looks): only the slabs a look
 * before this one found empty already (t.emptySeen); the others are marked and stay until the
 * next look, so that a program that frees a batch of blocks and allocates it again (tcl_lists:
 * 2,159 blocks of 16 KiB, four to a slab) finds its slabs still there instead of handing each
 * back to Stage 1 and taking it again, two CASes and more each way.
 */
export function releaseEmptyPartials(t: ThreadContext, cls: number, aged = false): void {
  const i32 = t.i32;
  const seen = t.emptySeen;
  let slot = i32[t.thW + TH_PARTIAL_TAIL + cls];
  let n = 0;
  while (slot !== 0 && n++ < t.slotLimit) {
    const mW = t.metaW(slot);
    if (i32[mW + SM_INUSE] !== 0) break;
    const prev = i32[mW + SM_PART_PREV];
    if (aged && seen[slot] === 0) seen[slot] = 1; // empty since this look only: stays until the next
    else afterBlocksReturned(t, slot, cls, false);
    slot = prev;
  }
  const cur = i32[t.thW + TH_CUR + cls];
  if (cur !== 0) afterBlocksReturned(t, cur, cls, false);
}
