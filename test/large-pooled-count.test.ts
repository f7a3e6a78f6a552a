/**
 * G_LARGE_POOLED after the repair of a thread that died inside a large-run push: the count must
 * keep agreeing with the large-run lists (plus the reservations of pushes and pops under way),
 * also when another thread's free is under way while the reclaim runs. Before: the repair set
 * the count to the lists' sum, which drops the other thread's reservation for good (the count
 * stays that many slots low, negative once the lists are empty, and the lists keep more than
 * LARGE_POOL_SLOTS slots at every round, not once).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LARGE_POOLED, LARGE_POOL_SLOTS, SLOT_BYTES, SLOT_SHIFT, TH_PUSHING, largePooledSlots } from '../src/layout.js';
import { largePoolPush, largePoolReserve } from '../src/pool.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

describe('G_LARGE_POOLED and the repair of a large-run push', () => {
  it('a reclaim while another thread\'s free is between its reservation and its push leaves the count right', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const size = 4 * SLOT_BYTES - 1000; // 4 slots
    // A worker that dies inside a free of a large run: its journal names the run, stopped before
    // the Atomics.add of its reservation (so it holds none).
    const v = startHeapWorker();
    const id = await v.remote.attach(heap.buffer);
    const r = await v.remote.malloc(size);
    const tid = heap.stats().threads.find((x) => x.threadId === id)!.tid;
    await v.worker.terminate();
    t.i32[t.threadW(tid) + TH_PUSHING] = r >>> SLOT_SHIFT;
    // This thread frees a run at the same moment: reserved, not yet pushed.
    const p = heap.malloc(size);
    expect(largePoolReserve(t, p >>> SLOT_SHIFT, 4)).toBe(true);
    expect(heap.reclaim(id)).toBe(true);
    largePoolPush(t, p >>> SLOT_SHIFT, 4); // its push goes on
    const count = (): number => Atomics.load(t.i32, G_LARGE_POOLED);
    const held = (): number => largePooledSlots(t.i32, t.smW);
    expect(count()).toBe(held());
    // Every later round: the lists never keep more than the budget.
    for (let round = 0; round < 3; round++) {
      const runs = Array.from({ length: 12 }, () => heap.malloc(size));
      expect(held()).toBe(0);
      expect(count()).toBe(0);
      for (const q of runs) heap.free(q);
      expect(held()).toBeLessThanOrEqual(LARGE_POOL_SLOTS);
      expect(count()).toBe(held());
    }
    heap.free(r); // the worker's run stayed live
    heap.check();
  });
});
