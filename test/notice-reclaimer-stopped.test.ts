/**
 * A reclaimer notifies "as the dead thread" with the dead slot's words (TH_NOTIFYING, TH_FLAGGED,
 * TH_NOTIFY_TO): stopped in that notice, it leaves them as the dead thread itself would have, and the
 * reclaim of the reclaimer (which finishes the dead thread's reclaim too) resolves the flag: marked
 * unsure when the notice set it and did not push it, left when pushed. Either way the owner collects
 * the chain and no flag stays set.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { CP_PUBLISH } from '../src/crash.js';
import { SM_INUSE, SM_NOTIFIED, SM_REMOTE, TH_FLAGGED, TH_NOTICE, TH_NOTIFYING } from '../src/layout.js';
import { ask, terminateAll } from './remote-heap.js';
import { OPTIONS, freerStopped, pauseWhere, slotOf, start } from './notice-helpers.js';
import { checked } from './fixtures.js';

afterEach(terminateAll);

for (const where of ['after the flag CAS', 'after the push'] as const) {
  it(`a reclaimer stopped in its notice anew as the dead freer, ${where}: the next reclaim leaves the flag to be settled, the chain collected`, async () => {
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const unnoticed = (i32: Int32Array, S: number): boolean =>
      Atomics.load(i32, t.metaW(S) + SM_REMOTE) !== 0 && Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === 0;
    const { i32, P, F, slotP, slotF, S, mS } = await freerStopped(heap, (i32, _p, _f, S) => unnoticed(i32, S), true);
    expect(i32[t.threadW(slotF) + TH_NOTIFYING]).toBe(S);
    await F.w.terminate();
    const R = await start(heap);
    const slotR = slotOf(heap, R.id);
    const gateR = new Int32Array(new SharedArrayBuffer(8));
    void ask(R, { op: 'reclaim', id: F.id, pauses: Array<number>(4096).fill(CP_PUBLISH), gate: gateR });
    const fW = t.threadW(slotF);
    await pauseWhere(gateR, () =>
      where === 'after the flag CAS'
        ? Atomics.load(i32, mS + SM_NOTIFIED) === slotF + 1 && i32[fW + TH_FLAGGED] === S
        : Atomics.load(i32, t.threadW(slotP) + TH_NOTICE) === S && i32[fW + TH_NOTIFYING] === 0,
    );
    const words = { notifying: i32[fW + TH_NOTIFYING], flagged: i32[fW + TH_FLAGGED], flag: Atomics.load(i32, mS + SM_NOTIFIED) };
    await R.w.terminate();
    expect(slotR).not.toBe(slotF);
    expect(heap.reclaim(R.id)).toBe(true); // and F's, which R was reclaiming
    const flagAfter = Atomics.load(i32, mS + SM_NOTIFIED);
    const gateP = new Int32Array(new SharedArrayBuffer(8));
    for (let k = 0; k < 3; k++) await ask(P, { op: 'free', ps: [], pauses: [], gate: gateP });
    const after = { remote: Atomics.load(i32, mS + SM_REMOTE) !== 0 ? 'not empty' : 'empty', inuse: i32[mS + SM_INUSE], flag: Atomics.load(i32, mS + SM_NOTIFIED) };
    await ask(P, { op: 'detach', pauses: [], gate: gateP });
    const check = checked(heap);
    heap.detach();
    expect({ words, flagAfterPositive: flagAfter > 0, after, check }).toEqual({
      words: where === 'after the flag CAS' ? { notifying: S, flagged: S, flag: slotF + 1 } : { notifying: 0, flagged: 0, flag: slotF + 1 },
      flagAfterPositive: where === 'after the push', // unsure (negative) when not pushed; the pushed flag left
      after: { remote: 'empty', inuse: 0, flag: 0 },
      check: 'passes',
    });
  });
}
