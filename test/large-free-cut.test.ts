/**
 * A thread stopped inside the give-back of a large run it frees (its slots' metas already say
 * UNUSED, their free-mask bits not yet set; it holds the global lock), or before it (the run
 * claimed by its mark's CAS, large.ts largeFree): after its reclaim, the run's slots are the
 * heap's again, check() passes, and a second free of the run is refused as a double free.
 * Before: the head's mark was written only after the give-back, so that second free was refused
 * as never-allocated space (InvalidPointerError).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { CP_GIVE_BACK, CP_LARGE } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { K_FREE, LARGE_POOL_SPANS, SLOT_BYTES, SLOT_SHIFT, SM_KIND } from '../src/layout.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

describe('a large free under the lock cut off after its claim: before or inside its give-back', () => {
  for (const [name, path] of [['inside the give-back', CP_GIVE_BACK], ['before it, after its claim', CP_LARGE]] as const) {
    it(`stopped ${name}: reclaimed, the run's slots reusable, a second free a DoubleFreeError`, async () => {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
      const size = (LARGE_POOL_SPANS + 3) * SLOT_BYTES; // too long for a large-run list: freed under the lock
      const keep = heap.malloc(1000);
      heap.u8.fill(0x5a, keep, keep + 1000);
      const v = startHeapWorker();
      const id = await v.remote.attach(heap.buffer);
      const p = await v.remote.malloc(size);
      expect(p).toBeGreaterThan(0);
      // The worker exits at the crash point (its call never answers); a free that passed none answers.
      const answered = v.remote.freeStoppingAt(p, path, 1).then(() => 'answered');
      expect(await Promise.race([answered, v.exited.then(() => 'exited')])).toBe('exited');
      const t = internals(heap);
      if (path === CP_GIVE_BACK) expect(t.i32[t.metaW(p >>> SLOT_SHIFT) + SM_KIND]).toBe(K_FREE); // stopped where meant
      expect(heap.reclaim(id)).toBe(true);
      heap.check();
      // Claimed by the dead thread before either point: its reclaim finished the free.
      expect(() => heap.free(p)).toThrow(DoubleFreeError);
      expect(() => heap.free(p)).toThrow(/free\(ptr\): 0x[0-9a-f]+ is not allocated: the large block there was already freed \(double free\)/);
      heap.check();
      // The run's slots are the heap's again: a run of the same length fits where it was.
      const q = heap.malloc(size);
      expect(q).toBe(p);
      heap.free(q);
      expect(heap.u8.subarray(keep, keep + 1000).every((b) => b === 0x5a)).toBe(true);
      heap.free(keep);
      heap.check();
    });
  }
});
