/**
 * reclaimWhenGone(threadId) never waits for the global lock (a692871, reclaim.ts reclaimIdNoWait):
 * where a live thread holds it, the reclaim tries again once the lock word changed, the event loop
 * running meanwhile. Here a worker v with blocks in its magazines is terminated (its slot left
 * ATTACHED), a live worker h holds the lock, and this (main) thread's reclaimWhenGone(v) runs with
 * a stand-in for the Web Locks API (nobody holds v's lock: v is gone). h lets the lock go only
 * when a timer callback of this thread's event loop tells it to: a reclaim that blocked the loop
 * (as the blocking acquisition did: a LockTimeoutError after 3 s) never sees it go.
 *
 * reclaimWhenGone(threadId) whose gone mark (`<name>:gone`) is refused keeps the thread's Web Lock
 * itself (heap.ts). Asking for that lock again, as it does where an attachment under the id stands
 * in the way (reclaim.ts reclaimIdNoWait's 'own-reclaim'), is then never granted: an audit of
 * 7ab504e found the reclaim of a terminated worker, its slot ATTACHED alone, pending for good.
 * Nobody else can hold that lock: the attachment is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD, TS_FREE, heapIdOf } from '../src/layout.js';
import { threadLockName } from '../src/liveness.js';
import { lockHolder } from '../src/lock.js';
import { checked, KiB, MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let locks: WebLocksStandIn | undefined;
afterEach(async () => {
  locks?.uninstall();
  locks = undefined;
  await terminateAll();
});

describe('reclaimWhenGone(threadId) while a live thread holds the global lock', () => {
  it('keeps the event loop running, and reclaims once the holder lets the lock go', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    const t = internals(heap);
    const v = startHeapWorker();
    const vId = await v.remote.attach(heap.buffer);
    // Blocks freed into v's magazines (cached there, the heap's once reclaimed), and live ones.
    const live: number[] = [];
    for (let i = 0; i < 64; i++) live.push(await v.remote.malloc(48));
    for (let i = 0; i < 32; i++) await v.remote.free(live.pop()!);
    const big = await v.remote.malloc(3 * MiB);
    await v.remote.free(big);
    const vSlot = (() => {
      for (let s = 0; s < 6; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === vId + 1) return s;
      return -1;
    })();
    expect(vSlot).toBeGreaterThanOrEqual(0);
    await v.worker.terminate(); // not watched: its slot stays ATTACHED

    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const h = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl });
    const hSaid = await new Promise<{ slot: number }>((resolve) => h.once('message', resolve));
    while (Atomics.load(ctl, 0) !== 1) await sleep(5);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(hSaid.slot);

    locks = installWebLocks();
    let ticks = 0;
    let during: { vState: number; holder: number; settled: boolean } | undefined;
    let settled = false;
    const gone = heap.reclaimWhenGone(vId).finally(() => (settled = true));
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        ticks++;
        if (ticks < 5) {
          setTimeout(tick, 5);
          return;
        }
        during = { vState: Atomics.load(t.i32, t.threadW(vSlot) + TH_STATE), holder: lockHolder(Atomics.load(t.i32, G_LOCK)), settled };
        Atomics.store(ctl, 1, 1); // h lets the lock go
        Atomics.notify(ctl, 1);
        resolve();
      };
      setTimeout(tick, 5);
    });
    expect(await gone).toBe(true);
    expect(during, 'v marked DEAD, h still holding the lock, the reclaim waiting').toEqual({ vState: TS_DEAD, holder: hSaid.slot, settled: false });
    while (Atomics.load(ctl, 0) !== 2) await sleep(5);
    expect(Atomics.load(t.i32, t.threadW(vSlot) + TH_STATE), "v's slot, reclaimed").toBe(TS_FREE);
    expect(Atomics.load(t.i32, G_LOCK), 'the lock, free').toBe(0);
    expect(checked(heap)).toBe('passes');
    // The heap goes on: the holder, live, and this thread allocate.
    const p = heap.malloc(3 * MiB);
    const q = heap.malloc(16 * KiB);
    expect(p).toBeGreaterThan(0);
    expect(q).toBeGreaterThan(0);
    heap.free(p);
    heap.free(q);
    expect(checked(heap)).toBe('passes');
  }, 30_000);

  it('where the holder is another terminated worker: its own reclaimWhenGone, run meanwhile, breaks the lock, and both complete', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    const t = internals(heap);
    const v = startHeapWorker();
    const vId = await v.remote.attach(heap.buffer);
    for (let i = 0; i < 16; i++) await v.remote.free(await v.remote.malloc(200));
    const h = startHeapWorker();
    const hId = await h.remote.attach(heap.buffer);
    await h.remote.holdLock(); // keeps it, then ends holding it
    const word = Atomics.load(t.i32, G_LOCK);
    await v.worker.terminate();
    await h.worker.terminate();
    expect(Atomics.load(t.i32, G_LOCK)).toBe(word);

    locks = installWebLocks();
    const first = heap.reclaimWhenGone(vId); // busy: h's slot is still ATTACHED
    const second = new Promise<boolean>((resolve, reject) => setTimeout(() => heap.reclaimWhenGone(hId).then(resolve, reject), 30));
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(Atomics.load(t.i32, G_LOCK), 'the lock, free').toBe(0);
    for (const id of [vId, hId]) {
      for (let s = 0; s < 6; s++) expect(Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID), `a slot under ${id}`).not.toBe(id + 1);
    }
    expect(checked(heap)).toBe('passes');
    const p = heap.malloc(3 * MiB);
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});

describe('reclaimWhenGone(threadId) whose gone mark is refused', () => {
  it('reclaims the terminated worker all the same, with the thread lock it kept', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    const t = internals(heap);
    const v = startHeapWorker();
    const vId = await v.remote.attach(heap.buffer);
    for (let i = 0; i < 16; i++) await v.remote.free(await v.remote.malloc(200));
    let vSlot = -1;
    for (let s = 0; s < 6; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === vId + 1) vSlot = s;
    expect(vSlot).toBeGreaterThanOrEqual(0);
    await v.worker.terminate(); // not watched: its slot stays ATTACHED
    expect(Atomics.load(t.i32, t.threadW(vSlot) + TH_STATE)).toBe(TS_ATTACHED);

    locks = installWebLocks();
    const lm = (globalThis as unknown as { navigator: { locks: { request: (...a: unknown[]) => Promise<unknown> } } }).navigator.locks;
    const request = lm.request.bind(lm);
    lm.request = (name: unknown, ...rest: unknown[]) =>
      typeof name === 'string' && name.endsWith(':gone') ? Promise.reject(new Error('refused')) : request(name, ...rest);

    let answer: boolean | string = 'pending';
    void heap.reclaimWhenGone(vId).then(
      (a) => (answer = a),
      (e: unknown) => (answer = String(e)),
    );
    for (let i = 0; i < 300 && answer === 'pending'; i++) await sleep(10);
    expect(answer).toBe(true);
    expect(Atomics.load(t.i32, t.threadW(vSlot) + TH_STATE)).toBe(TS_FREE);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
    expect(locks.held(), 'the thread lock, kept in place of the mark').toEqual([threadLockName(heapIdOf(heap.buffer), vId)]);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
