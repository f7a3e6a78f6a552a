/**
 * An audit (threads that die): a call cut off by a fault stops its instance and leaves its slot
 * DEAD; its HeapStateError says to attach again in that thread (which reclaims the stopped slot)
 * or to reclaim(threadId) from another. A Node thread keeps its threadId, so while the thread
 * attaches again, two slots carry it: the stopped one (DEAD) and the new one (ATTACHED), whose
 * reclaim of the stopped one waits for the global lock. A reclaim(threadId) from another thread
 * then marked DEAD the first ATTACHED slot under the id, the new, live attachment's (reclaim.ts
 * markDead), before waiting for the lock itself: the thread ran on in a DEAD slot, whose lock
 * any taker may break and which a reclaim gives away. It now takes the stopped slot and leaves
 * the live one alone. (A reclaim(threadId) made after the thread attached again, its stopped slot
 * gone, reclaims the new one: the error's message and the README say not to do both.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { release, startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

async function until(what: string, test: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

describe('reclaim(threadId) while a thread a fault stopped attaches again', () => {
  it('reclaims the stopped slot and leaves the new, live attachment alone', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    const t = internals(heap);
    const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
    const w = startWorker('reattach-fault-worker', { buffer: heap.buffer });
    const first = await next<{ thrown: string; threadId: number; slot: number }>(w);
    expect(first.thrown).toBe('HeapStateError');
    expect(state(first.slot)).toBe(TS_DEAD);
    const holder = startHeapWorker();
    await holder.remote.attach(heap.buffer);
    const reclaimer = startHeapWorker();
    await reclaimer.remote.attach(heap.buffer);
    // A third thread holds the global lock (breaking the stopped slot's) for a while.
    const held = holder.remote.holdLockFor(1500);
    await until('the holder has the lock', () => {
      const h = lockHolder(Atomics.load(t.i32, G_LOCK));
      return h >= 0 && h !== first.slot;
    });
    // The stopped thread attaches again: a new slot under its id, its reclaim of the old one waiting.
    w.postMessage('attach');
    let again = -1;
    await until('the new attachment has its slot', () => {
      for (let s = 0; s < 6; s++) {
        if (s !== first.slot && state(s) === TS_ATTACHED && Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === first.threadId + 1) again = s;
      }
      return again >= 0;
    });
    expect(state(first.slot)).toBe(TS_DEAD);
    // Another thread reclaims the id, as the error's message says (it too waits for the lock).
    const reclaimed = reclaimer.remote.reclaim(first.threadId);
    await sleep(150);
    expect(state(again), 'the live attachment\'s slot, marked DEAD by the reclaim').toBe(TS_ATTACHED);
    await held;
    expect(typeof (await reclaimed)).toBe('boolean'); // true if it came before the thread's own reclaim
    const attached = await next<{ slot: number; same: boolean }>(w);
    expect(attached).toEqual({ slot: again, same: false });
    expect(state(first.slot)).not.toBe(TS_DEAD);
    w.postMessage('use');
    expect(await next<{ error: string; attached: boolean }>(w)).toEqual({ error: '', attached: true });
    expect(state(again)).toBe(TS_ATTACHED);
    release(holder);
    release(reclaimer);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
