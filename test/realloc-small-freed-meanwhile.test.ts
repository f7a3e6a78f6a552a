/**
 * realloc of a small block on a main thread that another thread frees while the realloc waits for
 * the global lock (a free and a realloc of one block at the same moment: a double free, which one
 * of the two must refuse, README). The move's allocation needs a slab the pool hands out under the
 * lock (a small size: realloc's fast path, heap.ts; a large one: alloc.ts moveBlock); a worker
 * holding it frees the block meanwhile (it goes to that worker's magazine, and at its detach onto
 * the slab's remote list). The old block's push that ends the move claimed nothing and checked
 * nothing after the wait: it put the block onto this thread's magazine as well, realloc returned
 * as if all was well, check() then found the block on the remote list with a state not its own,
 * and malloc handed it out while it was still listed there. 4eafe1f made a large block's move
 * refuse this; a small block's now does too (DoubleFreeError), the new block given back and the
 * heap intact.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { terminateAll } from './remote-heap.js';
import { reallocWhileFreed } from './realloc-while-freed.js';

afterEach(terminateAll);

const MiB = 1 << 20;

describe('realloc of a small block that another thread frees while the realloc waits for the lock', () => {
  // 3000 bytes: a class no slab of this heap serves yet (Stage 2, under the lock); 200,000: a large run.
  it.each([3000, 200_000])('to %i bytes: is refused with DoubleFreeError, the heap intact', async (size) => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const p = heap.malloc(100);
    // free-while-waited-worker takes the lock, frees p once this thread waits for it, and lets it go.
    const { got, err, keep } = await reallocWhileFreed(heap, p, 100, size);
    expect(got, 'realloc moved a block another thread had freed meanwhile').toBeUndefined();
    expect(err).toBeInstanceOf(DoubleFreeError);
    expect((err as Error).message).toMatch(new RegExp(`^realloc\\(ptr, size\\): 0x${p.toString(16)} is not allocated`));
    heap.check();
    expect(heap.stats().liveBlocks).toBe(1);
    expect(heap.u8.subarray(keep, keep + 1000).every((b) => b === 0x5a)).toBe(true);
    // The block is free once, not twice: blocks of its size handed out now are all distinct.
    const got100 = Array.from({ length: 200 }, () => heap.malloc(100));
    expect(new Set(got100).size).toBe(200);
    heap.check();
    for (const q of got100) heap.free(q);
    heap.free(keep);
    heap.flush();
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    heap.detach();
  });
});
