/**
 * Test helper: the few looks inside a heap that the fault tests need and the public API cannot
 * give. Every access to the layout for test/faults.test.ts and test/options.test.ts is here, so
 * that a change of the internals touches this file only.
 */
import type { SharedHeap } from '../src/index.js';
import { expect } from 'vitest';
import { HeapStateError } from '../src/index.js';
import { internals } from '../src/heap.js';
import { armCrash } from '../src/crash.js';
import { G_LOCK, G_MAGIC, G_SLOTS_USED, MAGIC, SLOT_SHIFT, SM_HEAD, SM_INUSE, SM_SHIFT, TH_LOCK_GEN, TH_TOP, TH_THREAD_ID, TH_STATE, TS_ATTACHED, lockWord as layoutLockWord } from '../src/layout.js';
import { readGeometry } from '../src/context.js';

/** The heap's magic word is intact (attach() from any thread would accept the buffer). */
export function magicIntact(buffer: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(buffer, 0, 16), G_MAGIC) === MAGIC;
}

/** The global lock word (0: free). */
export function lockWord(buffer: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(buffer, 0, 64), G_LOCK);
}

/** The Node threadIds (+1; 0 = none) that the thread slots still name, with their states. */
export function slotIds(heap: SharedHeap): { tid: number; state: number; id: number }[] {
  const { geo } = internals(heap);
  const i32 = new Int32Array(heap.buffer);
  const out: { tid: number; state: number; id: number }[] = [];
  for (let t = 0; t < geo.maxThreads; t++) {
    const w = geo.threadsW + t * geo.threadWords;
    out.push({ tid: t, state: Atomics.load(i32, w + TH_STATE), id: Atomics.load(i32, w + TH_THREAD_ID) - 1 });
  }
  return out;
}

/**
 * The lock word (no state bits) of the thread attached under Node `threadId`: its slot and its
 * attachment's generation, as it writes G_LOCK, and G_LOCK_WANT while it waits.
 */
export function lockWordOf(heap: SharedHeap, threadId: number): number {
  const t = internals(heap);
  const slot = slotIds(heap).find((e) => e.id === threadId && e.state === TS_ATTACHED)!.tid;
  return layoutLockWord(slot, 0, Atomics.load(t.i32, t.threadW(slot) + TH_LOCK_GEN));
}

/** Adds `delta` to the INUSE count of the slab holding `block` (to show check() catches it). */
export function skewInuse(heap: SharedHeap, block: number, delta: number): void {
  const t = internals(heap);
  const i32 = new Int32Array(heap.buffer);
  const head = i32[t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!;
  i32[t.smW + (head << SM_SHIFT) + SM_INUSE]! += delta;
}

/** Moves this thread's magazine top of class `cls` by `words` (to show check() catches it). */
export function skewMagazineTop(heap: SharedHeap, cls: number, words: number): void {
  const t = internals(heap);
  new Int32Array(heap.buffer)[t.thW + TH_TOP + cls]! += words;
}

/** A 3 MiB malloc cut off under the lock by the RangeError of a stack overflow (at its 3rd crash point): the instance stops (fault.ts). */
export function cutOffLargeMalloc(heap: SharedHeap): void {
  armCrash(3, () => {
    throw new RangeError('Maximum call stack size exceeded');
  });
  try {
    expect(() => heap.malloc(3 << 20)).toThrow(HeapStateError);
  } finally {
    armCrash(0, () => {
      throw new Error('off');
    });
  }
}

/**
 * cutOffLargeMalloc's steps without expect(), which can keep the function it was given (and so the
 * instance) alive: for tests that then need the instance collected. Returns the name of the error
 * the malloc threw ('HeapStateError' when cut off as meant).
 */
export function cutOffLargeMallocQuietly(heap: SharedHeap): string {
  armCrash(3, () => {
    throw new RangeError('Maximum call stack size exceeded');
  });
  try {
    heap.malloc(3 << 20);
    return 'none';
  } catch (e) {
    return (e as Error).name;
  } finally {
    armCrash(0, () => {
      throw new Error('off');
    });
  }
}

/** Thread slots in state ATTACHED, read from the buffer alone (no instance of the heap need be left). */
export function attachedThreads(buffer: SharedArrayBuffer): number {
  const geo = readGeometry(buffer, 'attachedThreads');
  const i32 = new Int32Array(buffer);
  let n = 0;
  for (let t = 0; t < Atomics.load(i32, G_SLOTS_USED); t++) if (Atomics.load(i32, geo.threadsW + t * geo.threadWords + TH_STATE) === TS_ATTACHED) n++;
  return n;
}

/**
 * After an attach under a new id that took over the instance a fault stopped under `staleId`:
 * that slot reclaimed, one thread attached, the block `kept` (100 bytes of 7) intact, the lock the
 * fault kept broken (a 3 MiB block, under the lock, can be had), the heap checked; then detaches.
 */
export function expectTakenOver(second: SharedHeap, staleId: number, kept: number, before?: () => void): void {
  expect(slotIds(second).filter((s) => s.id === staleId)).toEqual([]); // reclaimed
  expect(second.stats().threadsAttached).toBe(1);
  before?.();
  expect(Array.from(second.u8.subarray(kept, kept + 100)).every((v) => v === 7)).toBe(true);
  second.free(kept);
  const q = second.malloc(3 * (1 << 20));
  expect(q).toBeGreaterThan(0);
  second.free(q);
  second.check();
  second.detach();
}
