/**
 * An audit of 5d43d86 (reclaim(threadId) with a DEAD slot under the id reads the lock's holder and,
 * when it is an ATTACHED slot under the same id, marks it DEAD with a CAS, so that its own lock
 * acquisition breaks that slot's lock). The holder was read once, and the mark came after: the
 * thread, attached again and inside its reclaim of the stopped slot when its word was read, could
 * finish that reclaim, let the lock go and take it again for a slow path of its own before the
 * CAS. The mark then hit a live thread holding the lock outside any reclaim: the reclaim broke its
 * lock (two threads in the critical section) and took its live slot (the loop over every DEAD slot
 * under the id).
 *
 * Here this thread is the reclaimer, and a hook on Atomics.load stands at its load of the lock word:
 * the word is read while the other thread holds the lock inside its reclaim of the stopped slot,
 * then (before the load returns) that reclaim ends and the thread takes the lock again and keeps it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { G_LOCK, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { lockHolder, lockRelease } from '../src/lock.js';
import { terminateAll } from './remote-heap.js';
import { stoppedWorker } from './reattach-hold.js';

afterEach(terminateAll);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('reclaim(threadId) whose read of the lock\'s holder is stale by the time it marks', () => {
  it('does not mark the live attachment, which took the lock again outside its reclaim', async () => {
    const ctl = new Int32Array(new SharedArrayBuffer(12));
    const { heap, w, threadId, a, state, slotOf } = await stoppedWorker(ctl);
    const t = internals(heap);
    const first = { threadId, slot: a };
    // This thread breaks the stopped slot's lock and keeps it: the attach again waits in its reclaim.
    testHoldGlobalLock(heap);
    w.postMessage('attach');
    let b = -1;
    for (let i = 0; i < 500 && b < 0; i++) {
      b = slotOf();
      if (b < 0) await sleep(10);
    }
    expect(b).toBeGreaterThanOrEqual(0);

    const load = Atomics.load as (a: Int32Array, i: number) => number;
    const idle = new Int32Array(new SharedArrayBuffer(4));
    const until = (f: () => boolean): boolean => {
      const end = Date.now() + 5000;
      while (!f() && Date.now() < end) Atomics.wait(idle, 0, 0, 1);
      return f();
    };
    let armed = true;
    let seenInReclaim = false;
    let retaken = false;
    (Atomics as { load: unknown }).load = (x: Int32Array, i: number): number => {
      if (!armed || x.buffer !== t.i32.buffer || i !== G_LOCK) return load(x, i);
      armed = false;
      // This thread lets the lock go: the other takes it for its reclaim of the stopped slot, read so.
      t.runner.lockDepth = 1;
      lockRelease(t);
      // (It pauses there, at its CAS of the stopped slot DEAD -> RECLAIMING.)
      const paused = until(() => load(ctl, 0) === 2);
      const seen = load(t.i32, G_LOCK);
      seenInReclaim = paused && lockHolder(seen) === b;
      // Then that reclaim ends, and the thread takes the lock again for a slow path of its own.
      Atomics.store(ctl, 2, 1);
      Atomics.notify(ctl, 2);
      Atomics.store(ctl, 1, 1);
      Atomics.notify(ctl, 1);
      retaken = until(() => load(ctl, 0) === 1 && state(a) !== TS_DEAD);
      return seen;
    };
    let result: unknown;
    try {
      result = heap.reclaim(first.threadId);
    } catch (e) {
      result = (e as Error).name; // a LockTimeoutError: it waited for a live holder
    } finally {
      (Atomics as { load: unknown }).load = load;
    }
    expect(seenInReclaim, 'the lock word read while the thread reclaimed its stopped slot').toBe(true);
    expect(retaken, 'the thread finished that reclaim and holds the lock again').toBe(true);
    expect({ result, b: state(b), holder: lockHolder(Atomics.load(t.i32, G_LOCK)) }).toEqual({ result: 'LockTimeoutError', b: TS_ATTACHED, holder: b });
  }, 30_000);
});
