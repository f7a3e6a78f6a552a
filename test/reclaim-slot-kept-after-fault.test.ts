/**
 * An audit of the thread slot kept for reclaims (layout.ts RECLAIM_SLOTS): an attach again after
 * a fault, where the stopped slot was the only one, takes that kept slot and reclaims the stopped
 * one. The program keeps using that attachment: it must not count as a slot more than
 * options.maxThreads, or another thread could attach too (maxThreads + 1 attached), and the
 * next attach to reclaim a fault finds the kept slot taken (the heap lost again).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, ThreadSlotsExhaustedError } from '../src/index.js';
import { cutOffLargeMalloc } from './fault-internals.js';
import { checked, MiB } from './fixtures.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

describe('the slot kept for reclaims, after the attach again that reclaimed a fault', () => {
  it('maxThreads 1: no other thread attaches beside the reattached one', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 1 });
    cutOffLargeMalloc(heap); // the instance stops, its slot DEAD
    const again = SharedHeap.attach(heap.buffer);
    expect(again.stats().threadsAttached).toBe(1);
    const w = startHeapWorker();
    let error: unknown;
    try {
      await w.remote.attach(heap.buffer);
    } catch (e) {
      error = e;
    }
    expect(again.stats().threadsAttached).toBe(1);
    expect(String((error as Error | undefined)?.message)).toMatch(/all 1 thread slots are taken/);
    expect(checked(again)).toBe('passes');
    again.detach();
    // Once it detached, the user's one slot takes a thread again.
    const w2 = startHeapWorker();
    await w2.remote.attach(heap.buffer);
    const p = await w2.remote.malloc(100);
    expect(p).toBeGreaterThan(0);
    await w2.remote.free(p);
  }, 30_000);
});
