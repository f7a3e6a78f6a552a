/**
 * The record a throwing watch() left (see nested-watch-throws-record.test.ts) also broke the
 * global lock of the live thread it named, at the watcher's end: marked dead by markDead, it lost
 * the lock in the middle of its critical section (the main thread got it after 1 ms, where the
 * holder kept it 1.5 s).
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startHeapWorker } from './remote-heap.js';
import { MiB } from './fixtures.js';
import { endStarted, startNamed } from './nested-watch-helpers.js';

afterEach(endStarted);

it("a live thread inside the lock that a failed watch named: its lock is not broken at the watcher's end", async () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const a = startHeapWorker();
  const aId = await a.remote.attach(heap.buffer);
  const w = startNamed('watcher-probe-worker', { buffer: heap.buffer });
  heap.watch(w);
  w.postMessage({ op: 'watchThrowing', id: aId });
  await new Promise((resolve) => w.once('message', resolve));
  const held = a.remote.holdLockFor(1500); // a, alive, in a long critical section
  await new Promise((r) => setTimeout(r, 200));
  await w.terminate();
  const t0 = Date.now();
  const p = heap.malloc(3 * MiB);
  const waited = Date.now() - t0;
  await held;
  heap.free(p);
  expect(waited).toBeGreaterThan(500); // waited for the live holder, not broken
});
