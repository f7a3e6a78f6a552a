/**
 * Threads: creating the buffer, claiming a thread slot on attach, giving it back on detach,
 * and reclaiming the slot of a thread that died (worker.terminate() gives it no chance to clean
 * up). A reclaimer wins the dead slot with one CAS (ATTACHED or DEAD -> RECLAIMING) and then acts
 * as that thread: it drains its magazines, collects its notices, rebuilds each of its slabs from
 * the block state bytes (the dead thread may have stopped half-way through a list operation) and
 * gives empty slabs to the pool and the others to the abandoned lists.
 */
import {
  DETACHED_W, F_RECLAIMS, G_BUFFER_SUPERS, G_CARVED, G_DRAIN_INTERVAL, G_HEAP_ID, G_MAG_CAP, G_MAGIC,
  G_MAX_SUPERS, G_MAX_THREADS, G_META_SUPERS, G_NEXT_THREAD_ID, G_REFILL, G_S1_KEEP, G_THREADS_ATTACHED, G_VERSION,
  K_SLAB, LAYOUT_VERSION, MAGIC, MAG_EMPTY_SENTINEL, MAG_ENTRY_WORDS, MAG_FULL_SENTINEL, MAX_HEAP_BYTES,
  OWNER_NONE, SLOTS_PER_SUPER, SLOT_SHIFT, SM_BUMP, SM_CLS, SM_DATA, SM_FREE, SM_HEAD, SM_INUSE, SM_KIND, SM_LISTED,
  SM_COLLECTS, SM_NFREE, SM_NOTIFIED, SM_OWNER, SM_REMOTE, SM_SHIFT, ST_PENDING, SM_STATE, ST_CACHED, ST_FREE, SUPER_BYTES, SUPER_SHIFT, TF_WORDS, TH_CUR, TH_DRAIN,
  G_ORPHANS, TH_COLLECT_MW, TH_COLLECT_NEXT, TH_INFLIGHT, TH_JOURNAL_CLS, TH_JOURNAL_DONE, TH_JOURNAL_N, TH_JOURNAL_W,
  TH_PUSHING, TH_RETURNING, OWNER_POOL, magazineWords, TH_F64_W, TH_NODE_ID, TH_NOTICE, TH_PARTIAL, TH_STATE, TH_TOP, TS_ATTACHED, TS_DEAD, TS_FREE,
  TS_RECLAIMING, geometry, type Geometry,
} from './layout.js';
import { COUNT, NUM_CLASSES, SIZE } from './size-classes.js';
import type { HeapInternals } from './heap.js';
import { HeapStateError, ThreadSlotsExhaustedError, describe } from './errors.js';
import {
  collectRemote, drainClass, drainJournal, finishCollect, journalEntries, magazineBase, notifyOwner, processNotices,
  publishChain, releaseEmptyPartials, slabMetaOf,
} from './refill.js';
import { abandonedPush, releaseEmptySlab, repairStage1Push, returnSlots } from './pool.js';
import { lockAcquire, lockAcquireNoWait, lockRelease } from './lock.js';

export interface HeapOptions {
  /** Bytes of the buffer at creation (rounded up to 1 MiB). Default 64 MiB. */
  initialBytes?: number;
  /** The most the buffer may grow to (a growable SharedArrayBuffer when above initialBytes). Default initialBytes. */
  maxBytes?: number;
  /** Thread slots: threads attached at once. Default 64. */
  maxThreads?: number;
  /** Upper bound of blocks a thread caches per class (large classes cache fewer: 256 KiB per class). Default 64. */
  magazineCapacity?: number;
  /** Blocks moved into an empty magazine at once (at most half its capacity). Default 32. */
  refillCount?: number;
  /** A thread drains a class's magazine after this many frees of that class. Default 1024. */
  drainInterval?: number;
  /** EMPTY slabs a class keeps in its Stage-1 list before giving slots back to Stage 2 (they also give them back before the heap grows). Default 32. */
  stage1Keep?: number;
}

const MAG_BYTES_PER_CLASS = 256 << 10; // a magazine holds at most this many bytes of blocks

function option(opts: Record<string, unknown>, name: string, dflt: number, min: number, max: number): number {
  const v = opts[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`SharedHeap.create(options.${name}): expected a number, got ${describe(v)}`);
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`SharedHeap.create(options.${name}): expected an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

export function createBuffer(options: HeapOptions): SharedArrayBuffer {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`SharedHeap.create(options): expected an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  const initialBytes = option(o, 'initialBytes', 64 << 20, SUPER_BYTES, MAX_HEAP_BYTES);
  const maxBytes = option(o, 'maxBytes', Math.max(initialBytes, 0), SUPER_BYTES, MAX_HEAP_BYTES);
  if (maxBytes < initialBytes) {
    throw new RangeError(`SharedHeap.create(options.maxBytes): ${maxBytes} is below options.initialBytes ${initialBytes}`);
  }
  const maxThreads = option(o, 'maxThreads', 64, 1, 1024);
  const magCap = option(o, 'magazineCapacity', 64, 1, 4096);
  const refill = option(o, 'refillCount', 32, 1, 4096);
  const drainInterval = option(o, 'drainInterval', 1024, 1, 2 ** 30);
  const keep = option(o, 'stage1Keep', 32, 0, 1 << 20);
  const maxSupers = Math.ceil(maxBytes / SUPER_BYTES);
  const geo = geometry(maxSupers, maxThreads, magCap, NUM_CLASSES);
  const initialSupers = Math.ceil(initialBytes / SUPER_BYTES);
  if (initialSupers < geo.metaSupers + 1 || maxSupers < geo.metaSupers + 1) {
    throw new RangeError(
      `SharedHeap.create(options.initialBytes): ${initialBytes} leaves no room for blocks; the metadata for ` +
        `maxBytes ${maxBytes} and maxThreads ${maxThreads} takes ${geo.metaSupers} MiB, so at least ${(geo.metaSupers + 1) * SUPER_BYTES} is needed`,
    );
  }
  const bytes = initialSupers * SUPER_BYTES;
  const buffer =
    maxSupers > initialSupers
      ? new (SharedArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer)(bytes, {
          maxByteLength: maxSupers * SUPER_BYTES,
        })
      : new SharedArrayBuffer(bytes);
  const i32 = new Int32Array(buffer);
  i32[G_VERSION] = LAYOUT_VERSION;
  i32[G_HEAP_ID] = (Math.random() * 0x7fffffff) | 1;
  i32[G_MAX_SUPERS] = maxSupers;
  i32[G_MAX_THREADS] = maxThreads;
  i32[G_META_SUPERS] = geo.metaSupers;
  i32[G_MAG_CAP] = magCap;
  i32[G_REFILL] = refill;
  i32[G_DRAIN_INTERVAL] = drainInterval;
  i32[G_S1_KEEP] = keep;
  i32[G_BUFFER_SUPERS] = initialSupers;
  i32[G_CARVED] = geo.metaSupers;
  i32[G_NEXT_THREAD_ID] = 1 << 30; // ids for threads without a Node threadId
  i32[DETACHED_W] = MAG_EMPTY_SENTINEL;
  for (let c = 0; c < 64; c++) i32[DETACHED_W + 2 + c] = DETACHED_W + 2;
  for (let s = 0; s < maxSupers * SLOTS_PER_SUPER; s++) i32[geo.slotMetaW + (s << SM_SHIFT) + SM_CLS] = -1;
  Atomics.store(i32, G_MAGIC, MAGIC); // last: attach() checks it
  return buffer;
}

export function readGeometry(i32: Int32Array): Geometry {
  if (i32.length < 64 || Atomics.load(i32, G_MAGIC) !== MAGIC) {
    throw new HeapStateError('SharedHeap.attach(buffer): the buffer is not a sabmalloc heap (bad magic number)');
  }
  if (i32[G_VERSION] !== LAYOUT_VERSION) {
    throw new HeapStateError(`SharedHeap.attach(buffer): layout version ${i32[G_VERSION]}, expected ${LAYOUT_VERSION}`);
  }
  const geo = geometry(i32[G_MAX_SUPERS], i32[G_MAX_THREADS], i32[G_MAG_CAP], NUM_CLASSES);
  if (geo.metaSupers !== i32[G_META_SUPERS]) throw new HeapStateError('SharedHeap.attach(buffer): inconsistent header');
  return geo;
}

function nodeThreadId(): number {
  const proc = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process;
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as { threadId?: number } | undefined;
  return typeof wt?.threadId === 'number' ? wt.threadId : -1;
}

/** Points the instance's per-thread fields at thread slot `tid`. */
export function bindThread(h: HeapInternals, tid: number): void {
  const geo = h.geo;
  h.tid = tid;
  h.thW = geo.threadsW + tid * geo.threadWords;
  h.topW = h.thW + TH_TOP;
  h.drainW = h.thW + TH_DRAIN;
  h.tfW = (h.thW + TH_F64_W) >>> 1;
}

function configureClasses(h: HeapInternals): void {
  const i32 = h.i32;
  const magCap = h.geo.magCap;
  h.magCapCls = new Int32Array(NUM_CLASSES);
  h.refillCls = new Int32Array(NUM_CLASSES);
  const refill = i32[G_REFILL];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const cap = Math.max(1, Math.min(magCap, Math.floor(MAG_BYTES_PER_CLASS / SIZE[c])));
    h.magCapCls[c] = cap;
    h.refillCls[c] = Math.max(1, Math.min(refill, cap >>> 1 || 1));
  }
  h.drainInterval = i32[G_DRAIN_INTERVAL];
}

/** Claims a free thread slot for the calling thread and sets up its magazines. */
export function attachThread(h: HeapInternals): void {
  const i32 = h.i32;
  const geo = h.geo;
  let tid = -1;
  let id = nodeThreadId();
  if (id < 0) id = Atomics.add(i32, G_NEXT_THREAD_ID, 1);
  for (let t = 0; t < geo.maxThreads; t++) {
    const w = geo.threadsW + t * geo.threadWords;
    if (Atomics.compareExchange(i32, w + TH_STATE, TS_FREE, TS_ATTACHED) === TS_FREE) {
      // The id right after the claim, so that a thread killed here can still be found by it.
      Atomics.store(i32, w + TH_NODE_ID, id + 1);
      tid = t;
      break;
    }
  }
  if (tid < 0) {
    throw new ThreadSlotsExhaustedError(
      `SharedHeap.attach(buffer): all ${geo.maxThreads} thread slots are taken (raise options.maxThreads, or detach() threads that are done)`,
    );
  }
  bindThread(h, tid);
  h.lockTid = tid;
  configureClasses(h);
  const thW = h.thW;
  for (let c = 0; c < NUM_CLASSES; c++) {
    const base = magazineBase(h, c);
    i32[base - 2] = MAG_EMPTY_SENTINEL;
    i32[base - 1] = MAG_EMPTY_SENTINEL;
    const end = base + h.magCapCls[c] * MAG_ENTRY_WORDS;
    i32[end] = MAG_FULL_SENTINEL;
    i32[end + 1] = MAG_FULL_SENTINEL;
    i32[thW + TH_TOP + c] = base;
    i32[thW + TH_DRAIN + c] = h.drainInterval;
    i32[thW + TH_CUR + c] = 0;
    i32[thW + TH_PARTIAL + c] = 0;
  }
  h.tf64.fill(0, h.tfW, h.tfW + TF_WORDS / 2);
  i32[thW + TH_COLLECT_MW] = 0;
  i32[thW + TH_PUSHING] = 0;
  i32[thW + TH_RETURNING] = 0;
  i32[thW + TH_JOURNAL_N] = 0;
  i32[thW + TH_INFLIGHT] = 0;
  Atomics.store(i32, thW + TH_NOTICE, 0);
  h.nodeThreadId = id;
  Atomics.add(i32, G_THREADS_ATTACHED, 1);
}

/** Drains every magazine of the calling thread and collects its notices. */
export function flushThread(h: HeapInternals): void {
  if (h.detached) throw new HeapStateError('flush(): this thread has detached from the heap');
  for (let c = 0; c < NUM_CLASSES; c++) drainClass(h, c);
  processNotices(h);
  for (let c = 0; c < NUM_CLASSES; c++) releaseEmptyPartials(h, c);
}

/** Every slab head owned by thread `tid` (a scan of the carved slot metas). */
function ownedSlabs(h: HeapInternals, tid: number): number[] {
  const i32 = h.i32;
  const out: number[] = [];
  const slots = Atomics.load(i32, G_CARVED) << (SUPER_SHIFT - SLOT_SHIFT);
  for (let s = h.geo.metaSupers << (SUPER_SHIFT - SLOT_SHIFT); s < slots; s++) {
    const mW = h.smW + (s << SM_SHIFT);
    if (i32[mW + SM_KIND] === K_SLAB && i32[mW + SM_HEAD] === s && Atomics.load(i32, mW + SM_OWNER) === tid) out.push(s);
  }
  return out;
}

/**
 * Gives up all slabs of the thread `h` is bound to: empty ones to the pool, the others to the
 * abandoned lists. With `rebuild`, each slab's local list is first rebuilt from its state bytes.
 */
function abandonAll(h: HeapInternals, rebuild: boolean): void {
  const i32 = h.i32;
  const slabs = ownedSlabs(h, h.tid);
  const toAbandon: number[] = [];
  for (const s of slabs) {
    const mW = h.smW + (s << SM_SHIFT);
    const cls = i32[mW + SM_CLS];
    collectRemote(h, mW, cls);
    if (rebuild) rebuildSlab(h, mW, cls);
    i32[mW + SM_LISTED] = 0;
    if (i32[mW + SM_INUSE] === 0) releaseEmptySlab(h, s, cls);
    else toAbandon.push(s);
  }
  if (toAbandon.length === 0) return;
  lockAcquire(h);
  try {
    for (const s of toAbandon) {
      const mW = h.smW + (s << SM_SHIFT);
      Atomics.store(i32, mW + SM_OWNER, OWNER_NONE);
      // A notice posted to this thread from now on would be lost: clear the flag, so the next
      // remote free finds no owner and adopts the slab (collecting what came in meanwhile).
      Atomics.store(i32, mW + SM_NOTIFIED, 0);
      abandonedPush(h, i32[mW + SM_CLS], s);
    }
  } finally {
    lockRelease(h);
  }
  for (let c = 0; c < NUM_CLASSES; c++) {
    i32[h.thW + TH_CUR + c] = 0;
    i32[h.thW + TH_PARTIAL + c] = 0;
  }
}

/** Recomputes a slab's local free list, NFREE and INUSE from its state bytes. */
function rebuildSlab(h: HeapInternals, mW: number, cls: number): void {
  const i32 = h.i32;
  const bytes = h.bytes;
  const state = i32[mW + SM_STATE];
  const data = i32[mW + SM_DATA];
  const bump = Math.min(i32[mW + SM_BUMP], COUNT[cls]);
  let head = 0;
  let nfree = 0;
  for (let idx = bump - 1; idx >= 0; idx--) {
    if (bytes[state + idx] !== ST_FREE) continue;
    const b = data + idx * SIZE[cls];
    i32[b >>> 2] = head;
    head = b;
    nfree++;
  }
  i32[mW + SM_FREE] = head;
  i32[mW + SM_NFREE] = nfree;
  i32[mW + SM_INUSE] = bump - nfree;
}

export function detachThread(h: HeapInternals): void {
  flushThread(h);
  abandonAll(h, false);
  const i32 = h.i32;
  Atomics.store(i32, h.thW + TH_STATE, TS_FREE);
  Atomics.sub(i32, G_THREADS_ATTACHED, 1);
  h.detached = true;
  h.topW = DETACHED_W + 2; // malloc now misses into the slow path, which throws
  h.slotLimit = 0; // and so does free
}

/** Finds the slot of the thread known by `threadId` in one of `states`; -1 when none. */
function findThread(h: HeapInternals, threadId: number, states: number[]): number {
  const i32 = h.i32;
  const geo = h.geo;
  for (let t = 0; t < geo.maxThreads; t++) {
    const w = geo.threadsW + t * geo.threadWords;
    if (Atomics.load(i32, w + TH_NODE_ID) === threadId + 1 && states.includes(Atomics.load(i32, w + TH_STATE))) return t;
  }
  return -1;
}

/** Marks the slot of an exited thread DEAD, so a waiter on the lock it may hold breaks it. */
export function markDead(h: HeapInternals, threadId: number): void {
  const t = findThread(h, threadId, [TS_ATTACHED]);
  if (t < 0) return;
  Atomics.compareExchange(h.i32, h.geo.threadsW + t * h.geo.threadWords + TH_STATE, TS_ATTACHED, TS_DEAD);
}

export function reclaimThread(h: HeapInternals, threadId: number): boolean {
  return reclaimLocked(h, threadId, true) === true;
}

/**
 * The reclaim holds the global lock from start to end (the slow paths it runs take it again,
 * re-entrantly). With mayWait false it returns 'busy' instead of waiting for a live holder.
 */
function reclaimLocked(h: HeapInternals, threadId: number, mayWait: boolean): boolean | 'busy' {
  if (h.detached) throw new HeapStateError('reclaim(threadId): this thread has detached from the heap');
  if (threadId === h.nodeThreadId) {
    throw new HeapStateError(`reclaim(threadId): ${threadId} is the calling thread; use detach()`);
  }
  if (findThread(h, threadId, [TS_ATTACHED, TS_DEAD]) < 0) return false;
  if (mayWait) lockAcquire(h);
  else if (!lockAcquireNoWait(h)) return 'busy';
  try {
    return reclaimUnderLock(h, threadId);
  } finally {
    lockRelease(h);
  }
}

function reclaimUnderLock(h: HeapInternals, threadId: number): boolean {
  const i32 = h.i32;
  const geo = h.geo;
  const t = findThread(h, threadId, [TS_ATTACHED, TS_DEAD]);
  if (t < 0) return false;
  const stateW = geo.threadsW + t * geo.threadWords + TH_STATE;
  const old = Atomics.load(i32, stateW);
  if ((old !== TS_ATTACHED && old !== TS_DEAD) || Atomics.compareExchange(i32, stateW, old, TS_RECLAIMING) !== old) {
    return false;
  }
  // Act as the dead thread: a view of this instance bound to its slot. The lock is still taken
  // in the reclaimer's name (lockTid is inherited).
  const dead = Object.create(h) as HeapInternals;
  bindThread(dead, t);
  configureClasses(dead);
  // Its magazines: every entry still CACHED that the journal did not hold.
  const seen = finishJournals(dead);
  const src = new Int32Array(magazineWords(geo.magCap));
  for (let c = 0; c < NUM_CLASSES; c++) {
    const base = magazineBase(dead, c);
    const topW = dead.topW + c;
    const top = Math.min(i32[topW], base + dead.magCapCls[c] * MAG_ENTRY_WORDS);
    let n = 0;
    for (let w = base; w < top; w += 2) {
      const b = i32[w];
      if (dead.bytes[i32[w + 1]] === ST_CACHED && !seen.has(b)) {
        seen.add(b);
        src[n++] = b;
        src[n++] = i32[w + 1];
      }
    }
    i32[topW] = base;
    if (n > 0) {
      journalEntries(dead, c, src, 0, n);
      drainJournal(dead, c, false);
    }
  }
  processNotices(dead);
  abandonAll(dead, true);
  h.f64[F_RECLAIMS]++;
  Atomics.store(i32, stateW, TS_FREE);
  Atomics.sub(i32, G_THREADS_ATTACHED, 1);
  return true;
}

/**
 * Finishes what a dead thread was in the middle of, from its journal words: a remote list it
 * had taken, a Stage-1 push, a drain. The blocks of a remote chain it may or may not have
 * published (TH_INFLIGHT) are left alone and counted in G_ORPHANS. Returns the blocks the drain
 * journal held (the magazine may still hold copies of them).
 */
function finishJournals(dead: HeapInternals): Set<number> {
  const i32 = dead.i32;
  const collectW = i32[dead.thW + TH_COLLECT_MW];
  if (collectW !== 0) {
    // NEXT is -1 when it died around the exchange itself: whatever it took is lost (rare).
    const next = i32[dead.thW + TH_COLLECT_NEXT];
    if (next > 0) finishCollect(dead, collectW, i32[collectW + SM_CLS], next);
    Atomics.store(i32, dead.thW + TH_COLLECT_MW, 0);
  }
  const pushing = i32[dead.thW + TH_PUSHING];
  if (pushing !== 0) {
    repairStage1Push(dead, pushing);
    i32[dead.thW + TH_PUSHING] = 0;
  }
  const returning = i32[dead.thW + TH_RETURNING];
  if (returning !== 0) {
    // It died under the lock between marking a slab POOLED (off every list) and giving its
    // slots back: finish that (the reclaimer holds the lock).
    const mW = dead.smW + (returning << SM_SHIFT);
    if (i32[mW + SM_KIND] === K_SLAB && i32[mW + SM_HEAD] === returning && Atomics.load(i32, mW + SM_OWNER) === OWNER_POOL) {
      returnSlots(dead, returning);
    }
    i32[dead.thW + TH_RETURNING] = 0;
  }
  const held = new Set<number>();
  const n = i32[dead.thW + TH_JOURNAL_N];
  if (n === 0) return held;
  const jW = dead.thW + TH_JOURNAL_W;
  for (let w = jW; w < jW + n; w += 2) held.add(i32[w]);
  const inflight = i32[dead.thW + TH_INFLIGHT];
  const done = i32[dead.thW + TH_JOURNAL_DONE] + 2 * inflight;
  if (inflight > 0) resolveInflight(dead, jW + i32[dead.thW + TH_JOURNAL_DONE], inflight);
  // Entries after those were never published: still ours while their state says CACHED (a local
  // push completed just before its progress word says FREE: already back on its slab).
  const rest = new Int32Array(n);
  let m = 0;
  for (let w = jW + done; w < jW + n; w += 2) {
    if (dead.bytes[i32[w + 1]] !== ST_CACHED) continue;
    rest[m++] = i32[w];
    rest[m++] = i32[w + 1];
  }
  const cls = i32[dead.thW + TH_JOURNAL_CLS];
  journalEntries(dead, cls, rest, 0, m);
  drainJournal(dead, cls, false);
  return held;
}

const INFLIGHT_WAIT_MS = 2000;

/**
 * A dead thread's remote chain (journal words from `fromW`, `n` blocks, states PENDING) may or
 * may not have been published by its CAS. Published: its first block is on the slab's remote
 * list, or was collected since (its state is no longer PENDING). A collection under way can hide
 * it for a moment (taken off the list, states not yet FREE); collectors announce themselves in
 * TH_COLLECT_MW before taking and bump SM_COLLECTS, so the test below is repeated until no
 * collection overlaps it. Unpublished: publish it now. Undecided after INFLIGHT_WAIT_MS (a
 * collector that died in the middle): leave it, counted in G_ORPHANS, rather than risk a
 * block on two lists.
 */
function resolveInflight(dead: HeapInternals, fromW: number, n: number): void {
  const i32 = dead.i32;
  const first = i32[fromW];
  const mW = slabMetaOf(dead, first);
  const cls = i32[mW + SM_CLS];
  const stateW = i32[fromW + 1];
  const deadline = performance.now() + INFLIGHT_WAIT_MS;
  for (;;) {
    if (dead.bytes[stateW] !== ST_PENDING) return; // published and collected since
    const epoch = Atomics.load(i32, mW + SM_COLLECTS);
    if (!someoneCollecting(dead, mW)) {
      let onList = false;
      for (let b = Atomics.load(i32, mW + SM_REMOTE), k = 0; b !== 0 && k < COUNT[cls]; k++, b = i32[b >>> 2]) {
        if (b === first) onList = true;
      }
      if (onList) return;
      if (dead.bytes[stateW] !== ST_PENDING) return;
      if (Atomics.load(i32, mW + SM_COLLECTS) === epoch && !someoneCollecting(dead, mW)) {
        // Never published: link the chain again (the links may be half written) and publish it.
        for (let k = 0; k + 1 < n; k++) i32[i32[fromW + 2 * k] >>> 2] = i32[fromW + 2 * k + 2];
        publishChain(i32, mW, first, i32[fromW + 2 * (n - 1)]);
        notifyOwner(dead, (mW - dead.smW) >>> SM_SHIFT);
        return;
      }
    }
    if (performance.now() > deadline) {
      Atomics.add(i32, G_ORPHANS, n);
      return;
    }
  }
}

/** Whether some thread has announced a collection of the slab whose meta is at `mW`. */
function someoneCollecting(h: HeapInternals, mW: number): boolean {
  const geo = h.geo;
  for (let t = 0; t < geo.maxThreads; t++) {
    if (Atomics.load(h.i32, geo.threadsW + t * geo.threadWords + TH_COLLECT_MW) === mW) return true;
  }
  return false;
}

export function watchWorker(h: HeapInternals, worker: { threadId: number; once(event: 'exit', fn: () => void): unknown }): void {
  if (worker === null || typeof worker !== 'object' || typeof worker.once !== 'function') {
    throw new TypeError(`watch(worker): expected a Worker, got ${describe(worker)}`);
  }
  const id = worker.threadId;
  worker.once('exit', () => {
    if (h.detached) return;
    markDead(h, id);
    pendingOf(h).push(id);
    reclaimPending(h);
  });
}

const pendingReclaims = new WeakMap<object, number[]>();

function pendingOf(h: HeapInternals): number[] {
  let list = pendingReclaims.get(h.lockNest);
  if (list === undefined) pendingReclaims.set(h.lockNest, (list = []));
  return list;
}

/**
 * Reclaims the exited workers waiting for it. Never waits for the lock: its holder may be
 * another exited worker whose own exit callback (which marks it dead) cannot run while this one
 * blocks. What stays busy is retried after the next exit, or a millisecond later.
 */
function reclaimPending(h: HeapInternals): void {
  const list = pendingOf(h);
  for (let i = 0; i < list.length; ) {
    if (h.detached || reclaimLocked(h, list[i], false) !== 'busy') list.splice(i, 1);
    else i++;
  }
  if (list.length > 0) setTimeout(() => reclaimPending(h), 1);
}

