/**
 * Audit of several heaps used at once: a worker that loads two copies of the package (see
 * test/two-package-copies.test.ts) attached to two heaps, through copy 1 to both, through copy 2
 * to B (and to A). At its end (terminate) each heap, watching it, must reclaim every slot it had
 * there, and break a lock it held there.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { allBytes, checked, MiB, until } from './fixtures.js';
import { useBuiltCopy } from './package-copy.js';
import { startWorker, terminateAll } from './remote-heap.js';

const builtCopy = useBuiltCopy();
afterEach(terminateAll);

interface Said {
  threadIds: number[];
  slots: { A: number[]; B: number[] };
  live: { A: number[]; B: number[] };
}
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

describe('a worker with two copies of the package on two heaps', () => {
  for (const both of [false, true]) {
    for (const hold of ['', 'A', 'B'] as const) {
      it(`copy 2 on ${both ? 'both heaps' : 'B only'}, ${hold === '' ? 'holding no lock' : `holding ${hold}'s lock`}: both heaps reclaim every slot`, async () => {
        const A = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
        const B = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 32 * MiB, maxThreads: 4, debug: true });
        const w = startWorker('multiheap-copies-worker', { a: A.buffer, b: B.buffer, copy: builtCopy(), hold, live: 20, both });
        A.watch(w);
        B.watch(w);
        const exited = new Promise((r) => w.once('exit', r));
        const said = await next<Said>(w);
        expect(new Set(said.threadIds).size).toBe(1);
        expect(A.stats().threadsAttached).toBe(1 + said.slots.A.length);
        expect(B.stats().threadsAttached).toBe(1 + said.slots.B.length);
        await w.terminate();
        await exited;
        await until('both reclaimed', () => A.stats().threadsAttached === 1 && B.stats().threadsAttached === 1);
        for (const [k, h] of [['A', A], ['B', B]] as const) {
          expect({ k, check: checked(h), lock: Atomics.load(internals(h).i32, G_LOCK) }).toEqual({ k, check: 'passes', lock: 0 });
          const big = h.malloc(3 * MiB);
          expect(big).toBeGreaterThan(0);
          h.free(big);
          for (const p of said.live[k]) expect(allBytes(h.u8, p, p + 8, 0xa5)).toBe(true);
          for (const p of said.live[k]) h.free(p);
          h.flush();
          expect(checked(h)).toBe('passes');
          expect(h.stats().liveBlocks).toBe(0);
          h.detach();
        }
      });
    }
  }
});
