/** readHeapMap: the per-slot picture the demo draws, read from the buffer alone. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  MAP_LARGE, MAP_METADATA, MAP_NO_OWNER, MAP_POOLED, MAP_SLAB, MAP_UNCARVED, MAP_UNUSED, SharedHeap, readHeapMap,
} from '../../src/index.js';

const MiB = 1 << 20;
const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('readHeapMap', () => {
  it('shows metadata, slabs with class and owner, large runs, and slabs back in the pool', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 16 * MiB, maxThreads: 2, stage1Keep: 4 });
    heaps.push(heap);
    const m0 = readHeapMap(heap.buffer);
    expect(m0.supers).toBe(8);
    expect(m0.maxSupers).toBe(16);
    expect(m0.kind.length).toBe(8 * 16);
    expect(m0.kind[0]).toBe(MAP_METADATA);
    expect(m0.kind[m0.metaSupers * 16]).toBe(MAP_UNCARVED);

    const small = heap.malloc(100);
    const large = heap.malloc(300_000);
    heap.check();
    const m1 = readHeapMap(heap.buffer);
    const s = small >>> 16;
    expect(m1.kind[s]).toBe(MAP_SLAB);
    expect(m1.cls[s]).toBeGreaterThanOrEqual(0);
    expect(m1.owner[s]).toBe(heap.threadId);
    expect(m1.tid[s]).toBeGreaterThanOrEqual(0);
    expect(m1.kind[large >>> 16]).toBe(MAP_LARGE);
    expect(m1.owner[large >>> 16]).toBe(MAP_NO_OWNER);
    expect(Array.from(m1.kind).filter((k) => k === MAP_UNUSED).length).toBeGreaterThan(0);

    heap.free(small);
    heap.free(large);
    heap.flush();
    heap.check();
    const m2 = readHeapMap(heap.buffer);
    expect([MAP_POOLED, MAP_UNUSED]).toContain(m2.kind[s]);
    expect(m2.kind[large >>> 16]).toBe(MAP_POOLED); // kept in its span's large-run list
    expect(m2.cls[large >>> 16]).toBe(-1);
    heap.malloc(300_000); // takes it again
    expect(readHeapMap(heap.buffer).kind[large >>> 16]).toBe(MAP_LARGE);
  });

  it('rejects a buffer that is not a heap', () => {
    expect(() => readHeapMap(new SharedArrayBuffer(1 << 16))).toThrow(/not a sabmalloc heap/);
  });
});
