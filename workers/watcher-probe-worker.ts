/**
 * Test worker for test/nested-watch-*.test.ts: a heap-attached worker driven by
 * messages, or (role 'child') a worker that attaches and idles.
 * { op: 'watchThrowing', id }: watch() of a Worker-like object whose threadId is `id` and whose
 * once() throws (the error caught). { op: 'startChild' }: starts a child (this file, role 'child')
 * and watch()es it, once it attached; replies its id. { op: 'detach' } and { op: 'attach' }.
 * Replies { done, error, threadId, childId } after each op, and idles.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { testHoldGlobalLock } from '../src/heap.js';

const d = workerData as { buffer: SharedArrayBuffer; role?: string; filename: string; ctl?: Int32Array };
if (d.role === 'lockChild') {
  // Attaches once ctl[0] is 1, takes the global lock, and ends holding it.
  Atomics.wait(d.ctl!, 0, 0);
  testHoldGlobalLock(SharedHeap.attach(d.buffer));
  process.exit(0);
}
let heap = SharedHeap.attach(d.buffer);
if (d.role === 'child') {
  parentPort!.postMessage({ childId: heap.threadId });
} else {
  parentPort!.on('message', (m: { op: string; id: number }) => {
    let error = '';
    if (m.op === 'watchThrowing') {
      try {
        heap.watch({ threadId: m.id, once: () => { throw new Error('no events here'); } });
      } catch (e) {
        error = (e as Error).name;
      }
    } else if (m.op === 'startChild') {
      const child = new Worker(d.filename, { workerData: { ...d, role: 'child' } });
      heap.watch(child);
      child.once('message', (r: { childId: number }) => parentPort!.postMessage({ done: true, childId: r.childId }));
      return;
    } else if (m.op === 'startLockChild') {
      const child = new Worker(d.filename, { workerData: { ...d, role: 'lockChild' } });
      heap.watch(child);
      child.once('exit', () => parentPort!.postMessage({ childExited: true }));
    } else if (m.op === 'detach') {
      heap.detach();
    } else if (m.op === 'attach') {
      heap = SharedHeap.attach(d.buffer);
    }
    parentPort!.postMessage({ done: true, error, threadId: heap.threadId });
  });
}
setInterval(() => {}, 1 << 30);
