/**
 * SharedHeap: create a heap in a SharedArrayBuffer, attach to it from any thread, and the two
 * fast paths (malloc and free). Everything else is a named slow function in another file:
 * refill.ts (magazine refill and drain), pool.ts (the three stages), large.ts, thread.ts,
 * stats.ts, check.ts.
 */
import {
  G_GEN, G_HEAP_ID, MAG_FULL_SENTINEL, SLOT_SHIFT, SM_CLS, SM_DATA, SM_SHIFT, SM_STATE, ST_ALLOCATED, ST_CACHED,
  type Geometry,
} from './layout.js';
import { CLASS_OF_GRANULE, FREE_DIV, MAX_SMALL } from './size-classes.js';
import { checkInteger, describe } from './errors.js';
import { mallocRefill, freeDrainFull, drainPeriodic } from './refill.js';
import { mallocSlow, freeSlow, callocImpl, reallocImpl, usableSizeImpl, alignedAllocImpl, tryMallocImpl } from './alloc-slow.js';
import { createBuffer, attachThread, detachThread, reclaimThread, watchWorker, flushThread, readGeometry, type HeapOptions } from './thread.js';
import { collectStats, type HeapStats } from './stats.js';
import { checkHeap } from './check.js';
import { testHoldLock } from './lock.js';

/** Instances per heap id in this thread: attaching twice returns the same one. */
const attached = new Map<number, SharedHeap>();

export type { HeapOptions };

export class SharedHeap {
  /** The SharedArrayBuffer holding the heap; post it to workers and attach there. */
  readonly buffer: SharedArrayBuffer;
  // ---- per-thread state (this object is never shared) -------------------------------------
  /** @internal Int32 view over the buffer's current length. */
  i32: Int32Array;
  /** @internal Uint8 view over the buffer's current length. */
  bytes: Uint8Array;
  /** @internal Float64 view (header and per-thread counters). */
  f64: Float64Array;
  /** @internal same as f64; per-thread counters are at tfW + TF_*. */
  tf64: Float64Array;
  /** @internal buffer length >>> SLOT_SHIFT as of the views: free() of a block at or beyond is a slow path. */
  slotLimit = 0;
  /** @internal byte length of the views. */
  viewBytes = 0;
  /** @internal G_GEN as of the views. */
  gen = -1;
  /** @internal */ readonly geo: Geometry;
  /** @internal the thread slot whose magazines and slabs the slow paths work on */ tid = -1;
  /** @internal this thread's own slot: the lock is held in its name (differs from tid while reclaiming) */ lockTid = -1;
  /** @internal re-entrancy depth of the global lock in this thread (shared with reclaim's views) */
  lockNest = { depth: 0 };
  /** @internal word index of this thread's area */ thW = 0;
  /** @internal */ topW = 0;
  /** @internal */ drainW = 0;
  /** @internal Float64 index of this thread's counters */ tfW = 0;
  /** @internal word index of slot 0's meta */ readonly smW: number;
  /** @internal */ readonly heapId: number;
  /** @internal per-class magazine capacity and refill batch */ magCapCls: Int32Array;
  /** @internal */ refillCls: Int32Array;
  /** @internal */ drainInterval: number;
  /** @internal */ detached = false;
  /** @internal the id reclaim() knows this thread by */ nodeThreadId = 0;

  /** @internal use SharedHeap.create or SharedHeap.attach */
  constructor(buffer: SharedArrayBuffer, heapId: number) {
    this.buffer = buffer;
    this.heapId = heapId;
    this.i32 = new Int32Array(0);
    this.bytes = new Uint8Array(0);
    this.f64 = this.tf64 = new Float64Array(0);
    this.refreshViews();
    this.geo = readGeometry(this.i32);
    this.smW = this.geo.slotMetaW;
    this.magCapCls = new Int32Array(0);
    this.refillCls = new Int32Array(0);
    this.drainInterval = 0;
  }

  /** Creates a heap in a new SharedArrayBuffer; the calling thread is attached to it. */
  static create(options: HeapOptions = {}): SharedHeap {
    const buffer = createBuffer(options);
    return SharedHeap.attach(buffer);
  }

  /**
   * Attaches the calling thread to a heap created elsewhere (pass `heap.buffer` to the worker).
   * Claims a thread slot; attaching twice in one thread returns the same instance.
   */
  static attach(buffer: SharedArrayBuffer): SharedHeap {
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(`SharedHeap.attach(buffer): expected the heap's SharedArrayBuffer, got ${describe(buffer)}`);
    }
    const probe = new SharedHeap(buffer, 0);
    const id = probe.i32[G_HEAP_ID];
    const existing = attached.get(id);
    if (existing !== undefined && !existing.detached) return existing;
    const heap = new SharedHeap(buffer, id);
    attachThread(heap);
    attached.set(id, heap);
    return heap;
  }

  /** Uint8Array over the whole heap (fixed length; a new one after the heap grew). */
  get u8(): Uint8Array {
    if (this.i32[G_GEN] !== this.gen) this.refreshViews();
    return this.bytes;
  }

  /** The id reclaim() takes for this thread: Node's threadId, or a heap-assigned one elsewhere. */
  get threadId(): number {
    return this.nodeThreadId;
  }

  /**
   * Allocates `size` bytes; returns the block's offset (> 0, a multiple of 16), or 0 when out
   * of memory. Fast path: a table load for the class, a magazine pop, a state byte: about
   * 6 loads and 3 stores, no Atomics, no object; an empty magazine misses into mallocRefill.
   */
  malloc(size: number): number {
    if (typeof size !== 'number' || size >>> 0 !== size || size > MAX_SMALL) return mallocSlow(this, size);
    const cls = CLASS_OF_GRANULE[(size + 15) >>> 4];
    const i32 = this.i32;
    const topW = this.topW + cls;
    const t = i32[topW] - 2;
    const block = i32[t];
    if (block === 0) return mallocRefill(this, cls); // the empty sentinel
    i32[topW] = t;
    this.bytes[i32[t + 1]] = ST_ALLOCATED;
    return block;
  }

  /**
   * Frees a block from any thread. Fast path: slot meta gives class and slab, a multiply finds
   * the block index, its state byte must say ALLOCATED, then a magazine push: about 10 loads
   * and 6 stores, no Atomics. Misuse (and large blocks) go to freeSlow, which throws before
   * changing anything.
   */
  free(block: number): void {
    if (typeof block !== 'number' || block >>> 0 !== block || block >>> SLOT_SHIFT >= this.slotLimit) {
      freeSlow(this, block);
      return;
    }
    const i32 = this.i32;
    const mW = this.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT);
    const cls = i32[mW + SM_CLS];
    if (cls < 0) {
      freeSlow(this, block); // large run, free(0), or not a slab
      return;
    }
    // Exact division by the block size: a shift, then a multiply by the inverse of its odd part.
    // A pointer into the slab header (off < 0) cannot give an index below COUNT (size-classes.ts).
    const off = block - i32[mW + SM_DATA];
    const d = cls << 2;
    const idx = Math.imul(off >>> FREE_DIV[d], FREE_DIV[d + 1]);
    const st = i32[mW + SM_STATE] + idx;
    const bytes = this.bytes;
    if ((off & FREE_DIV[d + 2]) !== 0 || idx >>> 0 >= FREE_DIV[d + 3] || bytes[st] !== ST_ALLOCATED) {
      freeSlow(this, block);
      return;
    }
    const topW = this.topW + cls;
    const t = i32[topW];
    if (i32[t] === MAG_FULL_SENTINEL) {
      freeDrainFull(this, cls, block, st);
      return;
    }
    bytes[st] = ST_CACHED;
    i32[t] = block;
    i32[t + 1] = st;
    i32[topW] = t + 2;
    if (--i32[this.drainW + cls] === 0) drainPeriodic(this, cls);
  }

  /** malloc(n * size) whose bytes read as zero; 0 when out of memory or when n * size overflows. */
  calloc(n: number, size: number): number {
    return callocImpl(this, n, size);
  }

  /** Resizes a block, keeping its contents up to the smaller size; 0 (old block intact) when out of memory. */
  realloc(block: number, size: number): number {
    return reallocImpl(this, block, size);
  }

  /** Bytes the block can hold (>= what was asked for). */
  usableSize(block: number): number {
    return usableSizeImpl(this, block);
  }

  /** A block of `size` bytes aligned to `align` (a power of two up to 1 MiB); 0 when out of memory. */
  alignedAlloc(align: number, size: number): number {
    return alignedAllocImpl(this, align, size);
  }

  /** Like malloc, but never blocks on the global lock: returns 0 when it is busy. */
  tryMalloc(size: number): number {
    return tryMallocImpl(this, size);
  }

  /** Lock counters, stage counts, per-class and per-thread figures, footprint, live bytes. */
  stats(): HeapStats {
    return collectStats(this);
  }

  /** Walks every invariant; throws HeapCorruptionError naming what is wrong and where. */
  check(): void {
    checkHeap(this);
  }

  /** Returns this thread's cached blocks (magazines) to their slabs, and empty slabs to the pool. */
  flush(): void {
    flushThread(this);
  }

  /** Flushes, abandons this thread's slabs to the pool and gives up its thread slot. */
  detach(): void {
    if (this.detached) return;
    detachThread(this);
    attached.delete(this.heapId);
  }

  /** Returns a dead thread's magazines, slabs and held lock to the pool. */
  reclaim(threadId: number): boolean {
    return reclaimThread(this, checkInteger('reclaim', 'threadId', threadId, 2 ** 31 - 1));
  }

  /** Reclaims automatically when `worker` exits (Node worker_threads Worker). */
  watch(worker: { threadId: number; once(event: 'exit', fn: () => void): unknown }): void {
    watchWorker(this, worker);
  }

  /** Test hook: takes the global lock and keeps it (used to test recovery from a dead holder). */
  testHoldGlobalLock(): void {
    testHoldLock(this);
  }

  /** @internal re-creates the fixed-length views after the buffer grew. */
  refreshViews(): void {
    const buf = this.buffer;
    this.gen = Atomics.load(new Int32Array(buf, 0, 16), G_GEN);
    const bytes = buf.byteLength;
    this.viewBytes = bytes;
    this.i32 = new Int32Array(buf, 0, bytes >>> 2);
    this.bytes = new Uint8Array(buf, 0, bytes);
    this.f64 = this.tf64 = new Float64Array(buf, 0, bytes >>> 3);
    this.slotLimit = bytes >>> SLOT_SHIFT;
  }
}

/** The type slow-path modules take. */
export type HeapInternals = SharedHeap;
