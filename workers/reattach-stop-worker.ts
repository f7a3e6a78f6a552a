/**
 * Test worker for test/reclaim-dead-only-lock.test.ts: attaches to workerData.buffer and has a
 * 3 MiB malloc cut off under the global lock by a stack overflow's RangeError (as
 * workers/reattach-fault-worker.ts): its slot is DEAD, the lock kept in its name. Posts
 * { threadId, slot }. At the next message it attaches again, as the HeapStateError says; that
 * attach breaks the stopped slot's lock and, holding it in the new slot's name, reclaims the
 * stopped slot: the thread ends (process.exit, as worker.terminate() may stop it) right at that
 * reclaim's CAS of the stopped slot DEAD -> RECLAIMING, before it. Left behind: the stopped slot
 * DEAD, the new slot ATTACHED under the same threadId, holding the lock, its thread ended.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { faultUnderLock } from './fault-under-lock.js';
import { TH_STATE, TS_DEAD, TS_RECLAIMING } from '../src/layout.js';
import { stopHere } from './atomics-stop.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const first = SharedHeap.attach(buffer);
const t = internals(first);
const firstSlot = t.slot;
const stateW = t.threadW(firstSlot) + TH_STATE;
faultUnderLock(first); // the instance stops, the lock kept in its slot's name
parentPort!.postMessage({ threadId: first.threadId, slot: firstSlot });
parentPort!.once('message', () => {
  const cas = Atomics.compareExchange;
  (Atomics as { compareExchange: unknown }).compareExchange = (a: Int32Array, i: number, e: number, r: number): number => {
    if (a.buffer === buffer && i === stateW && e === TS_DEAD && r === TS_RECLAIMING) stopHere();
    return cas(a as never, i, e, r);
  };
  SharedHeap.attach(buffer);
  parentPort!.postMessage('attached (not expected)');
});
