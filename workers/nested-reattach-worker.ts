/**
 * Test worker for test/reclaim-nested-reattached.test.ts. As the parent (workerData.role
 * 'parent'): attaches to workerData.buffer, starts this file again as its child and watch()es it,
 * and posts the child's messages on. As the child: attaches, has a 3 MiB malloc cut off under the
 * global lock by a stack overflow's RangeError (its slot DEAD, the lock kept), posts
 * { threadId, slot }; at the next message it attaches again (as the HeapStateError says), whose
 * reclaim of the stopped slot waits for the lock (the test holds it). Both idle until ended.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { faultUnderLock } from './fault-under-lock.js';

const d = workerData as { buffer: SharedArrayBuffer; role: 'parent' | 'child'; filename: string };
const heap = SharedHeap.attach(d.buffer);
if (d.role === 'parent') {
  const child = new Worker(d.filename, { workerData: { ...d, role: 'child' }, execArgv: process.execArgv });
  heap.watch(child);
  child.on('message', (m) => parentPort!.postMessage(m));
  parentPort!.on('message', (m) => child.postMessage(m));
  parentPort!.postMessage({ parent: heap.threadId });
} else {
  const slot = internals(heap).slot;
  faultUnderLock(heap); // the instance stops, the lock kept in its slot's name
  parentPort!.postMessage({ threadId: heap.threadId, slot });
  parentPort!.once('message', () => {
    SharedHeap.attach(d.buffer); // its reclaim of the stopped slot waits for the lock
    parentPort!.postMessage({ attached: true });
  });
}
setInterval(() => 0, 1 << 30); // idle, alive, until ended
