/**
 * Test worker for test/large-double-free-torn-read.test.ts and
 * test/large-realloc-move-resized-meanwhile.test.ts: attaches to workerData.buffer, stores
 * 1 into ctl[0] (notified), then waits until the test stores 2 there; makes realloc(ctl[1], ctl[2])
 * (free(ctl[1]) when ctl[2] is -1; when -2, free(ctl[1]) and a malloc of its usable size, which
 * may take its memory back), stores the result into ctl[3] (-1 if it threw) and 3 into
 * ctl[0] (notified), and stays idle, alive, until ended. The test's thread waits for it inside a
 * read or crash point of its own, so that the call happens between two steps of the test's call.
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

const { buffer, ctl } = workerData as { buffer: SharedArrayBuffer; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
Atomics.store(ctl, 0, 1);
Atomics.notify(ctl, 0);
while (Atomics.load(ctl, 0) !== 2) Atomics.wait(ctl, 0, 1);
try {
  if (ctl[2] === -1) {
    heap.free(ctl[1]!);
    ctl[3] = 0;
  } else if (ctl[2] === -2) {
    const n = heap.usableSize(ctl[1]!);
    heap.free(ctl[1]!);
    ctl[3] = heap.malloc(n);
  } else ctl[3] = heap.realloc(ctl[1]!, ctl[2]!);
} catch {
  ctl[3] = -1;
}
Atomics.store(ctl, 0, 3);
Atomics.notify(ctl, 0);
setInterval(() => 0, 1 << 30); // idle, alive, until ended
