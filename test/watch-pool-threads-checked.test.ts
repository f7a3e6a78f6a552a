/**
 * Found by an audit of the public API under bad input (2026-12-07); before the fix, watchPool(heap, pool) checks that the
 * pool has an array `threads` and an on(), but not what the array holds. It walks the array,
 * adding each entry to a WeakSet and watching it one after another (src/node.ts watchNew):
 *
 * - an entry that is not an object (a number, a string, null) makes V8 throw its own
 *   "TypeError: Invalid value used in weak set", which names neither watchPool, nor the argument,
 *   nor the value;
 * - every entry before it has been watched already: the heap's record of running watched workers
 *   holds it (its threadId written into this thread's area, its lock waits bounded), so
 *   reclaim(threadId) of that id is refused as "a watched worker that is still running" for good,
 *   and the pool itself is not watched (its 'workerCreate' listener was never added).
 *
 * The contract (README "API": misuse throws before anything changes, with a message naming the
 * function, the argument and the value; the library's own error, not V8's): the call is refused
 * with watchPool's TypeError, and nothing is watched.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { watchPool } from '../src/node.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('watchPool(heap, pool) with a pool whose threads hold a value that is not a Worker', () => {
  it("is refused with watchPool's own TypeError before any thread of the pool is watched", () => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    heaps.push(heap);
    const p = heap.malloc(100);
    heap.u8.fill(7, p, p + 100);
    const workerLike = { threadId: 4242, once: (): void => undefined }; // a Worker-like thread, never exits
    const pool = { threads: [workerLike, 5], on: (): void => undefined };

    let error: unknown;
    try {
      watchPool(heap, pool as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/^watchPool\(heap, pool\): /);
    expect((error as Error).message).toContain('5');

    // Nothing was watched: reclaim(4242) is the caller's statement that thread 4242 stopped (false:
    // no slot under it), not refused as a watched worker still running.
    expect(() => heap.reclaim(4242)).not.toThrow();
    heap.check();
    expect(heap.u8.subarray(p, p + 100).every((b) => b === 7)).toBe(true);
  });
});
