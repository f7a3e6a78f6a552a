/**
 * The other way to the two lists of test/notice-unsure-late.test.ts. F's late notice completed (S on
 * the list of P, which gave S up; F's flag), then F is killed naming S again for a later chain
 * (magazine.ts drainJournal names it before the publish). Its reclaim could not tell that flag,
 * pushed, from one set by a notice it stopped in before its push, and marked it unsure; S's next
 * owner settled the mark while S was still on P's list, the next remote free put S on the owner's
 * list too, and Z, behind S on P's list, was lost (an audit, 2026-12-04). Since TH_FLAGGED (layout
 * version 13) the reclaim marks a flag unsure only when the dead thread's own notice set it and
 * did not push it.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_PUBLISH } from '../src/crash.js';
import { SLOT_SHIFT, SM_NOTIFIED, SM_REMOTE, TH_NOTICE, TH_NOTIFYING } from '../src/layout.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, endLateNotice, lateNotice, pauseWhere, resume, slabBehindS } from './notice-helpers.js';

afterEach(terminateAll);

it("a freer killed before a later chain's notice, its earlier notice of the slab on a former owner's list: the slab is never on two lists", async () => {
  // The same lists, reached another way: F's late notice completed (S on P's list, F's flag), and
  // F is killed naming S again for a later chain (magazine.ts drainJournal names it before the
  // publish): its reclaim cannot tell that flag, pushed, from one set by the notice it stopped in.
  const heap = SharedHeap.create(OPTIONS);
  const late = await lateNotice(heap);
  const { t, i32, P, F, slotP, slotF, S, mS, resumeF } = late;
  const { R, gateR, mZ, gateP, flushed } = await slabBehindS(heap, late);
  await resumeF(); // S onto P's list (S -> Z), F's flag; F's notice done
  const onP = Atomics.load(i32, t.threadW(slotP) + TH_NOTICE) === S;
  resume(gateP, 1 << 20);
  await flushed; // S pooled, still on P's list
  const ps = Array.from({ length: 64 }, () => heap.malloc(48)); // the main thread takes S
  const takenAgain = ps[0]! >>> SLOT_SHIFT === S;
  const gateF2 = new Int32Array(new SharedArrayBuffer(8));
  void ask(F, { op: 'free', ps: [ps[0]!], pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateF2 });
  await pauseWhere(gateF2, () => i32[t.threadW(slotF) + TH_NOTIFYING] === S && Atomics.load(i32, mS + SM_REMOTE) !== 0);
  await F.w.terminate();
  expect(heap.reclaim(F.id)).toBe(true);
  const flagAfterReclaim = Atomics.load(i32, mS + SM_NOTIFIED);
  heap.flush(); // the main thread looks at its notices (and settles marks)
  await ask(R, { op: 'free', ps: [ps[1]!], pauses: [], gate: gateR }); // a remote free of the main thread's S
  const { z, held, check } = await endLateNotice(heap, { i32, mZ, P, gateP, R, gateR }, ps.slice(2), () => undefined);
  expect({ onP, takenAgain, flagAfterReclaim, z, held, check }).toEqual({
    onP: true,
    takenAgain: true,
    flagAfterReclaim: slotF + 1,
    z: { flag: 0, remote: 'empty' },
    held: [],
    check: 'passes',
  });
});
