/**
 * freeAsync (an audit of 37ab978) and the free it runs.
 *
 * Debug mode fills a freed block whose usable size is at most MAX_SMALL, and a run of one or two
 * slots from alignedAlloc is one: free wrote the fill and the freed mark into the block, then
 * took the lock for the run. On a main thread whose wait gave up (LockTimeoutError, "nothing was
 * changed by this call") the block was still live, its bytes from offset 4 overwritten; freeAsync
 * wrote them before its WOULD_BLOCK, so a block whose freeAsync then failed (the thread detached
 * meanwhile) was left live and overwritten.
 *
 * A large run's free checks the block, then waits for the lock: two threads freeing the same run
 * at once (freeAsync on the main thread and free in a worker, or two workers) both passed the
 * check and both gave the run back, the heap's counts corrupt (check(): "large runs hold ... but
 * the header counts ..."), instead of a DoubleFreeError for the second.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LockTimeoutError, SharedHeap } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;
type AsyncHeap = SharedHeap & { freeAsync(ptr: number): Promise<void> };
const heaps: SharedHeap[] = [];
afterEach(async () => {
  await terminateAll();
  for (const h of heaps.splice(0)) h.detach();
});

const pattern = (i: number): number => (i * 7 + 1) & 0xff;
function write(heap: SharedHeap, p: number, n: number): void {
  for (let i = 0; i < n; i++) heap.u8[p + i] = pattern(i);
}
/** The first byte of [p, p + n) that no longer holds the pattern, or -1. */
function changed(heap: SharedHeap, p: number, n: number): number {
  return Array.from(heap.u8.subarray(p, p + n)).findIndex((b, i) => b !== pattern(i));
}

describe('debug mode: free of a one- or two-slot run from alignedAlloc while the lock is busy', () => {
  for (const [slots, n] of [[1, 530], [2, 100_000]] as const) {
    it(`free's LockTimeoutError leaves the ${slots}-slot run as it was; freeAsync writes nothing before it gets the lock`, async () => {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, debug: true, stage1Keep: 0 }) as AsyncHeap; // stage1Keep 0: a large free takes the lock
      heaps.push(heap);
      const i32 = internals(heap).i32;
      const p = heap.alignedAlloc(1 << 17, n);
      write(heap, p, n);
      testHoldGlobalLock(heap);
      expect(() => heap.free(p)).toThrow(LockTimeoutError);
      expect(changed(heap, p, n), 'first byte the failed free changed').toBe(-1);
      expect(heap.stats().liveBlocks).toBe(1);
      // freeAsync: pending while the lock is held, the block unchanged meanwhile; then freed.
      let settled = false;
      const done = heap.freeAsync(p).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 30));
      expect(settled).toBe(false);
      expect(changed(heap, p, n), 'first byte the pending freeAsync changed').toBe(-1);
      Atomics.store(i32, G_LOCK, 0);
      Atomics.notify(i32, G_LOCK);
      await done;
      expect(heap.stats().liveBlocks).toBe(0);
      heap.check();
      expect(() => heap.free(p)).toThrow(/double free/);
    }, 20_000);
  }
});

describe('two threads free the same large run at once', () => {
  it('freeAsync on the main thread and free in a worker: one frees it, the other gets a DoubleFreeError', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, stage1Keep: 0 }) as AsyncHeap;
    heaps.push(heap);
    const i32 = internals(heap).i32;
    const other = heap.malloc(3 * MiB);
    write(heap, other, 3 * MiB);
    const p = heap.malloc(5 * MiB);
    const freer = startHeapWorker();
    await freer.remote.attach(heap.buffer);
    // The worker's free checks the block, then waits for the lock, which this thread holds.
    testHoldGlobalLock(heap);
    const outcome = (e: unknown): string => (e === undefined ? 'freed' : String((e as Error).message));
    const inWorker = freer.remote.free(p).then(() => outcome(undefined), outcome);
    await new Promise((r) => setTimeout(r, 100));
    // Let go without a wake (the worker looks again within its 20 ms slice): freeAsync's first
    // attempt finds the lock free and frees the run.
    Atomics.store(i32, G_LOCK, 0);
    const onMain = await heap.freeAsync(p).then(() => outcome(undefined), outcome);
    const worker = await inWorker;
    expect([onMain, worker].filter((r) => r === 'freed'), `main: ${onMain}; worker: ${worker}`).toHaveLength(1);
    expect([onMain, worker].find((r) => r !== 'freed')).toMatch(/^free\(ptr\): .* already freed \(double free\)/);
    heap.check();
    expect(changed(heap, other, 3 * MiB)).toBe(-1);
    expect(heap.stats().liveBlocks).toBe(1);
  }, 30_000);

  it('free in two workers: one frees it, the other gets a DoubleFreeError', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 5, stage1Keep: 0 });
    heaps.push(heap);
    const other = heap.malloc(3 * MiB);
    write(heap, other, 3 * MiB);
    const p = heap.malloc(5 * MiB);
    const [holder, a, b] = [startHeapWorker(), startHeapWorker(), startHeapWorker()];
    for (const w of [holder, a, b]) await w.remote.attach(heap.buffer);
    const held = holder.remote.holdLockFor(300);
    await new Promise((r) => setTimeout(r, 50));
    const outcome = (e: unknown): string => (e === undefined ? 'freed' : String((e as Error).message));
    const results = (await Promise.all([a.remote.free(p).then(() => outcome(undefined), outcome), b.remote.free(p).then(() => outcome(undefined), outcome), held])) as string[];
    expect(results.slice(0, 2).filter((r) => r === 'freed'), results.join('; ')).toHaveLength(1);
    expect(results.slice(0, 2).find((r) => r !== 'freed')).toMatch(/^free\(ptr\): .* already freed \(double free\)/);
    heap.check();
    expect(changed(heap, other, 3 * MiB)).toBe(-1);
    expect(heap.stats().liveBlocks).toBe(1);
  }, 30_000);
});
