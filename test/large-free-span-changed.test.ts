/**
 * A free into a large-run list that finds, at its claim, the run resized in place since it read
 * the span (another thread's realloc of the same block at the same moment): it takes its claim
 * back and frees the run under the lock, where the claim follows the lock. So a wait for that
 * lock that gives up leaves nothing changed: freeAsync's retry after WOULD_BLOCK frees the run,
 * and a main thread's free that times out (LockTimeoutError, "Nothing was changed") can be made
 * again. Before (an audit): the claim was kept across the wait, so the retry found the thread's
 * own claim (a false DoubleFreeError) and the run was never freed.
 * The interleaving: a worker's realloc shrinks the run in place (it waited for the lock) between
 * this thread's read of the span and its claim (this thread paused at largePoolPush's first crash
 * point, before the CAS); then another holder has the lock when the freer wants it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_STAGE1_PUSH, armCrash } from '../src/crash.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { G_LOCK, LOCK_STATE_MASK, LOCK_WAITERS, SLOT_BYTES, SM_SPAN } from '../src/layout.js';
import { startHeapWorker, terminateAll, waitFor } from './remote-heap.js';
import { MiB, checked } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

const RUN8 = 8 * SLOT_BYTES - 1000; // 8 slots: freed into its large-run list
const SHRUNK = 3 * SLOT_BYTES - 1000;

/**
 * Sets up: the worker's realloc(p, SHRUNK) waiting for the lock this thread holds; arms this
 * thread so that at its first CP_STAGE1_PUSH (largePoolPush, before the claim's CAS) it lets the
 * lock go, waits until the worker's shrink in place is done and the lock free, and takes the lock
 * again (as another holder: lockDepth 0), so that the free's own lockAcquire must wait.
 */
async function setup() {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const v = startHeapWorker();
  await v.remote.attach(heap.buffer);
  const t = internals(heap);
  const i32 = t.i32;
  const p = heap.malloc(RUN8);
  const head = p / SLOT_BYTES;
  const spanW = t.metaW(head) + SM_SPAN;
  testHoldGlobalLock(heap);
  const realloc = v.remote.realloc(p, SHRUNK).then((r) => ({ result: r, error: '' }), (e: unknown) => ({ result: -1, error: String(e) }));
  await waitFor(i32, G_LOCK, (w) => (w & LOCK_STATE_MASK) === LOCK_WAITERS);
  let paused = false;
  const on = (path: number): never => {
    if (path !== CP_STAGE1_PUSH) {
      armCrash(1, on);
      return undefined as never;
    }
    armCrash(0, () => { throw new Error('unreachable'); });
    paused = true;
    Atomics.store(i32, G_LOCK, 0);
    Atomics.notify(i32, G_LOCK);
    // The worker's resize: span 8 -> 3, then its lock released.
    const t0 = Date.now();
    while (!(i32[spanW] === 3 && Atomics.load(i32, G_LOCK) === 0)) {
      if (Date.now() - t0 > 10_000) throw new Error('the worker did not resize');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
    testHoldGlobalLock(heap); // another holder now, as far as the free's lockAcquire sees
    return undefined as never;
  };
  armCrash(1, on);
  const releaseLock = (): void => {
    Atomics.store(i32, G_LOCK, 0);
    Atomics.notify(i32, G_LOCK);
  };
  return { heap, p, realloc, releaseLock, pausedAt: () => paused, disarm: () => armCrash(0, () => { throw new Error('unreachable'); }) };
}

describe('a free into a large-run list that finds the run resized since it read the span: it frees under the lock, claiming after the lock', () => {
  it('freeAsync that waits for the lock there (WOULD_BLOCK, then again): the run freed, no DoubleFreeError', async () => {
    const s = await setup();
    try {
      const free = (s.heap as SharedHeap & { freeAsync(p: number): Promise<void> }).freeAsync(s.p).then(() => '', (e: unknown) => String(e));
      const r = await s.realloc;
      expect(s.pausedAt()).toBe(true);
      await new Promise((res) => setTimeout(res, 50)); // freeAsync waits for the lock meanwhile
      s.releaseLock();
      const freeError = await free;
      // The realloc happened (shrunk in place), then the free: it must free the run.
      expect({ realloc: r, freeError, check: checked(s.heap), largeLive: s.heap.stats().largeLiveBlocks })
        .toEqual({ realloc: { result: s.p, error: '' }, freeError: '', check: 'passes', largeLive: 0 });
    } finally {
      s.disarm();
    }
  });

  it("a main thread's free that times out there: LockTimeoutError, nothing changed, and the same free made again frees the run", async () => {
    const s = await setup();
    try {
      let first = '';
      try {
        s.heap.free(s.p); // the pause inside lets the worker resize; then the lock is busy for 3 s
      } catch (e) {
        first = String(e);
      }
      const r = await s.realloc;
      s.releaseLock();
      expect(r).toEqual({ result: s.p, error: '' });
      expect(first).toMatch(/LockTimeoutError.*Nothing was changed by this call/);
      // "Nothing was changed": the block is still the caller's, and freeing it again frees it.
      let second = '';
      try {
        s.heap.free(s.p);
      } catch (e) {
        second = String(e);
      }
      expect({ second, check: checked(s.heap), largeLive: s.heap.stats().largeLiveBlocks })
        .toEqual({ second: '', check: 'passes', largeLive: 0 });
    } finally {
      s.disarm();
    }
  }, 20_000);
});
