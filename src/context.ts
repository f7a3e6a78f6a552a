/**
 * The thread context: everything a thread needs to work on the heap, bound to one thread slot.
 *
 * A context is never shared between threads. It holds the fixed-length views over the buffer
 * (re-created when the generation word G_GEN says the buffer grew), the geometry, and the word
 * indices of the thread area it is bound to. Every slow path takes a context; the public
 * SharedHeap facade holds one privately.
 *
 * Identities, one name each:
 *   slot       the thread slot whose magazines and slabs this context works on (0 .. maxThreads-1)
 *   threadId   the id reclaim() knows a thread by: Node's threadId, or one the heap hands out
 *   runner     the thread actually running: a reclaim builds a context bound to the dead thread's
 *              slot, but the lock is taken in the reclaimer's name (runner.slot) and its
 *              re-entrancy depth (runner.lockDepth) is the reclaimer's.
 */
import * as layout from './layout.js';
import { type Geometry } from './layout.js';
import * as classes from './size-classes.js';
import { HeapStateError } from './errors.js';
import type { MemoryCopy, MemoryZero, SharedMemory } from './wasm-copy.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { G_BUFFER_SUPERS, G_DRAIN_INTERVAL, G_TRIM_INTERVAL, G_GEN, G_MAG_CAP, G_MAGIC, G_MAX_SUPERS, G_MAX_THREADS, G_META_SUPERS, G_REFILL,
  G_LOCK_BEAT, G_UNSURE, G_VERSION, LAYOUT_VERSION, MAGIC, MAG_BYTES_PER_CLASS, MAG_ENTRY_WORDS, SLOT_SHIFT, SM_SHIFT,
  SUPER_BYTES, TH_F64_W, TH_TOP, geometry, headerSizesProblem, magazineWords, isDeepTop, deepMagazineBase, deepMagazineCap } = layout;
const { NUM_CLASSES, PER_DOUBLING, SIZE } = classes;

/** The thread that runs the code: whose name the lock is taken in. */
export interface Runner {
  /** Its own thread slot (-1 before it attached). */
  slot: number;
  /** Its lock word without the state bits: lockWord(slot, 0, the slot's TH_LOCK_GEN after its claim) (lock.ts). */
  lockMe: number;
  /** Re-entrancy depth of the global lock held by this thread. */
  lockDepth: number;
  /** Set when a call was cut off by an error not the allocator's own (fault.ts): the lock, if held, is never released. */
  faulted: boolean;
}

/** Checks the header of `buffer` and returns its geometry; `fn` names the call in errors. */
export function readGeometry(buffer: SharedArrayBuffer, fn: string): Geometry {
  if (buffer.byteLength < 4096) {
    throw new HeapStateError(`${fn}: the buffer is not a sabmalloc heap (${buffer.byteLength} bytes, too short)`);
  }
  const i32 = new Int32Array(buffer, 0, 1024);
  if (Atomics.load(i32, G_MAGIC) !== MAGIC) {
    throw new HeapStateError(`${fn}: the buffer is not a sabmalloc heap (bad magic number)`);
  }
  if (i32[G_VERSION] !== LAYOUT_VERSION) {
    throw new HeapStateError(`${fn}: layout version ${i32[G_VERSION]}, expected ${LAYOUT_VERSION}`);
  }
  const supers = Atomics.load(i32, G_BUFFER_SUPERS);
  const wrong = headerSizesProblem(i32[G_MAX_SUPERS], i32[G_MAX_THREADS], i32[G_MAG_CAP], supers);
  if (wrong !== undefined) throw new HeapStateError(`${fn}: the buffer is not a sabmalloc heap (its header says ${wrong})`);
  const geo = geometry(i32[G_MAX_SUPERS], i32[G_MAX_THREADS], i32[G_MAG_CAP], NUM_CLASSES);
  if (geo.metaSupers !== i32[G_META_SUPERS]) throw new HeapStateError(`${fn}: inconsistent header`);
  // The heap's own buffer grows before its header says so (slots.ts growBuffer): shorter is a part of a copy.
  if (buffer.byteLength < supers * SUPER_BYTES) {
    throw new HeapStateError(
      `${fn}: the buffer holds ${buffer.byteLength} bytes where its heap's header says ${supers * SUPER_BYTES}: ` +
        "a cut copy of a heap's buffer, not the heap's own",
    );
  }
  return geo;
}

export class ThreadContext {
  readonly buffer: SharedArrayBuffer;
  readonly geo: Geometry;
  /** Word index of slot 0's meta entry (geo.slotMetaW). */
  readonly smW: number;
  /** The thread running this code (shared with a reclaim's context for a dead slot). */
  readonly runner: Runner;
  // ---- views, re-created by refreshViews() when G_GEN moves ---------------------------------
  i32: Int32Array;
  bytes: Uint8Array;
  f64: Float64Array;
  /** Buffer length >>> SLOT_SHIFT as of the views: free() of a block at or beyond is a slow path. */
  slotLimit = 0;
  /** Byte length of the views. */
  viewBytes = 0;
  /** G_GEN as of the views. */
  gen = -1;
  /**
   * realloc's copy within the buffer when this thread has the heap's WebAssembly.Memory
   * (wasm-copy.ts: `memory.copy`, faster than copyWithin on a shared buffer), else null.
   */
  copy: MemoryCopy | null = null;
  /**
   * calloc's zeroing when this thread has the heap's WebAssembly.Memory (wasm-copy.ts:
   * `memory.fill`, a memset), else null (zeroBytes' Float64Array stores).
   */
  zero: MemoryZero | null = null;
  /** The heap's WebAssembly.Memory, when this thread was given it (heap.memory). */
  memory: SharedMemory | undefined = undefined;
  // ---- the bound thread slot -----------------------------------------------------------------
  slot = -1;
  /** Word index of the slot's thread area. */
  thW = 0;
  /** thW + TH_TOP: per-class magazine tops. */
  topW = 0;
  /**
   * Frees left before the next periodic drain (drainPeriodic), which drains the class of the free
   * that brings it to 0 and, in turn, one other class: one counter, a plain field of this
   * thread's object (one word per class cost W1 about 5%).
   */
  drainLeft = 0;
  /** True only while SharedHeap's #primeFeedback runs: the fast paths' calls out return at once, doing nothing. */
  priming = false;
  /** The class the last periodic drain took in turn (see drainPeriodic). */
  drainCursor = 0;
  /**
   * What the periodic drain saw of each class's magazine when it last looked at it, to tell a
   * magazine the thread allocates from (which it leaves alone) from one that only fills
   * (drainPeriodic): the top (0: never looked), the block of the entry under that top, and
   * refillsCls as of then. Thread-local hints, not shared: a stale one costs a drain or saves one.
   */
  readonly seenTop: Int32Array;
  readonly seenBlock: Int32Array;
  readonly seenRefills: Int32Array;
  /** Refills of each class's magazine (refillMagazine), thread-local. */
  readonly refillsCls: Int32Array;
  /**
   * Slabs each class's refills took from the pool since the periodic drain last looked at the
   * class (or a flush), and looks in a row that found a deep magazine unused (magazine.ts deepen).
   * Thread-local hints, not shared: a stale one only moves the moment a magazine deepens or goes back.
   */
  readonly slabsSinceLook: Int32Array;
  readonly deepIdleLooks: Int32Array;
  /**
   * 1 for a slab of this thread's that a periodic look found empty at the back of its partial
   * list and left there (slab.ts releaseEmptyPartials), by slot; cleared when the slab leaves the
   * list. Thread-local hints, not shared: a stale one gives a slab back one look early.
   */
  readonly emptySeen: Uint8Array;
  /**
   * 1 for a slab of this thread's that is empty and kept for its own reuse (an empty current slab,
   * or one at the back of a partial list: slab.ts afterBlocksReturned), by slot; keptBytes adds up
   * their slots' bytes, which keepBudget bounds. Thread-local hints, not shared: a stale one only
   * moves the moment an empty slab goes back.
   */
  readonly kept: Uint8Array;
  /**
   * 1 for a thread slot whose ask word this thread found FLUSHING, waited on as long as
   * flush-ask.ts allows, and found FLUSHING still (a thread stopped in its flush, not reclaimed
   * yet); cleared when this thread next finds the word saying anything else. A later ask of this
   * thread's does not wait on that word again (flush-ask.ts waitForAnswers). Thread-local, not
   * shared: a stale 1 only skips one wait for a flush that is under way.
   */
  readonly flushStuck: Uint8Array;
  /** The other threads' remote frees when this thread last asked them to flush (flush-ask.ts askRound). */
  remoteFreesAtAsk = 0;
  /** The other threads' slow-path work when this thread's asks last found nothing, or -1 (flush-ask.ts askRound). */
  workAtFruitlessAsk = -1;
  keptBytes = 0;
  /** The most bytes of empty slabs this thread keeps (slab.ts KEEP_EMPTY_BYTES, at most an eighth of the heap's largest size). */
  readonly keepBudget: number;
  /** G_UNSURE as of this thread's last settling of unsure notice flags (slab.ts processNotices). Thread-local. */
  unsureSeen = 0;
  /** Float64 index of the slot's counters (TF_*). */
  tfW = 0;
  /** The public id of the thread bound to the slot (see the file comment). */
  threadId = 0;
  /** Per-class magazine capacity (entries) and refill batch, from the header. */
  readonly magCapCls: Int32Array;
  readonly refillCls: Int32Array;
  readonly drainInterval: number;
  /** From the header: trim before every this many slabs taken from the pool (0: never; magazine.ts trimOthers). */
  readonly trimInterval: number;
  /** Slabs taken from the pool since the last trim. Thread-local, not shared. */
  takesSinceTrim = 0;
  /** While a trim runs (magazine.ts trimOthers): the slabs it empties go to Stage 2, not Stage 1 (pool.ts releaseEmptySlab). */
  trimming = false;
  /**
   * Whether the last takeBlocks carved a block beyond its slab's touched marks (fresh pages):
   * refillMagazine then stops at that slab. Thread-local, not shared.
   */
  carvedFresh = false;
  /**
   * Bytes at the start of the large run this thread took last that the heap had handed out or
   * written before (its slots' SM_TOUCHED marks): the rest was never touched and reads as zero,
   * so calloc zeroes only these (large.ts largeAlloc). Thread-local, not shared.
   */
  largeDirtyBytes = 0;
  /**
   * Debug mode, while this thread takes a large block: writes the block's canary and size record
   * (debug.ts debugRecordLarge), which large.ts takeRun and pool.ts largePoolPop call before they
   * mark the run live, so that a thread stopped anywhere leaves no live run without its record.
   * null otherwise. Thread-local.
   */
  debugLarge: ((p: number) => void) | null = null;
  /** Large frees that found keeping runs unprofitable (pool.ts largePoolReserve). Thread-local, not shared. */
  largeProbes = 0;
  /** True once the thread detached (or before it attached): calls then throw. */
  detached = true;
  /**
   * Names the thread's attachment that stands for this one (reclaim.ts latestAttachment): this one,
   * or a later one that took its watches over (adoptWatches: a fault stopped it, or it detached while
   * workers it watched ran; mergeWatches). A cell that adoptWatches shares with the new attachment
   * rather than a link from each attachment to the next: a watched worker's exit listener keeps the
   * attachment that watched it, and with links it kept every later one too (one per detach and attach
   * again of the watching thread while the worker ran, 67 KB each with a heap of 2 GiB: an audit).
   */
  line: { latest: ThreadContext } = { latest: this };

  /** From now on every call refuses: malloc's and free's fast paths miss into slow paths that throw (detach, a fault). */
  refuseCalls(): void {
    this.detached = true;
    this.topW = layout.DETACHED_TOPS_W;
    this.slotLimit = 0;
  }

  constructor(buffer: SharedArrayBuffer, geo: Geometry, runner: Runner) {
    this.buffer = buffer;
    this.geo = geo;
    this.smW = geo.slotMetaW;
    this.runner = runner;
    this.i32 = new Int32Array(0);
    this.bytes = new Uint8Array(0);
    this.f64 = new Float64Array(0);
    this.refreshViews();
    const i32 = this.i32;
    const magCapCls = new Int32Array(NUM_CLASSES);
    const refillCls = new Int32Array(NUM_CLASSES);
    const refill = i32[G_REFILL];
    for (let c = 0; c < NUM_CLASSES; c++) {
      // A class of two per doubling takes the requests of two classes of four: twice the bytes
      // (with two per doubling from 4 KiB all the way up, W2's 8-32 KiB blocks at one thread
      // were refilled 14% more often than with four without this, and 34% less often with it).
      const bytes = PER_DOUBLING[c] === 2 ? 2 * MAG_BYTES_PER_CLASS : MAG_BYTES_PER_CLASS;
      const cap = Math.max(1, Math.min(geo.magCap, Math.floor(bytes / SIZE[c])));
      magCapCls[c] = cap;
      refillCls[c] = Math.max(1, Math.min(refill, cap >>> 1 || 1));
    }
    this.magCapCls = magCapCls;
    this.refillCls = refillCls;
    this.seenTop = new Int32Array(NUM_CLASSES);
    this.seenBlock = new Int32Array(NUM_CLASSES);
    this.seenRefills = new Int32Array(NUM_CLASSES);
    this.refillsCls = new Int32Array(NUM_CLASSES);
    this.slabsSinceLook = new Int32Array(NUM_CLASSES);
    this.deepIdleLooks = new Int32Array(NUM_CLASSES);
    this.emptySeen = new Uint8Array(geo.maxSupers * layout.SLOTS_PER_SUPER);
    this.kept = new Uint8Array(geo.maxSupers * layout.SLOTS_PER_SUPER);
    this.flushStuck = new Uint8Array(geo.maxThreads);
    this.keepBudget = Math.min(layout.KEEP_EMPTY_BYTES, (geo.maxSupers * SUPER_BYTES) / 8);
    this.drainInterval = i32[G_DRAIN_INTERVAL];
    this.trimInterval = i32[G_TRIM_INTERVAL];
  }

  /** Points the context at thread slot `slot`. */
  bind(slot: number): void {
    const geo = this.geo;
    this.slot = slot;
    this.thW = geo.threadsW + slot * geo.threadWords;
    this.topW = this.thW + TH_TOP;
    this.drainLeft = this.drainInterval;
    this.unsureSeen = Atomics.load(this.i32, G_UNSURE); // flags marked before it owned any slab are not its own
    this.tfW = (this.thW + TH_F64_W) >>> 1;
  }

  /** Re-creates the fixed-length views over the buffer's current length. */
  refreshViews(): void {
    const buf = this.buffer;
    const gen = Atomics.load(new Int32Array(buf, 0, 16), G_GEN);
    const bytes = buf.byteLength;
    // Every view made before any field changes, the generation stored last, with no call between
    // the stores: a call cut off here by a stack overflow (from heap.u8, usableSize or another
    // call that runs outside guarded(), fault.ts, and leaves the instance in use) left the new
    // generation with the old views, which ensureViews then never replaced: malloc handed out
    // blocks beyond them whose state bytes and contents went nowhere, and free refused them as
    // outside the heap (an audit of growable heaps, test/refresh-views-cut-off.test.ts).
    const i32 = new Int32Array(buf, 0, bytes >>> 2);
    const u8 = new Uint8Array(buf, 0, bytes);
    const f64 = new Float64Array(buf, 0, bytes >>> 3);
    this.viewBytes = bytes;
    this.i32 = i32;
    this.bytes = u8;
    this.f64 = f64;
    this.slotLimit = this.detached ? 0 : bytes >>> SLOT_SHIFT; // a detached context's free() always misses
    this.gen = gen;
  }

  /** Views current with the buffer (a plain load of G_GEN: slow paths only). */
  ensureViews(): void {
    if (this.i32[G_GEN] !== this.gen) this.refreshViews();
  }

  /**
   * Word index of the first magazine entry of class `cls` (the empty sentinel is just before it):
   * in the thread area, or in the deep magazine its top lies in (layout.ts isDeepTop).
   */
  magazineBase(cls: number): number {
    return this.deep(cls) ? deepMagazineBase(this.i32[this.topW + cls]) : this.shallowBase(cls);
  }

  /** Whether the magazine of `cls` holds blocks (its top above its base). */
  holdsBlocks(cls: number): boolean {
    return this.i32[this.topW + cls] !== this.magazineBase(cls);
  }

  /** Whether the magazine of `cls` is deep (its top in a 64 KiB block: layout.ts isDeepTop). */
  deep(cls: number): boolean {
    return isDeepTop(this.i32[this.topW + cls], this.geo.metaSupers);
  }

  /**
   * Whether this thread's deep magazines hold a SuperSlab's worth of blocks or more: no fresh
   * memory is carved meanwhile (slots.ts carveSuperSlabs); its callers give them back first
   * (magazine.ts giveBackDeep).
   */
  deepHoldsSuper(): boolean {
    let bytes = 0;
    for (let c = 0; c < NUM_CLASSES; c++) {
      if (this.deep(c)) bytes += ((this.i32[this.topW + c] - deepMagazineBase(this.i32[this.topW + c])) / MAG_ENTRY_WORDS) * SIZE[c];
    }
    return bytes >= SUPER_BYTES;
  }

  /** The entries the magazine of `cls` holds at most (while it is deep, the capacity its block says: layout.ts deepMagazineCap). */
  magazineCap(cls: number): number {
    return this.deep(cls) ? deepMagazineCap(this.i32, deepMagazineBase(this.i32[this.topW + cls])) : this.magCapCls[cls];
  }

  /** Word index of the first entry of the magazine of `cls` in the thread area. */
  shallowBase(cls: number): number {
    return this.thW + this.geo.magW + cls * magazineWords(this.geo.magCap) + MAG_ENTRY_WORDS;
  }

  /**
   * The heartbeat of a long hold of the global lock (layout.ts G_LOCK_BEAT): called every
   * LOCK_BEAT_BYTES or so of work in proportion to a block's size, it tells a waiter whose wait is
   * bounded (a main thread) that the holder is alive and making progress, so that it waits on
   * instead of giving up on a healthy heap. Nothing when this thread does not hold the lock.
   */
  beatLock(): void {
    if (this.runner.lockDepth > 0) Atomics.add(this.i32, G_LOCK_BEAT, 1);
  }

  /** Word index of slab slot `slot`'s meta entry. */
  metaW(slot: number): number {
    return this.smW + (slot << SM_SHIFT);
  }

  /** Word index of the area of thread slot `t`. */
  threadW(t: number): number {
    return this.geo.threadsW + t * this.geo.threadWords;
  }
}
