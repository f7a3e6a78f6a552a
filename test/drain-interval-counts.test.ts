/**
 * create()'s drainInterval as the README says ("Magazines": "after every `drainInterval` frees into
 * a magazine with room ... the thread looks at the magazine of the class it frees and, in turn, at
 * one other class's that holds blocks ... and drains it whole"; a free that finds its magazine full
 * drains its newer half instead and is not counted).
 *
 * Probe (workers/options-probe.ts firstLook): a 2 KiB block is freed into its magazine (free 1),
 * then 16-byte blocks one at a time; the first periodic look takes the 2 KiB magazine in turn and
 * drains it, so the free after which it is empty is the free of the first look. The expected free
 * comes from a model of that rule (expectedLook). An audit (2026-12-07) found the README saying
 * "after every drainInterval frees" (first looks after 1,056 frees at the defaults, and none with
 * magazineCapacity 1); counting the frees into a full magazine too was tried and undone: the looks
 * came sooner where magazines fill, and gawk_records' footprint went from 1.85 to 2.05x its peak
 * live bytes, over the 2.0x goal. The README says what the heap does now.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { firstLook, magazineDepth } from '../workers/options-probe.js';

const MiB = 1 << 20;
const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

function lookAt(options: HeapOptions, frees: number): number {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 2, ...options });
  heaps.push(heap);
  return firstLook(heap, frees);
}

/**
 * The free after which the first look comes, by the documented rule: free 1 (the 2 KiB block, into
 * its own magazine) counts; a 16-byte free into a magazine with room counts and raises it by one; one
 * into a full magazine (depth `cap`) is not counted and leaves it at cap - max(1, cap >> 1) + 1.
 * `depth0`: the 16-byte magazine's depth before the frees (what the last refill left). -1: none
 * within `frees`.
 */
function expectedLook(cap: number, interval: number, frees: number, depth0: number): number {
  let counted = 1;
  if (counted === interval) return 1;
  let depth = depth0;
  for (let n = 2; n <= frees; n++) {
    if (depth === cap) depth = depth - Math.max(1, depth >>> 1) + 1;
    else {
      depth++;
      if (++counted === interval) return n;
    }
  }
  return -1;
}

describe('drainInterval: the first periodic look comes after drainInterval frees into a magazine with room', () => {
  it('with a magazine that never fills (magazineCapacity 4096): after exactly drainInterval frees (1, 100, 1024)', () => {
    expect([1, 100, 1024].map((d) => lookAt({ drainInterval: d, magazineCapacity: 4096 }, 3000))).toEqual([1, 100, 1024]);
  });

  it.each([
    [64, 1024],
    [4, 8],
    [3, 100],
    [1, 8],
    [1, 1024],
  ])('with magazineCapacity %i and drainInterval %i: the frees into a full magazine not counted', (cap, interval) => {
    // The probe's steps up to its first free, on a heap of its own: the magazine's depth then.
    const h = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 2, drainInterval: interval, magazineCapacity: cap });
    heaps.push(h);
    h.malloc(2048);
    for (let i = 0; i < 5000; i++) h.malloc(16);
    const want = expectedLook(cap, interval, 5000, magazineDepth(h, 16));
    // Up to 3 entries a full magazine drains one and takes one: full again at every free, no look.
    if (cap > 3) expect(want, 'the model: some frees found the magazine full').toBeGreaterThan(interval);
    else expect(want, 'the model: a magazine of 3 entries or fewer stays full').toBe(-1);
    expect(lookAt({ drainInterval: interval, magazineCapacity: cap }, 5000), 'free after which the first periodic look came (-1: none)').toBe(want);
  });
});
