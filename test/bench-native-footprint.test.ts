/**
 * The footprint column of `sabmalloc bench` for the native allocators on W1, W2 and W3: the growth
 * of the process's peak resident set over the workload (bench/native/workloads.c: the peak reset
 * by /proc/self/clear_refs where the workload starts), as W5's has been, and not the peak of the
 * whole process, which carries the program, ld.so, libc, the preloaded library and its tables, none
 * of which sabmalloc's figure (stats().peakFootprintBytes, its heap's pages: 40-44 KiB for an empty
 * heap) holds. Until an audit (2026-12-07) W1-W3 reported the whole process's VmHWM: glibc 1.6 MiB
 * and tcmalloc 7.1 MiB with nothing allocated, most of the natives' W1 and W3 footprints.
 *
 * Each workload runs with no operation at all: W1's figure must be of the order of an empty
 * allocator's (below 256 KiB), and W2's at two threads (their stacks and per-thread caches count,
 * as they should) below 1 MiB and below half the whole process's peak (ruMaxrssBytes).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { nativeAllocators, nativeSkipReason, runNative } from '../bench/native.js';

const skip = nativeSkipReason();
const KiB = 1024;
const LIMIT = 256 * KiB;

describe.skipIf(skip !== undefined)("the natives' footprint on W1-W3 is the workload's, not the whole process's", () => {
  it('an empty sabmalloc heap reports its metadata only', () => {
    const heap = SharedHeap.create({ initialBytes: 128 << 20, maxThreads: 3 });
    expect(heap.stats().peakFootprintBytes).toBeLessThan(LIMIT);
    heap.detach();
  });

  for (const a of nativeAllocators()) {
    it(`${a.name}: W1 and W2 with no operation report the footprint of no work`, async () => {
      const w1 = await runNative(a, 'W1', { cycles: 0 });
      const w2 = await runNative(a, 'W2', { threads: 2, cycles: 0 });
      expect(w1.ops).toBe(0);
      expect(w1.mallocs).toBe(0);
      // what bench/run.ts runNativeOnce puts in the table's footprint column
      const found = `${a.name} with zero allocations: W1 footprint ${w1.peakRssBytes} B, W2 (2 threads) ${w2.peakRssBytes} B`;
      expect(w1.peakRssBytes, found).toBeLessThan(LIMIT);
      expect(w2.peakRssBytes, found).toBeLessThan(4 * LIMIT);
      expect(w2.peakRssBytes, found).toBeLessThan(w2.ruMaxrssBytes / 2);
    });
  }
});
