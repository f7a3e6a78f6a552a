/**
 * Debug mode: reallocAsync of a block whose canary was overwritten (a write past its end) rejects
 * with an error that names reallocAsync, as realloc's names realloc and freeAsync's freeAsync
 * (README: every error names the call, the async ones too). Found by an audit: it named
 * usableSize, a call the program never made ("usableSize(ptr): the block at 0x... (requested size
 * 40) was written past its end"), since reallocAsync asks the public usableSize(), which in debug
 * mode checks the canary under its own name, outside the renaming of #withoutBlocking.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('reallocAsync resolved');
}

describe('debug mode: reallocAsync of a block written past its end', () => {
  for (const n of [40, 300_000]) {
    it(`names reallocAsync, not usableSize (a ${n}-byte block)`, async () => {
      const heap = SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 2, debug: true });
      heaps.push(heap);
      const p = heap.malloc(n);
      heap.u8[p + n] = 0; // over the first canary byte
      // The synchronous call names itself:
      expect(() => heap.realloc(p, 2 * n)).toThrow(/^realloc\(ptr\): the block at 0x[0-9a-f]+ \(requested size \d+\) was written past its end/);
      const e = await rejection(heap.reallocAsync(p, 2 * n));
      expect(e).toBeInstanceOf(HeapCorruptionError);
      expect(e.message).toMatch(/^reallocAsync\(ptr\): the block at 0x[0-9a-f]+ \(requested size \d+\) was written past its end/);
    });
  }
});
