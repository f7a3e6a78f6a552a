/**
 * Test worker for test/flush-answer-crash-points.test.ts: fills the heap with 1000-byte blocks, posts
 * them (the test frees them: remote frees onto this thread's slabs), then idles, listening for asks
 * to flush (flush-ask.ts). Its Atomics calls from then on are counted, and it is stopped before the
 * n-th (as worker.terminate() can stop it): inside its answer to an ask, run from its event loop.
 * n = 0: on the message 'report', posts { calls }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armAtomics, ATOMICS_METHODS, stopHere } from './atomics-stop.js';

const { buffer, n, ctl } = workerData as { buffer: SharedArrayBuffer; n: number; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
const blocks: number[] = [];
for (let p = heap.malloc(1000); p !== 0; p = heap.malloc(1000)) blocks.push(p);

const disarm = armAtomics(
  n,
  () => {
    Atomics.store(ctl, 0, 1); // stopped
    return stopHere();
  },
  [...ATOMICS_METHODS, 'waitAsync'],
);
parentPort!.on('message', (m) => {
  if (m === 'report') {
    parentPort!.postMessage({ calls: disarm() });
  }
});
parentPort!.postMessage({ blocks, threadId: heap.threadId });
