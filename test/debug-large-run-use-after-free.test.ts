/**
 * An audit of debug mode (2026-12-05): a large run of at most 128 KiB (alignedAlloc with an
 * alignment of 128 KiB and a size up to 128 KiB - 9, a run of two slots) is filled when freed, as
 * a small block is (debug.ts debugFillsFreed), but the check of that fill when the run was handed
 * out again threw its error away (debugRecordLarge) and cleared the freed mark: a write after free
 * into such a run went unreported, and the run was handed out again as if intact. Small blocks,
 * and the 64 KiB-aligned blocks served by slabs, report it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

function make(): SharedHeap {
  const heap = SharedHeap.create({ initialBytes: 8 << 20, maxBytes: 16 << 20, maxThreads: 2, debug: true });
  heaps.push(heap);
  return heap;
}

describe('debug mode: a write after free into a freed run of at most 128 KiB', () => {
  for (const [align, size] of [
    [65536, 1000], // a slab's block: reported before the fix too
    [131072, 100000], // a run of two slots
    [131072, 8],
  ] as const) {
    it(`alignedAlloc(${align}, ${size}): reported when the run is handed out again, the heap intact`, () => {
      const heap = make();
      const keep = heap.malloc(5000);
      heap.u8.fill(0x5a, keep, keep + 5000);
      const p = heap.alignedAlloc(align, size);
      expect(p % align).toBe(0);
      heap.u8.fill(1, p, p + size);
      heap.free(p);
      heap.u8[p + 8] = 0x42; // use after free, in the fill
      let q = -1;
      let err: unknown;
      try {
        q = heap.alignedAlloc(align, size);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HeapCorruptionError);
      expect(String((err as Error).message)).toMatch(/written after it was freed/);
      expect(String((err as Error).message)).toContain(`0x${(p + 8).toString(16)}`);
      expect(q).toBe(-1);
      heap.check(); // the run stays allocated, out of use
      heap.free(p); // given back with the offset the error named
      heap.check();
      const r = heap.alignedAlloc(align, size);
      expect(r).toBeGreaterThan(0);
      heap.free(r);
      for (let i = 0; i < 5000; i++) if (heap.u8[keep + i] !== 0x5a) throw new Error(`live block changed at ${i}`);
      heap.free(keep);
      heap.check();
    });
  }

  it('an intact freed run is handed out again without an error', async () => {
    const heap = make();
    const p = heap.alignedAlloc(131072, 100000);
    heap.free(p);
    const q = heap.alignedAlloc(131072, 100000);
    expect(q).toBeGreaterThan(0);
    expect(heap.usableSize(q)).toBe(100000);
    heap.free(q);
    const r = await heap.alignedAllocAsync(131072, 50000);
    expect(heap.usableSize(r)).toBe(50000);
    heap.free(r);
    heap.check();
  });
});
