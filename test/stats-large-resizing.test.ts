/**
 * stats() counts a live large run that another thread is resizing in place (SM_LARGE
 * LARGE_RESIZING under the lock, large.ts largeResize) as live, in largeLiveBlocks and liveBlocks:
 * the program still holds it. Before (an audit): only LARGE_LIVE was counted, so both dropped by
 * one meanwhile.
 */
import { afterAll, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_LARGE } from '../src/crash.js';
import { SLOT_BYTES } from '../src/layout.js';
import { pausedAtCrashPoint, resumeFromCrashPoint, startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

it('a live large run being resized in place by another thread is counted live by stats()', async () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const v = startHeapWorker();
  await v.remote.attach(heap.buffer);
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const p = heap.malloc(4 * SLOT_BYTES - 1000);
  expect(heap.stats().largeLiveBlocks).toBe(1);
  const call = v.remote.callPausingAt('realloc', p, 6 * SLOT_BYTES - 1000, CP_LARGE, 1, gate);
  await pausedAtCrashPoint(gate, call);
  const during = heap.stats().largeLiveBlocks;
  const duringAll = heap.stats().liveBlocks;
  resumeFromCrashPoint(gate);
  expect(await call).toEqual({ result: p, error: '' });
  expect({ during, duringAll, after: heap.stats().largeLiveBlocks }).toEqual({ during: 1, duringAll: 1, after: 1 });
  heap.free(p);
});
