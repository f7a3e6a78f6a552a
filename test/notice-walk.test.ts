/**
 * The notice list a thread takes (remote.ts takeNotices) is recorded in TH_NOTICE_REST with no call
 * after the exchange, so that a reclaim finishes the walk (slab.ts walkNotices). It was recorded
 * only after the walk's first Atomics call: a thread stopped before that call (as worker.terminate()
 * stops a thread) or faulted there (a stack overflow) lost the list it took, and every slab on it
 * kept its notice flag for good (an audit of 7ad57dd, whose tests these are).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { SLOT_SHIFT, SM_HEAD, SM_NOTIFIED, SM_REMOTE, SM_SHIFT, TH_NOTICE } from '../src/layout.js';
import { ask, startThread, terminateAll, waitFor } from './remote-heap.js';
import { OPTIONS, freeAll, slotOf, twoNoticed } from './notice-helpers.js';

afterEach(terminateAll);

async function takerStopped(mode: 'stop' | 'fault') {
  const heap = SharedHeap.create(OPTIONS);
  const P = await startThread('notice-stop-worker', heap.buffer);
  const slotP = slotOf(heap, P.id);
  const { t, i32, a, b, mS1, mS2 } = await twoNoticed(heap, P); // P's list: S2 -> S1, both flagged
  expect(Atomics.load(i32, mS1 + SM_NOTIFIED)).not.toBe(0);
  expect(Atomics.load(i32, mS2 + SM_NOTIFIED)).not.toBe(0);
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const answer = ask<{ faulted: string }>(P, { op: 'look', mode, gate });
  await waitFor(gate, 0, (v) => v === 1);
  return { heap, t, i32, P, slotP, a, b, mS1, mS2, answer };
}

describe('the notice walk record', () => {
  it('a taker stopped at the first Atomics call after it took its list: its reclaim clears the flags of the slabs on it', async () => {
    const { heap, t, i32, P, slotP, a, b, mS1, mS2 } = await takerStopped('stop');
    await P.exit;
    expect(Atomics.load(i32, t.threadW(slotP) + TH_NOTICE)).toBe(0); // the list was taken
    expect(heap.reclaim(P.id)).toBe(true);
    expect({ S1: Atomics.load(i32, mS1 + SM_NOTIFIED), S2: Atomics.load(i32, mS2 + SM_NOTIFIED) }).toEqual({ S1: 0, S2: 0 });
    freeAll(heap, a.slice(1));
    freeAll(heap, [b[1]!]);
    heap.detach();
  });

  it('a taker faulted (stack overflow) at the first Atomics call after it took its list: the reclaim of its slot clears the flags', async () => {
    const { heap, i32, P, a, b, mS1, mS2, answer } = await takerStopped('fault');
    expect((await answer).faulted).toMatch(/RangeError/);
    await P.w.terminate();
    expect(heap.reclaim(P.id)).toBe(true);
    expect({ S1: Atomics.load(i32, mS1 + SM_NOTIFIED), S2: Atomics.load(i32, mS2 + SM_NOTIFIED) }).toEqual({ S1: 0, S2: 0 });
    freeAll(heap, a.slice(1));
    freeAll(heap, [b[1]!]);
    heap.detach();
  });

  it("a reclaimer stopped at the first Atomics call after it took the dead thread's list: the reclaim of the reclaimer clears the flags", async () => {
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const i32 = t.i32;
    const P = await startThread('notice-stop-worker', heap.buffer);
    const slotP = slotOf(heap, P.id);
    const { ps: a } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 64, size: 48 });
    const { ps: b } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 2, size: 1000 });
    const mS1 = t.metaW(a[0]! >>> SLOT_SHIFT);
    const mS2 = t.metaW(i32[t.smW + ((b[0]! >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!);
    freeAll(heap, [a[0]!]);
    freeAll(heap, [b[0]!]); // P's list: S2 -> S1
    await P.w.terminate(); // P dies idle, its list not taken
    const R = await startThread('notice-stop-worker', heap.buffer);
    const gate = new Int32Array(new SharedArrayBuffer(8));
    void ask(R, { op: 'reclaim', id: P.id, noticeW: t.threadW(slotP) + TH_NOTICE, mode: 'stop', gate });
    await waitFor(gate, 0, (v) => v === 1);
    await R.exit;
    expect(heap.reclaim(R.id)).toBe(true); // R's slot, then P's again (reclaimFound's loop)
    expect({ S1: Atomics.load(i32, mS1 + SM_NOTIFIED), S2: Atomics.load(i32, mS2 + SM_NOTIFIED) }).toEqual({ S1: 0, S2: 0 });
    heap.detach();
  });

  it('the consequence: the flag left set makes the remote frees of the slab\'s next owner skip their notices; they are never collected', async () => {
    const { heap, i32, P, a, b, mS1 } = await takerStopped('stop');
    await P.exit;
    expect(heap.reclaim(P.id)).toBe(true);
    freeAll(heap, a.slice(1)); // S1 (abandoned, flag left) adopted by these remote frees, emptied; kept: its flag is set
    freeAll(heap, [b[1]!]);
    const ps = Array.from({ length: 64 }, () => heap.malloc(48));
    expect(ps.filter((p) => internals(heap).metaW(p >>> SLOT_SHIFT) === mS1).length).toBeGreaterThan(0); // S1 in use again, the main thread's
    const G = await startThread('detach-race-worker', heap.buffer);
    const gate = new Int32Array(new SharedArrayBuffer(8));
    await ask(G, { op: 'free', ps, pauses: [], gate }); // remote frees: S1's notice skipped (the stale flag)
    heap.flush(); // the owner looks at its notices: nothing
    expect(Atomics.load(i32, mS1 + SM_REMOTE)).toBe(0); // its remote frees collected
    await ask(G, { op: 'detach', pauses: [], gate });
    heap.detach();
  });
});
