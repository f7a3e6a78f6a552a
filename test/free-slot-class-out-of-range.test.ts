/**
 * A slot meta whose class word was overwritten (a stray write into the heap's metadata) with a
 * class far out of range: free() and realloc() of a block of that slot must refuse it, not take
 * the block into a magazine. Since 3975468 free's division entry is `c << FD_LOG2_WORDS`, which for
 * c = 2^30 + k wraps onto class k's entry; the fast paths then took such a block in, their
 * magazine index out of range, and wrote the block's state address into word 0 of the heap (an
 * audit of 3975468 and eb0c54e). The fast paths' class test is one unsigned compare against
 * NUM_CLASSES; the slow path throws.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapError, NUM_CLASSES, SharedHeap } from '../src/index.js';
import { readGeometry } from '../src/context.js';
import { SLOT_SHIFT, SM_CLS1, SM_SHIFT } from '../src/layout.js';

let heap: SharedHeap | undefined;
afterEach(() => {
  heap?.detach();
  heap = undefined;
});

describe('a slot meta class word far out of range', () => {
  for (const call of ['free', 'realloc'] as const) {
    for (const over of [2 ** 30, 2 ** 31 - 2 ** 30, NUM_CLASSES]) {
      it(`${call}() of a block of that slot throws and leaves the heap's first words as they were (class word + ${over})`, () => {
        heap = SharedHeap.create({ initialBytes: 8 << 20 });
        const p = heap.malloc(48);
        const i32 = new Int32Array(heap.buffer);
        const w = readGeometry(heap.buffer, 'test').slotMetaW + ((p >>> SLOT_SHIFT) << SM_SHIFT) + SM_CLS1;
        const cls1 = i32[w]!;
        const head = Array.from(i32.subarray(0, 64));
        i32[w] = (cls1 + over) | 0;
        expect(() => (call === 'free' ? heap!.free(p) : heap!.realloc(p, 100))).toThrow(HeapError);
        expect(Array.from(i32.subarray(0, 64))).toEqual(head);
        i32[w] = cls1;
        heap.check();
        heap.free(p);
        heap.check();
      });
    }
  }
});
