/**
 * The lock's heartbeat (layout.ts G_LOCK_BEAT, ThreadContext.beatLock): a holder doing work in
 * proportion to a block's size under the lock (a large block's copy, debug mode's marks) raises it
 * every LOCK_BEAT_BYTES, and a main thread, whose wait for the lock is bounded (MAIN_THREAD_WAIT_MS,
 * 3 s), counts its bound again from each beat it sees and each change of holder: it waits on
 * beside a live holder's long hold, and still gives up beside a hold that says nothing (a holder
 * dead, or stopped) 3 s after.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LockTimeoutError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, G_LOCK_BEAT, LOCK_BEAT_BYTES } from '../src/layout.js';
import { copyInHeap } from '../src/alloc.js';
import { lockAcquire, lockRelease } from '../src/lock.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';
import { lockWordOf } from './fault-internals.js';

afterAll(terminateAll);

/**
 * A worker holds the lock for `ms`, beating every `beatMs` (0: never), and with `handOver` the lock
 * names a second attached worker for the hold's second half; the main thread mallocs a large block meanwhile.
 */
async function mallocBeside(ms: number, beatMs: number, handOver = false): Promise<{ p: number; error: unknown; waited: number }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 3 });
  const w = startHeapWorker();
  await w.remote.attach(heap.buffer);
  const i32 = internals(heap).i32;
  let handTo = 0;
  if (handOver) {
    const other = startHeapWorker();
    await other.remote.attach(heap.buffer);
    handTo = lockWordOf(heap, other.worker.threadId);
  }
  const held = w.remote.holdLockFor(ms, beatMs, handTo);
  while (Atomics.load(i32, G_LOCK) === 0) await new Promise((r) => setTimeout(r, 5));
  const t0 = performance.now();
  let p = 0;
  let error: unknown;
  try {
    p = heap.malloc(8 * MiB); // a large run: taken under the lock
  } catch (e) {
    error = e;
  }
  const waited = performance.now() - t0;
  await held;
  if (p !== 0) heap.free(p);
  heap.check();
  heap.detach();
  return { p, error, waited };
}

describe("the lock's heartbeat", () => {
  it('keeps a main thread waiting beside a live holder that beats for longer than 3 s', async () => {
    const r = await mallocBeside(4500, 100);
    expect(r.error).toBeUndefined();
    expect(r.p).toBeGreaterThan(0);
    expect(r.waited).toBeGreaterThan(3000); // it waited past the bound, for the hold's end
  }, 30_000);

  it('and without beats the main thread still gives up after 3 s', async () => {
    const r = await mallocBeside(4500, 0);
    expect(r.error).toBeInstanceOf(LockTimeoutError);
    expect(r.p).toBe(0);
  }, 30_000);

  it('and counts its 3 s again from a change of holder: two silent holds of 2.25 s one after the other, the lock never free between', async () => {
    const r = await mallocBeside(4500, 0, true);
    expect(r.error).toBeUndefined();
    expect(r.p).toBeGreaterThan(0);
    expect(r.waited).toBeGreaterThan(3000);
  }, 30_000);

  it('is raised by a copy under the lock every LOCK_BEAT_BYTES, and not by one outside it', () => {
    const heap = SharedHeap.create({ initialBytes: 4 * LOCK_BEAT_BYTES + 8 * MiB });
    const t = internals(heap);
    const n = 2 * LOCK_BEAT_BYTES + 4096;
    const a = heap.malloc(n);
    const b = heap.malloc(n);
    heap.u8.fill(7, a, a + n);
    const before = Atomics.load(t.i32, G_LOCK_BEAT);
    copyInHeap(t, b, a, n);
    expect(Atomics.load(t.i32, G_LOCK_BEAT)).toBe(before); // not holding the lock: no beat
    expect(heap.u8[b + n - 1]).toBe(7);
    heap.u8.fill(9, a, a + n);
    lockAcquire(t);
    try {
      copyInHeap(t, b, a, n);
    } finally {
      lockRelease(t);
    }
    expect(Atomics.load(t.i32, G_LOCK_BEAT)).toBe(before + 2); // three parts, a beat between each two
    expect(heap.u8[b]).toBe(9);
    expect(heap.u8[b + n - 1]).toBe(9);
    heap.free(a);
    heap.free(b);
    heap.check();
    heap.detach();
  });
});
