/**
 * attach() and liveness.ts holdThreadLock near the stack's limit (an audit of b3bbe07, which asks for the Web
 * Lock of Node's threadId first in attach()). A Promise constructor whose executor is cut off by the
 * RangeError of a stack overflow does not throw: it rejects its promise. holdThreadLock then handed
 * out a ThreadLock whose `release` was undefined (or whose `held` never settled), and whose lock,
 * once granted, went at once (the callback's promise rejected): an attach() deep in a recursion
 * attached with it, its Web Lock not held while it ran (a reclaimWhenGone elsewhere would take it as
 * gone), threadLockHeld() pending for good, and detach() threw a TypeError after it freed the slot
 * ("this[#lock].release is not a function"); with the request itself cut off, it attached with
 * `held` false, its lock never held. attach() refuses near the stack's limit now, before it asks for
 * anything, as it does where it would reclaim a stopped slot (heap.ts stackHasRoom). Run against
 * the stand-in Web Locks (test/web-locks.ts), attaching at each of the last 6000 frames of a
 * recursion: every attach either throws or attaches with its lock held, and detaches cleanly.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';
import { slotIds } from './fault-internals.js';

let locks: WebLocksStandIn | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
});

it('attach() deep in a recursion attaches holding its Web Lock, or throws, never a lock half made', async () => {
  const created = SharedHeap.create({ initialBytes: 32 * 1024 * 1024, maxThreads: 4 });
  const buffer = created.buffer;
  created.detach();
  locks = installWebLocks();
  const attach = SharedHeap.attach.bind(SharedHeap); // (taken now: deep in the recursion, reading it may overflow too)
  const held: Promise<boolean>[] = [];
  const detachErrors: string[] = [];
  let max = 0;
  let thrown = 0;
  const deep = (n: number): void => {
    if (n > max) max = n;
    try {
      deep(n + 1);
    } catch {
      // the limit
    }
    if (max - n < 6000) {
      let h: SharedHeap | undefined;
      try {
        h = attach(buffer);
      } catch {
        thrown++;
        return; // refused or cut off: nothing claimed (checked below)
      }
      try {
        held.push(h.threadLockHeld());
        h.detach();
      } catch (e) {
        detachErrors.push((e as Error).message);
      }
    }
  };
  deep(0);
  expect(held.length, 'attached').toBeGreaterThan(0);
  expect(thrown, 'refused or cut off').toBeGreaterThan(0);
  expect(detachErrors).toEqual([]);
  const settled = await Promise.all(held.map((p) => Promise.race([p, new Promise((r) => setTimeout(() => r('pending'), 500))])));
  expect(settled.filter((v) => v !== true)).toEqual([]);
  await new Promise((r) => setTimeout(r, 50));
  expect(locks.held()).toEqual([]);
  const after = SharedHeap.attach(buffer);
  expect(slotIds(after).filter((s) => s.state !== 0)).toHaveLength(1);
  after.check();
  after.detach();
});
