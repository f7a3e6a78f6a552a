/**
 * Test worker for test/watching-worker.test.ts: a worker that watches a worker of its own.
 *
 * role 'watcher': attaches, starts a 'child' (this file), watch()es it; when the child says it
 * holds the global lock, lets it go on (ctl[1] = 1) and calls malloc(1 MiB), which needs the
 * lock, and posts { first } (the block or the error's name and message); then, once its event
 * loop has run the child's exit, mallocs again and posts { second }.
 * role 'child': attaches, takes the global lock and keeps it, posts 'locked', waits for ctl[1],
 * then exits the process (the thread) holding it.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { testHoldGlobalLock } from '../src/heap.js';

const d = workerData as { role: 'watcher' | 'child'; buffer: SharedArrayBuffer; ctl: Int32Array; filename: string };

const attempt = (heap: SharedHeap): string | number => {
  try {
    return heap.malloc(1 << 20);
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
};

if (d.role === 'child') {
  const heap = SharedHeap.attach(d.buffer);
  testHoldGlobalLock(heap);
  parentPort!.postMessage('locked');
  Atomics.wait(d.ctl, 1, 0);
  process.exit(1);
} else {
  const heap = SharedHeap.attach(d.buffer);
  const child = new Worker(d.filename, { workerData: { ...d, role: 'child' } });
  heap.watch(child);
  child.once('message', () => {
    Atomics.store(d.ctl, 1, 1);
    Atomics.notify(d.ctl, 1);
    parentPort!.postMessage({ first: attempt(heap) });
    child.once('exit', () => setTimeout(() => parentPort!.postMessage({ second: attempt(heap) }), 50));
  });
}
