/**
 * An audit of 7bfcd5e (markDead marks every ATTACHED slot under an exited thread's id, and, in
 * turn, those of the workers each slot watched: TH_WATCHING). A watcher that loads two copies of
 * the package watches one worker through each copy (each slot records its own), and each worker
 * has two copies as well; the second worker keeps the global lock through its second copy. The
 * watcher is terminated (Node ends its workers with it, and their exits are seen by nobody):
 * watch() in this thread marks and reclaims the watcher's two slots, and through each the workers
 * it recorded, both slots of each, the lock broken. Holds at 7bfcd5e (no change of this audit is
 * needed); with the markDead before it (the first ATTACHED slot alone) 5 of the 7 slots stayed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED } from '../src/layout.js';
import { internals } from '../src/heap.js';
import { workerEntry } from '../bench/worker-entry.js';
import { checked, MiB } from './fixtures.js';
import { useBuiltCopy } from './package-copy.js';
import { startWorker, terminateAll } from './remote-heap.js';

const builtCopy = useBuiltCopy();
afterEach(terminateAll);

const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a watcher with two copies of the package, watching a worker through each', () => {
  it('is reclaimed at its exit with both workers, every slot of each, the lock broken', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
    const t = internals(heap);
    const w = startWorker('two-copies-watcher-worker', { buffer: heap.buffer, copy: builtCopy(), child: workerEntry('two-copies-worker').filename });
    heap.watch(w);
    const { ids } = await next<{ ids: number[] }>(w);
    expect(new Set(ids).size).toBe(3);
    const slotsOf = (id: number): number[] => {
      const out: number[] = [];
      for (let s = 0; s < t.geo.maxThreads; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === id + 1) out.push(s);
      return out;
    };
    for (const id of ids) {
      expect(slotsOf(id).length, `two slots under ${id}`).toBe(2);
      for (const s of slotsOf(id)) expect(Atomics.load(t.i32, t.threadW(s) + TH_STATE)).toBe(TS_ATTACHED);
    }
    expect(heap.stats().threadsAttached).toBe(7);
    expect(Atomics.load(t.i32, G_LOCK)).not.toBe(0);

    await w.terminate();
    for (let i = 0; i < 300 && heap.stats().threadsAttached !== 1; i++) await sleep(10);
    expect(heap.stats().threadsAttached).toBe(1);
    for (const id of ids) expect(slotsOf(id)).toEqual([]);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
    const big = heap.malloc(3 * MiB); // a slow path that needs the lock
    expect(big).toBeGreaterThan(0);
    heap.free(big);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
