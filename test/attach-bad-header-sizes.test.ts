/**
 * Found by an audit of the public API under bad input (2026-12-07); before the fix, attach() and readHeapMap() check that
 * a SharedArrayBuffer is a heap by its magic number, layout version and the metadata size its
 * header's geometry gives (src/context.ts readGeometry), but not that the header's sizes are
 * sizes: a buffer that carries a heap's header with a negative word where the SuperSlab counts
 * are (G_MAX_SUPERS for attach, G_BUFFER_SUPERS for readHeapMap; a header damaged by a stray
 * write, or a buffer that is not a heap but starts like one) passes, and V8's own
 * "RangeError: Invalid typed array length: -80" comes out of a view made with it
 * (src/context.ts ThreadContext's constructor, src/heap-map.ts readHeapMap), naming neither the
 * call nor the argument. The contract (README "API"; errors.ts: HeapStateError is "a buffer that is
 * not a sabmalloc heap"): attach() refuses a buffer that is not a heap with its HeapStateError
 * ("SharedHeap.attach(buffer): the buffer is not a sabmalloc heap ..."), readHeapMap() with its
 * TypeError naming readHeapMap(buffer), never a native error.
 */
import { describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap, readHeapMap } from '../src/index.js';
import { G_BUFFER_SUPERS, G_HEAP_ID, G_MAX_SUPERS } from '../src/layout.js';

const MiB = 1 << 20;

/** A new 8 MiB buffer with the header of a real heap (another heap id), one word of it set to `v`. */
function lookalike(word: number, v: number): SharedArrayBuffer {
  const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
  const header = new Int32Array(heap.buffer.slice(0, 4096));
  heap.detach();
  const sab = new SharedArrayBuffer(8 * MiB);
  const i32 = new Int32Array(sab);
  i32.set(header);
  i32[G_HEAP_ID] = (i32[G_HEAP_ID]! ^ 0x10) | 1;
  i32[word] = v;
  return sab;
}

describe("a buffer with a heap's magic and version but a negative SuperSlab count in its header", () => {
  it("attach() refuses it with its own HeapStateError, not V8's RangeError", () => {
    const sab = lookalike(G_MAX_SUPERS, -5);
    let error: unknown;
    try {
      SharedHeap.attach(sab);
    } catch (e) {
      error = e;
    }
    expect(String(error)).toMatch(/SharedHeap\.attach\(buffer\): /);
    expect(error).toBeInstanceOf(HeapStateError);
  });

  it("readHeapMap() refuses it naming readHeapMap(buffer), not with V8's RangeError", () => {
    const sab = lookalike(G_BUFFER_SUPERS, -5);
    expect(() => readHeapMap(sab)).toThrow(/^readHeapMap\(buffer\): /);
  });
});
