/**
 * Test worker for test/journal-redo-stopped.test.ts: attaches to workerData.buffer and posts
 * { threadId }. At the message { victim, n } it reclaims the thread `victim` (heap.reclaim) and
 * stops at the n-th crash point it passes (src/crash.ts; process.exit, which, like
 * worker.terminate(), runs no finally block); n = 0 only counts them. Posts { steps } (each step's
 * path in turn; empty unless n = 0) when the reclaim ran to its end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armCrash, countCrashPoints, crashCounts, crashOrder } from '../src/crash.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const heap = SharedHeap.attach(buffer);
parentPort!.postMessage({ threadId: heap.threadId });
parentPort!.once('message', (m: { victim: number; n: number }) => {
  if (m.n === 0) countCrashPoints();
  else armCrash(m.n, () => process.exit(0));
  heap.reclaim(m.victim);
  if (m.n === 0) crashCounts(); // counting stops
  parentPort!.postMessage({ steps: m.n === 0 ? crashOrder() : [] });
});
