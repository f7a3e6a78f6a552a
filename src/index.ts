export { SharedHeap, type HeapOptions } from './heap.js';
export type { SharedMemory, SharedMemoryLike } from './wasm-copy.js';
export type { WatchableWorker } from './reclaim.js';
export type { HeapStats, LockStats, StageStats, ClassStats, ThreadStats } from './stats.js';
export {
  HeapError, InvalidPointerError, DoubleFreeError, HeapCorruptionError, ThreadSlotsExhaustedError, HeapStateError,
  LockTimeoutError, type HeapErrorCode,
} from './errors.js';
export { MAX_SMALL, NUM_CLASSES, CLASS_SIZES } from './size-classes.js';

export {
  readHeapMap, type HeapMap, MAP_METADATA, MAP_UNCARVED, MAP_UNUSED, MAP_SLAB, MAP_POOLED, MAP_LARGE, MAP_NO_OWNER,
} from './heap-map.js';
