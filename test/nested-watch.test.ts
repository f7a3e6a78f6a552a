/**
 * A worker that watches workers of its own (a pool inside a worker), ended: Node ends its workers
 * with it, before its 'exit' event, and nobody sees their exits. Before: their slots stayed
 * taken (attached, their cached blocks with them) until someone reclaim(threadId)ed each; a
 * lock one of them held was never broken. Now the watcher's thread area records the workers it
 * watches (TH_WATCHING), and whoever reclaims it as ended reclaims them too, and marks them dead
 * first (so a lock one of them held is broken).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_RECLAIM } from '../src/crash.js';
import { startHeapWorker } from './remote-heap.js';
import { cutOffLargeMalloc } from './fault-internals.js';
import { internals } from '../src/heap.js';
import { TH_STATE, TH_THREAD_ID, TH_WATCHING, TS_FREE, WATCH_ENTRIES } from '../src/layout.js';
import { MiB } from './fixtures.js';
import { endStarted, tree, attachedIds } from './nested-watch-helpers.js';

afterEach(endStarted);



describe('a watcher of workers, ended', () => {
  for (const [depth, fanout] of [[1, 3], [2, 2]] as const) {
    it(`depth ${depth}, ${fanout} workers each: the watcher's reclaim takes its workers' slots with it`, async () => {
      const n = depth === 1 ? 1 + fanout : 1 + fanout + fanout * fanout;
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: n + 1 });
      const mine = heap.malloc(5000);
      heap.u8.fill(0x6b, mine, mine + 5000);
      const { worker, ids } = await tree(heap, depth, fanout);
      expect(ids).toHaveLength(n);
      expect(attachedIds(heap).sort()).toEqual([heap.threadId, ...ids].sort());
      heap.watch(worker);
      await worker.terminate();
      expect(attachedIds(heap)).toEqual([heap.threadId]); // every slot of the tree free
      heap.check();
      expect(heap.u8.subarray(mine, mine + 5000).every((b) => b === 0x6b)).toBe(true);
      // The slots are the heap's again: as many workers attach.
      const again = [];
      for (let k = 0; k < n; k++) {
        const v = startHeapWorker();
        await v.remote.attach(heap.buffer);
        again.push(v);
      }
      expect(attachedIds(heap)).toHaveLength(n + 1);
      heap.free(mine);
      heap.check();
    });
  }

  it('a worker of it that died holding the global lock: marked dead with it, the lock broken, no wait', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const { worker, ids } = await tree(heap, 1, 2, ctl);
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    while (Atomics.load(ctl, 1) === 0) await new Promise((r) => setTimeout(r, 5)); // the leaf holds the lock
    heap.watch(worker);
    await worker.terminate();
    expect(attachedIds(heap)).toEqual([heap.threadId]);
    const t0 = Date.now();
    const big = heap.malloc(3 * MiB); // needs the lock
    expect(big).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(heap.stats().lock.recoveries).toBeGreaterThanOrEqual(1);
    heap.free(big);
    heap.check();
    expect(ids).toHaveLength(3);
  });

  for (const [depth, least] of [[1, 9], [2, 20]] as const) {
    it(`depth ${depth}: reclaim(threadId) of the watcher, the reclaimer stopped at each of its reclaim steps in turn: the reclaim of the reclaimer finishes every slot`, async () => {
      let stoppedAt = 0;
      for (let nth = 1; nth < 400; nth++) {
        const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 10 });
        const { worker, ids } = await tree(heap, depth, 2);
        await worker.terminate(); // not watched by anyone here: its slots wait for a reclaim(threadId)
        const r = startHeapWorker();
        const rid = await r.remote.attach(heap.buffer);
        const answered = r.remote.reclaimStoppingAt(ids[0]!, CP_RECLAIM, nth).then((done) => `answered ${String(done)}`);
        const how = await Promise.race([answered, r.exited.then(() => 'exited')]);
        if (how !== 'exited') {
          // The reclaim passed fewer steps than nth: done, all of it.
          expect(how).toBe('answered true');
          expect(attachedIds(heap).sort()).toEqual([heap.threadId, rid].sort());
          heap.check();
          stoppedAt = nth - 1;
          break;
        }
        expect(heap.reclaim(rid)).toBe(true);
        expect(attachedIds(heap)).toEqual([heap.threadId]);
        heap.check();
        const p = heap.malloc(3 * MiB);
        expect(p).toBeGreaterThan(0);
        heap.free(p);
      }
      // The watcher's reclaim and its workers' each pass several steps.
      expect(stoppedAt).toBeGreaterThanOrEqual(least);
    });
  }

  it('the reclaim of one of its workers takes that slot only; the watcher\'s, the rest', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
    const { worker, ids } = await tree(heap, 1, 2);
    await worker.terminate();
    const leaf = ids[1]!;
    expect(heap.reclaim(leaf)).toBe(true); // a leaf watches nobody: only its slot
    expect(attachedIds(heap).sort()).toEqual([heap.threadId, ids[0]!, ids[2]!].sort());
    expect(heap.reclaim(ids[0]!)).toBe(true); // the watcher: the other leaf with it
    expect(attachedIds(heap)).toEqual([heap.threadId]);
    heap.check();
  });

  it('a stopped instance of a watcher that runs on (a fault) is reclaimed by its next attachment without its workers, which run on', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const a = startHeapWorker((w) => heap.watch(w));
    const aId = await a.remote.attach(heap.buffer);
    const p = await a.remote.malloc(5000);
    cutOffLargeMalloc(heap); // this instance stops, its slot DEAD; the thread runs on
    const again = SharedHeap.attach(heap.buffer); // reclaims the stopped instance: not as ended
    expect(attachedIds(again).sort()).toEqual([again.threadId, aId].sort());
    await a.remote.write(p, [1, 2, 3]); // the worker still works
    const q = await a.remote.malloc(3 * MiB);
    expect(q).toBeGreaterThan(0);
    await a.remote.free(q);
    await a.remote.free(p);
    again.check();
    await a.worker.terminate();
    await a.exited;
    expect(attachedIds(again)).toEqual([again.threadId]); // its exit, reclaimed through the new attachment
    again.check();
    again.detach();
  });

  it('a worker of it ended inside its attach (a slot reserved under its id, still FREE): the watcher\'s reclaim gives the slot back', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const { worker, ids } = await tree(heap, 1, 1);
    const other = startHeapWorker(); // takes the fourth slot and gives it back: a FREE slot in use before
    await other.remote.attach(heap.buffer);
    await other.remote.detach();
    await worker.terminate();
    // A third worker it watched, ended between its attach's two CASes: a FREE slot carrying its id
    // (made here by hand: the spare slot, and an entry in the watcher's record).
    const t = internals(heap);
    const ghost = 999_999;
    const taken = heap.stats().threads.filter((x) => x.state !== 'free').map((x) => x.tid);
    const spare = [0, 1, 2, 3].find((s) => !taken.includes(s))!;
    expect(Atomics.load(t.i32, t.threadW(spare) + TH_STATE)).toBe(TS_FREE);
    Atomics.store(t.i32, t.threadW(spare) + TH_THREAD_ID, ghost + 1);
    const wSlot = heap.stats().threads.find((x) => x.threadId === ids[0])!.tid;
    const rec = t.threadW(wSlot) + TH_WATCHING;
    const free = [...Array(WATCH_ENTRIES).keys()].find((k) => t.i32[rec + k] === 0)!;
    t.i32[rec + free] = ghost + 1;
    expect(heap.reclaim(ids[0]!)).toBe(true);
    expect(Atomics.load(t.i32, t.threadW(spare) + TH_THREAD_ID)).toBe(0);
    heap.check();
    // The three slots are the heap's again.
    for (let k = 0; k < 3; k++) await startHeapWorker().remote.attach(heap.buffer);
    expect(attachedIds(heap)).toHaveLength(4);
  });
});
