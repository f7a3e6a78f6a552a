/**
 * Test worker for test/reclaim-dead-only-lock.test.ts: as workers/reattach-stop-worker.ts,
 * a 3 MiB malloc cut off under the global lock (its slot DEAD, the lock kept), then, at the next
 * message, an attach again whose reclaim of the stopped slot breaks that lock; the thread ends
 * (process.exit, as worker.terminate() may stop it at any Atomics call) at the first load of the
 * stopped slot's state made once the lock names the new slot: right after the breaking CAS, before
 * repairSlotTable and before the reclaim wrote TH_RECLAIMER. Left behind: the stopped slot DEAD
 * (TH_RECLAIMER 0), the new slot ATTACHED holding the lock, its thread ended.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { faultUnderLock } from './fault-under-lock.js';
import { G_LOCK, TH_STATE } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { stopHere } from './atomics-stop.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const first = SharedHeap.attach(buffer);
const t = internals(first);
const firstSlot = t.slot;
const stateW = t.threadW(firstSlot) + TH_STATE;
faultUnderLock(first);
parentPort!.postMessage({ threadId: first.threadId, slot: firstSlot });
parentPort!.once('message', () => {
  const load = Atomics.load as (a: Int32Array, i: number) => number;
  (Atomics as { load: unknown }).load = (a: Int32Array, i: number): number => {
    if (a.buffer === buffer && i === stateW) {
      const h = lockHolder(load(a, G_LOCK));
      if (h >= 0 && h !== firstSlot) stopHere();
    }
    return load(a, i);
  };
  SharedHeap.attach(buffer);
  parentPort!.postMessage('attached (not expected)');
});
