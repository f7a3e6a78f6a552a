/**
 * Audit (checks that held): a watcher that detached while its worker ran and attached again
 * (its watches handed to the next attachment, recorded there), its old slot taken meanwhile
 * by another thread: at its end, its worker goes with it, and the thread in its old slot stays.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startHeapWorker } from './remote-heap.js';
import { MiB } from './fixtures.js';
import { endStarted, startNamed, attachedIds } from './nested-watch-helpers.js';

afterEach(endStarted);


function ask(w: Worker, m: object): Promise<{ childId?: number; threadId?: number; error?: string }> {
  w.postMessage(m);
  return new Promise((resolve) => w.once('message', resolve));
}

describe('a watcher across a detach and an attach', () => {
  for (const takeOldSlot of [false, true]) {
    it(`its worker goes with it at its end${takeOldSlot ? '; the thread now in its old slot stays' : ''}`, async () => {
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
      const w = startNamed('watcher-probe-worker', { buffer: heap.buffer });
      heap.watch(w);
      const { childId } = await ask(w, { op: 'startChild' });
      const { threadId: wId } = await ask(w, { op: 'detach' });
      expect(attachedIds(heap).sort()).toEqual([heap.threadId, childId!].sort());
      const others: number[] = [];
      if (takeOldSlot) {
        const x = startHeapWorker();
        others.push(await x.remote.attach(heap.buffer)); // the lowest free slot: w's old one
      }
      await ask(w, { op: 'attach' });
      expect(attachedIds(heap).sort()).toEqual([heap.threadId, childId!, wId!, ...others].sort());
      if (takeOldSlot) {
        // The thread in w's old slot ends while w runs: nothing of w's goes with it.
        const y = startHeapWorker((v) => heap.watch(v));
        const yId = await y.remote.attach(heap.buffer);
        await y.worker.terminate();
        await y.exited;
        expect(attachedIds(heap).includes(yId)).toBe(false);
        expect(attachedIds(heap).sort()).toEqual([heap.threadId, childId!, wId!, ...others].sort());
      }
      await w.terminate();
      expect(attachedIds(heap).sort()).toEqual([heap.threadId, ...others].sort());
      heap.check();
    });
  }
});
