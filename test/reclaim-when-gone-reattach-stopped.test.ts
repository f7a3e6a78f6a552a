/**
 * reclaimWhenGone(threadId) (reclaim.ts reclaimIdNoWait) of a thread that a fault stopped and that
 * ended while it attached again (as test/reclaim-dead-only-lock.test.ts does for reclaim(threadId)):
 * its new slot, ATTACHED under the same threadId, holds the global lock it took for its reclaim of
 * the stopped slot (DEAD), and nobody will let it go. reclaim(threadId) takes that holder as stopped
 * (its own TH_RECLAIMER mark: reclaim.ts inOwnReclaim) and breaks its lock; reclaimWhenGone saw the
 * DEAD slot, marked nothing, found the lock "busy" with a live holder, and tried again each time
 * the lock word changed, which it never did: pending for good, the lock held for good (every slow
 * path of the heap waits on it). The same threadId for both instances is Node's (attach(buffer)
 * under worker_threads); Web Locks here are the stand-in of test/web-locks.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';

let locks: WebLocksStandIn | undefined;
afterEach(async () => {
  locks?.uninstall();
  locks = undefined;
  await terminateAll();
});
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('reclaimWhenGone(threadId) of a thread that ended while it attached again after a fault', () => {
  it.each([
    ['at its reclaim\'s CAS of the stopped slot', 'reattach-stop-worker'],
    ['right after it broke the stopped slot\'s lock', 'reattach-stop-early-worker'],
  ])('ended %s: breaks the lock its new slot held, reclaims both slots', async (_when, worker) => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    const t = internals(heap);
    const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
    const w = startWorker(worker, { buffer: heap.buffer });
    const first = await next<{ threadId: number; slot: number }>(w);
    expect(state(first.slot)).toBe(TS_DEAD);
    const exited = new Promise((r) => w.once('exit', r));
    w.postMessage('attach');
    await exited;
    let again = -1;
    for (let s = 0; s < 6; s++) {
      if (s !== first.slot && state(s) === TS_ATTACHED && Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === first.threadId + 1) again = s;
    }
    expect(again, 'the new attachment\'s slot').toBeGreaterThanOrEqual(0);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK)), 'the lock, held by the new slot').toBe(again);

    locks = installWebLocks(); // nobody holds the thread's Web Lock: it is gone
    let answer: boolean | string = 'pending';
    const gone = heap.reclaimWhenGone(first.threadId).then(
      (v) => (answer = v),
      (e: unknown) => (answer = String(e)),
    );
    for (let i = 0; i < 300 && answer === 'pending'; i++) await sleep(10);
    expect(answer, 'reclaimWhenGone, after 3 s').toBe(true);
    await gone;
    expect(lockHolder(Atomics.load(t.i32, G_LOCK)), 'the lock, free again').toBe(-1);
    for (let s = 0; s < 6; s++) expect(Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID), `slot ${s}`).not.toBe(first.threadId + 1);
    const p = heap.malloc(3 * MiB);
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
