/**
 * A large run's generation (layout.ts SM_RUN_GEN), which realloc's move compares at its free
 * (test/large-realloc-move-resized-meanwhile.test.ts): every way a run becomes live or changes its
 * span moves it. A take from the slots under the lock (large.ts takeRun), from a large-run list
 * without it (pool.ts largePoolPop), a shrink and a grow in place (large.ts largeResize); a
 * realloc that keeps the run as it is does not. The run at one place, freed and allocated again,
 * never shows the generation it had.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { runGeneration } from '../src/large.js';
import { SLOT_BYTES } from '../src/layout.js';
import { MiB, checked } from './fixtures.js';

const gen = (heap: SharedHeap, p: number): number => runGeneration(internals(heap), p);

describe("a large run's generation", () => {
  it('moves when the run is freed to the slots and taken again from them (stage1Keep 0: no large-run lists)', () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, stage1Keep: 0 });
    const p = heap.malloc(6 * SLOT_BYTES - 1000);
    const g0 = gen(heap, p);
    heap.free(p);
    const again = heap.malloc(6 * SLOT_BYTES - 1000);
    expect({ samePlace: again === p, moved: gen(heap, again) !== g0, pooled: heap.stats().largePooledBytes }).toEqual({ samePlace: true, moved: true, pooled: 0 });
    heap.free(again);
    expect(checked(heap)).toBe('passes');
  });

  it('moves when the run is freed into a large-run list and taken again from it', () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB });
    const p = heap.malloc(6 * SLOT_BYTES - 1000);
    const g0 = gen(heap, p);
    heap.free(p);
    const pooled = heap.stats().largePooledBytes;
    const again = heap.malloc(6 * SLOT_BYTES - 1000);
    expect({ pooled, samePlace: again === p, moved: gen(heap, again) !== g0 }).toEqual({ pooled: 6 * SLOT_BYTES, samePlace: true, moved: true });
    heap.free(again);
    expect(checked(heap)).toBe('passes');
  });

  it('moves at each resize in place, not where realloc keeps the run as it is', () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB });
    const p = heap.malloc(6 * SLOT_BYTES - 1000);
    const g0 = gen(heap, p);
    const kept = heap.realloc(p, 5 * SLOT_BYTES); // above half: kept as it is
    const g1 = gen(heap, p);
    const shrunk = heap.realloc(p, 3 * SLOT_BYTES - 1000); // to half: in place (above MAX_SMALL, so still a run)
    const g2 = gen(heap, p);
    const grown = heap.realloc(p, 5 * SLOT_BYTES); // in place, over the slots the shrink gave back
    const g3 = gen(heap, p);
    expect({ kept: kept === p, keptSame: g1 === g0, shrunk: shrunk === p, afterShrink: g2 !== g1, grown: grown === p, afterGrow: g3 !== g2 }).toEqual({
      kept: true, keptSame: true, shrunk: true, afterShrink: true, grown: true, afterGrow: true,
    });
    heap.free(p);
    expect(checked(heap)).toBe('passes');
  });
});
