/**
 * Test worker for test/reclaim-when-gone-live-holder.test.ts: attaches to workerData.buffer, takes
 * the global lock as any slow path of its own does, stores 1 into ctl[0] (notified) and keeps the
 * lock, alive, until the test stores 1 into ctl[1]; then lets it go and stores 2 into ctl[0].
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { lockAcquire, lockRelease } from '../src/lock.js';

const { buffer, ctl } = workerData as { buffer: SharedArrayBuffer; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
const t = internals(heap);
parentPort!.postMessage({ threadId: heap.threadId, slot: t.slot });
lockAcquire(t);
Atomics.store(ctl, 0, 1);
Atomics.notify(ctl, 0);
while (Atomics.load(ctl, 1) === 0) Atomics.wait(ctl, 1, 0);
lockRelease(t);
Atomics.store(ctl, 0, 2);
Atomics.notify(ctl, 0);
setInterval(() => 0, 1 << 30); // idle, alive, until ended
