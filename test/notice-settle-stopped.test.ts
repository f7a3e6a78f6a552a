/**
 * settleUnsure (slab.ts) records the epoch as settled (t.unsureSeen) before it settles the marks.
 * A thread stopped inside the settling never looks again through that context: killed, or cut off
 * by a fault (fault.ts guarded: the slot is marked DEAD and the instance refuses every call; no
 * error of the allocator's own can be thrown there, every lock on that path is a tryLockAcquire).
 * Its reclaim binds a fresh context (unsureSeen read anew) and its abandonAll clears every unsure
 * mark on the slabs it gives up (clearUnsureMark), collecting first. Checked here (an audit,
 * 2026-12-04): a thread killed while settling the first of two marks leaves no mark behind.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { CP_COLLECT, CP_PUBLISH } from '../src/crash.js';
import { SLOT_SHIFT, SM_HEAD, SM_NOTIFIED, SM_REMOTE, SM_SHIFT, TH_COLLECT_MW, TH_NOTIFYING, TH_NOTIFY_TO } from '../src/layout.js';
import { checked } from './fixtures.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, freeAll, freerStopped, pauseWhere, slabsHeld, slotOf, start } from './notice-helpers.js';

afterEach(terminateAll);

it('a thread killed while settling unsure marks: its reclaim leaves none, and the remote frees of those slabs are collected', async () => {
  const heap = SharedHeap.create(OPTIONS);
  // F1 stopped after its flag CAS on P's S1 (before its push); F2 likewise on P's S2.
  const t = internals(heap);
  const { i32, P, F: F1, slotP, a, mS: mS1 } = await freerStopped(heap, (i32, _p, slotF, S) =>
    Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === slotF + 1 && i32[t.threadW(slotF) + TH_NOTIFYING] === S && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === 0);
  const { ps: b } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 2, size: 1000 });
  const S2 = i32[t.smW + ((b[0]! >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!;
  const mS2 = t.metaW(S2);
  const F2 = await start(heap);
  const slotF2 = slotOf(heap, F2.id);
  const gateF2 = new Int32Array(new SharedArrayBuffer(8));
  void ask(F2, { op: 'free', ps: [b[0]!], pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateF2 });
  await pauseWhere(gateF2, () => Atomics.load(i32, mS2 + SM_NOTIFIED) === slotF2 + 1 && i32[t.threadW(slotF2) + TH_NOTIFYING] === S2 && Atomics.load(i32, t.threadW(slotF2) + TH_NOTIFY_TO) === 0);
  await F1.w.terminate();
  await F2.w.terminate();
  expect(heap.reclaim(F1.id)).toBe(true);
  expect(heap.reclaim(F2.id)).toBe(true);
  const marks = [Atomics.load(i32, mS1 + SM_NOTIFIED) < 0, Atomics.load(i32, mS2 + SM_NOTIFIED) < 0];
  // P looks: settles one mark, and is killed collecting that slab, the other mark still there.
  const gateP = new Int32Array(new SharedArrayBuffer(8));
  void ask(P, { op: 'free', ps: [], pauses: Array<number>(1024).fill(CP_COLLECT), gate: gateP });
  await pauseWhere(gateP, () => {
    const c = Atomics.load(i32, t.threadW(slotP) + TH_COLLECT_MW);
    const f1 = Atomics.load(i32, mS1 + SM_NOTIFIED);
    const f2 = Atomics.load(i32, mS2 + SM_NOTIFIED);
    return (c === mS1 && f1 === 0 && f2 < 0) || (c === mS2 && f2 === 0 && f1 < 0);
  });
  await P.w.terminate();
  expect(heap.reclaim(P.id)).toBe(true);
  const afterReclaim = [Atomics.load(i32, mS1 + SM_NOTIFIED), Atomics.load(i32, mS2 + SM_NOTIFIED)];
  freeAll(heap, [a[0]!, b[1]!]); // the last blocks, remotely: the abandoned slabs adopted, collected, pooled
  const remote = [Atomics.load(i32, mS1 + SM_REMOTE), Atomics.load(i32, mS2 + SM_REMOTE)];
  const held = slabsHeld(heap);
  const check = checked(heap);
  heap.detach();
  expect({ marks, afterReclaim, remote, held, check }).toEqual({ marks: [true, true], afterReclaim: [0, 0], remote: [0, 0], held: [], check: 'passes' });
});
