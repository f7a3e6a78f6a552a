/**
 * CLASS_SIZES is the package's copy of the size classes: a program that writes into it changes
 * its own array, not the table every allocation reads. (It was the allocator's own table: an audit
 * saw that writing to it would change the allocator's sizes; here, usableSize and the blocks' data.)
 */
import { afterEach, expect, it } from 'vitest';
import { CLASS_SIZES, SharedHeap } from '../src/index.js';

const saved = Array.from(CLASS_SIZES);
afterEach(() => CLASS_SIZES.set(saved));

it('writing into CLASS_SIZES leaves the heap as it was', () => {
  const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 2 });
  const before = [1, 16, 17, 100, 1000].map((n) => heap.usableSize(heap.malloc(n)));
  CLASS_SIZES.fill(8); // every class "8 bytes"
  const p = heap.malloc(100);
  expect(heap.usableSize(p)).toBe(before[3]);
  heap.u8.fill(9, p, p + 100);
  const q = heap.malloc(100); // the next block of the class: not overlapping p
  heap.u8.fill(3, q, q + 100);
  expect(heap.u8.subarray(p, p + 100).every((b) => b === 9)).toBe(true);
  expect([1, 16, 17, 100, 1000].map((n) => heap.usableSize(heap.malloc(n)))).toEqual(before);
  heap.check();
  heap.detach();
});
