/**
 * create()'s drainInterval as the README says ("Magazines": "after every `drainInterval` frees the
 * thread looks at the magazine of the class it frees and, in turn, at one other class's that holds
 * blocks ... and drains it whole"; a class above 1 KiB always), whatever magazineCapacity is.
 *
 * Probe (workers/options-probe.ts firstLook): a 2 KiB block is freed into its magazine (free 1),
 * then 16-byte blocks one at a time; the first periodic look takes the 2 KiB magazine in turn and
 * drains it, so the free after which it is empty is the free of the first look.
 *
 * Until an audit (2026-12-07) a free that found its magazine full (which drains the magazine's
 * newer half and pushes) did not count: with the default magazineCapacity the first look came after
 * 1,056 frees rather than 1,024, with magazineCapacity 4 and drainInterval 8 after 12, and with
 * magazineCapacity 1 never (none in 5,001 frees). Each free counts now (alloc.ts freeMiss,
 * magazine.ts pushFreed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { firstLook } from '../workers/options-probe.js';

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

describe('drainInterval: the first periodic look comes after drainInterval frees', () => {
  it('with a magazine that never fills (magazineCapacity 4096): after exactly drainInterval frees (1, 100, 1024)', () => {
    // As documented: this passes.
    expect([1, 100, 1024].map((d) => lookAt({ drainInterval: d, magazineCapacity: 4096 }, 3000))).toEqual([1, 100, 1024]);
  });

  it('with the default magazineCapacity (64) and the default drainInterval (1024): after 1024 frees', () => {
    expect(lookAt({}, 5000), 'free after which the first periodic look came').toBe(1024);
  });

  it('with magazineCapacity 4 and drainInterval 8: after 8 frees', () => {
    expect(lookAt({ drainInterval: 8, magazineCapacity: 4 }, 5000), 'free after which the first periodic look came').toBe(8);
  });

  it('with magazineCapacity 1 (its smallest) and drainInterval 8 or 1024: after 8 and 1024 frees', () => {
    const looks = [8, 1024].map((d) => lookAt({ drainInterval: d, magazineCapacity: 1 }, 5000));
    expect(looks, 'free after which the first periodic look came (-1: none in 5,001 frees)').toEqual([8, 1024]);
  });
});
