/**
 * Found by an audit of the public API under bad input (2026-12-07); before the fix, reclaim() names its call after the
 * argument it was given: "reclaim(worker): ..." for a Worker (its errors from src/reclaim.ts
 * watchedId: not watched, still running) and "reclaim(threadId): ..." for a number. On a thread
 * that has detached, reclaim(worker) says "reclaim(threadId): this thread has detached from the
 * heap" (src/reclaim.ts reclaimTarget, whose first line names threadId whatever the argument), a
 * call the program did not make: the same defect as debug mode's realloc(ptr, size) on a detached
 * thread naming realloc(ptr), fixed in 9d4e0fb. The contract (README "API": an error names the
 * function, with its signature as the call's other errors write it) wants "reclaim(worker): ...".
 */
import { describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';

describe('reclaim(worker) on a detached thread', () => {
  it('names reclaim(worker), as its other errors do', () => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    const worker = { threadId: 4243, once: (): void => undefined };
    // Attached, reclaim(worker) of a worker never watched names reclaim(worker):
    expect(() => heap.reclaim(worker)).toThrow(/^reclaim\(worker\): /);
    heap.detach();
    expect(() => heap.reclaim(worker)).toThrow(HeapStateError);
    expect(() => heap.reclaim(worker)).toThrow(/^reclaim\(worker\): this thread has detached from the heap$/);
    // (a number still names reclaim(threadId))
    expect(() => heap.reclaim(4243)).toThrow(/^reclaim\(threadId\): this thread has detached from the heap$/);
  });
});
