/**
 * An audit (2026-12-04): attach(), attachAsync() and readHeapMap() told a SharedArrayBuffer by
 * `instanceof`, which a Proxy of the heap's buffer or an object whose prototype is the buffer
 * passes; the next step, reading its byteLength, then threw V8's own TypeError ("Method get
 * SharedArrayBuffer.prototype.byteLength called on incompatible receiver"), which names neither
 * the call nor its argument. They must be refused with the calls' own TypeError.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, readHeapMap } from '../src/index.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('a look-alike of a heap\'s SharedArrayBuffer', () => {
  it('is refused by attach(), attachAsync() and readHeapMap() with their own TypeError, and the heap is untouched', async () => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    heaps.push(heap);
    const p = heap.malloc(100);
    heap.u8.fill(9, p, p + 100);
    const lookalikes = [new Proxy(heap.buffer, {}), Object.create(heap.buffer) as SharedArrayBuffer];
    for (const fake of lookalikes) {
      expect(() => SharedHeap.attach(fake)).toThrow(/^SharedHeap\.attach\(buffer\): expected the heap's SharedArrayBuffer, got an object$/);
      await expect(SharedHeap.attachAsync(fake, { threadId: heap.newThreadId() })).rejects.toThrow(
        /^SharedHeap\.attachAsync\(buffer, options\): expected the heap's SharedArrayBuffer, got an object$/,
      );
      expect(() => readHeapMap(fake)).toThrow(/^readHeapMap\(buffer\): expected a heap's SharedArrayBuffer/);
      expect(() => readHeapMap({ buffer: fake } as never)).toThrow(/^readHeapMap\(buffer\): expected a heap's SharedArrayBuffer/);
    }
    heap.check();
    expect(heap.u8.subarray(p, p + 100).every((b) => b === 9)).toBe(true);
    heap.free(p);
    heap.check();
  });
});
