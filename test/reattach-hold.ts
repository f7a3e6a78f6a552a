/**
 * A heap and a worker (workers/reattach-hold-worker.ts) whose instance a fault stopped: its slot
 * DEAD, holding the global lock; posted 'attach', it attaches again under the same Node threadId
 * and reclaims that slot (pausing inside, holding the lock, as `ctl` says). Shared by the tests of
 * reclaim(threadId) and reclaimWhenGone against such a thread.
 */
import type { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD } from '../src/layout.js';
import { MiB } from './fixtures.js';
import { startWorker } from './remote-heap.js';

const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

export interface StoppedWorker {
  heap: SharedHeap;
  w: Worker;
  threadId: number;
  /** The stopped instance's slot (DEAD). */
  a: number;
  state: (s: number) => number;
  /** The slot of the attachment again under the id (ATTACHED), or -1. */
  slotOf: () => number;
}

export async function stoppedWorker(ctl: Int32Array): Promise<StoppedWorker> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
  const t = internals(heap);
  const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
  const w = startWorker('reattach-hold-worker', { buffer: heap.buffer, ctl });
  const first = await next<{ threadId: number; slot: number }>(w);
  expect(state(first.slot)).toBe(TS_DEAD);
  const slotOf = (): number => {
    for (let s = 0; s < 6; s++) {
      if (s !== first.slot && state(s) === TS_ATTACHED && Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === first.threadId + 1) return s;
    }
    return -1;
  };
  return { heap, w, threadId: first.threadId, a: first.slot, state, slotOf };
}
