/**
 * Test worker for test/debug-aligned-alloc-stopped.test.ts: attaches to the debug-mode heap in
 * workerData.buffer, makes one alignedAlloc(align, size) (kept: it fills the class's magazine),
 * then a second one, in which it stops (process.exit) at its workerData.nth call of the context's
 * ensureViews(), as worker.terminate() can stop a thread at any function entry. ctl[0] is 1 once
 * it stops there, -1 if the call ended first (it made fewer calls).
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';

const { buffer, align, size, nth, ctl } = workerData as { buffer: SharedArrayBuffer; align: number; size: number; nth: number; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
const t = internals(heap);
heap.alignedAlloc(align, size);
const ensureViews = t.ensureViews.bind(t);
let calls = 0;
t.ensureViews = () => {
  if (++calls === nth) {
    Atomics.store(ctl, 0, 1);
    process.exit(0);
    for (;;) {
      // process.exit() in a worker stops the thread at its next interrupt check: this back-edge.
    }
  }
  ensureViews();
};
heap.alignedAlloc(align, size);
Atomics.store(ctl, 0, -1);
