/**
 * An audit (2026-12-04): in debug mode, reallocAsync of a large block to a size between half its
 * usable size and that size returned the block as it was: its size record and canary stayed at
 * the old size, so usableSize() reported the old size and a write past the new size went
 * unnoticed, where realloc() (which debug mode always moves, to write the canary anew) reports
 * the new size and free() catches that write.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('debug mode: reallocAsync of a large block to a somewhat smaller size', () => {
  it('records the new size as realloc does, keeps the data, and free() catches a write past it', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 2, debug: true });
    heaps.push(heap);
    const p = heap.malloc(300000);
    for (let i = 0; i < 300000; i += 97) heap.u8[p + i] = (i >>> 5) & 0xff;
    const q = await heap.reallocAsync(p, 200000);
    expect(q).toBeGreaterThan(0);
    expect(heap.usableSize(q)).toBe(200000);
    for (let i = 0; i < 200000; i += 97) expect(heap.u8[q + i]).toBe((i >>> 5) & 0xff);
    heap.check();
    heap.u8[q + 200000] ^= 0xff; // the first byte past the new size
    expect(() => heap.free(q)).toThrow(HeapCorruptionError);
    heap.u8[q + 200000] ^= 0xff;
    heap.free(q);
    heap.check();
  });
});
