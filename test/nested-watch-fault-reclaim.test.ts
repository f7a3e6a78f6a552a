/**
 * Audit: a watcher whose instance a fault stopped runs on, and so do the workers it watches. Its
 * stopped slot (DEAD, TH_WATCHING still naming them) reclaimed by another thread through
 * reclaim(threadId) — which the fault's own error message recommends — must not take those
 * running workers with it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startHeapWorker } from './remote-heap.js';
import { cutOffLargeMalloc } from './fault-internals.js';
import { MiB } from './fixtures.js';
import { endStarted, attachedIds } from './nested-watch-helpers.js';

afterEach(endStarted);


describe('a fault-stopped watcher reclaimed by another thread', () => {
  it("reclaim(threadId) of the stopped instance leaves the watcher's running workers attached", async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const a = startHeapWorker((w) => heap.watch(w)); // main watches A
    const aId = await a.remote.attach(heap.buffer);
    const p = await a.remote.malloc(5000);
    const b = startHeapWorker();
    const bId = await b.remote.attach(heap.buffer);
    cutOffLargeMalloc(heap); // main's instance stops, its slot DEAD; main and A run on
    expect(await b.remote.reclaim(heap.threadId)).toBe(true); // as the fault's message suggests
    const again = SharedHeap.attach(heap.buffer);
    // A runs: its slot must still be attached under its id.
    expect(attachedIds(again).sort()).toEqual([again.threadId, aId, bId].sort());
    await a.remote.write(p, [1, 2, 3]);
    await a.remote.free(p);
    again.check();
  });
});
