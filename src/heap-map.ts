/**
 * readHeapMap: a read-only picture of the heap, one entry per slab slot, read straight from the
 * slot meta table (layout.ts) of any heap's buffer, from any thread, attached or not. It takes
 * no lock and makes no change: while other threads run, each entry is a moment's value (a slot
 * may be caught between two states), which is what a live picture needs.
 */
import {
  G_BUFFER_SUPERS, G_CARVED, G_MAG_CAP, G_MAGIC, G_MAX_SUPERS, G_MAX_THREADS, K_FREE, K_LARGE, K_SLAB, LARGE_POOLED, MAGIC, OWNER_POOL,
  SLOTS_PER_SUPER, SM_CLS1, SM_HEAD, SM_KIND, SM_LARGE, SM_OWNER, SM_SHIFT, TH_THREAD_ID, geometry, headerSizesProblem,
} from './layout.js';
import { NUM_CLASSES } from './size-classes.js';
import { describe } from './errors.js';
import { isSharedArrayBuffer, isWasmMemory, type SharedMemoryLike } from './wasm-copy.js';

/** What a slab slot holds (HeapMap.kind). */
export const MAP_METADATA = 0; // the header, slot meta table and thread areas
export const MAP_UNCARVED = 1; // in the buffer, not carved yet (or beyond the buffer's length)
export const MAP_UNUSED = 2; //   carved, free for any class or large run (Stage 2)
export const MAP_SLAB = 3; //     part of a slab of class cls
export const MAP_POOLED = 4; //   part of an EMPTY slab of class cls on its Stage-1 list, or of a freed large run
//                                waiting in a large-run list (cls -1)
export const MAP_LARGE = 5; //    part of a large run

/** Owner values besides a thread id. */
export const MAP_NO_OWNER = -1; // abandoned slab (its thread detached or died), or not a slab

export interface HeapMap {
  /** SuperSlabs in the buffer now. */
  supers: number;
  /** SuperSlabs the metadata takes (the first ones). */
  metaSupers: number;
  /** SuperSlabs carved so far, metadata included. */
  carved: number;
  /** SuperSlabs the heap may grow to. */
  maxSupers: number;
  slotsPerSuper: number;
  /** Per slot (supers * slotsPerSuper): MAP_METADATA .. MAP_LARGE. */
  kind: Uint8Array;
  /** Per slot: the size class of its slab, or -1. */
  cls: Int8Array;
  /** Per slot: the thread id (`heap.threadId`) owning its slab, or MAP_NO_OWNER. */
  owner: Float64Array;
  /** Per slot: the thread slot owning its slab, or -1. */
  tid: Int16Array;
}

/** Reads the map of the heap in `buffer` (a SharedArrayBuffer made by SharedHeap.create). */
export function readHeapMap(given: SharedArrayBuffer | SharedMemoryLike): HeapMap {
  // heap.memory as well as heap.buffer, as attach() takes them.
  // (Not any object's `buffer`: a revoked Proxy threw V8's own TypeError reading it; an audit.)
  const buffer = isSharedArrayBuffer(given) ? given : isWasmMemory(given) ? given.buffer : undefined;
  if (isWasmMemory(given) && !isSharedArrayBuffer(buffer)) {
    throw new TypeError(`readHeapMap(buffer): expected a heap's SharedArrayBuffer (heap.buffer) or its memory (heap.memory), got a WebAssembly.Memory that is not shared`);
  }
  if (!isSharedArrayBuffer(buffer)) {
    throw new TypeError(`readHeapMap(buffer): expected a heap's SharedArrayBuffer (heap.buffer) or its memory (heap.memory), got ${describe(given)}`);
  }
  const i32 = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
  if (i32.length < 64 || Atomics.load(i32, G_MAGIC) !== MAGIC) {
    throw new TypeError(`readHeapMap(buffer): the SharedArrayBuffer of ${buffer.byteLength} bytes is not a sabmalloc heap (no heap header at its start)`);
  }
  const wrong = headerSizesProblem(i32[G_MAX_SUPERS]!, i32[G_MAX_THREADS]!, i32[G_MAG_CAP]!, Atomics.load(i32, G_BUFFER_SUPERS));
  if (wrong !== undefined) throw new TypeError(`readHeapMap(buffer): the SharedArrayBuffer of ${buffer.byteLength} bytes is not a sabmalloc heap (its header says ${wrong})`);
  const geo = geometry(i32[G_MAX_SUPERS]!, i32[G_MAX_THREADS]!, i32[G_MAG_CAP]!, NUM_CLASSES);
  const supers = Math.min(Atomics.load(i32, G_BUFFER_SUPERS), buffer.byteLength >>> 20);
  const carved = Math.min(Atomics.load(i32, G_CARVED), supers);
  const slots = supers * SLOTS_PER_SUPER;
  const kind = new Uint8Array(slots);
  const cls = new Int8Array(slots).fill(-1);
  const owner = new Float64Array(slots).fill(MAP_NO_OWNER);
  const tid = new Int16Array(slots).fill(-1);
  const metaSlots = geo.metaSupers * SLOTS_PER_SUPER;
  const carvedSlots = carved * SLOTS_PER_SUPER;
  for (let s = 0; s < slots; s++) {
    if (s < metaSlots) {
      kind[s] = MAP_METADATA;
      continue;
    }
    if (s >= carvedSlots) {
      kind[s] = MAP_UNCARVED;
      continue;
    }
    const mW = geo.slotMetaW + (s << SM_SHIFT);
    const k = i32[mW + SM_KIND];
    if (k === K_FREE) kind[s] = MAP_UNUSED;
    else if (k === K_LARGE) {
      const head = i32[mW + SM_HEAD]!;
      kind[s] = i32[geo.slotMetaW + (head << SM_SHIFT) + SM_LARGE] === LARGE_POOLED ? MAP_POOLED : MAP_LARGE;
    }
    else if (k === K_SLAB) {
      const head = i32[mW + SM_HEAD]!;
      const o = Atomics.load(i32, geo.slotMetaW + (head << SM_SHIFT) + SM_OWNER);
      cls[s] = i32[mW + SM_CLS1]! - 1; // SM_CLS1 holds class + 1
      if (o === OWNER_POOL) kind[s] = MAP_POOLED;
      else {
        kind[s] = MAP_SLAB;
        if (o >= 0 && o < geo.maxThreads) {
          tid[s] = o;
          owner[s] = Atomics.load(i32, geo.threadsW + o * geo.threadWords + TH_THREAD_ID) - 1;
        }
      }
    } else kind[s] = MAP_UNCARVED; // between states while another thread changes it
  }
  return { supers, metaSupers: geo.metaSupers, carved, maxSupers: geo.maxSupers, slotsPerSuper: SLOTS_PER_SUPER, kind, cls, owner, tid };
}
