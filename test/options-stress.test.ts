/**
 * Several workers at once (more than this machine's cores, so threads are also preempted inside
 * the heap's critical sections) on heaps made with extreme option values that create() accepts:
 * magazines of one block and of 4096, refills of one block and of 4096 (above the capacity),
 * drains after every free and never, Stage-1 lists that keep nothing and everything, a trim
 * before every slab, maxThreads exactly the threads attached, the least initialBytes, a growable
 * heap that grows while the others allocate, and debug mode. Each worker
 * (workers/options-stress-core.ts) runs a seeded mix of malloc, calloc, alignedAlloc, realloc,
 * free and usableSize of small and large blocks and hands blocks to the others, so that many
 * frees and reallocs are cross-thread; every block's pattern is checked before it is freed or
 * resized. The main thread pauses everyone now and then to run check() and verify every block
 * recorded; one run detaches a worker and attaches it again three times mid-run, one terminates a worker mid-run
 * (reclaimed through watch() while the others go on). At the end everything is freed: check()
 * passes, nothing is live (but the one block a terminated worker may have died allocating), no
 * slab counts a block out, and the heap holds as many blocks as a fresh heap made with the same
 * options. The driver is test/options-stress-harness.ts; OPTIONS_STRESS_SEED picks the seeds.
 * No defect was found with it (docs/robustness.md, "Several workers at once under extreme
 * options"); it stays as a regression test of those option values under real concurrency.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HeapOptions } from '../src/index.js';
import { leastBytes, runStress, type Plan } from './options-stress-harness.js';
import { terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterEach(terminateAll);

const SEED = Number(process.env.OPTIONS_STRESS_SEED ?? 0x5eed);

describe('several workers at once under extreme options', () => {
  const base = (o: HeapOptions, threads: number): HeapOptions => {
    const withThreads = { ...o, maxThreads: threads + 1 };
    const least = leastBytes(withThreads);
    return { ...withThreads, initialBytes: o.initialBytes ?? least, maxBytes: o.maxBytes ?? o.initialBytes ?? least };
  };
  // The least heap answers most allocations with 0 (each thread needs a slab of its own for every
  // class it uses): a run there may hand no block across at all, and is there for its out-of-memory
  // paths (so it asks for no cross-thread frees).
  const cases: [string, HeapOptions, Plan, number?][] = [
    ['magazines of 1, refill 1, drain every free, keep 0, trim every slab', { magazineCapacity: 1, refillCount: 1, drainInterval: 1, stage1Keep: 0, trimInterval: 1, initialBytes: 16 * MiB }, { workers: 4, ops: 6000, largePct: 2, largeMax: 1 << 20 }],
    ['magazines of 4096, refill 4096, never drained, keep 2^20', { magazineCapacity: 4096, refillCount: 4096, drainInterval: 2 ** 30, stage1Keep: 1 << 20, initialBytes: 40 * MiB }, { workers: 3, ops: 6000, largePct: 1, largeMax: 1 << 20, smallBits: 11 }],
    ['magazines of 1, refill 4096 (above the capacity), least initialBytes', { magazineCapacity: 1, refillCount: 4096 }, { workers: 5, ops: 5000, largePct: 1, largeMax: 512 << 10, smallBits: 6 }, 0],
    ['growable from the least size, debug, drain every free', { debug: true, drainInterval: 1, magazineCapacity: 3, refillCount: 2, maxBytes: 64 * MiB }, { workers: 4, ops: 5000, largePct: 2, largeMax: 2 << 20 }],
    ['a worker detaches and attaches again mid-run', { magazineCapacity: 2, refillCount: 1, drainInterval: 3, stage1Keep: 0, trimInterval: 1, initialBytes: 24 * MiB }, { workers: 4, ops: 6000, largePct: 2, largeMax: 1 << 20, reattach: 1 }],
    ['a worker terminated mid-run, reclaimed by watch()', { magazineCapacity: 4096, refillCount: 1, drainInterval: 1, stage1Keep: 1 << 20, initialBytes: 96 * MiB }, { workers: 5, ops: 6000, largePct: 2, largeMax: 1 << 20, kill: { w: 2, afterOps: 8000 } }],
    ['a worker terminated mid-run, growable, debug', { debug: true, stage1Keep: 0, trimInterval: 1, maxBytes: 48 * MiB }, { workers: 6, ops: 4000, largePct: 2, largeMax: 1 << 20, kill: { w: 0, afterOps: 6000 } }],
  ];
  cases.forEach(([name, o, plan, minCross = 51], i) => {
    it(name, async () => {
      const options = base(o, plan.workers);
      const r = await runStress(options, plan, SEED + i * 7919);
      console.log(`${name}: ${JSON.stringify(options)} ${JSON.stringify(r)}`);
      // The run did what it is for: pauses with check(), blocks freed or resized by a thread other
      // than the one that filled them, the detach and attach again, the terminated worker's blocks.
      expect(r.checks).toBeGreaterThan(0);
      expect(r.cross).toBeGreaterThanOrEqual(minCross);
      if (plan.reattach !== undefined) expect(r.reattached).toBe(3);
      if (plan.kill !== undefined) expect(r.settled).toBeGreaterThan(0);
      if (options.maxBytes! > options.initialBytes!) expect(r.grownTo * MiB).toBeGreaterThan(options.initialBytes!);
    }, 120_000);
  });
});
