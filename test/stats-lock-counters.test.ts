/**
 * stats().lock against known lock traffic (src/stats.ts LockStats; README.md "The global lock":
 * "It counts acquisitions, contended acquisitions, spins, waits, wakes and wait time"): nothing
 * moves but acquisitions when nothing waits; a blocking waiter counts one contended acquisition,
 * its waits and its wait time; a mallocAsync that awaits the lock counts the same (it counted
 * an uncontended acquisition of 0 ms until an audit, 2026-12-07: heap.ts #withoutBlocking retried
 * with a first CAS that succeeded). wakes counts the releases that found the waiters bit, which a
 * thread that waited or broke a dead holder's lock keeps set on its own acquisition (it cannot
 * tell whether others wait), so a release may wake nobody: one waiter makes one or two wakes, a
 * broken lock with nobody waiting at most one (the audit found the figure's documentation, not
 * the figure, wrong).
 */
import { afterAll, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startHeapWorker, startWorker, terminateAll, waitFor } from './remote-heap.js';

const MiB = 1 << 20;
const HOLD_MS = 300;
afterAll(terminateAll);

/** A worker (workers/lock-gate-worker.ts) that takes the global lock and keeps it until released. */
async function holdLock(heap: SharedHeap, watch = false) {
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const w = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl });
  if (watch) heap.watch(w);
  await new Promise((r) => w.once('message', r));
  await waitFor(ctl, 0, (v) => v === 1);
  return {
    w,
    release: async (): Promise<void> => {
      Atomics.store(ctl, 1, 1);
      Atomics.notify(ctl, 1);
      await waitFor(ctl, 0, (v) => v === 2);
    },
  };
}

it('nothing moves but acquisitions when nothing waits', () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const before = heap.stats().lock;
  for (let i = 0; i < 10; i++) heap.free(heap.malloc(3 * MiB)); // each malloc and free takes the lock
  const after = heap.stats().lock;
  expect({ ...after, acquisitions: after.acquisitions - before.acquisitions }).toEqual({ ...before, acquisitions: 20 });
});

it('one worker waiting for a held lock: one contended acquisition, waits and wait time, one wake or two', async () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const v = startHeapWorker();
  await v.remote.attach(heap.buffer);
  const holder = await holdLock(heap);
  const before = heap.stats().lock;
  const call = v.remote.timedMalloc(5 * MiB); // needs the lock: spins, then Atomics.wait
  await new Promise((r) => setTimeout(r, HOLD_MS));
  await holder.release();
  const { p, ms } = await call;
  expect(p).toBeGreaterThan(0);
  const after = heap.stats().lock;
  const d = {
    acquisitions: after.acquisitions - before.acquisitions,
    contended: after.contended - before.contended,
    waitsMoved: after.waits > before.waits,
    waitMsAtLeast: after.waitMs - before.waitMs >= HOLD_MS - 100 && after.waitMs - before.waitMs <= ms + 1,
    wakes: after.wakes - before.wakes,
  };
  // acquisitions: the waiter's (the holder's came before `before`).
  expect({ ...d, wakes: d.wakes >= 1 && d.wakes <= 2 }).toEqual({ acquisitions: 1, contended: 1, waitsMoved: true, waitMsAtLeast: true, wakes: true });
}, 30_000);

it('a lock taken over from a dead holder, nobody waiting: no wait, and at most the breaker\'s own wake', async () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const holder = await holdLock(heap, true);
  await holder.w.terminate(); // dies holding the lock; watch() marks it, its reclaim breaks the lock
  await new Promise((r) => setTimeout(r, 300));
  heap.free(heap.malloc(3 * MiB));
  const s = heap.stats().lock;
  expect(s.recoveries).toBe(1);
  expect(s.waits).toBe(0); // no thread ever called Atomics.wait
  expect({ waits: s.waits, wakesAtMostOne: s.wakes <= 1 }).toEqual({ waits: 0, wakesAtMostOne: true });
}, 30_000);

it('mallocAsync that waits for a held lock counts a contended acquisition and its wait time', async () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const holder = await holdLock(heap);
  const before = heap.stats().lock;
  const t0 = performance.now();
  const pending = heap.mallocAsync(5 * MiB); // the lock is held: waits with Atomics.waitAsync
  await new Promise((r) => setTimeout(r, HOLD_MS));
  await holder.release();
  const p = await pending;
  const waited = performance.now() - t0;
  expect(p).toBeGreaterThan(0);
  expect(waited).toBeGreaterThanOrEqual(HOLD_MS - 20);
  const after = heap.stats().lock;
  expect({
    acquisitions: after.acquisitions - before.acquisitions,
    contended: after.contended - before.contended,
    waitMsAtLeast250: after.waitMs - before.waitMs >= 250,
  }, `mallocAsync waited ${Math.round(waited)} ms for the lock`).toEqual({ acquisitions: 1, contended: 1, waitMsAtLeast250: true });
}, 30_000);
