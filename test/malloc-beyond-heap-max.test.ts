/**
 * A request larger than the heap could ever hold (above its maxBytes, below the 2047 MiB every
 * heap is refused beyond) is out of memory at once: the out-of-memory course (the thread's own
 * caches given back, the other threads asked to flush and waited for, up to 50 ms) cannot make it
 * fit, so it is not taken (an audit of growable heaps, 2026-12-05).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { checked, MiB } from './fixtures.js';

function drainsOf(heap: SharedHeap): number {
  return heap.stats().threads.find((x) => x.threadId === heap.threadId)!.drains;
}

describe('a request above what the heap could ever hold', () => {
  for (const [name, options] of [
    ['fixed', { initialBytes: 8 * MiB }],
    ['growable', { initialBytes: 8 * MiB, maxBytes: 24 * MiB }],
  ] as const) {
    it(`${name}: malloc, calloc, realloc, alignedAlloc answer 0 and the thread keeps its caches`, () => {
      const heap = SharedHeap.create({ ...options, maxThreads: 2 });
      const ps = Array.from({ length: 20 }, () => heap.malloc(64));
      for (const p of ps.slice(1)) heap.free(p); // cached in this thread's magazine
      heap.u8[ps[0]!] = 7;
      const before = drainsOf(heap);
      const huge = ('maxBytes' in options ? options.maxBytes : options.initialBytes) + MiB; // the whole buffer and more
      expect(heap.malloc(huge)).toBe(0);
      expect(heap.calloc(1, huge)).toBe(0);
      expect(heap.alignedAlloc(4096, huge)).toBe(0);
      expect(heap.realloc(ps[0]!, huge)).toBe(0);
      expect(drainsOf(heap)).toBe(before);
      expect(heap.u8[ps[0]!]).toBe(7);
      expect(checked(heap)).toBe('passes');
      // What fits still does, through the course it may need.
      expect(heap.malloc(2 * MiB)).toBeGreaterThan(0);
    });
  }
});
