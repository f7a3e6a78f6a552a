/**
 * For test workers: a 3 MiB malloc of `heap` cut off under the global lock by the RangeError of
 * a stack overflow, at its 3rd crash point (as test/fault-internals.ts cutOffLargeMalloc does):
 * the instance stops, its slot is marked DEAD, and the lock stays held in its name (fault.ts).
 * The thread itself runs on, as a program that caught the error would. Returns the name of what
 * the malloc threw ('HeapStateError' when it went as described).
 */
import type { SharedHeap } from '../src/index.js';
import { armCrash } from '../src/crash.js';

export function faultUnderLock(heap: SharedHeap): string {
  armCrash(3, () => {
    throw new RangeError('Maximum call stack size exceeded');
  });
  let thrown = 'none';
  try {
    heap.malloc(3 << 20);
  } catch (e) {
    thrown = (e as Error).name;
  } finally {
    armCrash(0, () => {
      throw new Error('off');
    });
  }
  return thrown;
}
