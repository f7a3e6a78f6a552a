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
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

describe('reclaim(threadId) of a thread that ended while it attached again after a fault', () => {
  it.each([
    ['at its reclaim\'s CAS of the stopped slot', 'reattach-stop-worker'],
    ['right after it broke the stopped slot\'s lock', 'reattach-stop-early-worker'],
  ])('ended %s: breaks the lock its new slot held and reclaims', async (_when, worker) => {
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

    // The thread has ended: reclaim(threadId), as the README says for a thread that stopped.
    let error = '';
    try {
      heap.reclaim(first.threadId);
    } catch (e) {
      error = String(e);
    }
    expect(error).toBe('');
    expect(lockHolder(Atomics.load(t.i32, G_LOCK)), 'the lock, free again').toBe(-1);
    // Nothing is left under the id (a second reclaim finds nothing).
    expect(heap.reclaim(first.threadId)).toBe(false);
    for (let s = 0; s < 6; s++) expect(Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID)).not.toBe(first.threadId + 1);
    expect(heap.malloc(3 * MiB)).toBeGreaterThan(0);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
