/**
 * reallocAsync whose old large block is freed by another call while it waits (a double free):
 * it takes the new block with mallocAsync, copies, and frees the old block, awaiting between its
 * steps, so another free of the old block (here: this thread's, made while the call is suspended)
 * fits in easily. The call rejects with a DoubleFreeError and frees the new block too, as realloc
 * does (alloc.ts moveBlock, heap.ts debug #move). Before (an audit): the new block was left live
 * and unreachable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { SLOT_BYTES } from '../src/layout.js';
import { MiB } from './fixtures.js';

type AsyncHeap = SharedHeap & { reallocAsync(ptr: number, size: number): Promise<number> };

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

const RUN = 4 * SLOT_BYTES - 1000;

describe('reallocAsync whose old run is freed meanwhile', () => {
  for (const debug of [false, true]) {
    it(`a DoubleFreeError, and the new run not leaked (debug ${debug})`, async () => {
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, debug }) as AsyncHeap;
      heaps.push(heap);
      const p = heap.malloc(RUN);
      const wall = heap.malloc(RUN); // right after p: p cannot grow in place, the realloc moves it
      const before = heap.stats().largeLiveBlocks; // 2
      const call = heap.reallocAsync(p, 3 * RUN);
      heap.free(p); // while reallocAsync is suspended after its checks
      await expect(call).rejects.toThrow(DoubleFreeError);
      // Only `wall` is live: the run the realloc took went back.
      expect(heap.stats().largeLiveBlocks).toBe(before - 1);
      heap.free(wall);
      expect(heap.stats().largeLiveBlocks).toBe(0);
      heap.check();
    });
  }
});
