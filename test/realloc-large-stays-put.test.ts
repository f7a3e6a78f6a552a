/**
 * realloc's fast path for a live large run that stays put (heap.ts realloc: a size above half its
 * usable size and up to it returns the block without the call out; an audit of usage patterns
 * found a string builder's reallocs of a large buffer at 25-44 ns against glibc's 4-6, all in the
 * call out). Everything else about a large run still goes the slow way: these tests hold the fast
 * path to the slow path's answers and errors.
 */
import { describe, expect, it } from 'vitest';
import { DoubleFreeError, HeapStateError, InvalidPointerError } from '../src/errors.js';
import { MAX_SMALL } from '../src/size-classes.js';
import { SLOT_BYTES } from '../src/layout.js';
import { KiB, MiB, checked, fillPattern, firstWrong, freshHeaps } from './fixtures.js';

const { fresh } = freshHeaps({ initialBytes: 32 * MiB, maxThreads: 2 });

describe('realloc of a live large run to a size it keeps', () => {
  it('returns the block for every size above half its usable size up to it, its bytes kept, and moves or shrinks it outside', () => {
    const heap = fresh();
    for (const first of [MAX_SMALL + 1, 200 * KiB, MiB, 3 * MiB + 5]) {
      const p = heap.malloc(first);
      const usable = heap.usableSize(p);
      fillPattern(heap, p, first, first);
      for (const size of [usable, usable - 1, usable - 16, Math.floor(usable / 2) + 1, first]) {
        expect(heap.realloc(p, size), `${first}: realloc to ${size} of ${usable}`).toBe(p);
        expect(heap.usableSize(p)).toBe(usable);
      }
      expect(firstWrong(heap, p, first, first)).toBe(-1);
      // Half its usable size or less: the slow path's rule (a shrink in place gives its tail back).
      const q = heap.realloc(p, Math.floor(usable / 2));
      expect(heap.usableSize(q)).toBeLessThan(usable);
      // More than it holds: the slow path grows or moves it.
      const r = heap.realloc(q, usable + 1);
      expect(heap.usableSize(r)).toBeGreaterThan(usable);
      heap.free(r);
    }
    expect(checked(heap)).toBe('passes');
  });

  it('a freed run, an interior slot and a detached thread get the slow path\'s errors', () => {
    const heap = fresh();
    const p = heap.malloc(MiB);
    const keep = heap.malloc(MiB); // the freed run's slots stay where they are
    expect(() => heap.realloc(p + SLOT_BYTES, MiB - SLOT_BYTES)).toThrow(InvalidPointerError); // inside a live run
    heap.free(p);
    expect(() => heap.realloc(p, MiB - 16)).toThrow(DoubleFreeError);
    expect(() => heap.realloc(keep + SLOT_BYTES, MiB - SLOT_BYTES)).toThrow(InvalidPointerError);
    expect(checked(heap)).toBe('passes');
    heap.detach();
    expect(() => heap.realloc(keep, MiB)).toThrow(HeapStateError);
  });
});
