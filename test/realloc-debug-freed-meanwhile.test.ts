/**
 * Debug mode's realloc of a large block on a main thread takes the global lock before it moves the
 * block (heap.ts DebugSharedHeap realloc); a worker that frees the block while that realloc waits
 * for the lock (a free and a realloc of one large block at the same moment: a double free, which
 * one of the two must refuse) put the run in its span's large-run list, from which the move's
 * allocation took it back, the very offset: the free of the "old" block then freed the new one,
 * and realloc returned a block that was free (the next malloc handed it out again; an audit,
 * test/misuse-model.test.ts's topic).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { terminateAll } from './remote-heap.js';
import { reallocWhileFreed } from './realloc-while-freed.js';

afterEach(terminateAll);

const MiB = 1 << 20;

describe('debug mode: realloc of a large block that another thread frees while the realloc waits for the lock', () => {
  it('is refused with DoubleFreeError, not returned as a block that is free', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, debug: true });
    const p = heap.malloc(150_000); // a run of three slots
    // The worker holds the lock: this realloc waits for it, the worker frees p meanwhile. 190,000
    // bytes take three slots too, the span of the run the worker's free listed.
    const { got, err, keep } = await reallocWhileFreed(heap, p, 150_000, 190_000);
    if (got !== undefined) {
      const other = heap.malloc(190_000);
      expect.fail(`realloc returned 0x${got.toString(16)}; the next malloc returned 0x${other.toString(16)}`);
    }
    expect(err).toBeInstanceOf(DoubleFreeError);
    expect((err as Error).message).toMatch(new RegExp(`^realloc\\(ptr, size\\): 0x${p.toString(16)} `));
    heap.check();
    expect(heap.stats().liveBlocks).toBe(1);
    expect(heap.u8.subarray(keep, keep + 1000).every((b) => b === 0x5a)).toBe(true);
    heap.free(keep);
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    heap.detach();
  });
});
