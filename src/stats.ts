/**
 * stats(): a snapshot read with plain loads (Atomics for [A] words). While other threads run,
 * the figures are each a moment's value, not one consistent cut.
 */
import {
  F_ADOPTED, G_ADOPTED, F_LARGE_ALLOCS, F_LOCK_ACQ, F_LOCK_CONTENDED, F_LOCK_MAX_WAIT_MS, F_LOCK_RECOVERIES,
  F_LOCK_SPINS, F_LOCK_WAITS, F_LOCK_WAIT_MS, F_LOCK_WAKES, F_RECLAIMS, F_SLOTS_RETURNED, F_STAGE2,
  F_STAGE3, G_BUFFER_SUPERS, PAGE_BYTES, SLOTS_SHIFT_IN_SUPER, G_CARVED, G_MAX_SUPERS, K_LARGE, K_SLAB, LARGE_LIVE, LARGE_RESIZING, SLOT_SHIFT, SM_BUMP, SM_CLS1, SM_HEAD, SM_KIND, SM_LARGE, SM_SHIFT, SM_SPAN, SM_STATE, SM_TOUCHED, ST_ALLOCATED, SUPER_SHIFT,
  largePooledSlots, listCount, S1_HEAD_W, SLOT_BYTES, SUPER_BYTES, TF_DRAINS, TF_LOCK_ACQ, TF_REFILLS, TF_REMOTE_FREES, TF_SLABS, TF_STAGE1, TF_STAGE1_PUSHES, TH_F64_W,
  JOURNAL_AREAS, TH_JOURNAL_W, TH_THREAD_ID, TH_STATE, TS_ATTACHED, TS_FREE, TS_RECLAIMING, MAG_ENTRY_WORDS, magazineWords, usedSlots,
} from './layout.js';
import { COUNT, NUM_CLASSES, SIZE } from './size-classes.js';
import type { ThreadContext } from './context.js';

export interface LockStats {
  /** Times the global lock was taken. */
  acquisitions: number;
  /** Acquisitions whose first CAS failed (for an asynchronous call, mallocAsync and the like, its first try's). */
  contended: number;
  /** Spin iterations spent before getting the lock. */
  spins: number;
  /**
   * The futex-wait count: Atomics.wait calls (a waiter wakes every 20 ms to look whether the holder
   * died, so a long wait makes several), and the asynchronous calls' awaits of the lock word.
   */
  waits: number;
  /**
   * Atomics.notify calls made on release because the lock word's waiters bit was set: by a
   * waiter, or kept by a thread that waited or broke a dead holder's lock, which cannot tell
   * whether others still wait (the futex mutex's conservative rule), so some wake nobody.
   */
  wakes: number;
  /** Total milliseconds threads spent getting the lock when it was contended (an asynchronous call's from its first try). */
  waitMs: number;
  maxWaitMs: number;
  /** Locks taken over from a holder whose thread died. */
  recoveries: number;
}

export interface StageStats {
  /** Slabs reused from a per-class Stage-1 LIFO (lock-free). */
  stage1: number;
  /** Slabs made from UNUSED slots of a carved SuperSlab (under the lock). */
  stage2: number;
  /** Slabs that needed a fresh SuperSlab (under the lock). */
  stage3: number;
  /** EMPTY slabs put on Stage-1 lists. */
  stage1Pushes: number;
  /** Abandoned slabs (of detached or dead threads) adopted: taken from the abandoned lists by a thread that needed a slab, or by a free of one of their blocks from another thread. */
  adopted: number;
  /** Slab slots given back as UNUSED (for any class or large run). */
  slotsReturned: number;
}

export interface ClassStats {
  cls: number;
  blockSize: number;
  liveBlocks: number;
  stage1Slabs: number;
}

export interface ThreadStats {
  tid: number;
  threadId: number;
  state: 'attached' | 'dead' | 'reclaiming' | 'free';
  remoteFrees: number;
  refills: number;
  drains: number;
  slabsTaken: number;
  lockAcquisitions: number;
}

export interface HeapStats {
  lock: LockStats;
  stages: StageStats;
  /**
   * Memory the buffer takes: its pages that the heap ever handed out or wrote (blocks carved
   * from a slab and the slab's header, large runs, over every use of each slot), plus the
   * metadata pages ever touched (header, SuperSlab table, slot metas of carved SuperSlabs, and
   * of the thread areas of slots ever attached the words a thread can write: each magazine up to
   * its class's capacity, the journal once a reclaim wrote it; see metadataBytes). Pages of a
   * SharedArrayBuffer that were never touched take no memory, and a page once touched is never
   * given back, so this is what the operating system holds for the buffer (its resident pages:
   * test/footprint.test.ts compares the two) once the program writes the blocks it gets; a page
   * handed out that nobody writes stays untouched, so it is an upper bound of them (W2 of the
   * bench, whose blocks of 8-32 KiB are written at their ends only: 29.9 MB against 10.9 resident).
   */
  footprintBytes: number;
  /** The largest footprintBytes so far: the same figure, since no page is ever given back. */
  peakFootprintBytes: number;
  /** Address space the heap has taken: the carved SuperSlabs plus the metadata pages (as above). */
  carvedBytes: number;
  /** carvedBytes at the heap's largest: the same figure, since no SuperSlab is ever uncarved. */
  peakCarvedBytes: number;
  /** The metadata part of footprintBytes. */
  metadataBytes: number;
  bufferBytes: number;
  maxBytes: number;
  /** Usable bytes of live blocks (small blocks count their class size, large ones their run). */
  liveBytes: number;
  /** Live blocks: small ones (from the slabs' state bytes) and large ones (largeLiveBlocks). */
  liveBlocks: number;
  /** Live large blocks (runs of whole slots, above the largest size class). */
  largeLiveBlocks: number;
  largeLiveBytes: number;
  /** Bytes of freed large runs kept in the large-run lists for reuse (part of the footprint, not live). */
  largePooledBytes: number;
  /** Large runs taken under the lock (a run reused from a large-run list is not counted). */
  largeAllocations: number;
  threadsAttached: number;
  reclaims: number;
  classes: ClassStats[];
  threads: ThreadStats[];
}

/**
 * Bytes of the pages of the metadata that the heap may have written while `carved` SuperSlabs were
 * carved: the header, the SuperSlab table and the slot metas of carved SuperSlabs (the metadata's
 * own slots included: their meta is written once, K_NONE), then, of each thread slot ever used,
 * the words a thread can write: its area's words before the journal, the journal (written only by
 * a reclaim, the two areas from TH_JOURNAL_W: counted once any slot was reclaimed or is being reclaimed), and of each
 * class's magazine its two sentinels and the entries up to its capacity (magCapCls: at most
 * 256 KiB of blocks a class). The words after a magazine's full sentinel are never written: a
 * magazine has magazineCapacity entries of room, and a class of large blocks uses few of them.
 * Counted whole, the areas of a heap with magazineCapacity 4096 made the footprint of a fresh heap
 * 2.0 MB where Linux held 0.37 (an audit). Pages between a magazine's sentinels that it never
 * reached are counted all the same: nothing records how deep a magazine went.
 */
function metadataBytes(t: ThreadContext, carved: number, reclaimed: boolean): number {
  const geo = t.geo;
  const magWords = magazineWords(geo.magCap);
  // The ranges of words, in ascending order; a page shared by two of them counts once.
  let pages = 0;
  let counted = 0; // pages below this one are counted
  const add = (fromW: number, toW: number): void => {
    const first = Math.max(Math.floor((fromW * 4) / PAGE_BYTES), counted);
    const end = Math.ceil((toW * 4) / PAGE_BYTES);
    if (end > first) {
      pages += end - first;
      counted = end;
    }
  };
  add(0, geo.slotMetaW + ((carved << SLOTS_SHIFT_IN_SUPER) << SM_SHIFT));
  for (let s = 0, used = usedSlots(t.i32, geo.maxThreads); s < used; s++) {
    const thW = geo.threadsW + s * geo.threadWords;
    add(thW, thW + TH_JOURNAL_W + (reclaimed ? JOURNAL_AREAS * magWords : 0));
    for (let c = 0; c < NUM_CLASSES; c++) {
      const empty = thW + geo.magW + c * magWords; // the empty sentinel, then the entries, then the full sentinel
      add(empty, empty + (t.magCapCls[c]! + 2) * MAG_ENTRY_WORDS);
    }
  }
  return pages * PAGE_BYTES;
}

const STATE_NAMES = ['free', 'attached', 'dead', 'reclaiming'] as const;

export function collectStats(h: ThreadContext): HeapStats {
  h.ensureViews();
  const i32 = h.i32;
  const f64 = h.f64;
  const geo = h.geo;
  const classes: ClassStats[] = [];
  let liveBlocks = 0;
  let liveBytes = 0;
  let largeLiveBlocks = 0;
  let largeLive = 0;
  // Live blocks are counted from the state bytes (no counter on the fast path): every slab's
  // ALLOCATED bytes among its carved blocks.
  const livePerClass = new Float64Array(NUM_CLASSES);
  const bytes = h.bytes;
  const firstSlot = geo.metaSupers << (SUPER_SHIFT - SLOT_SHIFT);
  const endSlot = Math.min(Atomics.load(i32, G_CARVED) << (SUPER_SHIFT - SLOT_SHIFT), h.slotLimit);
  for (let s = firstSlot; s < endSlot; s++) {
    const mW = h.smW + (s << SM_SHIFT);
    if (i32[mW + SM_HEAD] !== s) continue;
    if (i32[mW + SM_KIND] === K_LARGE) {
      // Live, or being resized in place (an audit). Its bytes from its span, here, as its count:
      // F_LARGE_HELD_BYTES less the pooled runs, read at two moments, went below zero where another
      // thread gave a pooled run back between them (an audit).
      const mark = i32[mW + SM_LARGE];
      if (mark === LARGE_LIVE || mark === LARGE_RESIZING) {
        largeLiveBlocks++;
        largeLive += i32[mW + SM_SPAN] * SLOT_BYTES;
      }
      continue;
    }
    if (i32[mW + SM_KIND] !== K_SLAB) continue;
    const cls = i32[mW + SM_CLS1] - 1;
    const state = i32[mW + SM_STATE];
    const end = state + Math.min(i32[mW + SM_BUMP], COUNT[cls]);
    let n = 0;
    for (let b = state; b < end; b++) if (bytes[b] === ST_ALLOCATED) n++;
    livePerClass[cls] += n;
  }
  for (let c = 0; c < NUM_CLASSES; c++) {
    const live = livePerClass[c];
    liveBlocks += live;
    liveBytes += live * SIZE[c];
    classes.push({ cls: c, blockSize: SIZE[c], liveBlocks: live, stage1Slabs: listCount(i32, h.smW, S1_HEAD_W + c) });
  }
  const threads: ThreadStats[] = [];
  let threadsAttached = 0; // counted from the states: a count kept beside them went wrong when a thread died between the two
  // A reclaim writes the journal of the slot it reclaims (metadataBytes): one under way (a slot
  // RECLAIMING), or one done (F_RECLAIMS, read after the states: a reclaim counts itself before
  // it stores its slot FREE, so a state read FREE is followed by a count that holds it; read
  // before, a stats() that met the first reclaim's end saw neither, and left its journal out).
  let reclaimed = false;
  let stage1 = 0;
  let stage1Pushes = 0;
  for (let t = 0, used = usedSlots(i32, geo.maxThreads); t < used; t++) {
    const w = geo.threadsW + t * geo.threadWords;
    const fw = (w + TH_F64_W) >>> 1;
    // Every slot's Stage-1 counts, a free one's too: they hold its earlier threads' (layout.ts TF_STAGE1).
    stage1 += f64[fw + TF_STAGE1];
    stage1Pushes += f64[fw + TF_STAGE1_PUSHES];
    const state = Atomics.load(i32, w + TH_STATE);
    if (state === TS_ATTACHED) threadsAttached++;
    if (state === TS_RECLAIMING) reclaimed = true;
    if (state === TS_FREE && i32[w + TH_THREAD_ID] === 0) continue;
    threads.push({
      tid: t,
      threadId: Atomics.load(i32, w + TH_THREAD_ID) - 1,
      state: STATE_NAMES[state] ?? 'free',
      remoteFrees: f64[fw + TF_REMOTE_FREES],
      refills: f64[fw + TF_REFILLS],
      drains: f64[fw + TF_DRAINS],
      slabsTaken: f64[fw + TF_SLABS],
      lockAcquisitions: f64[fw + TF_LOCK_ACQ],
    });
  }
  if (f64[F_RECLAIMS] > 0) reclaimed = true;

  // Pages the heap ever handed out or wrote, slot by slot (SM_TOUCHED): what the operating system
  // holds for the buffer. Nothing gives a page back to it, so this is also the peak.
  let touched = 0;
  for (let s = firstSlot; s < endSlot; s++) touched += Math.ceil(i32[h.smW + (s << SM_SHIFT) + SM_TOUCHED] / PAGE_BYTES) * PAGE_BYTES;
  const largePooled = largePooledSlots(i32, h.smW) * SLOT_BYTES;
  // G_CARVED never decreases (no SuperSlab is uncarved), so the current figures are the peaks.
  const carved = Atomics.load(i32, G_CARVED);
  const meta = metadataBytes(h, carved, reclaimed);
  const carvedBytes = (carved - geo.metaSupers) * SUPER_BYTES + meta;
  return {
    lock: {
      acquisitions: f64[F_LOCK_ACQ],
      contended: f64[F_LOCK_CONTENDED],
      spins: f64[F_LOCK_SPINS],
      waits: f64[F_LOCK_WAITS],
      wakes: f64[F_LOCK_WAKES],
      waitMs: f64[F_LOCK_WAIT_MS],
      maxWaitMs: f64[F_LOCK_MAX_WAIT_MS],
      recoveries: f64[F_LOCK_RECOVERIES],
    },
    stages: {
      stage1,
      stage2: f64[F_STAGE2],
      stage3: f64[F_STAGE3],
      stage1Pushes,
      adopted: Atomics.load(i32, G_ADOPTED) + f64[F_ADOPTED],
      slotsReturned: f64[F_SLOTS_RETURNED],
    },
    footprintBytes: touched + meta,
    peakFootprintBytes: touched + meta,
    carvedBytes,
    peakCarvedBytes: carvedBytes,
    metadataBytes: meta,
    bufferBytes: Atomics.load(i32, G_BUFFER_SUPERS) * SUPER_BYTES,
    maxBytes: i32[G_MAX_SUPERS] * SUPER_BYTES,
    liveBytes: liveBytes + largeLive,
    liveBlocks: liveBlocks + largeLiveBlocks,
    largeLiveBlocks,
    largeLiveBytes: largeLive,
    largePooledBytes: largePooled,
    largeAllocations: f64[F_LARGE_ALLOCS],
    threadsAttached,
    reclaims: f64[F_RECLAIMS],
    classes,
    threads,
  };
}
