/**
 * Test worker for test/reclaim-dead-only-lock-retaken.test.ts: attaches to workerData.buffer and
 * has a 3 MiB malloc cut off under the global lock by a stack overflow's RangeError (as
 * workers/reattach-fault-worker.ts): its slot DEAD, the lock kept. Posts { threadId, slot }. At the
 * next message it attaches again (its reclaim of the stopped slot waits for the lock while the test
 * holds it) and then waits for ctl[1] to be 1: it then takes the global lock as any slow path of
 * its own does, keeps it (testHoldGlobalLock), and stores 1 into ctl[0].
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { faultUnderLock } from './fault-under-lock.js';
import { TH_STATE, TS_DEAD, TS_RECLAIMING } from '../src/layout.js';

const { buffer, ctl } = workerData as { buffer: SharedArrayBuffer; ctl: Int32Array };
const first = SharedHeap.attach(buffer);
const slot = internals(first).slot;
faultUnderLock(first); // the instance stops, the lock kept in its slot's name
parentPort!.postMessage({ threadId: first.threadId, slot });
const stateW = internals(first).threadW(slot) + TH_STATE;
parentPort!.once('message', () => {
  const cas = Atomics.compareExchange;
  (Atomics as { compareExchange: unknown }).compareExchange = (a: Int32Array, i: number, e: number, r: number): number => {
    if (a.buffer === buffer && i === stateW && e === TS_DEAD && r === TS_RECLAIMING) {
      Atomics.store(ctl, 0, 2);
      Atomics.notify(ctl, 0);
      Atomics.wait(ctl, 2, 0);
    }
    return cas(a as never, i, e, r);
  };
  const heap = SharedHeap.attach(buffer);
  (Atomics as { compareExchange: unknown }).compareExchange = cas;
  Atomics.wait(ctl, 1, 0);
  testHoldGlobalLock(heap);
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
});
setInterval(() => 0, 1 << 30); // idle, alive, until ended
