/**
 * An audit of c3a32aa (reclaim(threadId) with a DEAD slot under the id neither marks nor takes an
 * ATTACHED one). A thread a fault stopped attaches again: its new slot (ATTACHED, same Node
 * threadId) breaks the stopped slot's lock and reclaims it holding the lock. The thread ends right
 * there (terminated), before the stopped slot went RECLAIMING: the stopped slot DEAD, the new one
 * ATTACHED and holding the global lock, nobody to release it. reclaim(threadId) used to mark the
 * ATTACHED slot DEAD before taking the lock, so that acquisition broke the lock (the README: "a
 * lock the thread died holding is broken by this very acquisition"). At c3a32aa it saw the DEAD
 * slot, marked nothing, and waited for a lock nobody would ever let go: a main thread's LockTimeoutError
 * that tells it to call reclaim() of that same id, which does the same again; a worker waits for
 * good; every thread of the heap stops at its next slow path.
 *
 * And a step earlier (an audit of ab9e8a1, whose reclaim(threadId) took such a holder as stopped
 * only if a stopped slot named it as its reclaimer, TH_RECLAIMER, written by reclaimFound): a
 * thread that ended right after its attach again broke the stopped slot's lock (which runs
 * repairSlotTable), before reclaimFound wrote that mark, left the lock held for good too. The
 * attach again now marks its own slot before it takes the lock (reclaimOwnDead).
 *
 * reclaimWhenGone(threadId) (reclaim.ts reclaimIdNoWait) of the same thread, an audit of the
 * session of 2026-12-05: it saw the DEAD slot, marked nothing, found the lock "busy" with a live
 * holder, and tried again each time the lock word changed, which it never did: pending for good,
 * the lock held for good. It now takes that holder as stopped, as reclaim(threadId) does. (The
 * same threadId for both instances is Node's; Web Locks here are the stand-in of test/web-locks.ts.)
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

const WHEN = [
  ['at its reclaim\'s CAS of the stopped slot', 'reattach-stop-worker'],
  ['right after it broke the stopped slot\'s lock', 'reattach-stop-early-worker'],
];

/**
 * A heap where `worker` was stopped by a fault (its first slot DEAD, holding the lock), attached
 * again and ended in its reclaim of the stopped slot: its new slot ATTACHED under the same id,
 * holding the lock. Returns the heap and the thread's id.
 */
async function endedWhileAttachingAgain(worker: string): Promise<{ heap: SharedHeap; threadId: number }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
  const t = internals(heap);
  const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
  const w = startWorker(worker, { buffer: heap.buffer });
  const first = await next<{ threadId: number; slot: number }>(w);
  expect(state(first.slot)).toBe(TS_DEAD);
  expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(first.slot);
  const exited = new Promise((r) => w.once('exit', r));
  w.postMessage('attach');
  await exited;
  let again = -1;
  for (let s = 0; s < 6; s++) {
    if (s !== first.slot && state(s) === TS_ATTACHED && Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === first.threadId + 1) again = s;
  }
  expect(again, 'the new attachment\'s slot').toBeGreaterThanOrEqual(0);
  expect(state(first.slot)).toBe(TS_DEAD);
  expect(lockHolder(Atomics.load(t.i32, G_LOCK)), 'the lock, held by the new slot').toBe(again);
  return { heap, threadId: first.threadId };
}

/** Nothing left under the id, the lock free, the heap sound and usable. */
function expectAllReclaimed(heap: SharedHeap, threadId: number): void {
  const t = internals(heap);
  expect(lockHolder(Atomics.load(t.i32, G_LOCK)), 'the lock, free again').toBe(-1);
  for (let s = 0; s < 6; s++) expect(Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID), `slot ${s}`).not.toBe(threadId + 1);
  const p = heap.malloc(3 * MiB);
  expect(p).toBeGreaterThan(0);
  heap.free(p);
  expect(checked(heap)).toBe('passes');
}

describe('reclaim(threadId) of a thread that ended while it attached again after a fault', () => {
  it.each(WHEN)('ended %s: breaks the lock its new slot held and reclaims', async (_when, worker) => {
    const { heap, threadId } = await endedWhileAttachingAgain(worker);
    // The thread has ended: reclaim(threadId), as the README says for a thread that stopped.
    let error = '';
    try {
      heap.reclaim(threadId);
    } catch (e) {
      error = String(e);
    }
    expect(error).toBe('');
    expect(lockHolder(Atomics.load(internals(heap).i32, G_LOCK)), 'the lock, free again').toBe(-1);
    // Nothing is left under the id (a second reclaim finds nothing).
    expect(heap.reclaim(threadId)).toBe(false);
    expectAllReclaimed(heap, threadId);
  }, 30_000);
});

describe('reclaimWhenGone(threadId) of a thread that ended while it attached again after a fault', () => {
  it.each(WHEN)('ended %s: breaks the lock its new slot held, reclaims both slots', async (_when, worker) => {
    const { heap, threadId } = await endedWhileAttachingAgain(worker);
    locks = installWebLocks(); // nobody holds the thread's Web Lock: it is gone
    let answer: boolean | string = 'pending';
    const gone = heap.reclaimWhenGone(threadId).then(
      (v) => (answer = v),
      (e: unknown) => (answer = String(e)),
    );
    for (let i = 0; i < 300 && answer === 'pending'; i++) await sleep(10);
    expect(answer, 'reclaimWhenGone, after 3 s').toBe(true);
    await gone;
    expectAllReclaimed(heap, threadId);
  }, 30_000);
});
