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
 *
 * Since layout version 18 the word names the attachment (the slot's generation, layout.ts
 * TH_LOCK_GEN): the new thread's word differs from the dead holder's, and the breaker's CAS fails.
 * test/lock-break-breaker-dies.test.ts stops the breaker right before and right after that CAS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, LOCK_STATE_MASK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD, TS_FREE } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

/**
 * A heap whose global lock a worker's 3 MiB malloc, cut off by a fault under the lock, keeps in
 * the name of its slot h, now DEAD (workers/lock-fault-worker.ts): the word c, held, no waiters
 * (what a fresh holder of slot h writes too), and the address of h's state.
 */
async function faultedHolder() {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const t = internals(heap);
  const x = startWorker('lock-fault-worker', { buffer: heap.buffer });
  const said = await new Promise<{ thrown: string; threadId: number }>((resolve) => x.once('message', resolve));
  expect(said.thrown).toBe('HeapStateError');
  const c = Atomics.load(t.i32, G_LOCK);
  const h = lockHolder(c);
  expect(h).not.toBe(t.slot);
  expect(c & LOCK_STATE_MASK).toBe(1);
  const stateW = t.threadW(h) + TH_STATE;
  expect(Atomics.load(t.i32, stateW)).toBe(TS_DEAD);
  return { heap, t, said, c, h, stateW };
}

/** tryMalloc(3 MiB), which needs the lock, with `hook` in place of Atomics.load for its duration. */
function tryMallocHooked(heap: SharedHeap, hook: (a: Int32Array, i: number) => number): number {
  const load = Atomics.load;
  (Atomics as { load: typeof Atomics.load }).load = hook as unknown as typeof Atomics.load;
  try {
    return heap.tryMalloc(3 * MiB);
  } finally {
    (Atomics as { load: typeof Atomics.load }).load = load;
  }
}

describe('breaking a dead holder\'s lock when its slot was taken again meanwhile', () => {
  it('does not take the lock from the live thread now attached in that slot', async () => {
    const { heap, t, said, c, h, stateW } = await faultedHolder();
    const y = startHeapWorker();
    const yId = await y.remote.threadId;

    const load = Atomics.load as (a: Int32Array, i: number) => number;
    let armed = true;
    let reused = false;
    let differs = false;
    const hook = (a: Int32Array, i: number): number => {
      const v = load(a, i);
      if (armed && a.buffer === t.i32.buffer && i === stateW) {
        armed = false;
        // Other threads, between this load and the breaker's CAS: the stopped slot reclaimed (its
        // lock broken and let go), a new thread attached in it, holding the lock.
        heap.reclaim(said.threadId);
        void y.remote.attach(heap.buffer);
        void y.remote.holdLock();
        const until = Date.now() + 5000;
        const idle = new Int32Array(new SharedArrayBuffer(4));
        const held = (): boolean => lockHolder(load(t.i32, G_LOCK)) === h && load(t.i32, t.threadW(h) + TH_THREAD_ID) === yId + 1;
        while (!held() && Date.now() < until) Atomics.wait(idle, 0, 0, 1);
        reused = held();
        differs = load(t.i32, G_LOCK) !== c;
      }
      return v;
    };
    const p = tryMallocHooked(heap, hook);
    expect(armed).toBe(false);
    expect(reused, 'the new thread attached in the slot and took the lock').toBe(true);
    expect(differs, 'its lock word is not the dead holder\'s').toBe(true);
    expect(Atomics.load(t.i32, t.threadW(h) + TH_STATE)).toBe(TS_ATTACHED);
    // The lock is the new thread's: tryMalloc answers 0 (busy), the word still names slot h, held
    // (the waiters bit may be set: a release then wakes a waiter, harmless).
    const word = Atomics.load(t.i32, G_LOCK);
    expect({ p, holder: lockHolder(word), held: (word & LOCK_STATE_MASK) !== 0 }).toEqual({ p: 0, holder: h, held: true });
    await y.worker.terminate();
  }, 30_000);
});

// An audit of c3a32aa (breakLockIfHolderDead looks at the holder slot's state again after its CAS
// and gives the word back only when the slot is ATTACHED). When the breaker's CAS took the word of
// a live holder (a new thread in the dead holder's reclaimed slot, which took the lock: the word
// reads the same), that holder's release takes the breaker's word with it (lockRelease is an
// exchange to 0). If the holder released and then detached before the breaker's second look (its
// slot FREE: not ATTACHED), the breaker went on as the holder of a lock it did not hold: it counted
// a recovery, repaired the slot table and ran its critical section while another thread held the
// lock, and its release let that thread's lock go. Here the other threads act at the breaker's two
// loads of the slot's state (a hook on Atomics.load, as above). Since layout version 18 the
// breaker's CAS fails there (the new thread's word carries the slot's next generation), so the
// second look never comes: the breaker answers busy, and the lock stays the other threads'.
describe('breaking a dead holder\'s lock when its slot was taken again, let go and given up meanwhile', () => {
  it('does not go on as the holder of a lock another thread holds', async () => {
    const { heap, t, said, c, h, stateW } = await faultedHolder();
    const y = startHeapWorker();
    const yId = await y.remote.threadId;
    const z = startHeapWorker();
    await z.remote.attach(heap.buffer);
    const zId = await z.remote.threadId;
    let zSlot = -1;
    for (let s = 0; s < 4; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === zId + 1) zSlot = s;
    expect(zSlot).toBeGreaterThanOrEqual(0);

    const load = Atomics.load as (a: Int32Array, i: number) => number;
    const idle = new Int32Array(new SharedArrayBuffer(4));
    const until = (test: () => boolean): boolean => {
      const end = Date.now() + 5000;
      while (!test() && Date.now() < end) Atomics.wait(idle, 0, 0, 1);
      return test();
    };
    let calls = 0;
    let inHook = false;
    let reused = false;
    let differs = false;
    let gone = false;
    const hook = (a: Int32Array, i: number): number => {
      const before = load(a, i);
      if (!inHook && a.buffer === t.i32.buffer && i === stateW && calls < 2) {
        calls++;
        inHook = true;
        if (calls === 1) {
          // Before the breaker's CAS: the stopped slot reclaimed, a new thread attached in it and
          // holding the lock (for 400 ms), which writes the same word again.
          heap.reclaim(said.threadId);
          void y.remote.attach(heap.buffer);
          void y.remote.holdLockFor(400);
          void y.remote.detach();
          reused = until(() => lockHolder(load(t.i32, G_LOCK)) === h && load(t.i32, t.threadW(h) + TH_THREAD_ID) === yId + 1);
          differs = load(t.i32, G_LOCK) !== c;
        } else {
          // After the CAS, before the second look: that thread lets the lock go and detaches, and
          // another takes the lock and keeps it.
          const left = until(() => load(t.i32, stateW) === TS_FREE);
          void z.remote.holdLock();
          gone = left && until(() => lockHolder(load(t.i32, G_LOCK)) === zSlot);
        }
        inHook = false;
        if (calls === 1) return before; // DEAD, as read before the others acted
      }
      return load(a, i);
    };
    const p = tryMallocHooked(heap, hook);
    expect(reused, 'the new thread attached in the slot and took the lock').toBe(true);
    expect(differs, 'its lock word is not the dead holder\'s').toBe(true);
    // The CAS from the dead holder's word failed: no second look, and tryMalloc answers 0 (busy).
    expect({ calls, gone, p }).toEqual({ calls: 1, gone: false, p: 0 });
    // The word never became the breaker's: y's still, or (y let it go) free or z's.
    const word = Atomics.load(t.i32, G_LOCK);
    expect(lockHolder(word)).not.toBe(t.slot);
  }, 30_000);
});
