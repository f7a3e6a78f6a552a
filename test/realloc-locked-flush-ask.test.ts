/**
 * An audit: realloc of a large run that moves, on a main thread, now holds the global lock through
 * its allocation (6bc1575). Out of memory there, the allocation asks the other threads to flush
 * (flush-ask.ts), but askOthersToFlush does not wait while this thread holds the lock, so the call
 * answers 0 where malloc of the same size, and the same realloc before 6bc1575, waited for the
 * answer and got the memory (README: a thread out of memory "waits up to 50 ms for their answers
 * (where it may block, holding no lock)").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;
afterEach(terminateAll);

/** A heap whose free memory all waits on the remote lists of an idle worker's slabs. */
async function heldByIdleWorker(debug: boolean): Promise<{ heap: SharedHeap; p: number }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, debug });
  const p = heap.malloc(MiB); // a large run
  const w = startHeapWorker();
  await w.remote.attach(heap.buffer);
  const blocks: number[] = [];
  for (let q = await w.remote.malloc(100 << 10); q !== 0; q = await w.remote.malloc(100 << 10)) blocks.push(q);
  for (const q of blocks) heap.free(q); // remote frees: they wait until the worker collects them
  return { heap, p };
}

describe.each([false, true])('a main thread out of memory (debug %s)', (debug) => {
  it('malloc gets the memory an idle worker holds (the control)', async () => {
    const { heap } = await heldByIdleWorker(debug);
    expect(heap.malloc(4 * MiB)).toBeGreaterThan(0);
  });

  it('realloc of a large run that moves gets it too', async () => {
    const { heap, p } = await heldByIdleWorker(debug);
    heap.u8.fill(0x33, p, p + MiB);
    const q = heap.realloc(p, 4 * MiB);
    expect(q).toBeGreaterThan(0);
    expect(heap.u8.subarray(q, q + MiB).every((b) => b === 0x33)).toBe(true);
    heap.check();
  });
});
