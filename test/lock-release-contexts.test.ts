/**
 * The release of the global lock is a CAS from the holder's own word (src/lock.ts lockRelease,
 * 1d5c45e), and a holder that finds another word lets it go only while its slot is ATTACHED
 * under its own attachment. A legitimate holder whose word differed at its release would now
 * leave the lock held for good, and every slow path of every thread would wait on it. These take
 * the lock in the contexts where a holder's name and its slot part ways: a reclaim (a context
 * bound to the dead slot, the lock in the reclaimer's name, taken by breaking a dead holder's
 * lock), at a watched worker's exit, by a watcher that detached before that exit (an attachment
 * made for the reclaim alone), by reclaim(threadId), by an asynchronous call waiting out a dead
 * holder, and by a thread breaking the lock a fault kept. After each, the lock must be free, and
 * another thread must take it (a large malloc) within a bounded wait: a hang fails the test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { MiB, until } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll, type RemoteHeap } from './remote-heap.js';

afterEach(terminateAll);

/** `p`, or a failure naming `what` once `ms` passed without it (a lock held for good). */
function bounded<T>(what: string, p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms (the global lock held for good?)`)), ms);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** The lock is free, and a fresh worker takes it (a large malloc and its free) and finds the heap sound. */
async function lockUsable(heap: SharedHeap, what: string): Promise<void> {
  const i32 = internals(heap).i32;
  await until(`${what}: the lock is let go`, () => Atomics.load(i32, G_LOCK) === 0);
  const b = startHeapWorker();
  await bounded(`${what}: attach`, b.remote.attach(heap.buffer));
  const p = await bounded(`${what}: a large malloc in another worker`, b.remote.malloc(300_000));
  expect(p).not.toBe(0);
  await bounded(`${what}: its free`, b.remote.free(p));
  await bounded(`${what}: check()`, b.remote.check());
  await bounded(`${what}: detach`, b.remote.detach());
  await until(`${what}: the lock is let go after the worker's calls`, () => Atomics.load(i32, G_LOCK) === 0);
}

/** A worker attached to `heap` that takes the global lock and keeps it (the holder's word in the lock). */
async function holder(heap: SharedHeap, watch: boolean): Promise<RemoteHeap> {
  const a = startHeapWorker(watch ? (w) => heap.watch(w) : undefined);
  await a.remote.attach(heap.buffer);
  await a.remote.holdLock();
  expect(lockHolder(Atomics.load(internals(heap).i32, G_LOCK))).toBeGreaterThanOrEqual(0);
  return a;
}

describe('the lock after a holder whose name and slot part ways', () => {
  it('a reclaim at a watched worker\'s exit (the worker died holding the lock)', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const a = await holder(heap, true);
    await a.worker.terminate();
    await a.exited;
    await lockUsable(heap, 'watch() reclaim');
    heap.check();
    expect(heap.stats().threads.filter((x) => x.state !== 'free').length).toBe(1);
    heap.detach();
  });

  it('a reclaim at the exit of a worker watched by a thread that detached since (an attachment made for it)', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const keep = startHeapWorker();
    await keep.remote.attach(heap.buffer); // the heap stays attached in some thread
    const a = startHeapWorker((w) => heap.watch(w));
    await a.remote.attach(heap.buffer);
    heap.detach(); // before the worker takes the lock (detach takes it too)
    await a.remote.holdLock();
    expect(lockHolder(Atomics.load(internals(heap).i32, G_LOCK))).toBeGreaterThanOrEqual(0);
    await a.worker.terminate();
    await a.exited;
    await lockUsable(heap, 'the detached watcher\'s reclaim');
    // The dead worker's slot and the one made for its reclaim go back: only `keep` stays attached.
    let attached = -1;
    for (const end = Date.now() + 10_000; attached !== 1 && Date.now() < end; await new Promise((r) => setTimeout(r, 5))) {
      attached = (await bounded('stats', keep.remote.stats())).threads.filter((x) => x.state !== 'free').length;
    }
    expect(attached).toBe(1);
    await until('the lock is let go', () => Atomics.load(internals(heap).i32, G_LOCK) === 0);
    await bounded('check', keep.remote.check());
  });

  it('reclaim(threadId) of a worker that ended holding the lock', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const a = await holder(heap, false);
    const id = a.worker.threadId;
    await a.worker.terminate();
    await a.exited;
    expect(heap.reclaim(id)).toBe(true);
    await lockUsable(heap, 'reclaim(threadId)');
    heap.check();
    heap.detach();
  });

  it('mallocAsync on the main thread waiting out a holder that dies (watched)', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const a = await holder(heap, true);
    const got = heap.mallocAsync(300_000);
    await new Promise((r) => setTimeout(r, 30)); // (it waits meanwhile; no assertion on how long)
    await a.worker.terminate();
    const p = await bounded('mallocAsync', got);
    expect(p).not.toBe(0);
    const q = await bounded('reallocAsync', heap.reallocAsync(p, 700_000));
    expect(q).not.toBe(0);
    await bounded('freeAsync', heap.freeAsync(q));
    await lockUsable(heap, 'mallocAsync');
    heap.check();
    heap.detach();
  });

  it('a thread that breaks the lock a fault kept (the faulted worker runs on)', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const w = startWorker('lock-fault-worker', { buffer: heap.buffer });
    const said = await new Promise<{ thrown: string }>((r) => w.once('message', r));
    expect(said.thrown).toBe('HeapStateError');
    expect(lockHolder(Atomics.load(internals(heap).i32, G_LOCK))).toBeGreaterThanOrEqual(0);
    const p = heap.malloc(300_000); // breaks the lock of the DEAD slot, repairs, lets it go
    expect(p).not.toBe(0);
    heap.free(p);
    await lockUsable(heap, 'after a fault');
    heap.check();
    heap.detach();
  });
});
