/**
 * A thread that loads two copies of the package (two installs of it in node_modules, or a bundle
 * that inlines it beside an import of the package) attaches once through each: two thread slots
 * under its one Node threadId. When it ended, watch()'s reclaim marked the first slot DEAD and
 * reclaimed it, and left the second ATTACHED for good, with the blocks cached in its magazines;
 * where the thread died holding the global lock through that second copy, nobody broke the lock:
 * the main thread's next slow path threw a LockTimeoutError after 3 s, every worker's waited for
 * good. Every slot under an exited thread's id is now marked and reclaimed (reclaim.ts markDead).
 *
 * The second copy here is a copy of the build's dist/src in a folder of its own (a module graph of
 * its own, as a second install is); the worker bundles the first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED } from '../src/layout.js';
import { internals } from '../src/heap.js';
import { checked, MiB } from './fixtures.js';
import { useBuiltCopy } from './package-copy.js';
import { startWorker, terminateAll } from './remote-heap.js';

const builtCopy = useBuiltCopy();
afterEach(terminateAll);

interface Said {
  threadId: number[];
  slots: number[];
  live: number[][];
}
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A heap, and a worker attached to it through two copies of the package (holding the lock through copy `hold`). */
async function twoCopies(hold: 0 | 1 | 2, watch: boolean): Promise<{ heap: SharedHeap; w: Worker; said: Said }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const w = startWorker('two-copies-worker', { buffer: heap.buffer, copy: builtCopy(), hold, live: 20 });
  if (watch) heap.watch(w);
  const said = await next<Said>(w);
  const t = internals(heap);
  expect(said.threadId[0]).toBe(said.threadId[1]); // one Node threadId
  expect(new Set(said.slots).size).toBe(2); // two slots
  for (const s of said.slots) {
    expect(Atomics.load(t.i32, t.threadW(s) + TH_STATE)).toBe(TS_ATTACHED);
    expect(Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID)).toBe(said.threadId[0]! + 1);
  }
  if (hold !== 0) expect(Atomics.load(t.i32, G_LOCK)).not.toBe(0);
  expect(heap.stats().threadsAttached).toBe(3);
  return { heap, w, said };
}

/** What is left once the worker's slots were reclaimed: the main thread alone, the lock free, a heap that checks. */
function afterReclaim(heap: SharedHeap, said: Said): void {
  const t = internals(heap);
  expect(heap.stats().threadsAttached).toBe(1);
  expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
  const big = heap.malloc(3 * MiB); // a slow path that needs the lock
  expect(big).toBeGreaterThan(0);
  heap.free(big);
  // The blocks the worker left live keep their bytes and stay the heap's to free.
  for (const ps of said.live) {
    for (const p of ps) {
      expect(Array.from(new Uint8Array(heap.buffer, p, 8))).toEqual(new Array(8).fill(0xa5));
      heap.free(p);
    }
  }
  expect(checked(heap)).toBe('passes');
}

describe('a worker attached through two copies of the package', () => {
  for (const hold of [0, 1, 2] as const) {
    const holding = hold === 0 ? 'holding nothing' : `holding the lock through copy ${hold}`;
    it(`watch(): both slots reclaimed at its exit (${holding})`, async () => {
      const { heap, w, said } = await twoCopies(hold, true);
      await w.terminate();
      for (let i = 0; i < 1000 && heap.stats().threadsAttached !== 1; i++) await sleep(5);
      afterReclaim(heap, said);
    }, 30_000);
  }

  it('reclaim(threadId) after it ended takes both slots', async () => {
    const { heap, w, said } = await twoCopies(2, false);
    await w.terminate();
    expect(heap.reclaim(said.threadId[0]!)).toBe(true);
    afterReclaim(heap, said);
  }, 30_000);
});
