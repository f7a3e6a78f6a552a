export { SharedHeap, type HeapOptions } from './heap.js';
export type { HeapStats, LockStats, StageStats, ClassStats, ThreadStats } from './stats.js';
export {
  HeapError, InvalidPointerError, DoubleFreeError, HeapCorruptionError, ThreadSlotsExhaustedError, HeapStateError,
} from './errors.js';
export { MAX_SMALL, NUM_CLASSES, SIZE as CLASS_SIZES } from './size-classes.js';

