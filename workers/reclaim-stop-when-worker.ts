/**
 * Test worker for test/reclaimer-of-reclaimer-stopped.test.ts: attaches to workerData.buffer and
 * posts { threadId }. At the message { victim, slot, state } it reclaims the thread `victim`
 * (heap.reclaim) and ends (process.exit, as worker.terminate() may stop it at any Atomics call)
 * at its first Atomics call made once thread slot `slot` reads `state` (checked at each call's
 * entry, before the operation). Posts { answer } if the reclaim ran to its end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { TH_STATE } from '../src/layout.js';
import { armAtomics, stopHere } from './atomics-stop.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const heap = SharedHeap.attach(buffer);
const t = internals(heap);
parentPort!.postMessage({ threadId: heap.threadId });
parentPort!.once('message', (m: { victim: number; slot: number; state: number }) => {
  const load = Atomics.load;
  const stateW = t.threadW(m.slot) + TH_STATE;
  const disarm = armAtomics(0, stopHere, undefined, () => {
    if (load(t.i32, stateW) === m.state) stopHere();
  });
  const answer = heap.reclaim(m.victim);
  disarm();
  parentPort!.postMessage({ answer });
});
