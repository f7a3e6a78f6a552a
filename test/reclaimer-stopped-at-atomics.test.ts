/**
 * A thread that reclaims a dead worker (reclaim(threadId)), stopped before each Atomics call of
 * that reclaim (as worker.terminate() can stop it), then reclaimed itself by another thread: every
 * thread slot of the two comes back FREE (attachable again), the lock is free, check() passes.
 * A reclaimer stopped before its last call, the store of the reclaimed slot's state FREE, left that
 * slot RECLAIMING for good: reclaimSlot had cleared the slot's TH_RECLAIMER just before, so the
 * reclaim of the reclaimer, which finishes the slots that name it there, no longer found it. One
 * thread slot fewer for good, each time (an audit; test/crash-points.test.ts checks the lock, the
 * blocks and check(), not the slots' states). The same with the reclaim cut off by a fault at each
 * of those calls (the instance stops, its thread runs on; reclaim(threadId) of it from here).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_FREE } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterAll(terminateAll);
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const MAX_THREADS = 4;

/** A heap with a dead worker (blocks cached, live, and a large run pooled) and a reclaimer stopped before its n-th Atomics call (0: not stopped). */
async function run(n: number, fault = false): Promise<{ calls: number; failures: string[] }> {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: MAX_THREADS, magazineCapacity: 4, refillCount: 2 });
  const t = internals(heap);
  const v = startHeapWorker();
  const victim = await v.remote.attach(heap.buffer);
  const blocks: number[] = [];
  for (let k = 0; k < 10; k++) blocks.push(await v.remote.malloc(k % 2 === 0 ? 64 : 3000));
  for (let k = 0; k < 5; k++) await v.remote.free(blocks[k]!);
  await v.remote.free(await v.remote.malloc(200 << 10)); // a large run into its span's list
  await v.worker.terminate();
  const r = startWorker('reclaim-stop-worker', { buffer: heap.buffer });
  const { threadId: reclaimer } = await next<{ threadId: number }>(r);
  const exited = new Promise<void>((resolve) => r.once('exit', () => resolve()));
  const said = next<{ calls: number; answer: boolean; faulted?: string }>(r);
  r.postMessage({ victim, n, fault });
  const end = await Promise.race([said, exited.then(() => undefined)]);
  const failures: string[] = [];
  if (fault && n > 0) {
    if (end?.faulted !== 'HeapStateError') failures.push(`the cut-off reclaim threw ${String(end?.faulted)}`);
  } else if (n > 0 && end !== undefined) failures.push(`finished without stopping at Atomics call ${n}`);
  if (n === 0 && end?.answer !== true) failures.push(`the reclaim answered ${String(end?.answer)}`);
  await r.terminate();
  // Both have ended (or, cut off by a fault, the reclaimer's instance stopped): the reclaimer reclaimed (which finishes its reclaim of the victim), then the victim if left.
  heap.reclaim(reclaimer);
  heap.reclaim(victim);
  for (let s = 0; s < MAX_THREADS; s++) {
    if (s === t.slot) continue;
    const state = Atomics.load(t.i32, t.threadW(s) + TH_STATE);
    if (state !== TS_FREE) failures.push(`slot ${s}: state ${state}, threadId + 1 ${Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID)}`);
  }
  if (Atomics.load(t.i32, G_LOCK) !== 0) failures.push('the lock is held');
  const c = checked(heap);
  if (c !== 'passes') failures.push(`check(): ${c}`);
  // Every other slot can be attached again.
  const others = Array.from({ length: MAX_THREADS - 1 }, () => startHeapWorker());
  for (const o of others) {
    try {
      await o.remote.attach(heap.buffer);
    } catch (e) {
      failures.push(`attach: ${(e as Error).message.slice(0, 80)}`);
    }
  }
  await Promise.all(others.map((o) => o.worker.terminate()));
  for (const p of blocks.slice(5)) heap.free(p);
  heap.detach();
  return { calls: end?.calls ?? 0, failures };
}

describe('a reclaimer stopped before any Atomics call of its reclaim', () => {
  it.each([
    ['stopped (as worker.terminate() stops it)', false],
    ['cut off by a fault (a stack overflow)', true],
  ])('%s: is reclaimed, and so is what it was reclaiming: every thread slot comes back', async (_how, fault) => {
    const counted = await run(0);
    expect(counted.failures).toEqual([]);
    expect(counted.calls).toBeGreaterThan(20);
    const failed: string[] = [];
    for (let n = 1; n <= counted.calls; n += 2) {
      const pair = await Promise.all([run(n, fault), n + 1 <= counted.calls ? run(n + 1, fault) : Promise.resolve({ calls: 0, failures: [] })]);
      pair.forEach((p, k) => failed.push(...p.failures.map((f) => `stop at call ${n + k}: ${f}`)));
    }
    expect(failed.slice(0, 10), `${failed.length} failures of ${counted.calls} stops`).toEqual([]);
  }, 600_000);
});
