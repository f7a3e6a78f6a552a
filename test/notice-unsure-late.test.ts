/**
 * An unsure mark (reclaim.ts markUnsureNotice) on a slab whose notice its dead freer had already
 * pushed onto the list of an owner that gave the slab up since (a late notice, detach-race.test.ts):
 * the mark tells the slab's next owner that the slab is on no list, or on its own list taken since
 * the mark. Neither holds: the slab is on the former owner's list, whose taker alone may clear its
 * flag. The next owner's pop cleared the mark (pool.ts stage1Pop), the next remote free put the slab
 * on that owner's list as well, and the link the two lists share lost the slab behind it on the
 * former owner's list (its flag set for good, its remote frees never collected). Found auditing the
 * notice walk's mark (slab.ts finishNoticeWalk), 2026-12-04: the freer was still naming the slab
 * (TH_NOTIFYING) after its push, where its reclaim cannot tell a push made from none.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { SLOT_SHIFT, SM_NOTICE_NEXT, SM_NOTIFIED, TH_NOTICE, TH_NOTIFYING } from '../src/layout.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, endLateNotice, lateNotice, pauseWhere, resume, slabBehindS, slotOf } from './notice-helpers.js';

afterEach(terminateAll);

it("a freer killed right after its late notice reached a former owner's list: the slab is never on two lists, and no slab behind it is lost", async () => {
  const heap = SharedHeap.create(OPTIONS);
  const late = await lateNotice(heap);
  const { t, i32, P, F, slotP, slotF, S, mS, gateF, kF } = late;
  const { R, gateR, Z, mZ, gateP, flushed } = await slabBehindS(heap, late);
  // F goes on: its flag CAS, P read as S's owner, S pushed onto P's list (S -> Z); F stops at the
  // next crash point, after the push.
  await pauseWhere(gateF, () => Atomics.load(i32, t.threadW(slotP) + TH_NOTICE) === S, kF);
  const pushed = { link: Atomics.load(i32, mS + SM_NOTICE_NEXT), flag: Atomics.load(i32, mS + SM_NOTIFIED), naming: i32[t.threadW(slotF) + TH_NOTIFYING] };
  await F.w.terminate();
  expect(heap.reclaim(F.id)).toBe(true);
  const flagAfterReclaim = Atomics.load(i32, mS + SM_NOTIFIED);
  resume(gateP, 1 << 20);
  await flushed; // S pooled, still on P's list
  const ps = Array.from({ length: 64 }, () => heap.malloc(48)); // the main thread takes S from the pool
  const takenAgain = ps[0]! >>> SLOT_SHIFT === S;
  await ask(R, { op: 'free', ps: [ps[0]!], pauses: [], gate: gateR }); // a remote free of the main thread's S
  const { z, after: selfLinked, held, check } = await endLateNotice(heap, { i32, mZ, P, gateP, R, gateR }, ps.slice(1), () => {
    const mainNotices = Atomics.load(i32, t.threadW(slotOf(heap, heap.threadId)) + TH_NOTICE);
    return mainNotices === S && Atomics.load(i32, mS + SM_NOTICE_NEXT) === S;
  });
  expect({ pushed, flagAfterReclaim, takenAgain, z, selfLinked, held, check }).toEqual({
    pushed: { link: Z, flag: slotF + 1, naming: pushed.naming },
    flagAfterReclaim: slotF + 1, // pushed: the flag is P's to clear, when it takes its list
    takenAgain: true,
    z: { flag: 0, remote: 'empty' },
    selfLinked: false,
    held: [],
    check: 'passes',
  });
});
