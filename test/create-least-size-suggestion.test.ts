/**
 * An audit (2026-12-04): the RangeError for a heap too small for its metadata says "initialBytes
 * and maxBytes of at least N are needed", with N computed from the metadata for the maxBytes
 * given. The metadata grows with maxBytes (the slot table), so where maxBytes had to grow to N the
 * metadata took more than at the size given, and create() refused N itself: maxThreads 1024 with
 * magazineCapacity 4096 and initialBytes 2 MiB named 2,051,014,656, which was then refused with a
 * larger size. The size an error names must be one create() takes.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap, type HeapOptions } from '../src/index.js';

const MiB = 1 << 20;

function leastNamed(options: HeapOptions): number {
  try {
    SharedHeap.create(options).detach();
  } catch (e) {
    const m = /so initialBytes and maxBytes of at least (\d+) are needed/.exec((e as Error).message);
    if (m !== null) return Number(m[1]);
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('the least size a too-small heap\'s error names', () => {
  const cases: HeapOptions[] = [
    { maxThreads: 1024, magazineCapacity: 4096, initialBytes: 2 * MiB },
    { maxThreads: 1024, magazineCapacity: 4096 },
    { maxThreads: 512, magazineCapacity: 4096, initialBytes: 2 * MiB },
    { maxThreads: 1024, magazineCapacity: 2048, initialBytes: 64 * MiB },
    { maxThreads: 64, magazineCapacity: 4096, initialBytes: 2 * MiB, maxBytes: 2047 * MiB },
  ];
  it.each(cases)('is accepted as initialBytes and maxBytes, and is the least: %j', (options) => {
    const need = leastNamed(options);
    expect(need).toBeLessThanOrEqual(2047 * MiB);
    const { maxThreads, magazineCapacity } = options;
    const heap = SharedHeap.create({ maxThreads, magazineCapacity, initialBytes: need, maxBytes: Math.max(need, options.maxBytes ?? 0) });
    const p = heap.malloc(100);
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    heap.check();
    heap.detach();
    // One MiB less is refused (the size named is the least for these options).
    expect(() => SharedHeap.create({ maxThreads, magazineCapacity, initialBytes: need - MiB, maxBytes: Math.max(need - MiB, options.maxBytes ?? 0) })).toThrow(RangeError);
  });
});
