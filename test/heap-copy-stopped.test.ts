/**
 * A copy of a heap (`heap.buffer.slice()`) attached where a fault stopped this thread's instance of
 * the original (fault.ts): the stopped instance is kept by heap id, as the watches of a detached
 * one are (test/heap-copy-watch.test.ts), and the next attachment under that id takes its watches
 * over and reclaims its slot. A copy is refused there too, and the stopped instance stays the
 * original's: the thread's next attachment of the original reclaims the stopped slot, and the
 * watched worker's exit is reclaimed on the original.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';
import { checked, MiB } from './fixtures.js';
import { cutOffLargeMalloc } from './fault-internals.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

describe('a copy of a heap, where a fault stopped this thread on the original', () => {
  it('is refused, and the stopped instance and its watches stay the original\'s', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const a = startHeapWorker((w) => heap.watch(w));
    await a.remote.attach(heap.buffer);
    await a.remote.malloc(5000);
    const aId = a.worker.threadId;
    const snapshot = heap.buffer.slice(0);
    cutOffLargeMalloc(heap); // this thread's instance stopped, its slot DEAD
    expect(() => SharedHeap.attach(snapshot)).toThrow(HeapStateError);
    expect(() => SharedHeap.attach(snapshot)).toThrow(/copy of a heap where a fault stopped this thread's instance/);
    const again = SharedHeap.attach(heap.buffer);
    expect(again.stats().threadsAttached).toBe(2); // the stopped slot reclaimed: the worker and this one
    expect(() => again.reclaim(aId)).toThrow(/watched worker that is still running/); // the watch came along
    await a.worker.terminate();
    await a.exited;
    expect(again.stats().threadsAttached).toBe(1);
    expect(checked(again)).toBe('passes');
    again.detach();
  });
});
