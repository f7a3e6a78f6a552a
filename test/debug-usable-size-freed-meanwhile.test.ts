/**
 * Debug mode: usableSize(p) (and free(p)) of a block that another thread frees, and whose memory it
 * takes again, while the call checks it (an audit of the inspection calls under concurrency,
 * 2026-12-05). The call validated the block (live), then read its record where the block's slot
 * said it was: the other thread had freed the block, its slab had gone back to the pool and a
 * large run had been made over it, and the call reported a HeapCorruptionError, "written past its
 * end", for a heap that was intact (with two workers, one freeing and reallocating blocks while
 * the other asked their usableSize: 43 of 4.4 M calls). The default mode answers such a race with
 * DoubleFreeError or InvalidPointerError, and so does debug mode now. Here a real worker frees the
 * block, flushes and mallocs 2 MiB at that very moment, from a hook on the call's second look at
 * the slot table.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DoubleFreeError, HeapCorruptionError, InvalidPointerError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { MiB, checked } from './fixtures.js';
import { startWorker, terminateAll, waitFor } from './remote-heap.js';

afterEach(terminateAll);

describe('debug mode: a call on a block another thread frees and allocates over meanwhile', () => {
  it.each(['usableSize', 'free'] as const)('%s(ptr) answers with the error of a block not live, not a write past its end', async (call) => {
    // stage1Keep 0: the worker's empty slab goes back to the slots at once, for its 2 MiB run.
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 3, debug: true, stage1Keep: 0 });
    const t = internals(heap);
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    startWorker('gated-ops-worker', { buffer: heap.buffer, first: 100, ops: [['free'], ['flush'], ['malloc', 2 * MiB]], ctl });
    await waitFor(ctl, 0, (v) => v === 1);
    const p = Atomics.load(ctl, 1);
    expect(heap.usableSize(p)).toBe(100);
    // classifyBlock looks at the block's slot first; debugCheckLive looks again for its size.
    const metaW = t.metaW.bind(t);
    let looks = 0;
    t.metaW = (slot: number) => {
      if (++looks === 2) {
        Atomics.store(ctl, 0, 2);
        Atomics.notify(ctl, 0);
        while (Atomics.load(ctl, 0) !== 3) Atomics.wait(ctl, 0, 2, 50);
      }
      return metaW(slot);
    };
    let error: unknown = null;
    try {
      if (call === 'usableSize') heap.usableSize(p);
      else heap.free(p);
    } catch (e) {
      error = e;
    } finally {
      t.metaW = metaW;
    }
    expect(looks).toBeGreaterThanOrEqual(2);
    const run = Atomics.load(ctl, 1);
    expect(run).toBeGreaterThan(0);
    expect(run).toBeLessThanOrEqual(p); // the run covers the block the call was given
    expect(error).not.toBeInstanceOf(HeapCorruptionError);
    expect(error instanceof InvalidPointerError || error instanceof DoubleFreeError).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`^${call}\\(ptr\\): `));
    expect(heap.usableSize(run)).toBe(2 * MiB); // the worker's run, intact
    expect(checked(heap)).toBe('passes');
  });
});
