/**
 * realloc of a small block that grows by half or more to REALLOC_RUN_FROM or more (a buffer its
 * program doubles) moves it into a large run with free slots after it, whose next growths take
 * those slots in place, however small the size still is (alloc.ts reallocToRun); a block grown a
 * little at a time stays in its size classes, and a run shrunk to a small size still moves.
 */
import { describe, expect, it } from 'vitest';
import type { SharedHeap } from '../src/index.js';
import { REALLOC_RUN_FROM, classifyBlock, reallocToRun } from '../src/alloc.js';
import { internals } from '../src/heap.js';
import { SLOT_BYTES } from '../src/layout.js';
import { MAX_SMALL } from '../src/size-classes.js';
import { KiB, MiB, fillPattern, firstWrong, freshHeaps } from './fixtures.js';

const stamped = (h: SharedHeap, p: number, n: number, seed: number): boolean => firstWrong(h, p, n, seed) < 0;

const { fresh } = freshHeaps({ initialBytes: 8 * MiB, maxBytes: 64 * MiB, maxThreads: 2 });

/** Whether the live block p is a large run (classifyBlock's class -1), not a block of a size class. */
const inRun = (h: SharedHeap, p: number): boolean => classifyBlock(internals(h), 'test', 'p', p) < 0;

describe('realloc of a small block into a large run', () => {
  it('says which growths go to a run: by half or more of the usable size, to REALLOC_RUN_FROM or more', () => {
    expect(reallocToRun(REALLOC_RUN_FROM, REALLOC_RUN_FROM / 2)).toBe(true);
    expect(reallocToRun(REALLOC_RUN_FROM - 1, REALLOC_RUN_FROM / 2)).toBe(false);
    expect(reallocToRun(96 * KiB, 64 * KiB)).toBe(true);
    expect(reallocToRun(96 * KiB - 1, 64 * KiB)).toBe(false);
    expect(reallocToRun(64 * KiB, 64 * KiB)).toBe(false); // it fits
    expect(reallocToRun(100, 200)).toBe(false);
  });

  it('a doubling buffer moves once into a run, then grows in place, its bytes kept', () => {
    const h = fresh();
    let n = 48 * KiB;
    let p = h.malloc(n);
    fillPattern(h, p, n, 1);
    expect(inRun(h, p)).toBe(false);
    const usable = h.usableSize(p);
    n = usable * 2;
    expect(n).toBeLessThanOrEqual(MAX_SMALL); // still a small size: a class would hold it
    const q = h.realloc(p, n);
    expect(q).not.toBe(p);
    expect(inRun(h, q)).toBe(true);
    expect(stamped(h, q, 48 * KiB, 1)).toBe(true);
    fillPattern(h, q, n, 2);
    p = q;
    let seed = 2;
    // Its next growths, to 2, 4, 8 slots, take the free slots after it (the move left room).
    for (const slots of [2, 4, 8]) {
      const m = slots * SLOT_BYTES;
      const r = h.realloc(p, m);
      expect(r, `growth to ${slots} slots`).toBe(p);
      expect(h.usableSize(r)).toBeGreaterThanOrEqual(m);
      expect(stamped(h, r, n, seed)).toBe(true);
      n = m;
      seed = slots;
      fillPattern(h, r, n, seed);
      h.check();
    }
    const before = h.stats();
    expect(before.largeLiveBlocks).toBe(1);
    h.free(p);
    h.check();
    expect(h.stats().largeLiveBytes).toBe(0);
    expect(h.stats().liveBlocks).toBe(0);
  });

  it('a run holding a small size grows in place (the slot after it free) and keeps its bytes', () => {
    const h = fresh();
    const p = h.realloc(h.malloc(40 * KiB), 64 * KiB); // 40 KiB's class holds 40 KiB: 64 grows by more than half
    expect(inRun(h, p)).toBe(true);
    expect(h.usableSize(p)).toBe(SLOT_BYTES);
    fillPattern(h, p, SLOT_BYTES, 5);
    const q = h.realloc(p, SLOT_BYTES + 1); // at most MAX_SMALL, and a run: in place
    expect(q).toBe(p);
    expect(h.usableSize(q)).toBe(2 * SLOT_BYTES);
    expect(stamped(h, q, SLOT_BYTES, 5)).toBe(true);
    h.check();
    h.free(q);
    h.check();
  });

  it('a block grown a little at a time stays in its size classes', () => {
    const h = fresh();
    let p = h.malloc(24 * KiB);
    fillPattern(h, p, 24 * KiB, 3);
    let n = 24 * KiB;
    for (; n < MAX_SMALL; n += 3 * KiB) {
      p = h.realloc(p, n);
      expect(inRun(h, p), `${n} bytes`).toBe(false);
    }
    expect(stamped(h, p, 24 * KiB, 3)).toBe(true);
    expect(h.stats().largeLiveBlocks).toBe(0);
    h.free(p);
    h.check();
  });

  it('a run shrunk to a quarter moves back into a size class', () => {
    const h = fresh();
    const p = h.realloc(h.malloc(40 * KiB), 100 * KiB);
    expect(inRun(h, p)).toBe(true);
    fillPattern(h, p, 20 * KiB, 7);
    const q = h.realloc(p, 20 * KiB);
    expect(q).not.toBe(p);
    expect(inRun(h, q)).toBe(false);
    expect(stamped(h, q, 20 * KiB, 7)).toBe(true);
    expect(h.stats().largeLiveBlocks).toBe(0);
    h.free(q);
    h.check();
  });

  it('reallocAsync moves it the same way and grows the run in place', async () => {
    const h = fresh();
    const p = h.malloc(40 * KiB);
    fillPattern(h, p, 40 * KiB, 9);
    const q = await h.reallocAsync(p, 64 * KiB);
    expect(inRun(h, q)).toBe(true);
    const r = await h.reallocAsync(q, 100 * KiB);
    expect(r).toBe(q);
    expect(stamped(h, r, 40 * KiB, 9)).toBe(true);
    h.free(r);
    h.check();
  });

  it('where no run of free slots is left, takes a block its size class has cached instead (no flush of the caches)', () => {
    const h = fresh({ initialBytes: 4 * MiB, maxBytes: 4 * MiB });
    const b = h.malloc(40 * KiB);
    fillPattern(h, b, 40 * KiB, 6);
    const a = h.malloc(100 * KiB); // a block of the class that 100 KiB takes
    const rest: number[] = [];
    for (let p = h.malloc(SLOT_BYTES); p !== 0; p = h.malloc(SLOT_BYTES)) rest.push(p); // every slot taken
    h.free(a); // cached in this thread's magazine: its slab stays taken
    const q = h.realloc(b, 100 * KiB);
    expect(q).toBe(a);
    expect(inRun(h, q)).toBe(false);
    expect(stamped(h, q, 40 * KiB, 6)).toBe(true);
    h.check();
    for (const p of rest) h.free(p);
    h.free(q);
    h.check();
  });

  it('a freed run from a grown block is not freed twice (double free is refused, heap intact)', () => {
    const h = fresh();
    const keep = h.malloc(1000);
    fillPattern(h, keep, 1000, 4);
    const p = h.realloc(h.malloc(40 * KiB), 64 * KiB);
    h.free(p);
    expect(() => h.free(p)).toThrow(/double free|not allocated/);
    expect(() => h.realloc(p, 128 * KiB)).toThrow(/realloc/);
    h.check();
    expect(stamped(h, keep, 1000, 4)).toBe(true);
    h.free(keep);
  });
});
