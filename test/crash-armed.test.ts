/**
 * The slow paths that pass crash points for every block or run of blocks (takeBlocks, takeFreed,
 * drainJournal, and the Stage-1 list's pop and push) read crashArmed() once a call and pass each
 * point as `if (cp) crashPoint(...)`.
 * When counting (as when armed), every one of those points is still passed, in order: a refill of
 * fresh blocks passes takeBlocks' three, a drain of one slab's blocks its journal's point, then
 * freeDrainFull's and the four of drainJournal's run. (test/crash-points.test.ts stops a thread at
 * each point it counts here; a point read as off would be neither counted nor tested.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_DRAIN, CP_JOURNAL, CP_REFILL, CP_STAGE1_POP, CP_STAGE1_PUSH, countCrashPoints, crashArmed, crashCounts, crashOrder } from '../src/crash.js';

afterEach(() => {
  crashCounts(); // counting off
});

describe('crash points of the per-block slow paths, read once a call (crashArmed)', () => {
  it('crashArmed is false unless counting or armed', () => {
    expect(crashArmed()).toBe(false);
    countCrashPoints();
    expect(crashArmed()).toBe(true);
    crashCounts();
    expect(crashArmed()).toBe(false);
  });

  it("a refill of fresh blocks passes takeBlocks' three points", () => {
    const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 2, magazineCapacity: 8, refillCount: 4 });
    const blocks: number[] = [];
    for (let i = 0; i < 4; i++) blocks.push(heap.malloc(64)); // the slab taken and its first refill, before counting
    countCrashPoints();
    for (let i = 0; i < 4; i++) blocks.push(heap.malloc(64)); // the magazine is empty: one refill
    const counts = crashCounts();
    expect(counts[CP_REFILL]).toBe(3);
    expect(crashOrder()).toEqual([CP_REFILL, CP_REFILL, CP_REFILL]);
    for (const p of blocks) heap.free(p);
    expect(() => heap.check()).not.toThrow();
    heap.detach();
  });

  it("a drain of one slab's blocks passes its journal's point and five drain points, each time", () => {
    const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 2, magazineCapacity: 8, refillCount: 4 });
    const blocks: number[] = [];
    for (let i = 0; i < 16; i++) blocks.push(heap.malloc(64));
    countCrashPoints();
    for (const p of blocks) heap.free(p); // a full magazine of 8 drains half, twice
    const counts = crashCounts();
    const once = [CP_JOURNAL, CP_DRAIN, CP_DRAIN, CP_DRAIN, CP_DRAIN, CP_DRAIN];
    expect(crashOrder()).toEqual([...once, ...once]);
    expect(counts[CP_DRAIN]).toBe(10);
    expect(() => heap.check()).not.toThrow();
    heap.detach();
  });

  it("every Stage-1 pop passes its three points, every push the list's three and forgetFreeBlocks' two", () => {
    const heap = SharedHeap.create({ initialBytes: 64 << 20, maxThreads: 2 });
    const blocks: number[] = [];
    // 40 KiB blocks, one a slab: each malloc takes a slab, each drained free gives one back. A
    // flush every 10 mallocs (a look at every class): no refill takes the 16 slabs since the last
    // look that would give the class a deep magazine (magazine.ts deepen), which would keep the
    // blocks out of Stage 1.
    const mallocs = (): void => {
      for (let i = 0; i < 200; i++) {
        blocks.push(heap.malloc(38400));
        if (i % 10 === 9) heap.flush();
      }
    };
    mallocs();
    for (const p of blocks.splice(0)) heap.free(p);
    const before = heap.stats().stages;
    countCrashPoints();
    mallocs();
    const pops = crashCounts()[CP_STAGE1_POP];
    const mid = heap.stats().stages;
    countCrashPoints();
    for (const p of blocks) heap.free(p);
    const pushes = crashCounts()[CP_STAGE1_PUSH];
    const after = heap.stats().stages;
    expect(mid.stage1 - before.stage1).toBeGreaterThan(50);
    expect(pops).toBe(3 * (mid.stage1 - before.stage1));
    expect(after.stage1Pushes - mid.stage1Pushes).toBeGreaterThan(50);
    expect(pushes).toBe(5 * (after.stage1Pushes - mid.stage1Pushes));
    expect(() => heap.check()).not.toThrow();
    heap.detach();
  });
});
