/**
 * Drain interval (src/refill.ts drainPeriodic): a thread that only frees does not sit on the
 * blocks it freed. Every `drainInterval` frees of a class it drains that magazine, so without any
 * flush the blocks go back to their slabs, empty slabs go back to the pool, and the memory is
 * reused instead of the heap growing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CLASS_SIZES, SharedHeap } from '../src/index.js';
import { startHeapWorker, terminateAll, type RemoteHeap } from './remote-heap.js';

const MiB = 1 << 20;
const DRAIN = 64;
const SIZE = 1024; // one-slot slabs of 63 blocks; its magazine holds 128, more than DRAIN
const BLOCKS = 4 * DRAIN; // 256: four whole slabs (252 blocks) and 4 blocks of a fifth
const OPTIONS = { initialBytes: 16 * MiB, maxThreads: 8, drainInterval: DRAIN, magazineCapacity: 256 };

afterEach(terminateAll);

async function attachedWorker(heap: SharedHeap): Promise<RemoteHeap> {
  const r = startHeapWorker((w) => heap.watch(w));
  await r.remote.attach(heap.buffer);
  return r;
}

function threadStats(heap: SharedHeap, threadId: number) {
  const t = heap.stats().threads.find((x) => x.threadId === threadId && x.state === 'attached');
  if (t === undefined) throw new Error(`no attached thread with threadId ${threadId}`);
  return t;
}

/** EMPTY slabs that went back to the pool: to a Stage-1 list, or their slots to Stage 2. */
function returned(heap: SharedHeap): number {
  const s = heap.stats().stages;
  return s.stage1Pushes + s.slotsReturned;
}

describe('drain interval', () => {
  it('uses a 1024-byte class whose magazine holds more than drainInterval blocks', () => {
    expect(CLASS_SIZES).toContain(SIZE);
  });

  it('a worker that only frees returns the slabs of a detached owner to the pool, without flush', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const owner = await attachedWorker(heap);
    const blocks = await Promise.all(Array.from({ length: BLOCKS }, () => owner.remote.malloc(SIZE)));
    expect(new Set(blocks).size).toBe(BLOCKS);
    const slabs = new Set(blocks.map((p) => p >>> 16));
    expect(slabs.size).toBe(5);
    await owner.remote.detach(); // its slabs are abandoned with their blocks still out
    const footprint = heap.stats().footprintBytes;
    const before = returned(heap);

    const freer = await attachedWorker(heap);
    const freeAll = (ps: number[]) => Promise.all(ps.map((p) => freer.remote.free(p))); // no flush anywhere
    // The first slab's 63 blocks wait in the freeing thread's magazine ...
    await freeAll(blocks.slice(0, DRAIN - 1));
    expect(returned(heap) - before).toBe(0);
    // ... until the drainInterval-th free drains it: the slab is adopted and, empty, goes to the pool.
    await freeAll(blocks.slice(DRAIN - 1, DRAIN));
    expect(returned(heap) - before).toBeGreaterThanOrEqual(1);
    await freeAll(blocks.slice(DRAIN));
    expect(threadStats(heap, freer.worker.threadId).drains).toBeGreaterThanOrEqual(BLOCKS / DRAIN);
    // Every slab came back whole.
    expect(returned(heap) - before).toBeGreaterThanOrEqual(slabs.size);
    expect(heap.stats().liveBytes).toBe(0);
    await freer.remote.check();

    // The main thread reuses that memory: the heap does not grow.
    const again: number[] = [];
    for (let i = 0; i < BLOCKS; i++) again.push(heap.malloc(SIZE));
    expect(heap.stats().footprintBytes).toBe(footprint);
    expect(new Set(again.map((p) => p >>> 16)).size).toBe(5);
    for (const p of again) heap.free(p);
    heap.flush();
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
  }, 20_000);

  it('a worker that only frees the blocks of a live owner keeps fewer than drainInterval of them', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const freer = await attachedWorker(heap);
    let footprint = 0;
    let stage3 = 0;
    for (let round = 0; round < 4; round++) {
      const blocks: number[] = [];
      for (let i = 0; i < BLOCKS; i++) blocks.push(heap.malloc(SIZE));
      const before = threadStats(heap, freer.worker.threadId).remoteFrees;
      await Promise.all(blocks.map((p) => freer.remote.free(p))); // no flush
      // BLOCKS is a multiple of drainInterval: the last free drained the magazine whole.
      expect(threadStats(heap, freer.worker.threadId).remoteFrees - before, `round ${round}`).toBe(BLOCKS);
      expect(heap.stats().liveBytes).toBe(0);
      const s = heap.stats();
      if (round === 0) {
        footprint = s.footprintBytes;
        stage3 = s.stages.stage3;
      } else {
        // The main thread reused its slabs (the remote frees were collected): nothing new carved.
        expect(s.footprintBytes, `round ${round}`).toBe(footprint);
        expect(s.stages.stage3, `round ${round}`).toBe(stage3);
      }
    }
    heap.check();
    // The owner's own flush gives the empty slabs to the pool.
    const before = returned(heap);
    heap.flush();
    expect(returned(heap) - before).toBeGreaterThanOrEqual(4);
    heap.check();
    await freer.remote.check();
  }, 20_000);
});
