/**
 * Two threads freeing one large run at the same moment (a program's double free, made by two
 * threads at once): exactly one free happens, the other call gets a DoubleFreeError, and the heap
 * stays whole. A worker's call is paused at a crash point (workers/heap-worker.ts callPausingAt)
 * while this thread frees the same run. Before: a free into a large-run list (no lock) and a
 * free under the lock each checked the run's mark and then wrote it, so both went through: the
 * run went onto its list twice, or was given back while on it (two later mallocs got the same
 * run); and a realloc whose old run another thread freed meanwhile lost the new run it had taken.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_LARGE, CP_STAGE1_PUSH } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { G_LARGE_POOLED, SLOT_BYTES, largePooledSlots } from '../src/layout.js';
import { pausedAtCrashPoint, resumeFromCrashPoint, startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

const RUN = 4 * SLOT_BYTES - 1000; // a run of 4 slots: freed into its large-run list

/** A heap, a block of this thread's with known contents, and an attached heap-worker. */
async function setUp() {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const keep = heap.malloc(1000);
  heap.u8.fill(0x5a, keep, keep + 1000);
  const v = startHeapWorker();
  await v.remote.attach(heap.buffer);
  const gate = new Int32Array(new SharedArrayBuffer(4));
  return { heap, keep, v, gate };
}

/** The heap whole after the race: check(), the pool's count, the kept block, two runs of the span apart. */
function expectWhole(heap: SharedHeap, keep: number, liveLarge: number): void {
  heap.check();
  const t = internals(heap);
  expect(Atomics.load(t.i32, G_LARGE_POOLED)).toBe(largePooledSlots(t.i32, t.smW));
  expect(heap.stats().largeLiveBlocks).toBe(liveLarge);
  const a = heap.malloc(RUN);
  const b = heap.malloc(RUN);
  expect(a).toBeGreaterThan(0);
  expect(b).toBeGreaterThan(0);
  expect(a).not.toBe(b);
  expect(Math.abs(a - b)).toBeGreaterThanOrEqual(RUN);
  heap.free(a);
  heap.free(b);
  expect(heap.u8.subarray(keep, keep + 1000).every((x) => x === 0x5a)).toBe(true);
  heap.check();
}

describe('two threads freeing one large run at once', () => {
  it('both into the large-run list: one frees it, the other gets a DoubleFreeError', async () => {
    const { heap, keep, v, gate } = await setUp();
    const p = heap.malloc(RUN);
    // The worker's free stops after its reservation, before its claim; this thread frees the run meanwhile.
    const call = v.remote.callPausingAt('free', p, 0, CP_STAGE1_PUSH, 1, gate);
    await pausedAtCrashPoint(gate, call);
    heap.free(p);
    resumeFromCrashPoint(gate);
    const r = await call;
    expect(r.error).toMatch(/^DoubleFreeError: free\(ptr\): 0x[0-9a-f]+ is not allocated: the large block there was already freed \(double free\)$/);
    expectWhole(heap, keep, 0);
    heap.free(keep);
  });

  it('a free under the lock (a realloc that moves the run) claims it first: a free into the list meanwhile is a DoubleFreeError', async () => {
    const { heap, keep, v, gate } = await setUp();
    const p = heap.malloc(RUN);
    const wall = heap.malloc(RUN); // right after p: p cannot grow in place, the realloc moves it
    heap.u8.fill(0x33, p, p + RUN);
    // Crash points of the large runs: two in the new run's take, the third in the old run's free, after its claim.
    const call = v.remote.callPausingAt('realloc', p, 3 * RUN, CP_LARGE, 3, gate);
    await pausedAtCrashPoint(gate, call);
    expect(() => heap.free(p)).toThrow(/^free\(ptr\): 0x[0-9a-f]+ is not allocated: the large block there was already freed \(double free\)$/);
    resumeFromCrashPoint(gate);
    const r = await call;
    expect(r.error).toBe('');
    expect(r.result).not.toBe(p);
    expect(heap.u8.subarray(r.result, r.result + RUN).every((x) => x === 0x33)).toBe(true);
    heap.free(r.result);
    heap.free(wall);
    expectWhole(heap, keep, 0);
    heap.free(keep);
  });

  it('a realloc whose old run another thread freed after the new one was taken: a DoubleFreeError, and the new run freed too', async () => {
    const { heap, keep, v, gate } = await setUp();
    const p = heap.malloc(RUN);
    const wall = heap.malloc(RUN);
    // Paused inside the new run's take (its second crash point); this thread frees the old run meanwhile.
    const call = v.remote.callPausingAt('realloc', p, 3 * RUN, CP_LARGE, 2, gate);
    await pausedAtCrashPoint(gate, call);
    heap.free(p);
    resumeFromCrashPoint(gate);
    const r = await call;
    expect(r.error).toMatch(/^DoubleFreeError: realloc\(ptr, size\): 0x[0-9a-f]+ is not allocated: the large block there was already freed \(double free\)$/);
    // Only `wall` is live: the run the realloc took is not lost.
    expectWhole(heap, keep, 1);
    heap.free(wall);
    expect(heap.stats().largeLiveBlocks).toBe(0);
    heap.free(keep);
    heap.check();
  });
});
