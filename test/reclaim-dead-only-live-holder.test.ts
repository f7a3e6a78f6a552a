/**
 * An audit of 5d43d86 (reclaim(threadId) with a DEAD slot under the id marks an ATTACHED slot under
 * the same id DEAD when it holds the global lock, "which it does only inside its reclaim of the
 * stopped one"). It does not: an attach again whose own reclaim of the stopped slot gave up (a main
 * thread's LockTimeoutError, or a watcher's, or WOULD_BLOCK: the instance stays attached, the
 * stopped slot DEAD; heap.ts reattachToReclaim says so) runs on in its new slot, and holds the lock
 * in every slow path of its own. A reclaim(threadId) from another thread then, which the README
 * allows while both instances have slots ("takes the stopped one"), marked the live slot DEAD, broke
 * its lock (two threads in the critical section) and reclaimed the live slot too (the loop over
 * every DEAD slot under the id) under a thread that runs on.
 *
 * Here the thread is this (main) thread: its 3 MiB malloc is cut off by a stack overflow's
 * RangeError under the lock (its slot A DEAD, the lock kept); a worker y breaks that lock and keeps
 * it 4 s; this thread attaches again, and its reclaim of A gives up after 3 s (LockTimeoutError),
 * the new attachment B registered. It then holds the lock as any slow path does
 * (testHoldGlobalLock), and a worker r calls reclaim(this thread's id).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LockTimeoutError, SharedHeap } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { faultUnderLock } from '../workers/fault-under-lock.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { lockHolder, lockRelease } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('reclaim(threadId) while the thread, attached again, holds the lock outside any reclaim', () => {
  it('neither marks, breaks the lock of, nor reclaims the live attachment', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    const t = internals(heap);
    const id = heap.threadId;
    const a = t.slot;
    const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
    const y = startHeapWorker();
    await y.remote.attach(heap.buffer);
    const r = startHeapWorker();
    await r.remote.attach(heap.buffer);

    faultUnderLock(heap); // this instance stops, its slot DEAD, the lock kept
    expect(state(a)).toBe(TS_DEAD);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(a);

    // y breaks the stopped slot's lock and keeps it 4 s: this thread's reclaim of A gives up.
    const held = y.remote.holdLockFor(4000);
    for (let i = 0; i < 200 && lockHolder(Atomics.load(t.i32, G_LOCK)) === a; i++) await sleep(10);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).not.toBe(a);
    let gaveUp: unknown;
    try {
      SharedHeap.attach(heap.buffer);
    } catch (e) {
      gaveUp = e;
    }
    expect(gaveUp).toBeInstanceOf(LockTimeoutError);
    const again = SharedHeap.attach(heap.buffer); // the instance the attach registered
    const t2 = internals(again);
    const b = t2.slot;
    expect(b).not.toBe(a);
    expect(state(b)).toBe(TS_ATTACHED);
    expect(state(a)).toBe(TS_DEAD);
    await held;

    // This thread, live, holds the lock (as in any slow path of its own) when r reclaims the stopped instance.
    testHoldGlobalLock(again);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(b);
    let done: boolean | undefined;
    const reclaimed = r.remote.reclaim(id).then((v) => (done = v));
    await sleep(500);
    const during = { b: state(b), holder: lockHolder(Atomics.load(t.i32, G_LOCK)), done };
    // Let the lock go (as the slow path would), then r's reclaim goes on.
    t2.runner.lockDepth = 1;
    lockRelease(t2);
    await reclaimed;
    expect(during, 'the live slot ATTACHED and still holding the lock, r waiting').toEqual({ b: TS_ATTACHED, holder: b, done: undefined });
    expect(done).toBe(true);
    expect(state(b), 'the live attachment, not reclaimed').toBe(TS_ATTACHED);
    expect(Atomics.load(t.i32, t2.threadW(b) + TH_THREAD_ID)).toBe(id + 1);
    expect(Atomics.load(t.i32, t2.threadW(a) + TH_THREAD_ID), 'the stopped slot, reclaimed').not.toBe(id + 1);
    const p = again.malloc(3 * MiB);
    expect(p).toBeGreaterThan(0);
    again.free(p);
    expect(checked(again)).toBe('passes');
  }, 30_000);
});
