/**
 * check() and the header words create() writes once. A program that used a malloc's 0 as a block
 * (a comlink worker storing a string's length at the block it got, in a heap that workers killed
 * mid-task had filled) wrote over word 0, the magic number: check() passed, and every attach after
 * it, in any thread, was refused with "the buffer is not a sabmalloc heap (bad magic number)". check()
 * now compares these words with what they must be and names the word that was overwritten.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('check() and the header words written once', () => {
  for (const word of [0, 1, 3, 4, 5, 6]) {
    it(`finds word ${word} overwritten, and passes once it is back`, () => {
      const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 3, magazineCapacity: 16 });
      heaps.push(heap);
      const p = heap.malloc(100);
      heap.u8.fill(9, p, p + 100);
      heap.check();
      const i32 = new Int32Array(heap.buffer, 0, 16);
      const was = i32[word]!;
      i32[word] = 6; // what a 4-byte length written at a block of 0 leaves there
      let err: unknown;
      try {
        heap.check();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HeapCorruptionError);
      expect((err as Error).message).toMatch(new RegExp(`^check\\(\\): header: word ${word} \\(the [a-zA-Z ]+\\) is 6, expected ${was}: overwritten`));
      i32[word] = was;
      heap.check();
      expect(heap.u8.subarray(p, p + 100).every((b) => b === 9)).toBe(true);
      heap.free(p);
    });
  }
});
