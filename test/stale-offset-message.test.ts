/**
 * A stale offset (a block freed, its slab given back, and the memory taken since by a slab of
 * another class and given back again) is refused with a message that does not claim the bytes
 * were never allocated: an audit of misuse under concurrent workloads (2026-12-07) met a second
 * free after such a reuse told "never-allocated space".
 */
import { describe, expect, it } from 'vitest';
import { InvalidPointerError, SharedHeap } from '../src/index.js';
import { SIZE, classOf } from '../src/size-classes.js';
import { SLOT_BYTES } from '../src/layout.js';

describe('a stale offset whose memory another class used since', () => {
  it('is refused as not the start of a block, without "never allocated" alone', () => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, stage1Keep: 0 });
    const kept = heap.malloc(64); // a live block the refusals must leave alone
    heap.u8.fill(9, kept, kept + 64);
    const small: number[] = [];
    for (let i = 0; i < 2000; i++) small.push(heap.malloc(48));
    for (const p of small) heap.free(p);
    heap.flush(); // the 48-byte slabs go back to the pool (stage1Keep 0: to Stage 2)
    const big: number[] = [];
    for (let i = 0; i < 200; i++) big.push(heap.malloc(1000));
    for (const p of big) heap.free(p);
    heap.flush(); // now the slots remember the 1000-byte slabs as their last
    // A stale 48-byte offset in a slot a 1000-byte slab took since, not one of its block starts
    // (its blocks are 1024 bytes, not a multiple of 48).
    expect(SIZE[classOf(1000)] % 48).not.toBe(0);
    const bigSlots = new Set(big.map((b) => Math.floor(b / SLOT_BYTES)));
    const stale = small.find((p) => bigSlots.has(Math.floor(p / SLOT_BYTES)) && !big.some((b) => (p - b) % SIZE[classOf(1000)] === 0));
    expect(stale).toBeDefined();
    let err: unknown;
    try {
      heap.free(stale as number);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidPointerError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^free\(ptr\): 0x[0-9a-f]+ is not the start of a block/);
    // It may say what is there now, or that the memory may have been reused: never only
    // that it was never allocated.
    expect(msg).not.toMatch(/never-allocated space/);
    expect(heap.u8.subarray(kept, kept + 64).every((b) => b === 9)).toBe(true);
    expect(() => heap.check()).not.toThrow();
  });
});
