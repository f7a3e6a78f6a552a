/**
 * A realloc that resizes a large run in place (large.ts largeResize, under the lock) and a free
 * of the same run at once (a program's double free, as in test/large-free-race.test.ts): one of
 * the two happens, the other gets a DoubleFreeError, and the heap stays whole. The resize claims
 * the run by CAS as a free does (LARGE_RESIZING), and a free into a large-run list checks the
 * span it reserved for after its claim. Before (an audit):
 *  (a) a free that read span 8, then a shrink in place to 3, then the free's claim: the run went
 *      onto the list of span 8, and a malloc of 8 slots was handed 3 (overlapping the next run);
 *  (b) a realloc that checked the run live and waited for the lock, a free into the list
 *      meanwhile: the realloc grew the pooled run and returned it, live and pooled at once;
 *  (c) the same with the free under the lock (stage1Keep 0): it grew slots already free.
 * Also: a free while the resize holds the run is refused naming the realloc, and a thread
 * stopped inside a resize leaves the run live once the lock is broken and it is reclaimed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { CP_LARGE, CP_STAGE1_PUSH } from '../src/crash.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { G_LOCK, LOCK_STATE_MASK, LOCK_WAITERS, SLOT_BYTES } from '../src/layout.js';
import { pausedAtCrashPoint, resumeFromCrashPoint, startHeapWorker, terminateAll, waitFor } from './remote-heap.js';
import { MiB, checked } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

const RUN = 4 * SLOT_BYTES - 1000; // 4 slots: freed into its large-run list
const RUN8 = 8 * SLOT_BYTES - 1000; // 8 slots: also freed into its list

/**
 * The worker's realloc(p, size), started while this thread holds the global lock: resolves once
 * the worker waits for the lock (the waiters bit set: past realloc's checks, inside largeResize).
 * `released()` lets the lock go and settles the call: its result (-1 if it threw) and error.
 */
async function reallocWaitingForLock(heap: SharedHeap, v: ReturnType<typeof startHeapWorker>, p: number, size: number) {
  const i32 = internals(heap).i32;
  testHoldGlobalLock(heap);
  const call = v.remote.realloc(p, size).then((result) => ({ result, error: '' }), (e: unknown) => ({ result: -1, error: String(e) }));
  await waitFor(i32, G_LOCK, (w) => (w & LOCK_STATE_MASK) === LOCK_WAITERS);
  return {
    released() {
      Atomics.store(i32, G_LOCK, 0);
      Atomics.notify(i32, G_LOCK);
      return call;
    },
  };
}

describe('realloc in place racing a free of the same large run', () => {
  it('a free that read the span before a shrink in place frees the run as shrunk, under the lock (not onto the list of its old span)', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const v = startHeapWorker();
    await v.remote.attach(heap.buffer);
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const p = heap.malloc(RUN8);
    // The worker's free: reserved (span 8 read), paused before its claim.
    const call = v.remote.callPausingAt('free', p, 0, CP_STAGE1_PUSH, 1, gate);
    await pausedAtCrashPoint(gate, call);
    // This thread shrinks the run in place to 3 slots (the tail's 5 slots go back).
    const shrunk = heap.realloc(p, 3 * SLOT_BYTES - 1000);
    resumeFromCrashPoint(gate);
    const r = await call;
    // The free came after the shrink (its claim found the run live, of 3 slots): it freed the run
    // as it now is, under the lock.
    const err = checked(heap);
    expect(heap.stats().largeLiveBlocks).toBe(0);
    // A malloc of 8 slots gets 8 slots, none of them another live block's.
    const a = heap.malloc(RUN8);
    const b = heap.malloc(4 * SLOT_BYTES - 1000);
    const overlap = b < a + RUN8 && a < b + 4 * SLOT_BYTES - 1000;
    expect({ shrunkInPlace: shrunk === p, freeError: r.error, check: err, usable: heap.usableSize(a) >= RUN8, overlap })
      .toEqual({ shrunkInPlace: true, freeError: '', check: 'passes', usable: true, overlap: false });
    heap.free(a);
    heap.free(b);
    heap.check();
  });

  it('a realloc that checked the run live, then waited for the lock while a free put the run on its list: a DoubleFreeError, the run not grown', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const v = startHeapWorker();
    await v.remote.attach(heap.buffer);
    const p = heap.malloc(RUN); // free slots after it: room to grow in place
    const waiting = await reallocWaitingForLock(heap, v, p, 6 * SLOT_BYTES - 1000);
    heap.free(p); // into the list of span 4, no lock
    const { result, error } = await waiting.released();
    const err = checked(heap);
    // The next malloc of 4 slots must not get the run the worker's realloc returned.
    const a = heap.malloc(RUN);
    // The free came first: realloc is a DoubleFreeError, not the pooled run handed back.
    expect({ result, error, check: err, sameRunTwice: a === result })
      .toEqual({ result: -1, error: expect.stringMatching(/DoubleFreeError: realloc\(ptr, size\): 0x[0-9a-f]+ is not allocated: the large block there was already freed \(double free\)/), check: 'passes', sameRunTwice: false });
    heap.free(a);
    heap.check();
  });

  it('a realloc that checked the run live, then waited for the lock while a free under it gave the run back: a DoubleFreeError', async () => {
    // stage1Keep 0: a large free keeps no run, it gives the slots back under the lock.
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, stage1Keep: 0 });
    const v = startHeapWorker();
    await v.remote.attach(heap.buffer);
    const p = heap.malloc(RUN);
    const t = internals(heap);
    const waiting = await reallocWaitingForLock(heap, v, p, 6 * SLOT_BYTES - 1000);
    t.runner.lockDepth = 1; // this thread holds the lock: its free takes it re-entrantly
    heap.free(p); // under the lock: claimed, its slots given back
    t.runner.lockDepth = 0;
    const { result, error } = await waiting.released();
    const err = checked(heap);
    expect({ result, error, check: err })
      .toEqual({ result: -1, error: expect.stringMatching(/DoubleFreeError: realloc\(ptr, size\): 0x[0-9a-f]+ is not allocated/), check: 'passes' });
    expect(heap.stats().largeLiveBlocks).toBe(0);
  });

  it('a free while another thread resizes the run in place is refused naming the realloc; the resize goes on', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const v = startHeapWorker();
    await v.remote.attach(heap.buffer);
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const p = heap.malloc(RUN); // free slots after it: it grows in place
    heap.u8.fill(0x44, p, p + RUN);
    // The worker's realloc pauses at the first crash point of its growth in place, holding the lock.
    const call = v.remote.callPausingAt('realloc', p, 6 * SLOT_BYTES - 1000, CP_LARGE, 1, gate);
    await pausedAtCrashPoint(gate, call);
    expect(() => heap.free(p)).toThrow(DoubleFreeError);
    expect(() => heap.free(p)).toThrow(/^free\(ptr\): 0x[0-9a-f]+ is not allocated: another thread is resizing it with realloc/);
    resumeFromCrashPoint(gate);
    const r = await call;
    expect(r).toEqual({ result: p, error: '' });
    expect(heap.usableSize(p)).toBeGreaterThanOrEqual(6 * SLOT_BYTES - 1000);
    expect(heap.u8.subarray(p, p + RUN).every((x) => x === 0x44)).toBe(true);
    heap.check();
    heap.free(p);
    heap.check();
    expect(heap.stats().largeLiveBlocks).toBe(0);
  });

  for (const nth of [1, 2, 3]) {
    it(`a thread stopped inside a resize in place (crash point ${nth} of its growth): the run is live again once reclaimed`, async () => {
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
      const v = startHeapWorker();
      const id = await v.remote.attach(heap.buffer);
      const p = heap.malloc(RUN);
      heap.u8.fill(0x55, p, p + RUN);
      const how = await Promise.race([
        v.remote.reallocStoppingAt(p, 6 * SLOT_BYTES - 1000, CP_LARGE, nth).then(() => 'answered'),
        v.exited.then(() => 'exited'),
      ]);
      expect(how).toBe('exited');
      expect(heap.reclaim(id)).toBe(true);
      heap.check();
      expect(heap.stats().largeLiveBlocks).toBe(1);
      expect(heap.u8.subarray(p, p + RUN).every((x) => x === 0x55)).toBe(true);
      heap.free(p); // live: this thread frees it
      expect(() => heap.free(p)).toThrow(DoubleFreeError);
      heap.check();
      const a = heap.malloc(8 * SLOT_BYTES - 1000);
      expect(a).not.toBe(0);
      heap.free(a);
      heap.check();
    });
  }
});
