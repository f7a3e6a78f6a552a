/**
 * A remote freer stopped after its chain reached a slab's remote list and before its notice (the
 * slab's flag still 0): its reclaim must tell the owner, or the chain waits there for good (an
 * owner that frees nothing more of that slab never looks at it). Found by an audit, 2026-12-04:
 * the reclaim did nothing where the flag was 0, and drainJournal named the notice (TH_NOTIFYING)
 * only after the publish.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { OWNER_POOL, SLOT_SHIFT, SM_INUSE, SM_NOTIFIED, SM_OWNER, SM_REMOTE, TH_NOTICE, TH_NOTIFYING, TH_NOTIFY_TO } from '../src/layout.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, freeAll, freerStopped, pauseWhere, slotOf, start } from './notice-helpers.js';

afterEach(terminateAll);

/** S's state after its owner (thread slot `owner`) looked: every block of S was freed remotely, so it should be collected. */
function afterLooks(heap: SharedHeap, mS: number, owner: number) {
  const t = internals(heap);
  const i32 = t.i32;
  return {
    remote: Atomics.load(i32, mS + SM_REMOTE) !== 0 ? 'not empty' : 'empty',
    inuse: i32[mS + SM_INUSE],
    flag: Atomics.load(i32, mS + SM_NOTIFIED),
    notices: Atomics.load(i32, t.threadW(owner) + TH_NOTICE),
  };
}
const COLLECTED = { remote: 'empty', inuse: 0, flag: 0, notices: 0 };

const looks = async (thread: Awaited<ReturnType<typeof start>>): Promise<void> => {
  const gate = new Int32Array(new SharedArrayBuffer(8));
  for (let k = 0; k < 3; k++) await ask(thread, { op: 'free', ps: [], pauses: [], gate }); // flushes: looks at its notices
};

for (const [nth, where] of [[1, 'right after its publish'], [2, 'in its notice, before the flag CAS']] as const) {
  it(`a freer stopped ${where}: its reclaim notices the owner, whose next look collects the chain`, async () => {
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    // F frees every block of P's slab S; stopped at the nth crash point with the chain published and the flag 0.
    const unnoticed = (i32: Int32Array, S: number): boolean => Atomics.load(i32, t.metaW(S) + SM_REMOTE) !== 0 && Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === 0;
    const r = await freerStopped(heap, (i32, _p, _f, S) => unnoticed(i32, S), true);
    const { i32, P, F, slotP, slotF, S, mS, gateF } = r;
    if (nth === 2) await pauseWhere(gateF, () => unnoticed(i32, S), r.kF);
    expect(Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING)).toBe(S); // named before the publish
    await F.w.terminate();
    expect(heap.reclaim(F.id)).toBe(true);
    expect(Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING)).toBe(0);
    await looks(P);
    expect(afterLooks(heap, mS, slotP)).toEqual(COLLECTED);
    expect(() => heap.check()).not.toThrow();
    heap.detach();
  });
}

it('a freer stopped in its notice anew after the slab changed hands: the new owner hears of the remote frees its flag hid', async () => {
  const heap = SharedHeap.create(OPTIONS);
  const t = internals(heap);
  // F's flag on P's slab S; F stopped after naming P (TH_NOTIFY_TO not yet stored).
  const { i32, P, F, slotP, slotF, S, mS, gateF, kF } = await freerStopped(
    heap,
    (i32, _p, slotF, S) => Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === slotF + 1 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === 0,
    true,
  );
  await ask(P, { op: 'detach', pauses: [], gate: new Int32Array(new SharedArrayBuffer(8)) }); // S pooled with F's flag
  expect(Atomics.load(i32, mS + SM_OWNER)).toBe(OWNER_POOL);
  const k = await pauseWhere(gateF, () => Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === slotP + 1, kF); // named, not pushed (closed list)
  const Q = await start(heap);
  const slotQ = slotOf(heap, Q.id);
  const { ps } = await ask<{ ps: number[] }>(Q, { op: 'malloc', n: 64, size: 48 }); // Q takes S from the pool
  expect(ps[0]! >>> SLOT_SHIFT).toBe(S);
  freeAll(heap, ps); // every block of Q's S freed here, remotely: the notices skipped (F's flag)
  // F clears its flag, sees the change and notices anew: stopped at that notice's first crash point.
  await pauseWhere(gateF, () => Atomics.load(i32, mS + SM_NOTIFIED) === 0 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING) === S, k);
  await F.w.terminate();
  expect(heap.reclaim(F.id)).toBe(true);
  await looks(Q);
  expect(afterLooks(heap, mS, slotQ)).toEqual(COLLECTED);
  expect(() => heap.check()).not.toThrow();
  heap.detach();
});
