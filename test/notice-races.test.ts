/**
 * Notices (remote.ts notifyOwner, slab.ts walkNotices) against threads stopped or killed at their
 * crash points, found by an audit of the change that keeps a live freer's flag (2026-12-04): after
 * every block is freed and every thread flushed, no slab may stay flagged or held, check() passes,
 * and a fill of the heap gets what a fresh heap gives.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_COLLECT, CP_PUBLISH, CP_RECLAIM } from '../src/crash.js';
import { internals } from '../src/heap.js';
import {
  G_UNSURE, OWNER_NONE, OWNER_POOL, SLOT_SHIFT, SM_NOTIFIED, SM_OWNER, TH_COLLECT_MW, TH_NOTICE, TH_NOTIFYING, TH_NOTIFY_TO,
} from '../src/layout.js';
import { checked } from './fixtures.js';
import { ask, terminateAll } from './remote-heap.js';
import { BIG, OPTIONS, fill, freeAll, freerStopped, fresh, pauseWhere, resume, slabsHeld, slotOf, start, twoNoticed } from './notice-helpers.js';

afterEach(terminateAll);

/** Every block freed and every thread flushed: nothing held, the heap checks and fills as a fresh one. */
function allBack(heap: SharedHeap): void {
  expect(slabsHeld(heap)).toEqual([]);
  expect(checked(heap)).toBe('passes');
  expect(fill(heap, BIG)).toBe(fresh());
}

describe('notices against stopped and killed threads', () => {
  it('a taker killed walking its notice list: its reclaim finishes the walk, and no slab after it keeps its flag', async () => {
    // P took its list (S2 -> S1) and died collecting S2: S1 was on no list, its flag set for good
    // (the reclaim no longer clears flags); its adopter could never pool it.
    const heap = SharedHeap.create(OPTIONS);
    const P = await start(heap);
    const slotP = slotOf(heap, P.id);
    const { t, i32, a, b, mS1, mS2 } = await twoNoticed(heap, P); // P's list: S2 -> S1
    const gateP = new Int32Array(new SharedArrayBuffer(8));
    void ask(P, { op: 'free', ps: [], pauses: Array<number>(1024).fill(CP_COLLECT), gate: gateP });
    await pauseWhere(gateP, () => Atomics.load(i32, t.threadW(slotP) + TH_NOTICE) === 0 && Atomics.load(i32, t.threadW(slotP) + TH_COLLECT_MW) === mS2);
    await P.w.terminate();
    expect(heap.reclaim(P.id)).toBe(true);
    expect(Atomics.load(i32, mS1 + SM_NOTIFIED)).toBe(0);
    expect(Atomics.load(i32, mS1 + SM_OWNER)).toBe(OWNER_NONE);
    freeAll(heap, a.slice(1)); // S1 adopted by these remote frees, emptied, pooled
    freeAll(heap, [b[1]!]);
    allBack(heap);
    heap.detach();
  });

  /** P allocates slab S (64 blocks of 48 bytes); F frees them all and stops after its flag's CAS, before it names P's slot. */
  async function allFreedByStoppedFreer(heap: SharedHeap) {
    const t = internals(heap);
    const { i32, P, F, slotP, slotF, S, mS, gateF, kF, freed } = await freerStopped(
      heap,
      (i32, _p, slotF, S) => Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === slotF + 1 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING) === S && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === 0,
      true,
    );
    await ask(P, { op: 'detach', pauses: [], gate: new Int32Array(new SharedArrayBuffer(8)) }); // S collected, empty, pooled with F's flag
    expect(Atomics.load(i32, mS + SM_OWNER)).toBe(OWNER_POOL);
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(slotF + 1);
    return { t, i32, F, slotP, slotF, S, mS, gateF, kF, freed };
  }

  it("a dead freer's flag on a slab its owner's detach pooled: the mark is cleared by the pop, and the next owner is notified", async () => {
    // The pop kept the mark, and the next owner, whose refill had seen that epoch just before,
    // never settled it: the slab's remote frees were never collected (an audit).
    const heap = SharedHeap.create(OPTIONS);
    const { t, i32, F, S, mS } = await allFreedByStoppedFreer(heap);
    await F.w.terminate();
    expect(heap.reclaim(F.id)).toBe(true);
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBeLessThan(0); // unsure
    const ps = Array.from({ length: 64 }, () => heap.malloc(48)); // a refill looks at its notices, then pops S
    expect(ps[0]! >>> SLOT_SHIFT).toBe(S);
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    const G = await start(heap);
    await ask(G, { op: 'free', ps: ps.slice(0, 32), pauses: [], gate: new Int32Array(new SharedArrayBuffer(8)) });
    expect(Atomics.load(i32, t.threadW(slotOf(heap, heap.threadId)) + TH_NOTICE)).toBe(S); // notified
    freeAll(heap, ps.slice(32));
    await ask(G, { op: 'detach', pauses: [], gate: new Int32Array(new SharedArrayBuffer(8)) });
    allBack(heap);
    heap.detach();
  });

  it('a freer not pushed, its target slot free: the slot stays named until its recheck, so the thread that takes the slab is in another slot, and is noticed', async () => {
    // It cleared its name before its recheck: a new thread in the same slot could take the slab,
    // the owner word read the same number, and the remote frees skipped under the flag were never
    // noticed (an audit).
    const heap = SharedHeap.create(OPTIONS);
    const { t, i32, F, slotP, slotF, S, gateF, kF, freed } = await allFreedByStoppedFreer(heap);
    void F;
    // F names P's slot, reads the owner again (pooled): not pushed; stopped before its clear.
    await pauseWhere(gateF, () => Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === slotP + 1, kF);
    const Q = await start(heap);
    const slotQ = slotOf(heap, Q.id);
    expect(slotQ).not.toBe(slotP);
    const { ps } = await ask<{ ps: number[] }>(Q, { op: 'malloc', n: 64, size: 48 }); // Q takes S from the pool
    expect(ps[0]! >>> SLOT_SHIFT).toBe(S);
    freeAll(heap, ps.slice(0, 32)); // remote frees of Q's S: notices skipped (F's flag)
    resume(gateF, 1 << 20);
    await freed; // F clears its flag; the owner changed: it notices Q
    expect(Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE)).toBe(S);
    await ask(Q, { op: 'free', ps: ps.slice(32), pauses: [], gate: gateF });
    await ask(Q, { op: 'detach', pauses: [], gate: gateF });
    allBack(heap);
    heap.detach();
  });

  it("a freer that read no owner, overtaken by an adopter: the remote frees skipped under its flag are noticed to the adopter", async () => {
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const i32 = t.i32;
    const [P, F, G] = [await start(heap), await start(heap), await start(heap)];
    const [slotF, slotG] = [slotOf(heap, F.id), slotOf(heap, G.id)];
    const { ps: a } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 64, size: 48 });
    const S = a[0]! >>> SLOT_SHIFT;
    const mS = t.metaW(S);
    const gate = new Int32Array(new SharedArrayBuffer(8));
    await ask(P, { op: 'detach', pauses: [], gate }); // S abandoned, 64 blocks out
    const gateF = new Int32Array(new SharedArrayBuffer(8));
    const freed = ask(F, { op: 'free', ps: a.slice(1, 10), pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateF });
    // F's chain published, its flag set, S read with no owner: stopped before it clears the flag.
    await pauseWhere(gateF, () => Atomics.load(i32, mS + SM_NOTIFIED) === slotF + 1 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === 0 && Atomics.load(i32, mS + SM_OWNER) === OWNER_NONE);
    await ask(G, { op: 'free', ps: a.slice(10), pauses: [], gate }); // G adopts S (flag nonzero, no owner), collects
    expect(Atomics.load(i32, mS + SM_OWNER)).toBe(slotG);
    freeAll(heap, [a[0]!]); // S's last block, a remote free: its notice skipped (F's flag)
    resume(gateF, 1 << 20);
    await freed; // F clears its flag, its adopt fails: it notices G
    expect(Atomics.load(i32, t.threadW(slotG) + TH_NOTICE)).toBe(S);
    await ask(G, { op: 'detach', pauses: [], gate });
    allBack(heap);
    heap.detach();
  });

  it('an unsure mark stored while its owner looks at its notices: published after the mark, and settled at the owner\'s next look', async () => {
    // The epoch was published before the mark: the owner's look read it, found the flag not marked
    // yet, and never settled the mark stored next; the slab's remote frees were never collected.
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const { i32, P, F, a, mS } = await freerStopped(heap, (i32, _p, slotF, S) =>
      Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === slotF + 1 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING) === S && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === 0);
    await F.w.terminate();
    const R = await start(heap);
    const gateR = new Int32Array(new SharedArrayBuffer(8));
    const epoch0 = Atomics.load(i32, G_UNSURE);
    const reclaimed = ask<{ done: boolean }>(R, { op: 'reclaim', id: F.id, pauses: Array<number>(1024).fill(CP_RECLAIM), gate: gateR });
    await pauseWhere(gateR, () => Atomics.load(i32, mS + SM_NOTIFIED) === -(epoch0 + 1) && Atomics.load(i32, G_UNSURE) === epoch0); // marked, not published
    const gateP = new Int32Array(new SharedArrayBuffer(8));
    await ask(P, { op: 'free', ps: [], pauses: [], gate: gateP }); // P looks: the old epoch
    resume(gateR, 1 << 20);
    expect((await reclaimed).done).toBe(true);
    expect(Atomics.load(i32, G_UNSURE)).toBe(epoch0 + 1);
    freeAll(heap, [a[0]!]); // S's last block, remotely
    await ask(P, { op: 'free', ps: [], pauses: [], gate: gateP }); // P's next look settles the mark and collects
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    await ask(P, { op: 'detach', pauses: [], gate: gateP });
    await ask(R, { op: 'detach', pauses: [], gate: gateR });
    allBack(heap);
    heap.detach();
  });
});
