/**
 * reclaimWhenGone(a) where another thread, b, holds the global lock: b a worker terminated too,
 * whose own reclaimWhenGone(b) the program makes only after a's resolved (it awaits them one at a
 * time: terminate every worker, then `for (const id of ids) await heap.reclaimWhenGone(id)`).
 * reclaimWhenGone(a) never waits for a live holder of the lock, and tried again whenever the lock
 * word changed; but b's lock stays held until a reclaim of b breaks it, so a's call waited for good
 * (an audit). It now asks for b's Web Lock too once b has held the global lock under one word for
 * a while: granted, b is gone, its slot is marked DEAD and the lock broken. While b lives, its Web
 * Lock is not granted, and a's call waits as before. Run in Node against the Web Locks stand-in
 * (web-locks.ts): a and b are slots attached under reserved ids in this thread, their Web Locks
 * held by the stand-in as their threads would hold them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { attachThread } from '../src/attach.js';
import { testHoldLock } from '../src/lock.js';
import { threadLockName } from '../src/liveness.js';
import { installWebLocks, within, type WebLocksStandIn } from './web-locks.js';

const MiB = 1 << 20;
let locks: WebLocksStandIn | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
});

/**
 * A heap this thread created, and two threads under reserved ids a and b, each with a slot and its
 * Web Lock held; b holds the global lock. `gone(x)` lets x's Web Lock go (its thread ended).
 */
async function twoWorkers(): Promise<{ heap: SharedHeap; a: number; b: number; gone: (x: number) => void }> {
  const stand = locks!;
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  await heap.threadLockHeld();
  const heapId = Number(stand.held()[0]!.split(':')[1]);
  const a = heap.newThreadId();
  const b = heap.newThreadId();
  const release = new Map<number, () => void>();
  for (const x of [a, b]) release.set(x, await stand.hold(threadLockName(heapId, x)));
  const ta = attachThread(heap.buffer, a);
  const tb = attachThread(heap.buffer, b);
  expect(ta.slot).not.toBe(tb.slot);
  testHoldLock(tb);
  return { heap, a, b, gone: (x) => release.get(x)!() };
}

describe('reclaimWhenGone while another terminated worker holds the global lock', () => {
  it('one at a time: the first resolves (the holder is gone too), then the second', async () => {
    locks = installWebLocks();
    const { heap, a, b, gone } = await twoWorkers();
    gone(a);
    gone(b);
    expect(await within(heap.reclaimWhenGone(a), 5000)).toBe(true);
    expect(await within(heap.reclaimWhenGone(b), 5000)).toBe(true);
    expect(heap.stats().threadsAttached).toBe(1);
    heap.check();
    const q = heap.malloc(3 * MiB); // a slow path: the lock is free
    expect(q).toBeGreaterThan(0);
    heap.free(q);
    heap.detach();
  });

  it('a holder that still runs is not taken as gone: the call waits until it is', async () => {
    locks = installWebLocks();
    const { heap, a, b, gone } = await twoWorkers();
    gone(a);
    const reclaimA = heap.reclaimWhenGone(a);
    expect(await within(reclaimA, 2500)).toBe('pending');
    expect(heap.stats().threadsAttached).toBe(2); // this thread and b (a's slot is marked DEAD already)
    gone(b);
    expect(await within(reclaimA, 5000)).toBe(true);
    expect(await within(heap.reclaimWhenGone(b), 5000)).toBe(true);
    expect(heap.stats().threadsAttached).toBe(1);
    heap.check();
    heap.detach();
  });
});
