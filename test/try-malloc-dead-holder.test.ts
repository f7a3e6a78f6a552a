/**
 * An audit (a thread that "died" holding the lock, threads that may not wait): a call cut off by
 * a stack overflow keeps the global lock in the name of a slot it marks DEAD, "so the next thread
 * to take the lock breaks it" (README, fault.ts). tryMalloc ("never blocks: 0 when the pool lock
 * is busy") only ever tried the lock: it never broke a dead holder's, and since the faulted thread
 * runs on (no 'exit' for watch() to reclaim), a thread that allocates with tryMalloc alone (a
 * real-time thread) got 0 for every request that needs the lock for as long as no other thread
 * happened to make a blocking call, on a heap that was all free. Breaking a dead holder's lock
 * never waits (watch() does it from event-loop callbacks: lock.ts tryLockAcquire).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('tryMalloc after another thread was cut off holding the lock', () => {
  it('breaks the dead holder\'s lock instead of answering 0 for good', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const w = startWorker('lock-fault-worker', { buffer: heap.buffer });
    const said = await new Promise<{ thrown: string }>((resolve) => w.once('message', resolve));
    expect(said.thrown).toBe('HeapStateError');
    const word = Atomics.load(t.i32, G_LOCK);
    expect(lockHolder(word)).toBeGreaterThanOrEqual(0); // kept, in the name of the stopped slot
    expect(lockHolder(word)).not.toBe(t.slot);
    // The main thread allocates with tryMalloc only, for a while (the heap is all free).
    const got: number[] = [];
    const end = Date.now() + 500;
    while (Date.now() < end && got.length === 0) {
      const p = heap.tryMalloc(3 * MiB);
      if (p !== 0) got.push(p);
      await sleep(10);
    }
    expect(got.length, 'tryMalloc(3 MiB) answered 0 for 500 ms on a free heap whose lock a stopped slot holds').toBe(1);
    heap.free(got[0]!);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  }, 30_000);
});
