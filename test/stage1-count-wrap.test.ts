/**
 * The Stage-1 counts of stats() (G_STAGE1 pops, G_STAGE1_PUSHES pushes), bumped by Atomics.add
 * without the lock, past 2^31 and 2^32: a long-running heap makes some 20,000 Stage-1 pops a second
 * in the benchmark's busiest cases, 2^31 in about 30 hours. Set near the limit in the buffer here.
 * Before, an Int32 word alone: the count read -2^31 after 2^31 - 1.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { G_STAGE1, G_STAGE1_PUSHES } from '../src/layout.js';

const MiB = 1 << 20;

/** Allocates and frees some 2 MiB of 1 KiB blocks twice: empty slabs pushed to Stage 1, and popped again. */
function pushAndPop(heap: SharedHeap): void {
  const blocks: number[] = [];
  for (let i = 0; i < 2000; i++) blocks.push(heap.malloc(1024));
  for (const p of blocks) heap.free(p);
  heap.flush(); // the empty slabs beyond the thread's keep budget go to Stage 1
  for (let i = 0; i < 2000; i++) blocks[i] = heap.malloc(1024);
  for (const p of blocks) heap.free(p);
  heap.flush();
}

describe('Stage-1 counts of a long-lived heap', () => {
  for (const [name, at] of [
    ['2^31', 2 ** 31 - 1],
    ['2^32', 2 ** 32 - 1],
  ] as const) {
    it(`go on counting up past ${name}`, () => {
      const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 2, stage1Keep: 1024 });
      const i32 = new Int32Array(heap.buffer);
      const before = heap.stats().stages;
      Atomics.store(i32, G_STAGE1, at | 0);
      Atomics.store(i32, G_STAGE1_PUSHES, at | 0);
      pushAndPop(heap);
      const after = heap.stats().stages;
      const pushes = after.stage1Pushes - at;
      const pops = after.stage1 - at;
      expect(pushes).toBeGreaterThan(0); // the workload pushed and popped slabs...
      expect(pops).toBeGreaterThan(0);
      expect(before.stage1).toBe(0);
      // ...and the counts went on from where they were, never negative or back near 0.
      expect(after.stage1Pushes).toBeGreaterThan(at);
      expect(after.stage1).toBeGreaterThan(at);
      expect(pushes).toBeLessThan(1000);
      expect(pops).toBeLessThan(1000);
      heap.check();
      heap.detach();
    });
  }
});
