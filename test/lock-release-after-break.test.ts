/**
 * A holder whose lock was broken while it ran lets nothing go at its release. A live worker that
 * holds the global lock is reclaimed by mistake (`reclaim(threadId)` of a thread that still runs:
 * its slot is no longer ATTACHED, so the reclaim breaks its lock), and another worker then takes
 * the lock for a long critical section. When the first worker's critical section ends, its
 * release used to swap the word to 0 (an exchange), letting the second worker's lock go under it,
 * so that any third thread could run a critical section beside it. The release is now a CAS from
 * the releaser's own word, and a releaser no longer attached as itself (reclaimed) leaves another
 * word alone (src/lock.ts lockRelease): the second worker's word stays.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, LOCK_STATE_MASK, LOCK_WAITERS, TH_LOCK_GEN, TH_STATE, TS_ATTACHED, TS_DEAD, lockWord } from '../src/layout.js';
import { lockAcquire, lockHolder, lockRelease } from '../src/lock.js';
import { MiB, until } from './fixtures.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

describe('the release of a lock that was broken while held', () => {
  it('leaves the lock of the thread that holds it now (a live worker reclaimed by mistake)', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const t = internals(heap);
    const a = startHeapWorker();
    const b = startHeapWorker();
    await a.remote.attach(heap.buffer);
    await b.remote.attach(heap.buffer);
    const aHolds = a.remote.holdLockFor(1500);
    await until('a holds the lock', () => Atomics.load(t.i32, G_LOCK) !== 0);
    const aWord = Atomics.load(t.i32, G_LOCK) & ~LOCK_STATE_MASK;
    // The mistake: a's thread still runs its critical section.
    expect(heap.reclaim(a.worker.threadId)).toBe(true);
    const bHolds = b.remote.holdLockFor(4000);
    await until('b holds the lock', () => {
      const c = Atomics.load(t.i32, G_LOCK);
      return c !== 0 && (c & ~LOCK_STATE_MASK) !== aWord;
    });
    const bWord = Atomics.load(t.i32, G_LOCK) & ~LOCK_STATE_MASK;
    const bSlot = lockHolder(bWord);
    await aHolds; // a's release has run (its busy loop ended well before b's)
    const after = Atomics.load(t.i32, G_LOCK);
    expect(after & ~LOCK_STATE_MASK, 'a released b\'s lock').toBe(bWord);
    expect(lockHolder(after)).toBe(bSlot);
    await bHolds;
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0); // b's own release still lets it go
    heap.check();
  });

  it('in one thread: a reclaimed holder leaves another attachment\'s word; one still attached lets it go, as before', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const stateW = t.threadW(t.slot) + TH_STATE;
    // As a breaker leaves the word: another attachment's (slot t.slot + 1, a generation it has).
    const other = lockWord(t.slot + 1, LOCK_WAITERS, Atomics.load(t.i32, t.threadW(t.slot + 1) + TH_LOCK_GEN) + 1);
    // Reclaimed while holding (its slot DEAD, as reclaim() marks it first): the word stays.
    lockAcquire(t);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(t.slot);
    Atomics.store(t.i32, G_LOCK, other);
    Atomics.store(t.i32, stateW, TS_DEAD);
    const wakes = heap.stats().lock.wakes;
    lockRelease(t);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(other);
    // Nor does it write the lock's counters, which are the holder's (the word has the waiters bit).
    expect(heap.stats().lock.wakes).toBe(wakes);
    // Still ATTACHED as itself: the word met is a breaker's between its CAS and its hand-back
    // (src/lock.ts breakLockIfHolderDead), and the release lets it go, so that the hand-back's CAS
    // fails instead of giving the lock back to a holder that had let it go.
    Atomics.store(t.i32, stateW, TS_ATTACHED);
    Atomics.store(t.i32, G_LOCK, 0);
    lockAcquire(t);
    Atomics.store(t.i32, G_LOCK, other);
    lockRelease(t);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
    // The holder's own word, with the waiters bit set by a waiter: let go.
    lockAcquire(t);
    Atomics.or(t.i32, G_LOCK, LOCK_WAITERS);
    lockRelease(t);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
    heap.check();
  });
});
