/**
 * stats() while another thread takes the runs of the large-run lists (an audit of the inspection
 * calls under concurrency, 2026-12-05). stats() runs without the lock and read a list's length as
 * its head's SM_POOL_DEPTH (layout.ts listCount), a word that is the slot's SM_FREED_DATA once the
 * run is given back: where the head was popped and given back between the two loads, the "depth"
 * was the run's byte offset, and largePooledBytes came out in terabytes, largeLiveBytes and
 * liveBytes as far below zero (two busy workers on a 64 MiB heap: 5 of 9,000 calls, liveBytes
 * -10,101,710,476,592). And largeLiveBytes was the held count less the pooled one, read at two
 * moments: a pooled run given back between them made it negative. Here a real worker makes the
 * malloc that gives the pooled run back (a slab taken under the lock first gives back what the
 * lists keep, pool.ts returnLargeRuns) at each of those moments, from a hook on stats()'s loads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { LARGE_POOL_W, SLOT_BYTES, SLOT_SHIFT, SM_POOL_DEPTH } from '../src/layout.js';
import type { HeapStats } from '../src/stats.js';
import type { ThreadContext } from '../src/context.js';
import { MiB } from './fixtures.js';
import { startWorker, terminateAll, waitFor } from './remote-heap.js';

afterEach(terminateAll);

const SPAN = 3;

/** stats() with the worker's malloc made right before its load of word `at` (once), and the worker's block. */
async function statsWithMallocAt(at: (t: ThreadContext, x: number) => number): Promise<{ s: HeapStats; pooledBefore: number; malloced: number }> {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 3 });
  const t = internals(heap);
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  startWorker('gated-ops-worker', { buffer: heap.buffer, ops: [['malloc', 64]], ctl });
  await waitFor(ctl, 0, (v) => v === 1);
  const x = heap.malloc(SPAN * SLOT_BYTES - 1000);
  heap.free(x); // kept on the large-run list of its span
  const pooledBefore = heap.stats().largePooledBytes;
  const word = at(t, x);
  const load = Atomics.load;
  let armed = true;
  (Atomics as { load: typeof Atomics.load }).load = ((a: Int32Array, i: number) => {
    if (armed && a.buffer === t.i32.buffer && i === word) {
      armed = false;
      // Another thread's malloc, at this moment: its slab, taken under the lock, gives the run back.
      Atomics.store(ctl, 0, 2);
      Atomics.notify(ctl, 0);
      while (load(ctl, 0) !== 3) Atomics.wait(ctl, 0, 2, 50);
    }
    return load(a as never, i);
  }) as unknown as typeof Atomics.load;
  let s: HeapStats;
  try {
    s = heap.stats();
  } finally {
    (Atomics as { load: typeof Atomics.load }).load = load;
  }
  expect(armed).toBe(false);
  expect(heap.stats().largePooledBytes).toBe(0); // the run was given back
  return { s, pooledBefore, malloced: load(ctl, 1) };
}

/** What no moment of any heap has: negative or fractional bytes, pooled runs beyond the footprint, live bytes beyond it. */
function impossible(s: HeapStats): string[] {
  const wrong: string[] = [];
  for (const k of ['liveBytes', 'largeLiveBytes', 'largePooledBytes', 'liveBlocks'] as const) {
    if (!(s[k] >= 0 && Number.isSafeInteger(s[k]))) wrong.push(`${k} ${s[k]}`);
  }
  if (s.largeLiveBytes % SLOT_BYTES !== 0 || s.largePooledBytes % SLOT_BYTES !== 0) wrong.push('large bytes not whole slots');
  if (s.largePooledBytes > s.footprintBytes) wrong.push(`largePooledBytes ${s.largePooledBytes} > footprint ${s.footprintBytes}`);
  if (s.largeLiveBytes + s.largePooledBytes > s.footprintBytes) wrong.push(`large ${s.largeLiveBytes} + ${s.largePooledBytes} > footprint ${s.footprintBytes}`);
  if (s.liveBytes > s.footprintBytes) wrong.push(`liveBytes ${s.liveBytes} > footprint ${s.footprintBytes}`);
  for (const c of s.classes) if (!(c.stage1Slabs >= 0 && c.stage1Slabs * SLOT_BYTES <= s.carvedBytes)) wrong.push(`class ${c.cls}: stage1Slabs ${c.stage1Slabs}`);
  return wrong;
}

describe('stats() while another thread gives back a run the large-run lists kept', () => {
  it('between its load of the list head and of the head run\'s depth: no figure out of range', async () => {
    const { s, pooledBefore, malloced } = await statsWithMallocAt((t, x) => t.metaW(x >>> SLOT_SHIFT) + SM_POOL_DEPTH);
    expect(pooledBefore).toBe(SPAN * SLOT_BYTES);
    expect(malloced).toBeGreaterThan(0);
    expect(impossible(s)).toEqual([]);
    expect([0, SPAN * SLOT_BYTES]).toContain(s.largePooledBytes);
    expect(s.largeLiveBytes).toBe(0);
  });

  it('after its read of that list, before the next one: live large bytes not below zero', async () => {
    const { s, malloced } = await statsWithMallocAt(() => LARGE_POOL_W + SPAN + 1);
    expect(malloced).toBeGreaterThan(0);
    expect(impossible(s)).toEqual([]);
    expect(s.largeLiveBytes).toBe(0);
  });
});
