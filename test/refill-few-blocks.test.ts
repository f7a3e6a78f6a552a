/**
 * Refills of a class of a few blocks a slab (src/magazine.ts FEW_BLOCKS_MAX, S1_EXTRA_DEPTH): a
 * refill goes on past its first slab to more from a deep Stage-1 list, and only there: not from
 * a shallow list, not onto fresh pages, and the blocks it hands out are whole, distinct blocks.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { SLOT_SHIFT } from '../src/layout.js';
import { COUNT, classOf } from '../src/size-classes.js';
import { MiB, freshHeaps } from './fixtures.js';

const { fresh } = freshHeaps({ initialBytes: 64 * MiB, maxThreads: 2, refillCount: 16 });

const SIZE = 16384; // four blocks a slab
const WANT = 16; // refillCount; the magazine of the class holds 32

function counts(heap: SharedHeap): { refills: number; stage1: number; taken: number } {
  const s = heap.stats();
  return { refills: s.threads[0]!.refills, stage1: s.stages.stage1, taken: s.stages.stage1 + s.stages.stage2 + s.stages.stage3 };
}

/** `slabs` slabs of the class filled, every block freed, and the empty slabs flushed to Stage 1. */
function stage1Slabs(heap: SharedHeap, slabs: number): void {
  const blocks = Array.from({ length: slabs * COUNT[classOf(SIZE)] }, () => heap.malloc(SIZE));
  for (const p of blocks) heap.free(p);
  heap.flush();
  expect(heap.stats().classes[classOf(SIZE)]!.stage1Slabs).toBe(slabs);
}

/** `n` blocks of SIZE, each stamped at both ends with its index. */
function allocStamped(heap: SharedHeap, n: number): number[] {
  const blocks: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = heap.malloc(SIZE);
    expect(p).toBeGreaterThan(0);
    heap.u8[p] = i + 1;
    heap.u8[p + SIZE - 1] = i + 101;
    blocks.push(p);
  }
  return blocks;
}

function expectWhole(heap: SharedHeap, blocks: number[]): void {
  expect(new Set(blocks).size).toBe(blocks.length);
  const sorted = [...blocks].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(SIZE);
  blocks.forEach((p, i) => {
    expect(heap.u8[p]).toBe(i + 1);
    expect(heap.u8[p + SIZE - 1]).toBe(i + 101);
  });
  heap.check();
}

describe('a refill of a class of four blocks a slab', () => {
  it('takes four slabs from a deep Stage-1 list at once: one refill for sixteen blocks', () => {
    expect(COUNT[classOf(SIZE)]).toBe(4);
    const heap = fresh();
    stage1Slabs(heap, 48);
    const before = counts(heap);
    const blocks = allocStamped(heap, WANT);
    const after = counts(heap);
    expect(after.refills - before.refills).toBe(1);
    expect(after.stage1 - before.stage1).toBe(WANT / 4);
    expect(new Set(blocks.map((p) => p >>> SLOT_SHIFT)).size).toBe(WANT / 4);
    expectWhole(heap, blocks);
    // The next block needs a refill again.
    heap.malloc(SIZE);
    expect(counts(heap).refills - after.refills).toBe(1);
    for (const p of blocks) heap.free(p);
    heap.check();
  });

  it('takes one slab a refill from a shallow Stage-1 list (fewer than sixteen slabs)', () => {
    const heap = fresh();
    stage1Slabs(heap, 8);
    const before = counts(heap);
    const blocks = allocStamped(heap, WANT);
    const after = counts(heap);
    expect(after.refills - before.refills).toBe(WANT / 4);
    expect(after.stage1 - before.stage1).toBe(WANT / 4);
    expectWhole(heap, blocks);
  });

  it('takes one slab, and carves one block of it, on fresh pages', () => {
    const heap = fresh();
    const before = counts(heap);
    const [p] = allocStamped(heap, 1);
    const after = counts(heap);
    expect(after.refills - before.refills).toBe(1);
    expect(after.taken - before.taken).toBe(1);
    expectWhole(heap, [p!]);
    // The next one is a refill again (one block a refill beyond the touched marks).
    heap.malloc(SIZE);
    expect(counts(heap).refills - after.refills).toBe(1);
  });
});
