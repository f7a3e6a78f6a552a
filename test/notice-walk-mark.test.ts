/**
 * The walker of a notice list marks each slab's flag NOTIFIED_WALK, records that (TH_NOTICE_CUR
 * = -slot), and only then stores 0. A reclaim that finishes the walk clears the mark by CAS and
 * never a flag a later push set. Before 2026-12-04 the walker stored 0 and then recorded it: a
 * walker stopped between the two left cur > 0, the reclaim stored 0 again over the flag of a push
 * made meanwhile, and the next push put the slab on the dead thread's list a second time (its link
 * to itself: the slab behind it was lost, flagged for good). An audit's repro, here with the
 * walker's store made for it (no crash point lies between those two stores).
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { CP_COLLECT, CP_NOTICES } from '../src/crash.js';
import { NOTIFIED_WALK, SLOT_SHIFT, SM_HEAD, SM_NOTICE_NEXT, SM_NOTIFIED, SM_REMOTE, SM_SHIFT, TH_COLLECT_MW, TH_NOTICE, TH_NOTICE_CUR } from '../src/layout.js';
import { checked } from './fixtures.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, freeAll, pauseWhere, resume, slabsHeld, slotOf, start } from './notice-helpers.js';

afterEach(terminateAll);

/** P holds Z (3 blocks of 5000 B) and S (3 of 1000 B); the main thread frees one of S: P's list is S. */
async function walker(heap: SharedHeap) {
  const t = internals(heap);
  const i32 = t.i32;
  const P = await start(heap);
  const R = await start(heap);
  const slotP = slotOf(heap, P.id);
  const head = (p: number): number => i32[t.smW + ((p >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!;
  const { ps: z } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 3, size: 5000 });
  const { ps: s } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 3, size: 1000 });
  const [Z, S] = [head(z[0]!), head(s[0]!)];
  freeAll(heap, [s[0]!]);
  expect(Atomics.load(i32, t.threadW(slotP) + TH_NOTICE)).toBe(S);
  const gateP = new Int32Array(new SharedArrayBuffer(8));
  void ask(P, { op: 'free', ps: [], pauses: Array<number>(64).fill(CP_NOTICES), gate: gateP });
  return { t, i32, P, R, slotP, z, s, Z, S, mZ: t.metaW(Z), mS: t.metaW(S), gateP };
}

it('a walker stopped between its mark and its record: the reclaim clears the mark, a push made meanwhile never puts the slab on the list twice', async () => {
  const heap = SharedHeap.create(OPTIONS);
  const { t, i32, P, R, slotP, z, s, Z, S, mZ, mS, gateP } = await walker(heap);
  await pauseWhere(gateP, () => i32[t.threadW(slotP) + TH_NOTICE_CUR] === S); // just before the mark
  Atomics.store(i32, mS + SM_NOTIFIED, NOTIFIED_WALK); // the walker's store, then it stops
  await P.w.terminate();
  freeAll(heap, [z[0]!]); // noticed: P's list Z
  freeAll(heap, [s[1]!]); // S marked: no notice (the walk that stopped collects it)
  expect(Atomics.load(i32, t.threadW(slotP) + TH_NOTICE)).toBe(Z);
  const gateR = new Int32Array(new SharedArrayBuffer(8));
  const reclaimed = ask<{ done: boolean }>(R, { op: 'reclaim', id: P.id, pauses: Array<number>(64).fill(CP_COLLECT), gate: gateR });
  await pauseWhere(gateR, () => Atomics.load(i32, t.threadW(slotP) + TH_COLLECT_MW) === mS); // the reclaim collects S
  const flagAtPause = Atomics.load(i32, mS + SM_NOTIFIED);
  freeAll(heap, [s[2]!]); // a push while S is collected: onto P's list, whose head is Z
  const link = Atomics.load(i32, mS + SM_NOTICE_NEXT);
  resume(gateR, 1 << 20);
  expect((await reclaimed).done).toBe(true);
  freeAll(heap, z.slice(1));
  heap.flush();
  await ask(R, { op: 'detach', pauses: [], gate: gateR });
  const held = slabsHeld(heap);
  const check = checked(heap);
  heap.detach();
  expect({ flagAtPause, link, zFlag: Atomics.load(i32, mZ + SM_NOTIFIED), held, check, after: slabsHeld(heap) }).toEqual({
    flagAtPause: 0, link: Z, zFlag: 0, held: [], check: 'passes', after: [],
  });
});

it("a walker stopped at its record's crash point, the slab marked: the reclaim clears the mark and the slab's later frees are noticed", async () => {
  const heap = SharedHeap.create(OPTIONS);
  const { t, i32, P, slotP, s, z, S, mS, gateP } = await walker(heap);
  await pauseWhere(gateP, () => i32[t.threadW(slotP) + TH_NOTICE_CUR] === -S);
  expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(NOTIFIED_WALK);
  await P.w.terminate();
  expect(heap.reclaim(P.id)).toBe(true);
  expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
  freeAll(heap, s.slice(1)); // S, abandoned by the reclaim, is adopted by this free and collected
  expect(Atomics.load(i32, mS + SM_REMOTE)).toBe(0);
  freeAll(heap, z);
  expect(checked(heap)).toBe('passes');
  heap.detach();
  expect(slabsHeld(heap)).toEqual([]);
});
