/**
 * Debug mode: a freed block's mark (debug.ts) stays valid while its memory is no one's, and not
 * once a slab of other blocks has had it. The mark names the block's offset and usable size
 * only, so a mark left from an earlier life of the memory was taken for a block's own when a later
 * slab of the same class put a block there again, and that block's first hand-out checked the old
 * fill, canary and size record: if a slab of another class in between had handed out a block over
 * those but not over the mark, an intact heap was reported written after free
 * (test/options-stress.test.ts, debug mode: a 40 KiB block's size record under a 28 KiB block of
 * the slab that came after). A new slab or run whose blocks differ from the slots' last life
 * zeroes the mark words of their touched bytes (slots.ts clearStaleMarks); one with the same blocks
 * keeps them, so that a write into the memory while it was no one's is still reported.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';
import { DEBUG_FREED_MARK, SLOT_BYTES, SLOT_SHIFT } from '../src/layout.js';
import { DEBUG_EXTRA } from '../src/debug.js';
import { SIZE, classOf } from '../src/size-classes.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

function make(): SharedHeap {
  // stage1Keep 0: an empty slab goes back to the unused slots, where any class or run can take it.
  const heap = SharedHeap.create({ initialBytes: 8 << 20, maxBytes: 8 << 20, maxThreads: 2, debug: true, stage1Keep: 0 });
  heaps.push(heap);
  return heap;
}

const usableOf = (n: number): number => SIZE[classOf(n + DEBUG_EXTRA)]!; // debug mode asks DEBUG_EXTRA bytes more
const markOf = (p: number, usable: number): number => (DEBUG_FREED_MARK ^ p ^ usable) | 0;

describe('debug mode: freed marks across the lives of the memory', () => {
  it('a slab of other blocks over a freed block: its mark is gone once that slab takes the slots', () => {
    const heap = make();
    const i32 = new Int32Array(heap.buffer);
    // Two 28 KiB blocks fill a slot; the second is x, its mark 28 KiB + 4 into the slot.
    const n = 25000;
    const [a, x] = [heap.malloc(n), heap.malloc(n)].sort((p, q) => p - q);
    expect(a & (SLOT_BYTES - 1)).toBe(0);
    expect(x - a).toBe(usableOf(n));
    heap.free(x);
    heap.free(a);
    expect(i32[(x >>> 2) + 1]).toBe(markOf(x, usableOf(n)));
    const returned = heap.stats().stages.slotsReturned;
    heap.flush(); // the empty slab goes back
    expect(heap.stats().stages.slotsReturned).toBeGreaterThan(returned);
    expect(i32[(x >>> 2) + 1]).toBe(markOf(x, usableOf(n))); // no one's memory: the mark stays
    // A slab of 16 KiB blocks there, one of them handed out: not the one over x's mark.
    const b = heap.malloc(16000);
    expect(b >>> SLOT_SHIFT).toBe(a >>> SLOT_SHIFT);
    expect(b > x + 4 || b + usableOf(16000) <= x).toBe(true);
    expect(i32[(x >>> 2) + 1]).toBe(0);
    heap.free(b);
    heap.flush();
    // x's memory in a slab of its class again: handed out with no report.
    const y = heap.malloc(n);
    const z = heap.malloc(n);
    expect([y, z].sort((p, q) => p - q)).toEqual([a, x]);
    heap.check();
    heap.free(y);
    heap.free(z);
    heap.check();
  });

  it('the stress case: a 40 KiB block, then a 28 KiB slab whose second block alone is handed out, then 40 KiB again', () => {
    const heap = make();
    const x = heap.malloc(36000); // a 40 KiB block: the slot is touched to 40 KiB
    const slot = x >>> SLOT_SHIFT;
    expect(x).toBe(slot << SLOT_SHIFT);
    heap.free(x);
    heap.flush();
    // A slab of 28 KiB blocks there. The refill carves the first block under the touched mark,
    // then goes on to the second (refillMagazine): that one is on top and handed out first.
    const b1 = heap.malloc(25000);
    expect(b1).toBe(x + usableOf(25000));
    heap.u8.fill(0x33, b1, b1 + 25000); // over x's old canary and size record (x + 40952)
    heap.free(b1);
    heap.flush(); // the first block goes back with the slab, never handed out: x's old mark is under it
    const y = heap.malloc(36000); // x's offset in a 40 KiB slab again: no report
    expect(y).toBe(x);
    heap.u8.fill(7, y, y + 36000);
    heap.free(y);
    heap.check();
  });

  it('the same blocks again: a write into a freed block while its slots were no one\'s is still reported', () => {
    const heap = make();
    const keep = heap.malloc(5000);
    heap.u8.fill(0x5a, keep, keep + 5000);
    const n = 36000; // a 40 KiB block, one a slot
    const x = heap.malloc(n);
    heap.u8.fill(1, x, x + n);
    heap.free(x);
    const returned = heap.stats().stages.slotsReturned;
    heap.flush();
    expect(heap.stats().stages.slotsReturned).toBeGreaterThan(returned);
    heap.u8[x + 20] = 0x42; // a write after free, into the fill
    let err: unknown;
    try {
      heap.malloc(n);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HeapCorruptionError);
    expect(String((err as Error).message)).toMatch(/written after it was freed/);
    expect(String((err as Error).message)).toContain(`0x${(x + 20).toString(16)}`);
    heap.check(); // the block stays allocated, out of use
    heap.free(x);
    heap.check();
    for (let i = 0; i < 5000; i++) if (heap.u8[keep + i] !== 0x5a) throw new Error(`live block changed at ${i}`);
    heap.free(keep);
    heap.check();
  });
});
