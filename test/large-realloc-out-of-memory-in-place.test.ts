/**
 * realloc of a large run that cannot move for want of memory, where the slots right after it are
 * held by memory kept for reuse (a freed run in its large-run list, empty slabs of this thread or
 * in Stage 1): the move's allocation gives that memory back (pool.ts returnStage1Slabs, magazine.ts
 * flushThread), and the run then grows in place. Before (an audit), largeResize saw those slots
 * taken, the move found no room, and realloc answered 0 on a heap that had the room.
 */
import { describe, expect, it } from 'vitest';
import type { SharedHeap } from '../src/index.js';
import { SLOT_BYTES } from '../src/layout.js';
import { MiB, checked, freshHeaps } from './fixtures.js';

const { fresh } = freshHeaps({ initialBytes: 16 * MiB, maxThreads: 2 });

/** Takes every slot left (runs of 17 slots, then single slots): returns the blocks. */
function fillHeap(heap: SharedHeap): number[] {
  const out: number[] = [];
  for (let q = heap.malloc(17 * SLOT_BYTES); q !== 0; q = heap.malloc(17 * SLOT_BYTES)) out.push(q);
  for (let q = heap.alignedAlloc(SLOT_BYTES, SLOT_BYTES); q !== 0; q = heap.alignedAlloc(SLOT_BYTES, SLOT_BYTES)) out.push(q);
  return out;
}

/** Whether the `n` bytes at p all hold `tag`. */
function holds(heap: SharedHeap, p: number, n: number, tag: number): boolean {
  const u8 = heap.u8;
  for (let i = 0; i < n; i++) if (u8[p + i] !== tag) return false;
  return true;
}

const A_BYTES = 40 * SLOT_BYTES;
const GROWN = 43 * SLOT_BYTES;

describe('realloc of a large run out of memory, the slots after it kept for reuse', () => {
  it('a freed run in its large-run list right after it: grown in place, not 0', () => {
    const heap = fresh();
    const a = heap.malloc(A_BYTES);
    const b = heap.malloc(4 * SLOT_BYTES - 100);
    const fillers = fillHeap(heap);
    heap.u8.fill(0x5a, a, a + A_BYTES);
    heap.free(b); // into the list of span 4, its slots still taken
    const pooled = heap.stats().largePooledBytes;
    const r = heap.realloc(a, GROWN);
    expect({ bAfterA: b === a + A_BYTES, pooled, r: r === a, usable: r === 0 ? 0 : heap.usableSize(r) >= GROWN, kept: holds(heap, a, A_BYTES, 0x5a), check: checked(heap) })
      .toEqual({ bAfterA: true, pooled: 4 * SLOT_BYTES, r: true, usable: true, kept: true, check: 'passes' });
    for (const q of fillers) heap.free(q);
    heap.free(r);
    heap.flush();
    expect({ live: heap.stats().largeLiveBytes, blocks: heap.stats().largeLiveBlocks, check: checked(heap) }).toEqual({ live: 0, blocks: 0, check: 'passes' });
  });

  it("this thread's empty slabs right after it: grown in place, not 0", () => {
    const heap = fresh();
    const a = heap.malloc(A_BYTES);
    const small: number[] = [];
    for (let i = 0; i < 16_000; i++) small.push(heap.malloc(16));
    const slabSlots = new Set(small.map((q) => Math.floor(q / SLOT_BYTES)));
    const fillers = fillHeap(heap);
    heap.u8.fill(0x3c, a, a + A_BYTES);
    for (const q of small) heap.free(q); // empty slabs: kept by this thread or in Stage 1, taken
    const r = heap.realloc(a, GROWN);
    expect({ slabAfterA: slabSlots.has(Math.floor((a + A_BYTES) / SLOT_BYTES)), r: r === a, kept: holds(heap, a, A_BYTES, 0x3c), check: checked(heap) })
      .toEqual({ slabAfterA: true, r: true, kept: true, check: 'passes' });
    for (const q of fillers) heap.free(q);
    heap.free(r);
    heap.flush();
    expect({ live: heap.stats().largeLiveBytes, check: checked(heap) }).toEqual({ live: 0, check: 'passes' });
  });

  it('reallocAsync: the same, grown in place, not 0', async () => {
    const heap = fresh();
    const a = heap.malloc(A_BYTES);
    const b = heap.malloc(4 * SLOT_BYTES - 100);
    const fillers = fillHeap(heap);
    heap.u8.fill(0x77, a, a + A_BYTES);
    heap.free(b);
    const r = await heap.reallocAsync(a, GROWN);
    expect({ bAfterA: b === a + A_BYTES, r: r === a, kept: holds(heap, a, A_BYTES, 0x77), check: checked(heap) })
      .toEqual({ bAfterA: true, r: true, kept: true, check: 'passes' });
    for (const q of fillers) heap.free(q);
    heap.free(r);
    expect(checked(heap)).toBe('passes');
  });
});
