/**
 * finishNoticeWalk's CAS of NOTIFIED_WALK clears whatever walker's mark is there: a reclaim that
 * finishes a dead walker's handling of slab S (TH_NOTICE_CUR = -S, its flag cleared long since)
 * can clear the mark of a live walker now on S (S pushed again, onto another thread's list). That
 * is harmless: a walker collects or notices S after its CAS whatever the CAS found, so the early
 * clear is the live walker's own clear made sooner; a push after it notifies again, and one before
 * it is collected by the live walker. Checked here (an audit, 2026-12-04): no notice lost, S on no
 * list twice.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_NOTICES, CP_PUBLISH, CP_STAGE1_PUSH } from '../src/crash.js';
import { NOTIFIED_WALK, SLOT_SHIFT, SM_INUSE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_REMOTE, TH_NOTICE, TH_NOTICE_CUR, TH_NOTIFYING } from '../src/layout.js';
import { checked } from './fixtures.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, lateNotice, pauseWhere, resume, slabsHeld, slotOf, start } from './notice-helpers.js';

afterEach(terminateAll);

it("a reclaim finishing a dead walker's slab clears a live walker's mark on it: no notice is lost, the slab is on no list twice", async () => {
  const heap = SharedHeap.create(OPTIONS);
  const { t, i32, P, F, slotP, slotF, S, mS, atPoolingS, resumeF } = await lateNotice(heap);
  const cur = (slot: number): number => i32[t.threadW(slot) + TH_NOTICE_CUR]!;
  const gateP = new Int32Array(new SharedArrayBuffer(8));
  const flushed = ask(P, { op: 'free', ps: [], pauses: Array<number>(1024).fill(CP_STAGE1_PUSH), gate: gateP });
  await atPoolingS(gateP);
  await resumeF(); // F's late notice: S onto P's list
  resume(gateP, 1 << 20);
  await flushed; // S pooled, on P's list, flagged F's
  const Q = await start(heap);
  const slotQ = slotOf(heap, Q.id);
  const { ps: qs } = await ask<{ ps: number[] }>(Q, { op: 'malloc', n: 64, size: 48 }); // Q takes S
  const gate = new Int32Array(new SharedArrayBuffer(8));
  await ask(F, { op: 'free', ps: [qs[0]!], pauses: [], gate }); // a remote free of Q's S: no notice (the flag)
  // P walks its list: S's flag cleared, S noticed anew to Q; P stops in that notice, before its flag CAS.
  const gateP2 = new Int32Array(new SharedArrayBuffer(8));
  void ask(P, { op: 'free', ps: [], pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateP2 });
  await pauseWhere(gateP2, () => cur(slotP) === -S && i32[t.threadW(slotP) + TH_NOTIFYING] === S && Atomics.load(i32, mS + SM_NOTIFIED) === 0);
  await ask(F, { op: 'free', ps: [qs[1]!], pauses: [], gate }); // F's notice: S onto Q's list
  const onQ = Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE) === S;
  // Q walks its list: S marked, stopped before its CAS.
  const gateQ = new Int32Array(new SharedArrayBuffer(8));
  const lookQ = ask(Q, { op: 'free', ps: [], pauses: Array<number>(1024).fill(CP_NOTICES), gate: gateQ });
  await pauseWhere(gateQ, () => cur(slotQ) === -S);
  const qMark = Atomics.load(i32, mS + SM_NOTIFIED) === NOTIFIED_WALK;
  await P.w.terminate();
  expect(heap.reclaim(P.id)).toBe(true); // finishes P's walk of S: clears Q's mark, notices S to Q
  const afterReclaim = { flag: Atomics.load(i32, mS + SM_NOTIFIED), qNotices: Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE) };
  resume(gateQ, 1 << 20);
  await lookQ; // Q's CAS fails; Q collects S
  const afterQ = { remote: Atomics.load(i32, mS + SM_REMOTE), inuse: i32[mS + SM_INUSE], qNotices: Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE) };
  await ask(F, { op: 'free', ps: [qs[2]!], pauses: [], gate }); // a later remote free is noticed
  await ask(Q, { op: 'free', ps: [], pauses: [], gate: gateQ }); // Q looks again
  const final = { flag: Atomics.load(i32, mS + SM_NOTIFIED), remote: Atomics.load(i32, mS + SM_REMOTE), inuse: i32[mS + SM_INUSE], qNotices: Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE) };
  const link = Atomics.load(i32, mS + SM_NOTICE_NEXT);
  await ask(Q, { op: 'free', ps: qs.slice(3), pauses: [], gate: gateQ });
  await ask(F, { op: 'detach', pauses: [], gate });
  await ask(Q, { op: 'detach', pauses: [], gate: gateQ });
  const held = slabsHeld(heap);
  const check = checked(heap);
  heap.detach();
  expect({ takenByQ: qs[0]! >>> SLOT_SHIFT === S, onQ, qMark, afterReclaim, afterQ, final, selfLinked: link === S, held, check }).toEqual({
    takenByQ: true,
    onQ: true,
    qMark: true,
    afterReclaim: { flag: slotP + 1, qNotices: S }, // the mark cleared; S noticed to Q anew (as the dead P)
    afterQ: { remote: 0, inuse: 62, qNotices: S },
    final: { flag: 0, remote: 0, inuse: 61, qNotices: 0 },
    selfLinked: false,
    held: [],
    check: 'passes',
  });
  void slotF;
});
