/**
 * An audit of create()'s options (maxThreads at the bottom of its range): a call cut off by a fault
 * stops its instance and leaves its slot DEAD, and its HeapStateError says to attach again in the
 * thread, which reclaims the stopped slot. That attach needed a free slot first: with maxThreads 1
 * the stopped slot was the only one, the attach threw ThreadSlotsExhaustedError, and as no thread
 * could attach, none could reclaim it either: the heap was lost. Such an attach may take the slot
 * kept for reclaims (layout.ts RECLAIM_SLOTS).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { cutOffLargeMalloc } from './fault-internals.js';
import { checked, MiB } from './fixtures.js';

describe('attach again after a fault, the stopped slot the only one', () => {
  it.each([false, true])('maxThreads 1 (debug %s): the attach reclaims the stopped slot; blocks keep their bytes', (debug) => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 1, debug });
    const p = heap.malloc(1000);
    heap.u8.fill(0x5c, p, p + 1000);
    cutOffLargeMalloc(heap); // the instance stops, its slot DEAD
    const again = SharedHeap.attach(heap.buffer);
    expect(again).not.toBe(heap);
    expect(again.stats().threadsAttached).toBe(1);
    expect(again.u8.subarray(p, p + 1000).every((x) => x === 0x5c)).toBe(true);
    again.free(p);
    const q = again.malloc(3 * MiB);
    expect(q).toBeGreaterThan(0);
    again.free(q);
    expect(checked(again)).toBe('passes');
    again.detach();
    // The slot of the user's one thread is free again (the attach above left the one kept for reclaims).
    const third = SharedHeap.attach(heap.buffer);
    expect(third.malloc(100)).toBeGreaterThan(0);
    expect(checked(third)).toBe('passes');
    third.detach();
  });
});
