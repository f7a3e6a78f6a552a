/**
 * Magazines: each thread's per-class stacks of free blocks, and the slow paths of malloc and
 * free around them (the page.c of this project): refill an empty magazine from the thread's
 * slabs or the pool, drain a full one back, the periodic drain, and flush.
 *
 * A drain first copies the entries into the thread's journal (TH_JOURNAL_*), then removes them
 * from the magazine, then processes the journal: TH_JOURNAL_DONE says how many words are done,
 * TH_INFLIGHT how many blocks of a remote chain are between their first PENDING state and the
 * CAS that publishes them (-k while their states are set, k of them so far). A reclaimer can so
 * finish a drain of a thread that died inside one.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import { CP_DEEP, CP_DRAIN, CP_JOURNAL, CP_PUBLISH, crashArmed, crashPoint } from './crash.js';
import { HeapCorruptionError } from './errors.js';
import type { ThreadContext } from './context.js';
import { takeFreshSlab, takeSlab, takeStage1Slab } from './pool.js';
import { publishChain } from './remote.js';
import { afterBlocksReturned, notifyOrAdopt, partialPop, processNotices, releaseEmptyPartials, takeBlocks } from './slab.js';
import { askRound } from './flush-ask.js';
import { noteTouched } from './slots.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { listCountHint, S1_HEAD_W, FREE_CHECK_W, FREE_LINK_W, LINK_KEY, LINK_MUL, LISTED_CURRENT, LISTED_NONE, MAG_ENTRY_WORDS, MAG_FULL_SENTINEL, MAG_STATE, SLOT_SHIFT,
  SM_BUMP, SM_CLS1, SM_DATA, SM_HEAD, SM_FREE_REGIONS, SM_INUSE, SM_LISTED, SM_NFREE, SM_OWNER, SM_SHIFT, SM_STATE,
  ST_ALLOCATED, ST_CACHED, ST_FREE, ST_PENDING, TF_DRAINS, TF_REFILLS, TF_REMOTE_FREES, TH_CUR, TH_INFLIGHT,
  TH_JOURNAL_CLS, TH_JOURNAL_DONE, TH_JOURNAL_N, TH_JOURNAL_SRC, TH_JOURNAL_W, TH_NOTIFYING, magazineWords, journalEntryWords,
  DEEP_CAP, G_DEBUG, MAG_EMPTY_SENTINEL, SLOT_BYTES, ST_DEEP, SUPER_BYTES, deepMagazineBlock } = layout;
const { COUNT, NUM_CLASSES, REGION_SHIFT, SIZE, blockIndex, classOf } = classes;

/**
 * The largest class whose magazine, in use, stays through a periodic drain (drainIfOnlyFilled):
 * at the default capacity such a magazine holds at most 64 KiB, while one of a larger class holds
 * up to 256 or 512 KiB, which a small live set feels (gawk_records: 7.14 MiB footprint with every
 * magazine drained as before, 7.38 with every one in use kept, 7.02 with this limit).
 */
const PERIODIC_KEEP_MAX = 1024;

/**
 * Classes of at most this many blocks a slab (16 KiB and up), whose slabs go round between a
 * thread and the pool every few blocks, are treated apart in two ways.
 *
 * They give their empty slabs back only after they stayed empty from one periodic look to the
 * next (slab.ts releaseEmptyPartials, `aged`): a batch of such blocks freed and allocated again (tcl_lists, 2,159 blocks of 16 KiB
 * in a loop) handed back and took again a slab every three or four blocks, two CASes and more
 * each way (slabs taken a replay 406 -> 167; 1.16x and 1.20x as fast in two runs of 12 x 500
 * replays, alternated in one process; W2 the same within noise). Aged for every class, the
 * footprint of small live sets rose (gcc_cc1 1.540x -> 1.641x its peak live bytes, jq_customers
 * 1.170 -> 1.180, gawk_records 1.844 -> 1.863); for these classes alone only gawk_records' (1.863;
 * 1.847 for the classes of two blocks a slab and less). The cost: a thread that stops freeing
 * holds one more interval's empty slabs of these classes until its next look or flush() (400
 * blocks of 16 KiB allocated, then freed at drainInterval 64: 88 of the 100 slabs back in the pool
 * at the end, 99 before). Aging only classes the thread refilled since its last look gave the
 * gain back (a batch's frees span two looks, and the second then gave everything back).
 *
 * And a refill of one of them goes on past its first slab (refillMagazine): a refill of four 16 KiB
 * blocks or one 40 KiB block, each a trip through malloc's slow path, became one of up to
 * refillCls blocks (tcl_lists: 875 refills a pass of 2,595 operations before). A slab's blocks
 * may then be handed out in another order than their addresses (a second batch of the same slab
 * goes on top of the first), and a block may never be handed out before its slab goes back:
 * debug mode's freed marks allow for both (slots.ts clearStaleMarks).
 */
export const FEW_BLOCKS_MAX = 4;

/**
 * A refill of such a class takes slabs beyond its first from Stage 1 only while the class's list
 * holds at least this many (its depth hint): a batch of them came back, and the program takes
 * them again. Not from the partial list nor with the lock: those slabs would then wait in the
 * magazine instead of going back for other classes (gawk_records' footprint 1.865x its peak live
 * bytes before; with extras from the partial list too 1.893x, from any Stage-1 list 2.056x; with
 * this rule 1.839x; the nine other traces unchanged).
 */
const S1_EXTRA_DEPTH = 16;

/**
 * Deep magazines. A class of FEW_BLOCKS_MAX blocks a slab or fewer (below 64 KiB) whose refills
 * took DEEP_AFTER_SLABS slabs or more from the pool since the periodic drain last looked at it
 * gets a magazine of DEEP_CAP entries (layout.ts), held in a block of DEEP_CLS (64 KiB, one slot)
 * that the heap keeps (ST_DEEP): its frees then stay in the thread as cached blocks through the
 * periodic looks, for as long as the thread takes from it, instead of going back to their slabs
 * and the pool every few blocks, each slab's trip through a refill, the drain and Stage 1 (about
 * 260 ns a slab here). tcl_lists (2,158 blocks of 16 KiB and 327 of 38,400 bytes allocated,
 * then all freed, each pass) took 823 slabs from Stage 1 a pass and ran at 8.3 M ops/s against
 * dlmalloc-wasm's 14.8 M; held this way, 19.2 M (docs/performance.md, "tcl_lists: what a slab
 * trip costs"). The threshold is what only a program that frees a batch of such blocks and asks for
 * it again does between two looks: the other nine traces' few-block classes live at 2-32 blocks
 * each and never met it (their footprints the same to the byte on eight of them). A deep magazine
 * that the thread did not take from at DEEP_IDLE_LOOKS looks in a row, over which it freed twice
 * the magazine's entries (a batch freed in one go spans several looks: test/drain.test.ts), is
 * drained and its block given back (undeepen); so is every one at a flush (an ask of another
 * thread short of memory, a detach, malloc out of memory), which also starts the count of slabs
 * again. Its capacity is at most 1 / DEEP_HEAP_SHARE of the heap's largest size (layout.ts
 * deepMagazineCap). Its block lies on a slot no block ever used (pool.ts takeFreshSlab; a
 * SuperSlab is carved for it only where a slab would be: with free memory waiting and no such
 * slot, the class stays shallow): a program that writes into a block it freed cannot reach the
 * words the heap reads (a block that served as a deep magazine goes back CACHED, and may serve the
 * program next). Debug mode keeps every magazine in the thread area.
 */
export const DEEP_CLS = classOf(SLOT_BYTES);
const DEEP_AFTER_SLABS = 16;
const DEEP_IDLE_LOOKS = 3;
/** A deep magazine holds at most this share of the heap's largest size (its capacity, set at deepen). */
const DEEP_HEAP_SHARE = 4;
if (SIZE[DEEP_CLS] !== SLOT_BYTES || COUNT[DEEP_CLS] !== 1) throw new Error('sabmalloc internal error: no 64 KiB class for deep magazines');

/**
 * The word of the entry the next pop of class `cls` takes (its block, then its state byte's
 * address), refilling the magazine first when it is empty; -1 when out of memory. The pop itself
 * is the caller's: lower the top to it, mark the state byte ALLOCATED.
 */
export function magazineTop(t: ThreadContext, cls: number, mayBlock: boolean): number {
  t.ensureViews();
  checkTop(t, cls);
  const topW = t.topW + cls;
  if (t.i32[topW] === t.magazineBase(cls) && refillMagazine(t, cls, mayBlock) === 0) return -1;
  return t.i32[topW] - MAG_ENTRY_WORDS; // the views as the refill left them
}

/**
 * Throws HeapCorruptionError when the magazine of `cls` has its top outside its entries: a sentinel
 * the program overwrote lets the fast paths run past the magazine's ends (malloc handed out the
 * sentinel's word and then the class below's entries, and a later free's drain ran on for good: an
 * audit), which their first slow path stops: the refill (magazineTop) or a drain (drainDownTo).
 */
function checkTop(t: ThreadContext, cls: number): void {
  const top = t.i32[t.topW + cls];
  const base = t.magazineBase(cls);
  const end = base + t.magazineCap(cls) * MAG_ENTRY_WORDS;
  if (top < base || top > end) {
    throw new HeapCorruptionError(
      `the magazine of class ${cls} (${SIZE[cls]} B) of thread slot ${t.slot} has its top at word ${top}, outside ${base} .. ${end}: a sentinel or a top was overwritten (check() tells more)`,
    );
  }
}

/** Pops a block of class `cls`, refilling the magazine first when it is empty; 0 when out of memory. */
export function allocFromClass(t: ThreadContext, cls: number, mayBlock: boolean): number {
  const top = magazineTop(t, cls, mayBlock);
  if (top < 0) return 0;
  const i32 = t.i32;
  const block = i32[top];
  i32[t.topW + cls] = top;
  t.bytes[i32[top + MAG_STATE]] = ST_ALLOCATED;
  return block;
}

/**
 * Moves up to refillCls[cls] blocks into the (empty) magazine: from the current slab (local
 * list, then its remote list taken whole, then never-used blocks), then from slabs on the
 * partial list, then from slabs the notice list names, then from a slab from the pool. Most
 * refills stop at the first slab that gives blocks; a class of FEW_BLOCKS_MAX blocks a slab or
 * fewer goes on to more slabs from a deep Stage-1 list (S1_EXTRA_DEPTH) while none of its blocks
 * so far were carved on fresh pages (tcl_lists: 875 refills a pass of 2,595 operations before,
 * 298 after; a pass 131 -> 122 ns an operation by the medians of 12 alternated rounds of 300
 * passes on one heap each).
 */
export function refillMagazine(t: ThreadContext, cls: number, mayBlock: boolean): number {
  const want = t.refillCls[cls];
  const i32 = t.i32;
  const curW = t.thW + TH_CUR + cls;
  t.f64[t.tfW + TF_REFILLS]++;
  t.refillsCls[cls]++;
  // A class of a few blocks a slab fills the batch from more than one slab (see FEW_BLOCKS_MAX).
  const few = COUNT[cls] <= FEW_BLOCKS_MAX;
  if (few && t.slabsSinceLook[cls] >= DEEP_AFTER_SLABS && SIZE[cls] < SLOT_BYTES && !t.deep(cls)) {
    deepen(t, cls);
  }
  let total = 0;
  let noticed = false;
  let flushed = false;
  let asks = 0;
  let gaveDeep = false;
  for (;;) {
    const cur = i32[curW];
    if (cur !== 0) {
      const got = takeBlocks(t, cur, cls, want - total);
      total += got;
      if (got > 0) {
        if (total >= want || !few || t.carvedFresh) return total;
        continue; // the slab may have more; else the next round finds it full
      }
      i32[t.metaW(cur) + SM_LISTED] = LISTED_NONE; // full: stays ours, on no list
      i32[curW] = 0;
    }
    // Before any block, the partial list, the notices, then the pool; after the first slab's
    // blocks, more only from a deep Stage-1 list.
    const next = total === 0 ? partialPop(t, cls) : deepStage1Slab(t, cls);
    if (next !== 0) {
      if (total !== 0) t.slabsSinceLook[cls]++; // from the pool (deepStage1Slab)
      i32[t.metaW(next) + SM_LISTED] = LISTED_CURRENT;
      i32[curW] = next;
      continue;
    }
    if (total > 0) return total;
    if (!noticed) {
      noticed = true;
      if (processNotices(t) > 0) continue;
    }
    if (t.trimInterval !== 0 && ++t.takesSinceTrim >= t.trimInterval) {
      t.takesSinceTrim = 0;
      trimOthers(t, cls);
    }
    const slab = takeSlab(t, cls, mayBlock);
    if (slab === 0) {
      // None without a new SuperSlab, which is not carved while this thread's deep magazines hold
      // a SuperSlab's worth (slots.ts carveSuperSlabs): they go back first, and their slabs with
      // them; for tryMalloc too (nothing here waits).
      if (!gaveDeep && t.deepHoldsSuper()) {
        gaveDeep = true;
        giveBackDeep(t);
        continue;
      }
      // Out of memory: first give back what this thread caches (every magazine, every empty slab
      // it keeps), then try once more. A heap filled and freed by this thread would otherwise
      // answer 0 until its next periodic look or flush(). Not for tryMalloc (mayBlock false),
      // whose 0 may only mean a busy lock: it answers at once.
      if (!mayBlock) return 0;
      if (!flushed) {
        flushed = true;
        flushThread(t);
        continue;
      }
      // Still none: other threads may hold it (an idle owner's slabs, full of blocks freed
      // remotely): ask them to flush, again while their answers free blocks into others' slabs
      // (flush-ask.ts askRound).
      if (askRound(t, asks++)) continue;
      return 0;
    }
    t.slabsSinceLook[cls]++;
    i32[t.metaW(slab) + SM_LISTED] = LISTED_CURRENT;
    t.i32[curW] = slab;
  }
}

/**
 * Moves the (empty) magazine of `cls` into a block of DEEP_CLS (see DEEP_AFTER_SLABS): the one
 * block of a slab taken for it on a slot no block ever used (pool.ts takeFreshSlab; the lock
 * busy, or no such slot: the magazine stays as it is). Order, for a thread stopped anywhere: the
 * slot counted touched and the deep magazine's sentinels written while the slab has no block
 * carved (its reclaim gives the empty slab back); then the top of `cls` moves into it (a reclaim
 * finds the block FREE, takes nothing, and moves the top back: reclaim.ts releaseDeep); then the
 * block is carved (BUMP, INUSE) and its state set ST_DEEP (a stop between: the reclaim's recount
 * of the slab's states finds it FREE).
 */
function deepen(t: ThreadContext, cls: number): void {
  t.slabsSinceLook[cls] = 0;
  if (t.i32[G_DEBUG] !== 0) return;
  const cap = Math.min(DEEP_CAP, Math.floor((t.geo.maxSupers * SUPER_BYTES) / DEEP_HEAP_SHARE / SIZE[cls]));
  if (cap <= 2 * t.magCapCls[cls]) return; // a small heap: not worth a 64 KiB block
  const slot = takeFreshSlab(t, DEEP_CLS);
  if (slot === 0) return;
  const i32 = t.i32; // the views as the take left them
  const mW = t.metaW(slot);
  const block = i32[mW + SM_DATA]; // the slot's start (HDR 0)
  const st = i32[mW + SM_STATE];
  i32[mW + SM_LISTED] = LISTED_NONE; // full once carved: ours, on no list
  noteTouched(t, block, block + SLOT_BYTES);
  const emptyW = block >>> 2;
  i32[emptyW] = MAG_EMPTY_SENTINEL;
  i32[emptyW + MAG_STATE] = cap; // (pop's empty test reads the sentinel's first word only)
  const fullW = emptyW + MAG_ENTRY_WORDS + cap * MAG_ENTRY_WORDS;
  i32[fullW] = MAG_FULL_SENTINEL;
  i32[fullW + MAG_STATE] = MAG_FULL_SENTINEL;
  crashPoint(CP_DEEP);
  i32[t.topW + cls] = emptyW + MAG_ENTRY_WORDS;
  crashPoint(CP_DEEP);
  i32[mW + SM_BUMP] = 1;
  i32[mW + SM_INUSE] = 1;
  t.bytes[st] = ST_DEEP;
  t.deepIdleLooks[cls] = 0;
  crashPoint(CP_DEEP);
}

/**
 * Gives back every deep magazine of t (undeepen) and the empty slabs its blocks leave on t's
 * partial lists, as flushThread does first: before fresh memory is carved (slots.ts
 * carveSuperSlabs).
 */
export function giveBackDeep(t: ThreadContext): void {
  t.ensureViews();
  for (let c = 0; c < DEEP_CLS; c++) {
    if (!t.deep(c)) continue;
    undeepen(t, c);
    releaseEmptyPartials(t, c);
  }
}

/**
 * Drains the deep magazine of `cls` and gives it back: its block goes onto the DEEP_CLS magazine
 * (CACHED; pushCached), and only then does the top of `cls` move back into the thread area:
 * stopped between the two, the block is both the top's and CACHED in that magazine, which the
 * reclaim tells apart (reclaim.ts releaseDeep).
 */
export function undeepen(t: ThreadContext, cls: number): void {
  drainClass(t, cls);
  const i32 = t.i32;
  const block = deepMagazineBlock(t.magazineBase(cls));
  const mW = t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT);
  pushCached(t, DEEP_CLS, block, i32[mW + SM_STATE]); // its one block's state byte
  crashPoint(CP_DEEP);
  i32[t.topW + cls] = t.shallowBase(cls);
  crashPoint(CP_DEEP);
}

/** A slab from the Stage-1 list of `cls` while that holds S1_EXTRA_DEPTH or more (a hint), else 0. */
function deepStage1Slab(t: ThreadContext, cls: number): number {
  return listCountHint(t.i32, t.smW, S1_HEAD_W + cls) >= S1_EXTRA_DEPTH ? takeStage1Slab(t, cls) : 0;
}

/**
 * free() of a live small block from a slow path (the caller validated it and refreshed the
 * views): the fast path's steps as a function.
 */
export function freeSmall(t: ThreadContext, block: number): void {
  const i32 = t.i32;
  const mW = t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT);
  const cls = i32[mW + SM_CLS1] - 1;
  const idx = blockIndex(cls, block - i32[mW + SM_DATA]);
  if (idx >>> 0 >= COUNT[cls]) {
    throw new Error(`sabmalloc internal error: freeSmall(${block}) of a block that is not a block start`);
  }
  pushFreed(t, cls, block, i32[mW + SM_STATE] + idx);
}

/**
 * free's push of a validated live block of class `cls` whose state byte is at `st`: onto the
 * magazine (a drain first when it is full), then the periodic-drain countdown. The same steps as
 * SharedHeap.free's and realloc's fast paths, which keep their own copies inline (with their one
 * call out, heap.ts).
 */
export function pushFreed(t: ThreadContext, cls: number, block: number, st: number): void {
  // A free into a full magazine (drained by half first) does not count toward drainInterval:
  // counted, it made the looks come sooner where magazines fill, and their whole drains sent
  // gawk_records' slabs to Stage 1 (its footprint 1.85 -> 2.05x its peak live bytes, measured).
  if (pushCached(t, cls, block, st) && --t.drainLeft === 0) drainPeriodic(t, cls);
}

/**
 * The magazine push of a block this thread holds (its state byte at `st`, made CACHED) onto the
 * magazine of `cls`, through freeDrainFull (a drain of its newer half first) when that is full:
 * false then. free's push (pushFreed) and a deep magazine's block given back (undeepen).
 */
function pushCached(t: ThreadContext, cls: number, block: number, st: number): boolean {
  if (t.i32[t.i32[t.topW + cls]] === MAG_FULL_SENTINEL) {
    freeDrainFull(t, cls, block, st);
    return false;
  }
  pushEntry(t, cls, block, st);
  return true;
}

/** The push itself, onto a magazine with room: the state CACHED, then the entry, then the top. */
function pushEntry(t: ThreadContext, cls: number, block: number, st: number): void {
  const i32 = t.i32;
  const topW = t.topW + cls;
  const top = i32[topW];
  t.bytes[st] = ST_CACHED;
  i32[top] = block;
  i32[top + MAG_STATE] = st;
  i32[topW] = top + MAG_ENTRY_WORDS;
}

// ---- Drain ------------------------------------------------------------------------------------

/**
 * Makes magazine words [fromW, fromW + words) of t's own magazine of `cls` the journal, in
 * place: the caller then lowers the magazine's top below them, and nothing writes there until
 * the drain is done (only this thread pushes onto its magazines).
 */
export function journalInPlace(t: ThreadContext, cls: number, fromW: number, words: number): void {
  const i32 = t.i32;
  i32[t.thW + TH_JOURNAL_SRC] = fromW;
  i32[t.thW + TH_JOURNAL_CLS] = cls;
  i32[t.thW + TH_JOURNAL_DONE] = 0;
  i32[t.thW + TH_INFLIGHT] = 0;
  i32[t.thW + TH_JOURNAL_N] = words; // valid from here on
  crashPoint(CP_JOURNAL);
}

/**
 * Copies words [fromW, fromW + words) of `src` (entries collected by a reclaim) into the journal
 * area that TH_JOURNAL_SRC does not name, then makes them the journal. The journal being redone
 * (reclaim.ts finishJournals) may sit in the other area: a reclaimer stopped inside this copy
 * leaves it whole, still named by the journal words, for the next reclaim to redo (layout.ts
 * TH_JOURNAL_W).
 */
export function journalEntries(t: ThreadContext, cls: number, src: Int32Array, fromW: number, words: number): void {
  const i32 = t.i32;
  const first = t.thW + TH_JOURNAL_W;
  const jW = i32[t.thW + TH_JOURNAL_SRC] === first ? first + magazineWords(t.geo.magCap) : first;
  for (let i = 0; i < words; i++) {
    i32[jW + i] = src[fromW + i];
    crashPoint(CP_JOURNAL); // V8 may stop a thread at this loop's back edge (terminate())
  }
  journalInPlace(t, cls, jW, words);
}

/**
 * Returns the journal's entries from TH_JOURNAL_DONE on to their slabs: blocks of t's own slabs
 * back into the slab (FREE, counted), the others as one chain per run of blocks of the same slab
 * onto that slab's remote list. Each run is committed before the progress word moves past it, so a
 * reclaimer can finish a drain stopped anywhere. `keep`: see afterBlocksReturned.
 */
export function drainJournal(t: ThreadContext, cls: number, keep: boolean): void {
  const i32 = t.i32;
  const bytes = t.bytes;
  const smW = t.smW;
  const cp = crashArmed(); // (see crashArmed)
  const jW = i32[t.thW + TH_JOURNAL_SRC];
  const doneW = t.thW + TH_JOURNAL_DONE;
  const end = jW + i32[t.thW + TH_JOURNAL_N];
  let e = jW + i32[doneW];
  // The head slot of the slab of the entry at e (entries of one slab tend to come in runs).
  let slab = e < end ? i32[smW + ((i32[e] >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD] : 0;
  while (e < end) {
    const mW = smW + (slab << SM_SHIFT);
    let next = 0;
    if (i32[mW + SM_OWNER] === t.slot) {
      // A run of blocks of one of our own slabs back into it, as one batch: states FREE, then
      // the region bits and counts, then the progress word. The blocks themselves are not
      // touched. A thread stopped before the counts moved leaves FREE blocks uncounted, which the
      // reclaim's recount of its slabs counts (and the journal's redo skips, as their state says
      // FREE).
      // One pass: each entry's state, then the slab of the next entry, which ends the run.
      const first = e;
      const state = i32[mW + SM_STATE];
      const rs = REGION_SHIFT[cls];
      let regions = 0;
      if (cp) crashPoint(CP_DRAIN);
      for (;;) {
        const st = i32[e + MAG_STATE];
        bytes[st] = ST_FREE;
        regions |= 1 << ((st - state) >>> rs);
        e += MAG_ENTRY_WORDS;
        if (e >= end) break;
        next = i32[smW + ((i32[e] >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD];
        if (next !== slab) break;
      }
      if (cp) crashPoint(CP_DRAIN);
      const r = (e - first) / MAG_ENTRY_WORDS;
      i32[mW + SM_FREE_REGIONS] |= regions;
      i32[mW + SM_NFREE] += r;
      i32[mW + SM_INUSE] -= r;
      if (cp) crashPoint(CP_DRAIN);
      i32[doneW] = e - jW;
      if (cp) crashPoint(CP_DRAIN);
      // Every step of afterBlocksReturned needs the slab empty or on no list: for one still in
      // use and listed (most runs of frees in random order, one block each) no call. (Random-order
      // frees of 112 bytes with their mallocs, counted by cachegrind: 343-344 -> 322 instructions
      // an operation.)
      if (i32[mW + SM_INUSE] === 0 || i32[mW + SM_LISTED] === LISTED_NONE) afterBlocksReturned(t, slab, cls, keep);
    } else {
      // Another thread's (or an abandoned) slab: one chain of the consecutive entries of that slab.
      let n = 1;
      for (; e + MAG_ENTRY_WORDS * n < end; n++) {
        next = i32[smW + ((i32[e + MAG_ENTRY_WORDS * n] >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD];
        if (next !== slab) break;
      }
      // States and links first; then TH_INFLIGHT says the chain may be published from here on
      // (a reclaimer finds it PENDING throughout); before that it is the dead thread's still.
      // Meanwhile TH_INFLIGHT is -k, k the blocks made PENDING so far (stored with no call after
      // the state): a reclaimer takes one of those back only if it is still PENDING, since a
      // stray write of the program that links a block on the slab's remote list to one of them,
      // link and check both (a link alone is told from the heap's: remote.ts linkOf), lets the
      // owner's collection take it (reclaim.ts finishJournals).
      for (let k = 0; k < n; k++) {
        const ek = e + MAG_ENTRY_WORDS * k;
        bytes[i32[ek + MAG_STATE]] = ST_PENDING;
        if (k + 1 < n) {
          // The link and its check (layout.ts FREE_CHECK_W), written out: no call after the state.
          const bW = i32[ek] >>> 2;
          const link = i32[ek + MAG_ENTRY_WORDS];
          i32[bW + FREE_LINK_W] = link;
          i32[bW + FREE_CHECK_W] = Math.imul(link, LINK_MUL) ^ LINK_KEY;
        }
        i32[t.thW + TH_INFLIGHT] = -(k + 1);
        if (cp) crashPoint(CP_PUBLISH);
      }
      i32[t.thW + TH_INFLIGHT] = n;
      // The notice to come is named before the publish: a thread stopped after the CAS but before
      // its notice's flag CAS leaves the slab in TH_NOTIFYING with its flag 0, which its reclaim
      // notices anew (reclaim.ts finishJournals). Named after it, nothing would tell the owner.
      i32[t.thW + TH_NOTIFYING] = slab;
      if (cp) crashPoint(CP_PUBLISH);
      // From the CAS that publishes the chain to the stores that say so, no call and no loop: V8
      // stops a thread (terminate(), a stack overflow) only at a function's entry or a loop's back
      // edge, so no thread dies with TH_INFLIGHT set for a chain already published. Its blocks may
      // be collected, handed out and freed again at once (PENDING in another thread's chain),
      // which resolveInflight could not tell from a chain never published: it would publish the
      // old chain again and write its links into live blocks (an audit's repro, with a crash point
      // here: 4 of 4 runs).
      publishChain(i32, mW, i32[e], i32[e + MAG_ENTRY_WORDS * (n - 1)]);
      e += MAG_ENTRY_WORDS * n;
      i32[doneW] = e - jW;
      i32[t.thW + TH_INFLIGHT] = 0;
      if (cp) crashPoint(CP_PUBLISH);
      t.f64[t.tfW + TF_REMOTE_FREES] += n;
      notifyOrAdopt(t, slab);
    }
    slab = next;
  }
  i32[t.thW + TH_JOURNAL_N] = 0;
}

/**
 * free's slow path when the magazine is full: drain its newer half (at least one entry) in
 * place, then push the block. (The newer half: nothing to move, and the blocks go back to their
 * slabs' lists, which the next refill takes first.)
 */
export function freeDrainFull(t: ThreadContext, cls: number, block: number, st: number): void {
  const base = t.magazineBase(cls);
  const top = t.i32[t.topW + cls];
  const entries = (top - base) / MAG_ENTRY_WORDS;
  drainDownTo(t, cls, top - Math.max(1, entries >>> 1) * MAG_ENTRY_WORDS, true);
  pushEntry(t, cls, block, st); // now there is room
}

/**
 * After every drainInterval frees of this thread (t.drainLeft), for the class of the last one:
 * look at that class's magazine and, in turn, at the next class after the one looked at that way
 * last time whose magazine holds blocks; then look at notices. (Frees that come in a fixed
 * pattern, a struct and then its string, would otherwise end every countdown on the same class,
 * and the other class's magazine would never be looked at this way.)
 */
export function drainPeriodic(t: ThreadContext, cls: number): void {
  t.drainLeft = t.drainInterval;
  drainIfOnlyFilled(t, cls, true);
  const other = nextCachedClass(t, cls);
  if (other >= 0) drainIfOnlyFilled(t, other);
  // A look that a free of a class this thread never refilled brought (others' blocks: a consumer
  // of messages) drains every such class, not one in its turn: a consumer's magazines held up to
  // 2 MiB of others' blocks, which their owner could not reuse and carved more for (an audit of
  // cross-thread exchanges: one producer, three consumers, 16-4108-byte messages, 9.0-9.3 MiB
  // against glibc's 2.4; 4.1-4.5 with this). Classes the thread refilled keep the rule above:
  // draining every idle one at each look put gawk_records at 1.91x its peak live bytes (1.85x),
  // and the walk over the classes at every look cost it and jq_customers 2-3%.
  if (t.refillsCls[cls] === 0) {
    for (let c = 0; c < NUM_CLASSES; c++) {
      if (t.refillsCls[c] === 0 && c !== cls && c !== other && t.holdsBlocks(c)) drainIfOnlyFilled(t, c);
    }
  }
  processNotices(t);
  releaseEmptyPartials(t, cls, COUNT[cls] <= FEW_BLOCKS_MAX);
  if (other >= 0) releaseEmptyPartials(t, other, COUNT[other] <= FEW_BLOCKS_MAX);
}

/**
 * The periodic drain's look at one magazine: drained whole unless the thread allocated from it
 * since the last look (a refill, a top below the one seen then, or another block under that
 * top, which only a pop below it and a push can bring). A magazine that only fills (a thread that
 * frees what others allocate) or sits idle goes back, as before; one in use stays, so that a
 * thread that allocates and frees a class at random does not drain and refill it over and over
 * (W3 at one thread: 2,239 refills and 1,984 drains of 2 M operations before, nearly all of
 * them this drain's). What it saw is recorded for the next look.
 *
 * `freedInto`: `cls` is the class of the free that ended the countdown, whose push has just
 * raised its top by one. A top no higher than the one seen then was below it just before that
 * push: the thread took blocks from the magazine since the last look. Without that, a thread that
 * mallocs and frees one size in turn (a scratch buffer taken and given back in a loop) left the
 * same top over the same block at every look, looked idle, and had its magazine drained and
 * refilled, its slab given back and taken again, every drainInterval frees (a malloc+free loop
 * of 48 bytes: 241 -> 213 instructions a pair, counted by callgrind; 196 with no periodic drain).
 */
function drainIfOnlyFilled(t: ThreadContext, cls: number, freedInto = false): void {
  const i32 = t.i32;
  const topW = t.topW + cls;
  const base = t.magazineBase(cls);
  let seen = t.seenTop[cls];
  if (seen === 0) seen = base; // never looked: as if seen empty
  const top = i32[topW];
  const used =
    t.refillsCls[cls] !== t.seenRefills[cls] || (freedInto ? top <= seen : top < seen) || i32[seen - MAG_ENTRY_WORDS] !== t.seenBlock[cls];
  t.slabsSinceLook[cls] = 0;
  if (t.deep(cls)) {
    // A deep magazine stays while the thread takes from it (see DEEP_AFTER_SLABS).
    if (used) t.deepIdleLooks[cls] = 0;
    else if (++t.deepIdleLooks[cls] >= DEEP_IDLE_LOOKS && t.deepIdleLooks[cls] * t.drainInterval >= (top - base) /* 2 x its entries */) {
      undeepen(t, cls);
    }
  } else if (!used || SIZE[cls] > PERIODIC_KEEP_MAX) drainClass(t, cls);
  const now = i32[topW];
  t.seenTop[cls] = now;
  t.seenBlock[cls] = i32[now - MAG_ENTRY_WORDS];
  t.seenRefills[cls] = t.refillsCls[cls];
}

/** The first class after t.drainCursor (in turn, not `skip`) whose magazine holds blocks; -1 when none. */
function nextCachedClass(t: ThreadContext, skip: number): number {
  for (let k = 1; k <= NUM_CLASSES; k++) {
    const c = (t.drainCursor + k) % NUM_CLASSES;
    if (c !== skip && t.holdsBlocks(c)) {
      t.drainCursor = c;
      return c;
    }
  }
  return -1;
}

/** Empties the magazine of `cls` back into the slabs; empty slabs, the current one too, go to the pool. */
export function drainClass(t: ThreadContext, cls: number): void {
  if (t.holdsBlocks(cls)) drainDownTo(t, cls, t.magazineBase(cls), false);
}

/**
 * Drains the magazine of `cls` from its top down to word `downTo`, in place, at most a journal
 * area's worth (magCap entries) at a time: a deep magazine holds more than that, and the reclaim
 * of a thread stopped inside the drain copies what is left of its journal into one journal area
 * (reclaim.ts finishJournals; a journal of 400 words copied over 12 ran on into the thread's
 * magazines, and one of 2,000 into the next thread's area: an audit). Each part is a drain of its
 * own: journal, then the top lowered below it; the entries under it stay in the magazine until
 * their turn. `keep`: see afterBlocksReturned.
 */
function drainDownTo(t: ThreadContext, cls: number, downTo: number, keep: boolean): void {
  checkTop(t, cls); // every drain's way in (a full magazine's, a look's, a flush's)
  const topW = t.topW + cls;
  const most = journalEntryWords(t.geo.magCap);
  t.f64[t.tfW + TF_DRAINS]++;
  for (let top = t.i32[topW]; top > downTo; top = t.i32[topW]) {
    const from = Math.max(downTo, top - most);
    journalInPlace(t, cls, from, top - from);
    t.i32[topW] = from;
    crashPoint(CP_DRAIN);
    drainJournal(t, cls, keep);
  }
}

/**
 * The trim (options.trimInterval), before a slab of `cls` is taken from the pool: every other
 * class's magazine is drained and its empty slabs go back, so that their slots can serve this
 * one instead of pages never touched. Each step is a drain's, as crash-safe.
 */
function trimOthers(t: ThreadContext, cls: number): void {
  // The slabs it empties go to Stage 2 (unless the lock is busy: pool.ts releaseEmptySlab): kept on
  // their class's Stage-1 list they serve no other class while the carved SuperSlabs have an
  // untouched slot (an audit of the options, 2026-12-07: at the default stage1Keep the trim saved
  // nothing; test/options.test.ts). And every other class's, its magazine empty or not.
  t.trimming = true;
  try {
    for (let c = 0; c < NUM_CLASSES; c++) {
      if (c === cls) continue;
      drainClass(t, c);
      releaseEmptyPartials(t, c);
    }
  } finally {
    t.trimming = false;
  }
}

/**
 * Drains every magazine of t's slot, collects its notices and gives its empty slabs back. `last`
 * (a detach): the look at the notices is t's last, and closes its list (slab.ts processNotices).
 */
export function flushThread(t: ThreadContext, last = false): void {
  // Deep magazines first, so that their blocks, given back onto the DEEP_CLS magazine, are drained with it.
  giveBackDeep(t);
  for (let c = 0; c < NUM_CLASSES; c++) drainClass(t, c);
  t.slabsSinceLook.fill(0); // a flush is a look at every class
  processNotices(t, last);
  for (let c = 0; c < NUM_CLASSES; c++) releaseEmptyPartials(t, c);
}
