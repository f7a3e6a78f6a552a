/**
 * An audit of 60addd5 (stats(): of each thread area the footprint counts the journal only "once a
 * reclaim wrote it": F_RECLAIMS > 0, or a slot RECLAIMING). stats() runs without the lock and read
 * F_RECLAIMS before the slots' states, while a reclaim writes the journal, then counts itself
 * (F_RECLAIMS++), then stores the slot FREE. A stats() that read the counter before the first
 * reclaim counted itself and a state after the slot went FREE saw neither: its footprint left out
 * the journal's pages that the reclaim had just written (resident pages: "footprint never below
 * resident"). Here the reclaim runs at that very moment, in the middle of stats() (from a hook on
 * the load of the reclaimed slot's state), as another thread's would; no page is written after it,
 * so that stats() must report the footprint of the next one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { MAG_ENTRY_WORDS, PAGE_BYTES, TH_STATE, TH_THREAD_ID, TH_TOP, TS_FREE } from '../src/layout.js';
import { MiB } from './fixtures.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

describe('stats() while the first reclaim ends', () => {
  it('counts the journal pages that reclaim wrote', async () => {
    // maxThreads 3: four thread areas with the one kept for reclaims (layout.ts RECLAIM_SLOTS), the
    // metadata and so the blocks as when this test was written with maxThreads 4, the magazine's depth below too.
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 3, magazineCapacity: 4096 });
    const t = internals(heap);
    const b = startHeapWorker();
    const id = await b.remote.attach(heap.buffer);
    expect(await b.remote.fillAndFree(16)).toBeGreaterThan(4096);
    // The worker's magazine of 16-byte blocks holds enough entries for the reclaim's journal
    // copy to fill whole pages that nothing else writes.
    let slot = -1;
    for (let s = 0; s < 4; s++) if (s !== t.slot && Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === id + 1) slot = s;
    expect(slot).toBeGreaterThanOrEqual(0);
    const thW = t.threadW(slot);
    const depth = (t.i32[thW + TH_TOP + 0]! - (thW + t.geo.magW + MAG_ENTRY_WORDS)) / MAG_ENTRY_WORDS;
    expect(depth * MAG_ENTRY_WORDS * 4).toBeGreaterThan(PAGE_BYTES);
    await b.worker.terminate();
    expect(heap.stats().reclaims).toBe(0);

    const stateW = thW + TH_STATE;
    const load = Atomics.load;
    let armed = true;
    (Atomics as { load: typeof Atomics.load }).load = ((a: Int32Array, i: number) => {
      if (armed && a.buffer === t.i32.buffer && i === stateW) {
        armed = false;
        expect(heap.reclaim(id)).toBe(true); // another thread's reclaim, between stats()'s reads
      }
      return load(a as never, i);
    }) as unknown as typeof Atomics.load;
    let during: number;
    try {
      during = heap.stats().footprintBytes;
    } finally {
      (Atomics as { load: typeof Atomics.load }).load = load;
    }
    expect(armed).toBe(false);
    expect(Atomics.load(t.i32, stateW)).toBe(TS_FREE);
    const after = heap.stats();
    expect(after.reclaims).toBe(1);
    // Nothing was written between the two: the same pages.
    expect(during, 'stats() left out the journal the reclaim wrote').toBe(after.footprintBytes);
    heap.detach();
  }, 30_000);
});
