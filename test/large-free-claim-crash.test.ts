/**
 * A worker freeing a large run (its claim by CAS, large.ts largeFree) is stopped at each crash
 * point its free passes (into a large-run list, the five of CP_STAGE1_PUSH: before the claim's
 * CAS, after it, before the list's CAS, after it, after the owner's OWNER_POOL; under the lock:
 * CP_LARGE after the claim, CP_GIVE_BACK inside the give-back),
 * optionally with the lock broken by a waiter (repairSlotTable) before the reclaim, and
 * optionally with the reclaimer itself stopped once mid-reclaim. After the reclaim(s): check()
 * passes (F_LARGE_HELD_BYTES among its checks), G_LARGE_POOLED equals the lists' slots, the run is
 * freed exactly once (live and freeable where the stop came before the claim, else a
 * DoubleFreeError), and its slots are reusable once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { CP_GIVE_BACK, CP_LARGE, CP_RECLAIM, CP_STAGE1_PUSH } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { G_LARGE_POOLED, G_LOCK, LARGE_POOL_SPANS, SLOT_BYTES, TH_STATE, TS_ATTACHED, TS_DEAD, largePooledSlots } from '../src/layout.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

const SMALL_RUN = 4 * SLOT_BYTES - 1000; // into its list
const BIG_RUN = (LARGE_POOL_SPANS + 3) * SLOT_BYTES; // under the lock

interface Case { name: string; size: number; path: number; nth: number; breakLock: boolean; reclaimerStop: number; reclaimerPath?: number }

const cases: Case[] = [];
for (const reclaimerPath of [CP_RECLAIM, CP_GIVE_BACK]) {
  for (let nth = 1; nth <= 5; nth++) {
    for (const reclaimerStop of [0, 1, 2]) {
      if (reclaimerStop === 0 && reclaimerPath === CP_GIVE_BACK) continue;
      cases.push({ name: `list push, CP_STAGE1_PUSH #${nth}`, size: SMALL_RUN, path: CP_STAGE1_PUSH, nth, breakLock: false, reclaimerStop, reclaimerPath });
    }
  }
  for (const breakLock of [false, true]) {
    for (const reclaimerStop of [0, 1, 2]) {
      if (reclaimerStop === 0 && reclaimerPath === CP_GIVE_BACK) continue;
      cases.push({ name: 'under the lock, CP_LARGE #1', size: BIG_RUN, path: CP_LARGE, nth: 1, breakLock, reclaimerStop, reclaimerPath });
      cases.push({ name: 'under the lock, CP_GIVE_BACK #1', size: BIG_RUN, path: CP_GIVE_BACK, nth: 1, breakLock, reclaimerStop, reclaimerPath });
    }
  }
}

async function exitedOrAnswered(v: ReturnType<typeof startHeapWorker>, p: Promise<unknown>): Promise<string> {
  return Promise.race([p.then(() => 'answered'), v.exited.then(() => 'exited')]);
}

describe('a large free stopped at each crash point, then reclaimed', () => {
  for (const c of cases) {
    it(`${c.name}${c.breakLock ? ', lock broken first' : ''}${c.reclaimerStop ? `, reclaimer stopped at ${c.reclaimerPath === CP_RECLAIM ? 'CP_RECLAIM' : 'CP_GIVE_BACK'} #${c.reclaimerStop}` : ''}`, async () => {
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
      const t = internals(heap);
      const v = startHeapWorker();
      const id = await v.remote.attach(heap.buffer);
      const tid = heap.stats().threads.find((x) => x.threadId === id)!.tid;
      const p = heap.malloc(c.size);
      const how = await exitedOrAnswered(v, v.remote.freeStoppingAt(p, c.path, c.nth));
      expect(how).toBe('exited'); // stopped where meant
      if (c.breakLock) {
        // The stopped worker holds the lock; a waiter that sees it dead breaks it (repairSlotTable).
        expect(Atomics.load(t.i32, G_LOCK)).not.toBe(0);
        Atomics.store(t.i32, t.threadW(tid) + TH_STATE, TS_DEAD);
        const x = heap.malloc(SMALL_RUN);
        heap.free(x);
      }
      if (c.reclaimerStop !== 0) {
        // A second worker reclaims the first and is stopped inside (its own reclaim follows).
        const r = startHeapWorker();
        const rid = await r.remote.attach(heap.buffer);
        const rtid = heap.stats().threads.find((x) => x.threadId === rid)!.tid;
        const path = c.reclaimerPath!;
        const rhow = await exitedOrAnswered(r, r.remote.reclaimStoppingAt(id, path, c.reclaimerStop));
        if (rhow === 'exited') {
          if (Atomics.load(t.i32, t.threadW(rtid) + TH_STATE) === TS_ATTACHED) Atomics.store(t.i32, t.threadW(rtid) + TH_STATE, TS_DEAD);
          heap.reclaim(rid);
        }
      }
      heap.reclaim(id);
      heap.check();
      expect(Atomics.load(t.i32, G_LARGE_POOLED)).toBe(largePooledSlots(t.i32, t.smW));
      let freed = 'freed now';
      try {
        heap.free(p);
      } catch (e) {
        expect(e).toBeInstanceOf(DoubleFreeError);
        freed = 'already freed';
      }
      // Stopped before its claim (the first CP_STAGE1_PUSH): the run is still live; after it: freed by the reclaim.
      expect(freed).toBe(c.path === CP_STAGE1_PUSH && c.nth === 1 ? 'freed now' : 'already freed');
      heap.check();
      expect(Atomics.load(t.i32, G_LARGE_POOLED)).toBe(largePooledSlots(t.i32, t.smW));
      // Two runs of the size apart, then gone again.
      const a = heap.malloc(c.size);
      const b = heap.malloc(c.size);
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(0);
      expect(Math.abs(a - b)).toBeGreaterThanOrEqual(c.size);
      heap.free(a);
      heap.free(b);
      heap.check();
      expect(heap.stats().largeLiveBlocks).toBe(0);
    });
  }
});
