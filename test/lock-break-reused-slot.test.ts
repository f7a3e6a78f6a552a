/**
 * An audit of 40bbf70 (tryLockAcquire, so tryMalloc and every caller of it, breaks the lock of a
 * holder whose slot is not ATTACHED). The lock word names a slot, not an attachment: a breaker
 * reads the word (slot h), reads h's state (DEAD), then swaps the word for its own by CAS. If, in
 * between, another thread broke the lock, reclaimed h, a new thread attached in slot h and took
 * the lock, the word reads the same again (slot h, held, no waiters) and the CAS succeeds: the
 * breaker takes the lock from under a live holder and both run their critical sections (and the
 * breaker's lockRelease lets the lock go under the new holder). The window is the breaker's two
 * reads, which now come on every tryMalloc (a real-time thread's loop) and every free() that gives
 * a slab back while a dead holder's lock stands. Here the other threads act inside that window, at
 * the breaker's load of h's state (a hook, as workers/atomics-stop.ts stops a thread at an
 * Atomics call).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, LOCK_STATE_MASK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

describe('breaking a dead holder\'s lock when its slot was taken again meanwhile', () => {
  it('does not take the lock from the live thread now attached in that slot', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const x = startWorker('lock-fault-worker', { buffer: heap.buffer });
    const said = await new Promise<{ thrown: string; threadId: number }>((resolve) => x.once('message', resolve));
    expect(said.thrown).toBe('HeapStateError');
    const c = Atomics.load(t.i32, G_LOCK);
    const h = lockHolder(c);
    expect(h).not.toBe(t.slot);
    expect(c & LOCK_STATE_MASK).toBe(1); // held, no waiters: what a fresh holder of slot h writes too
    const stateW = t.threadW(h) + TH_STATE;
    expect(Atomics.load(t.i32, stateW)).toBe(TS_DEAD);
    const y = startHeapWorker();
    const yId = await y.remote.threadId;

    const load = Atomics.load;
    let armed = true;
    let reused = false;
    (Atomics as { load: typeof Atomics.load }).load = ((a: Int32Array, i: number) => {
      const v = load(a as never, i);
      if (armed && a.buffer === t.i32.buffer && i === stateW) {
        armed = false;
        // Other threads, between this load and the breaker's CAS: the stopped slot reclaimed (its
        // lock broken and let go), a new thread attached in it, holding the lock.
        heap.reclaim(said.threadId);
        void y.remote.attach(heap.buffer);
        void y.remote.holdLock();
        const until = Date.now() + 5000;
        const idle = new Int32Array(new SharedArrayBuffer(4));
        while (load(t.i32, G_LOCK) !== c && Date.now() < until) Atomics.wait(idle, 0, 0, 1);
        reused = load(t.i32, G_LOCK) === c && load(t.i32, t.threadW(h) + TH_THREAD_ID) === yId + 1;
      }
      return v;
    }) as unknown as typeof Atomics.load;
    let p: number;
    try {
      p = heap.tryMalloc(3 * MiB); // needs the lock
    } finally {
      (Atomics as { load: typeof Atomics.load }).load = load;
    }
    expect(armed).toBe(false);
    expect(reused, 'the new thread attached in the slot and took the lock').toBe(true);
    expect(Atomics.load(t.i32, t.threadW(h) + TH_STATE)).toBe(TS_ATTACHED);
    // The lock is the new thread's: tryMalloc answers 0 (busy), the word still names slot h, held
    // (the waiters bit may be set: a release then wakes a waiter, harmless).
    const word = Atomics.load(t.i32, G_LOCK);
    expect({ p, holder: lockHolder(word), held: (word & LOCK_STATE_MASK) !== 0 }).toEqual({ p: 0, holder: h, held: true });
    await y.worker.terminate();
  }, 30_000);
});
