/**
 * The scenarios of test/crash-points.test.ts, shared with the worker that runs them
 * (crash-worker.ts). Each drives the slow paths of one area; the worker runs `workerRun`
 * with crash points armed. Every block the worker holds is recorded in a shared ledger before
 * and after each call, so that the test knows which blocks are live, which one call was in
 * flight when the thread stopped, and can check and free them all afterwards.
 */
import type { HeapOptions, SharedHeap } from '../src/index.js';

const KiB = 1 << 10;
const MiB = 1 << 20;

export interface CrashWorkerData {
  kind: 'crash';
  buffer: SharedArrayBuffer;
  scenario: string;
  /** 0: count the crash points; n > 0: stop at the n-th. */
  n: number;
  /** Stop at (and count) the worker's Atomics calls instead of its crash points. */
  atomics?: boolean;
  /**
   * At the n-th crash point, throw the RangeError a stack overflow throws instead of stopping:
   * the call is cut off and the thread lives on (src/fault.ts). The worker posts { faulted } with
   * what the call threw, and exits without touching the heap again.
   */
  fault?: boolean;
  /**
   * Instead of a scenario: stop at the n-th Atomics call (0: count them and post { counts }) of
   * SharedHeap.attach, or of detach() after a few mallocs and frees (blocks in the magazines,
   * one block left allocated).
   */
  lifecycle?: { phase: 'attach' | 'detach'; n: number };
  /** [L_INFLIGHT] the ledger entry of the call under way (-1: none), [L_COUNT] entries, then blocks (0: freed). */
  ledger: Int32Array;
  /** Requested size of each ledger entry. */
  sizes: Int32Array;
  /**
   * [C_VICTIM] threadId the reclaim scenario reclaims; [C_STOPPED] crash path + 1 where the worker
   * stopped; [C_KEEP] bytes a realloc in flight must keep.
   */
  ctl: Int32Array;
}

export const L_INFLIGHT = 0;
export const L_COUNT = 1;
export const L_FIRST = 2;
export const LEDGER_ENTRIES = 1024;
export const C_VICTIM = 0;
export const C_STOPPED = 1;
/** C_STOPPED's value for a stop at an Atomics call (crash paths are 1 .. CRASH_PATHS.length). */
export const ATOMICS_STOP = 1000;
/** While a realloc is in flight: the leading bytes of its block that must keep their pattern. */
export const C_KEEP = 2;

/** The byte every block of ledger entry `i` is filled with. */
export function patternOf(i: number): number {
  return ((i * 13 + 7) & 0xff) | 1;
}

/** malloc through the ledger: the entry is marked in flight around the call. */
export function ledgerMalloc(heap: SharedHeap, d: CrashWorkerData, size: number): number {
  const i = d.ledger[L_COUNT]!;
  d.sizes[i] = size;
  Atomics.store(d.ledger, L_INFLIGHT, i);
  const p = heap.malloc(size);
  if (p !== 0) heap.u8.fill(patternOf(i), p, p + size);
  d.ledger[L_FIRST + i] = p;
  d.ledger[L_COUNT] = i + 1;
  Atomics.store(d.ledger, L_INFLIGHT, -1);
  return i;
}

/** free through the ledger. */
export function ledgerFree(heap: SharedHeap, d: CrashWorkerData, i: number): void {
  const p = d.ledger[L_FIRST + i]!;
  if (p === 0) return;
  Atomics.store(d.ledger, L_INFLIGHT, i);
  heap.free(p);
  d.ledger[L_FIRST + i] = 0;
  Atomics.store(d.ledger, L_INFLIGHT, -1);
}

/**
 * realloc through the ledger: while in flight, the entry names the old block, its size is the
 * larger of the two and C_KEEP the bytes that must survive; the bytes a block gained get the
 * entry's pattern afterwards.
 */
export function ledgerRealloc(heap: SharedHeap, d: CrashWorkerData, i: number, size: number): number {
  const p = d.ledger[L_FIRST + i]!;
  const old = d.sizes[i]!;
  // In flight before the size changes: a stop at one of these Atomics calls (the test stops at
  // every one) leaves the entry either whole or in flight.
  Atomics.store(d.ctl, C_KEEP, Math.min(old, size));
  Atomics.store(d.ledger, L_INFLIGHT, i);
  d.sizes[i] = Math.max(old, size);
  const q = heap.realloc(p, size);
  if (q !== 0) {
    if (size > old) heap.u8.fill(patternOf(i), q + old, q + size);
    d.ledger[L_FIRST + i] = q;
    d.sizes[i] = size;
  } else {
    d.sizes[i] = old;
  }
  Atomics.store(d.ledger, L_INFLIGHT, -1);
  Atomics.store(d.ctl, C_KEEP, 0);
  return q;
}

/** alignedAlloc through the ledger. */
export function ledgerAligned(heap: SharedHeap, d: CrashWorkerData, align: number, size: number): number {
  const i = d.ledger[L_COUNT]!;
  d.sizes[i] = size;
  Atomics.store(d.ledger, L_INFLIGHT, i);
  const p = heap.alignedAlloc(align, size);
  if (p !== 0) heap.u8.fill(patternOf(i), p, p + size);
  d.ledger[L_FIRST + i] = p;
  d.ledger[L_COUNT] = i + 1;
  Atomics.store(d.ledger, L_INFLIGHT, -1);
  return i;
}

export interface CrashScenario {
  options: HeapOptions;
  /** In the worker, before 'go' (not counted). */
  workerSetup?(heap: SharedHeap, d: CrashWorkerData): void;
  /** On the main thread, between the worker's setup and 'go' (not counted). */
  mainMiddle?(heap: SharedHeap, d: CrashWorkerData): void;
  /** In the worker, crash points armed. */
  workerRun(heap: SharedHeap, d: CrashWorkerData): void;
}

// Small magazines and frequent drains make every slow path run often in a short scenario.
const SMALL: HeapOptions = {
  initialBytes: 12 * MiB, maxBytes: 40 * MiB, maxThreads: 4, magazineCapacity: 4, refillCount: 2, drainInterval: 8, stage1Keep: 1,
};

export const CRASH_SCENARIOS: Record<string, CrashScenario> = {
  /** Refill, drains of a full magazine and periodic ones, slab take and give-back, Stage 1 push and pop. */
  'own slabs': {
    options: SMALL,
    workerRun(heap, d) {
      const a: number[] = [];
      for (let k = 0; k < 12; k++) a.push(ledgerMalloc(heap, d, 48));
      for (let k = 0; k < 6; k++) a.push(ledgerMalloc(heap, d, 9 * KiB));
      for (let k = 0; k < a.length; k += 2) ledgerFree(heap, d, a[k]!);
      heap.flush();
      for (let k = 1; k < a.length; k += 2) ledgerFree(heap, d, a[k]!);
      heap.flush(); // empty slabs: one to Stage 1, the others' slots given back
      for (let k = 0; k < 4; k++) ledgerMalloc(heap, d, 9 * KiB); // Stage-1 pop
    },
  },
  /**
   * A refill of a class of one block a slab (40 KiB) from a deep Stage-1 list: more than one slab
   * a refill (magazine.ts FEW_BLOCKS_MAX), each popped, made current, carved and left full.
   */
  'few-block refill': {
    options: { ...SMALL, stage1Keep: 64 },
    workerSetup(heap) {
      const a: number[] = [];
      for (let k = 0; k < 20; k++) a.push(heap.malloc(40 * KiB));
      for (const p of a) heap.free(p);
      heap.flush(); // 20 empty slabs of the class on its Stage-1 list
    },
    workerRun(heap, d) {
      for (let k = 0; k < 4; k++) ledgerMalloc(heap, d, 40 * KiB); // two refills of two slabs each
    },
  },
  /**
   * A deep magazine (magazine.ts deepen): a class of one block a slab (40 KiB) whose refills take 16
   * slabs between two looks gets one, in the block of a slab taken on a fresh slot; its frees stay in
   * it; the flush gives it back (drained in place, its block onto the 64 KiB magazine). A look that
   * gives one back calls the same undeepen; a reclaim of a thread holding one: the reclaim scenario.
   */
  'deep magazine': {
    options: { ...SMALL, initialBytes: 16 * MiB },
    // The 16 refills that make the class deep are plain slab takes, whose every step the other
    // scenarios stop at: they run unarmed, before the stops are counted (their slabs still count
    // toward deepening, as no look of the class comes between).
    workerSetup(heap, d) {
      ledgerMalloc(heap, d, 16);
      for (let k = 0; k < 16; k++) ledgerMalloc(heap, d, 40 * KiB);
    },
    workerRun(heap, d) {
      for (let k = 0; k < 2; k++) ledgerMalloc(heap, d, 40 * KiB); // deepened at the 17th slab
      // 18 entries: more than the two journal areas hold (magazineCapacity 4), so that the flush
      // drains the deep magazine in parts (magazine.ts drainDownTo).
      for (let i = 1; i <= 18; i++) ledgerFree(heap, d, i);
      // Then a block cached in the magazine of the first class, which lies just after the two
      // journal areas (the 19th free, after the countdown's drains at the 8th and 16th): a reclaim
      // that copied a whole deep journal into an area ran over it (an audit).
      ledgerFree(heap, d, 0);
      heap.flush(); // given back
    },
  },
  /** Remote frees both ways: publishing chains onto another thread's slab, notices, collecting. */
  remote: {
    options: SMALL,
    workerSetup(heap, d) {
      for (let k = 0; k < 10; k++) ledgerMalloc(heap, d, 64);
    },
    mainMiddle(heap, d) {
      // The main thread frees half of the worker's blocks (remote: published to its slab, noticed) ...
      for (let i = 0; i < 10; i += 2) {
        heap.free(d.ledger[L_FIRST + i]!);
        d.ledger[L_FIRST + i] = 0;
      }
      heap.flush();
      // ... and gives it blocks of its own to free.
      for (let k = 0; k < 8; k++) {
        const i = d.ledger[L_COUNT]!;
        const p = heap.malloc(64);
        heap.u8.fill(patternOf(i), p, p + 64);
        d.sizes[i] = 64;
        d.ledger[L_FIRST + i] = p;
        d.ledger[L_COUNT] = i + 1;
      }
    },
    workerRun(heap, d) {
      for (let i = 10; i < 18; i++) ledgerFree(heap, d, i); // remote frees: drained as chains
      heap.flush();
      for (let k = 0; k < 6; k++) ledgerMalloc(heap, d, 64); // refill collects the remote list
    },
  },
  /** Large runs of slots and of SuperSlabs, and the growth of the buffer. */
  large: {
    options: { ...SMALL, initialBytes: 6 * MiB },
    workerRun(heap, d) {
      const a = ledgerMalloc(heap, d, 200 * KiB);
      const b = ledgerMalloc(heap, d, 3 * MiB); // grows the buffer
      ledgerFree(heap, d, a); // into the large-run list of its span
      ledgerFree(heap, d, ledgerMalloc(heap, d, 196 * KiB)); // the same 4 slots: taken from that list, and back
      ledgerFree(heap, d, b);
      ledgerMalloc(heap, d, 2 * MiB);
      // realloc in place: a run grown over the free slots after it, shrunk, and one past a
      // SuperSlab grown from the carved end into fresh ones (the buffer grows).
      const g = ledgerMalloc(heap, d, 300 * KiB);
      ledgerRealloc(heap, d, g, 700 * KiB);
      ledgerRealloc(heap, d, g, 150 * KiB);
      const e = ledgerMalloc(heap, d, 1200 * KiB);
      ledgerRealloc(heap, d, e, 4 * MiB);
      ledgerRealloc(heap, d, e, 1100 * KiB);
    },
  },
  /** More large paths: alignments above a slot, realloc's move to a run with room, lists of several runs. */
  'large-more': {
    options: { ...SMALL, initialBytes: 6 * MiB, stage1Keep: 4 },
    workerRun(heap, d) {
      const a = ledgerAligned(heap, d, 128 * KiB, 200 * KiB); // two-slot aligned run in a SuperSlab
      const b = ledgerAligned(heap, d, 1 * MiB, 300 * KiB); // a whole SuperSlab, aligned
      const c = ledgerAligned(heap, d, 1 * MiB, 1500 * KiB); // whole SuperSlabs in a row
      const r1 = ledgerMalloc(heap, d, 150 * KiB);
      const r2 = ledgerMalloc(heap, d, 150 * KiB);
      const r3 = ledgerMalloc(heap, d, 150 * KiB);
      ledgerFree(heap, d, r1);
      ledgerFree(heap, d, r2);
      ledgerFree(heap, d, r3); // three runs on the 3-slot list
      ledgerFree(heap, d, ledgerMalloc(heap, d, 140 * KiB)); // popped and pushed again
      ledgerFree(heap, d, a);
      ledgerFree(heap, d, b);
      const g = ledgerMalloc(heap, d, 200 * KiB); // from the 4-slot list
      ledgerRealloc(heap, d, g, 260 * KiB); // moved to a run with as many free slots after it (largeAllocToGrow), the pooled runs given back first
      ledgerRealloc(heap, d, g, 900 * KiB); // moved again (15 slots: no room fits in a SuperSlab)
      ledgerRealloc(heap, d, g, 1000 * KiB); // grown in place over the free slot after it
      ledgerFree(heap, d, c);
      ledgerMalloc(heap, d, 1300 * KiB); // 21 slots in a row across SuperSlabs (findRun) where c was
      ledgerRealloc(heap, d, g, 60 * KiB); // large to small: moved
    },
  },
  /** Empty slabs given back: slots to Stage 2 (stage1Keep 0), and Stage-1 slabs given back before the heap grows. */
  'give-back': {
    options: { ...SMALL, initialBytes: 5 * MiB, maxBytes: 5 * MiB, stage1Keep: 0 },
    workerRun(heap, d) {
      const a: number[] = [];
      for (let k = 0; k < 8; k++) a.push(ledgerMalloc(heap, d, 20 * KiB)); // 3 per 64 KiB slab
      for (const i of a) ledgerFree(heap, d, i);
      heap.flush(); // each empty slab's slots go back under the lock
      ledgerMalloc(heap, d, 20 * KiB); // Stage 2 again
      ledgerMalloc(heap, d, 600 * KiB); // a run of slots where the slabs were
    },
  },
  /** The trim (trimInterval 1): before a slab is taken, the other magazines drained and their empty slabs given back. */
  trim: {
    options: { ...SMALL, trimInterval: 1, stage1Keep: 0 },
    workerRun(heap, d) {
      const a: number[] = [];
      for (let k = 0; k < 6; k++) a.push(ledgerMalloc(heap, d, 16 * KiB));
      for (const i of a) ledgerFree(heap, d, i); // four stay in the magazine (its capacity)
      for (let k = 0; k < 4; k++) ledgerMalloc(heap, d, 20 * KiB); // a slab of another class: the trim first
    },
  },
  /** The reclaim of a dead thread (set up by the test) by this worker, stopped anywhere in it. */
  reclaim: {
    options: SMALL,
    workerRun(heap, d) {
      heap.reclaim(Atomics.load(d.ctl, C_VICTIM));
    },
  },
};
