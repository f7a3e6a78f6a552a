/**
 * Debug mode: a worker that stops inside a small alignedAlloc (an audit of debug mode under faults,
 * 2026-12-05). malloc writes a small block's record and canary while the block is still in the
 * thread's magazine (debug.ts debugTakeSmall), but alignedAlloc popped the block first (ALLOCATED)
 * and wrote them after: a worker terminated in between left a live block that nobody holds whose
 * record is whatever its memory held before. check() accepted that only where those bytes were
 * zero or canary bytes (a block never handed out before); where the slab's slots had held a large
 * run (or a slab of another class), check() reported the block "written past its end", for good,
 * and free() of it refused it the same way. Here the slots held a large run full of 0x55 bytes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { MiB, checked } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

describe('debug mode: a worker stopped inside alignedAlloc of a small block', () => {
  it.each([
    [64, 100],
    [256, 3000],
    [4096, 5000],
  ])('alignedAlloc(%i, %i) in slots a large run used before, stopped at each call in it: check() passes after the reclaim', async (align, size) => {
    let stops = 0;
    for (let nth = 1; ; nth++) {
      // stage1Keep 0: freed runs and empty slabs go back to the slots at once, for the next slab.
      const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2, debug: true, stage1Keep: 0 });
      const big = heap.malloc(2 * MiB);
      heap.u8.fill(0x55, big, big + 2 * MiB);
      heap.free(big);
      const ctl = new Int32Array(new SharedArrayBuffer(4));
      const worker = startWorker('debug-aligned-stop-worker', { buffer: heap.buffer, align, size, nth, ctl });
      heap.watch(worker);
      await new Promise((r) => worker.once('exit', r));
      if (Atomics.load(ctl, 0) !== 1) {
        expect(Atomics.load(ctl, 0)).toBe(-1); // its call ended: no nth call in it
        heap.detach();
        break;
      }
      stops++;
      expect(heap.stats().threadsAttached).toBe(1); // reclaimed by watch()
      expect({ nth, check: checked(heap) }).toEqual({ nth, check: 'passes' });
      // The heap serves the class as before, and its blocks pass free's check.
      const p = heap.alignedAlloc(align, size);
      expect(p % align).toBe(0);
      heap.u8.fill(1, p, p + size);
      heap.free(p);
      expect({ nth, check: checked(heap) }).toEqual({ nth, check: 'passes' });
      heap.detach();
    }
    expect(stops).toBeGreaterThan(0);
  }, 60_000);
});
