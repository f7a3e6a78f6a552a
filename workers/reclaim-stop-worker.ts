/**
 * Test worker for test/reclaimer-stopped-at-atomics.test.ts: attaches to workerData.buffer and posts
 * { threadId }. At the message { victim, n } it reclaims the thread `victim` (heap.reclaim), its
 * Atomics methods wrapped (workers/atomics-stop.ts) so that it ends (process.exit, as
 * worker.terminate() may stop it) before its n-th Atomics call; n = 0 only counts them. Posts
 * { calls, answer } when the reclaim ran to its end. With `fault`, the n-th call throws the
 * RangeError of a stack overflow instead (fault.ts: the instance stops, the thread runs on), and
 * the worker posts { faulted } with the name of what the reclaim threw.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armAtomics, stopHere } from './atomics-stop.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const heap = SharedHeap.attach(buffer);
parentPort!.postMessage({ threadId: heap.threadId });
parentPort!.once('message', (m: { victim: number; n: number; fault?: boolean }) => {
  const disarm = armAtomics(m.n, m.fault === true ? () => {
    throw new RangeError('Maximum call stack size exceeded');
  } : stopHere);
  let answer: boolean;
  try {
    answer = heap.reclaim(m.victim);
  } catch (e) {
    disarm();
    parentPort!.postMessage({ faulted: (e as Error).name });
    return;
  }
  const calls = disarm();
  parentPort!.postMessage({ calls, answer });
});
