/**
 * Test worker for test/try-malloc-dead-holder.test.ts: attaches to workerData.buffer, and
 * has a 3 MiB malloc cut off under the global lock by the RangeError of a stack overflow (at its
 * 3rd crash point, as test/fault-internals.ts cutOffLargeMalloc does): its instance stops, its slot
 * is marked DEAD and the lock stays held in its name (fault.ts). The thread itself runs on (a
 * program that caught the error), so no 'exit' comes to reclaim it. Posts what the malloc threw.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { faultUnderLock } from './fault-under-lock.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const heap = SharedHeap.attach(buffer);
const thrown = faultUnderLock(heap);
parentPort!.postMessage({ thrown, threadId: heap.threadId });
parentPort!.on('message', () => undefined); // keeps running until terminated
