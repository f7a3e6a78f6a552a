/**
 * A thread stopped while it adopts an abandoned slab (pool.ts adoptAbandoned, under the global
 * lock: the adopting CAS of the slab's owner, adoptSlab, and the slab's unlink from its class's
 * abandoned list) leaves the slab either on the list with no owner or its own and listed, which its
 * reclaim gives up again: either way the next thread that needs a slab of the class finds it, and
 * check() passes with every live block's bytes kept. The slab used to leave the list before the
 * CAS: a thread stopped at the CAS (worker.terminate() stops a thread before an Atomics call) left
 * it with no owner on no list, its free blocks lost to every thread until one of its live blocks
 * was freed (an audit of the crash points, 2026-12-07; this file failed then). The worker
 * (workers/stop-at-cas-worker.ts) exits at the CAS (`after` 0) or before the first, second or
 * third Atomics call after it (in adoptSlab's clearing of the unsure mark and the collection that
 * follows the unlink).
 */
import { afterEach, expect, it } from 'vitest';
import { abandonedSlab, stoppedAtCas } from './abandoned-slab.js';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { ABANDONED_W, OWNER_NONE, SLOT_SHIFT, SM_ABANDON_LISTED, SM_ABANDON_NEXT, SM_INUSE, SM_NFREE, SM_OWNER } from '../src/layout.js';
import { classOf } from '../src/size-classes.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

const MiB = 1 << 20;

interface Setup {
  heap: SharedHeap;
  S: number;
  cls: number;
  live: [number, number][]; // [block, pattern]: the abandoned slab's live blocks
  mine: [number, number, number][]; // [block, size, pattern]: the main thread's own
  stoppedThere: boolean;
}

/** D leaves slab S abandoned (live and free blocks); V, taking a slab of S's class, stops at adoptSlab's CAS or `after` Atomics calls later; reclaimed. */
async function stoppedInAdoption(after: number): Promise<Setup> {
  const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4, stage1Keep: 0 });
  const t = internals(heap);
  const i32 = t.i32;
  const mine: [number, number, number][] = [];
  for (let k = 0; k < 6; k++) {
    const size = [200, 5000, 3000][k % 3]!;
    const p = heap.malloc(size);
    heap.u8.fill(0xa0 + k, p, p + size);
    mine.push([p, size, 0xa0 + k]);
  }
  const { S, mS, cls, ps } = await abandonedSlab(heap);
  const live: [number, number][] = ps.flatMap((p, k) => (k % 2 === 1 ? [[p, 0x11 + k] as [number, number]] : []));
  expect(i32[mS + SM_NFREE] + 0, 'S has free blocks').toBeGreaterThan(0);
  const V = await stoppedAtCas(heap, [{ malloc: 64 }], { index: mS + SM_OWNER, expected: OWNER_NONE, after });
  if (!V.exited) await V.worker.terminate();
  const stoppedThere = V.exited && V.stopped;
  expect(heap.reclaim(V.threadId)).toBe(true);
  return { heap, S, cls, live, mine, stoppedThere };
}

const AFTER = [0, 1, 2, 3];

it.each(AFTER)('a thread stopped in adoptAbandoned (%i Atomics calls after the adopting CAS): reclaimed, check() passes, every live block keeps its bytes', async (after) => {
  const { heap, live, mine, stoppedThere } = await stoppedInAdoption(after);
  expect(stoppedThere, 'the worker stopped where armed').toBe(true);
  expect(() => heap.check()).not.toThrow();
  for (const [p, v] of live) expect(heap.u8.subarray(p, p + 64).every((b) => b === v), `block ${p}`).toBe(true);
  for (const [p, size, v] of mine) expect(heap.u8.subarray(p, p + size).every((b) => b === v), `block ${p}`).toBe(true);
  // The heap works on; a free of one of S's live blocks adopts S (remote.ts notifyOwner: no owner).
  const t = internals(heap);
  heap.free(live[0]![0]);
  heap.flush();
  expect(Atomics.load(t.i32, t.metaW(live[0]![0] >>> SLOT_SHIFT) + SM_OWNER), 'S adopted by the freer').toBe(t.runner.slot);
  for (const [p] of live.slice(1)) heap.free(p);
  for (const [p] of mine) heap.free(p);
  heap.flush();
  expect(() => heap.check()).not.toThrow();
  expect(heap.stats().liveBytes).toBe(0);
  heap.detach();
});

it.each(AFTER)('after such a stop (%i), S is on its abandoned list, so that the next thread needing a slab of its class finds its free blocks', async (after) => {
  const { heap, S, cls, live, stoppedThere } = await stoppedInAdoption(after);
  expect(stoppedThere).toBe(true);
  const t = internals(heap);
  const i32 = t.i32;
  const mS = t.metaW(S);
  const onList: number[] = [];
  for (let s = i32[ABANDONED_W + cls]!; s !== 0 && onList.length < 1000; s = i32[t.metaW(s) + SM_ABANDON_NEXT]!) onList.push(s);
  const state = {
    owner: Atomics.load(i32, mS + SM_OWNER),
    listed: i32[mS + SM_ABANDON_LISTED],
    onAbandonedList: onList.includes(S),
    inuse: i32[mS + SM_INUSE],
    nfree: i32[mS + SM_NFREE],
  };
  // A third thread needing a slab of the class: it takes a new one while S's free blocks wait.
  const W = startHeapWorker();
  await W.remote.attach(heap.buffer);
  const q = await W.remote.malloc(64);
  const tookS = q >>> SLOT_SHIFT === S;
  expect({ ...state, tookS, live: live.length }, 'S reachable: owned, or on its abandoned list').toMatchObject({ onAbandonedList: true, tookS: true });
  heap.detach();
});
