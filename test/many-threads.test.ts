/**
 * An audit of many more threads than cores (2026, a 2-core machine; users run 16-64 workers on one
 * heap): 32 workers (test/many-threads-harness.ts, workers/many-threads-worker.ts) run a
 * mix of malloc, calloc, realloc and free of 8 B..256 KiB, handing blocks to one another and to the
 * main thread through a shared queue (many frees and reallocs are cross-thread), while the main
 * thread allocates, reallocates and frees in a loop with the synchronous calls. No defect was found
 * (the audit also ran 16 and 64 workers, maxThreads one less than the threads, lock-heavy mixes of
 * 1-2 MiB blocks, the asynchronous calls and workers terminated every 50 ms); these cases stay as
 * a regression test: no call throws (nobody died: the lock was only busy), nothing hangs, every
 * block keeps its tag, check() passes, the live bytes come back to what the main thread holds, the
 * heap holds as many 16 KiB blocks afterwards as a fresh one, and every slot is given back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runMany, type ManyPlan, type ManyResult } from './many-threads-harness.js';
import { terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterEach(terminateAll);

const W = 32;
const cases: [string, ManyPlan][] = [
  ['maxThreads exactly the threads, a fixed heap', { workers: W, options: { initialBytes: 256 * MiB, maxThreads: W + 1 }, durationMs: 3000, maxSize: 256 << 10, hold: 32, seed: 11 }],
  ['a small heap that runs out of memory', { workers: W, options: { initialBytes: 16 * MiB, maxThreads: W + 1 }, durationMs: 2000, maxSize: 256 << 10, hold: 32, seed: 12 }],
  ['a growable heap from 6 MiB, magazines of 1, refill 1, drain every free, keep 0', { workers: W, options: { initialBytes: 6 * MiB, maxBytes: 512 * MiB, maxThreads: W + 1, magazineCapacity: 1, refillCount: 1, drainInterval: 1, stage1Keep: 0 }, durationMs: 3000, maxSize: 256 << 10, hold: 32, seed: 13 }],
  ['workers terminated every 200 ms (watched) and replaced', { workers: W, options: { initialBytes: 256 * MiB, maxThreads: 2 * W }, durationMs: 3000, maxSize: 256 << 10, hold: 32, seed: 14, killEveryMs: 200 }],
];

describe(`${W} workers and the main thread on one heap`, () => {
  it.each(cases)('%s', async (_name, plan) => {
    const r: ManyResult = await runMany(plan);
    console.log(`${_name}: ${JSON.stringify({ ...r, lock: undefined, stages: undefined })} lock ${JSON.stringify(r.lock)}`);
    const killed = plan.killEveryMs !== undefined;
    expect({
      workerErrors: r.workerErrors,
      firstWorkerErrors: r.firstWorkerErrors,
      mainErrors: r.mainErrors,
      bad: r.bad,
      hung: r.hung,
      check: r.check,
      unreclaimed: r.unreclaimed,
      slotsNotFree: r.slotsNotFree,
      threadsAttachedAtEnd: r.threadsAttachedAtEnd,
      // A terminated worker's blocks stay allocated (README: the program's to free).
      liveAfterWorkers: killed ? r.mainHeldUsable : r.liveAfterWorkers,
      liveAtEnd: killed ? 0 : r.liveAtEnd,
      refillBlocks: killed ? r.freshBlocks : r.refillBlocks,
      contendedAtMostAcquisitions: r.lock.contended <= r.lock.acquisitions,
      maxWaitAtMostTotal: r.lock.maxWaitMs <= r.lock.waitMs,
      recoveries: killed ? 0 : r.lock.recoveries,
    }).toEqual({
      workerErrors: 0,
      firstWorkerErrors: [],
      mainErrors: [],
      bad: 0,
      hung: undefined,
      check: 'passes',
      unreclaimed: [],
      slotsNotFree: ['0:attached'],
      threadsAttachedAtEnd: 1,
      liveAfterWorkers: r.mainHeldUsable,
      liveAtEnd: 0,
      refillBlocks: r.freshBlocks,
      contendedAtMostAcquisitions: true,
      maxWaitAtMostTotal: true,
      recoveries: 0,
    });
    expect(r.cross).toBeGreaterThan(1000);
    if (plan.options.initialBytes === 16 * MiB) expect(r.workerZeros).toBeGreaterThan(0);
    if (plan.options.maxBytes !== undefined) expect(r.bufferMiB).toBeGreaterThan(6);
    if (killed) expect(r.killed).toBeGreaterThan(5);
  }, 60_000);
});
