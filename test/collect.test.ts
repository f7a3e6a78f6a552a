/**
 * A heap instance its program dropped without detach() (src/heap.ts, the `dropped` registry):
 * the collector may take it, and its thread slot is then detached as detach() would do it, so
 * that neither the slot nor the buffer is held for the life of the thread.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { MiB } from './fixtures.js';
import { attachedThreads, cutOffLargeMallocQuietly, slotIds } from './fault-internals.js';
import type { Worker } from 'node:worker_threads';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects until `done()` holds (finalizers run on later turns of the event loop); false if it never did. */
async function collectUntil(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (done()) return true;
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return done();
}

/**
 * Creates a heap, leaves a block of `fill` bytes live and a freed one in its magazine, and drops
 * the instance; returns only the buffer and the live block.
 */
function createAndDrop(fill: number): { buffer: SharedArrayBuffer; p: number } {
  const heap = SharedHeap.create({ initialBytes: 8 * MiB });
  const p = heap.malloc(200);
  heap.u8.fill(fill, p, p + 200);
  heap.free(heap.malloc(64));
  return { buffer: heap.buffer, p };
}

describe('a heap instance dropped without detach()', () => {
  it('is detached once collected: its slot is free, its cached block back on its slab, its live blocks intact', async () => {
    const { buffer, p } = createAndDrop(0x5a);
    expect(attachedThreads(buffer)).toBe(1);
    expect(await collectUntil(() => attachedThreads(buffer) === 0)).toBe(true);
    const heap = SharedHeap.attach(buffer);
    expect(heap.stats().threadsAttached).toBe(1);
    heap.check();
    expect(Array.from(heap.u8.subarray(p, p + 200)).every((b) => b === 0x5a)).toBe(true);
    heap.free(p);
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
    heap.detach();
  });

  it('gives its buffer back: twelve 64 MiB heaps created and dropped do not add up', async () => {
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 12; i++) {
      const heap = SharedHeap.create({ initialBytes: 64 * MiB });
      heap.malloc(100);
      await collectUntil(() => process.memoryUsage().arrayBuffers - before <= 2 * 64 * MiB);
    }
    // Without the registry every one stayed reachable from the instance table: 12 x 64 MiB.
    expect(await collectUntil(() => process.memoryUsage().arrayBuffers - before <= 2 * 64 * MiB)).toBe(true);
  });

  it('is not detached while it is referenced, and attach() still returns it', async () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB });
    const p = heap.malloc(100);
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(attachedThreads(heap.buffer)).toBe(1);
    expect(SharedHeap.attach(heap.buffer)).toBe(heap);
    heap.free(p);
    heap.check();
    heap.detach();
    expect(attachedThreads(heap.buffer)).toBe(0);
  });

  it('stopped by a fault and collected before its thread attached again: the next attach reclaims its slot and takes over its watches', async () => {
    // The instance is made, watches a worker and is stopped inside a function, so nothing refers to it after.
    // Collection seen by a registry of the test's own (a WeakRef's deref() would keep it alive for the job).
    let collected = false;
    const seen = new FinalizationRegistry(() => (collected = true));
    const stop = async (): Promise<{ buffer: SharedArrayBuffer; a: Worker; slot: number }> => {
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
      const ctl = new Int32Array(new SharedArrayBuffer(8));
      const a = startWorker('debug-loop-worker', { buffer: heap.buffer, size: 100, ctl }); // attaches, then mallocs and frees for ever
      while (Atomics.load(ctl, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      heap.watch(a);
      const cut = cutOffLargeMallocQuietly(heap); // without expect(), which can keep the instance alive
      if (cut !== 'HeapStateError') throw new Error(`the large malloc was not cut off (${cut})`);
      const slot = slotIds(heap).findIndex((x) => x.state === 2);
      seen.register(heap, 0);
      return { buffer: heap.buffer, a, slot };
    };
    const { buffer, a, slot } = await stop();
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(await collectUntil(() => collected)).toBe(true);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 5)); // its finalizer
    const again = SharedHeap.attach(buffer);
    expect(slotIds(again)[slot]!.state).not.toBe(2); // the stopped slot reclaimed
    expect(again.stats().threadsAttached).toBe(2); // this thread and the worker
    expect(() => again.reclaim(a.threadId)).toThrow(/watched worker that is still running/); // the watch came along
    const exited = new Promise((resolve) => a.once('exit', resolve));
    await a.terminate();
    await exited;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(again.stats().threadsAttached).toBe(1); // reclaimed at its exit, through the new attachment
    again.check();
    again.detach();
  });

  // Between the collector taking the instance and its finalizer (a later task), the thread's
  // context is still attached: an attach() in that window claimed a second slot, and the new
  // instance did not know the dropped one's watches (an audit, 2026-12-04).
  it('collected, its finalizer not run yet: the next attach() gets its slot and its watches', async () => {
    const made = (): { buffer: SharedArrayBuffer; ref: WeakRef<SharedHeap>; r: ReturnType<typeof startHeapWorker> } => {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
      return { buffer: heap.buffer, ref: new WeakRef(heap), r: startHeapWorker((w) => heap.watch(w)) };
    };
    const { buffer, ref, r } = made();
    const worker = await r.remote.attach(buffer);
    await new Promise((resolve) => setTimeout(resolve, 10)); // a new task: the WeakRef keeps nothing now
    gc();
    expect(ref.deref()).toBeUndefined(); // collected; the finalizer runs on a later task
    const again = SharedHeap.attach(buffer); // with maxThreads 2 (this thread and the worker), a second slot would not exist
    expect(again.stats().threadsAttached).toBe(2);
    expect(() => again.reclaim(worker)).toThrow(/watched worker that is still running/);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the old instance's finalizer: it must leave the slot attached
    expect(again.stats().threadsAttached).toBe(2);
    expect(SharedHeap.attach(buffer)).toBe(again);
    const p = again.malloc(100);
    again.free(p);
    await r.worker.terminate();
    await r.exited;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(again.stats().threadsAttached).toBe(1); // the worker reclaimed at its exit
    again.check();
    again.detach();
    expect(attachedThreads(buffer)).toBe(0);
  });
});

afterEach(async () => {
  await terminateAll();
});
