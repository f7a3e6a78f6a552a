/**
 * Test worker for test/debug.test.ts: attaches to the debug-mode heap in workerData.buffer and
 * mallocs and frees blocks of workerData.size bytes for ever, so that the test terminates it
 * at a random instruction of debug mode's hand-out or free. ctl[0] is set once it runs; ctl[1]
 * holds the block it has between its malloc and its free (0: none).
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

const { buffer, size, ctl } = workerData as { buffer: SharedArrayBuffer; size: number; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
Atomics.store(ctl, 0, 1);
for (;;) {
  const p = heap.malloc(size);
  ctl[1] = p;
  heap.u8.fill(7, p, p + size);
  heap.free(p);
  ctl[1] = 0;
}
