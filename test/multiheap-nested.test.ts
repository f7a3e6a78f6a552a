/**
 * Audit of several heaps used at once: a tree of workers attached to two heaps, each watching its
 * children on both; the main thread watches the root on both. Ending the root ends the tree; each
 * heap must reclaim every thread of it, and break the lock a leaf died holding on one of them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { checked, MiB, until } from './fixtures.js';
import { attachedIds, endStarted, startNamed } from './nested-watch-helpers.js';

afterEach(endStarted);

describe('a tree of workers on two heaps', () => {
  for (const lockHeap of [-1, 0, 1]) {
    it(`ended at its root${lockHeap >= 0 ? `, a leaf holding heap ${'AB'[lockHeap]}'s lock` : ''}: both heaps reclaim every thread`, async () => {
      const ctl = new Int32Array(new SharedArrayBuffer(8));
      const A = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 12 });
      const B = SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 64 * MiB, maxThreads: 12, magazineCapacity: 16, refillCount: 8 });
      const root = startNamed('multiheap-nested-worker', { buffers: [A.buffer, B.buffer], depth: 2, fanout: 2, lockHeap, ctl });
      A.watch(root);
      B.watch(root);
      const ids = await new Promise<number[]>((resolve, reject) => {
        root.once('message', (m: { ids: number[] }) => resolve(m.ids));
        root.once('error', reject);
      });
      expect(ids.length).toBe(7);
      expect(attachedIds(A).sort()).toEqual([A.threadId, ...ids].sort());
      expect(attachedIds(B).sort()).toEqual([B.threadId, ...ids].sort());
      if (lockHeap >= 0) {
        Atomics.store(ctl, 0, 1);
        Atomics.notify(ctl, 0);
        await until('the leaf holds the lock', () => Atomics.load(ctl, 1) === 1);
        expect(Atomics.load(internals([A, B][lockHeap]!).i32, G_LOCK)).not.toBe(0);
      }
      await root.terminate();
      await until('both reclaimed', () => attachedIds(A).length === 1 && attachedIds(B).length === 1, 10_000).catch(() => undefined);
      for (const [k, h] of [['A', A], ['B', B]] as const) {
        expect({ k, ids: attachedIds(h), lock: Atomics.load(internals(h).i32, G_LOCK), check: checked(h) }).toEqual({ k, ids: [h.threadId], lock: 0, check: 'passes' });
        h.detach();
      }
    });
  }
});
