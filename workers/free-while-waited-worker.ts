/**
 * Test worker for test/realloc-debug-freed-meanwhile.test.ts: attaches to workerData.buffer, takes
 * the global lock, stores 1 into ctl[0] (notified), and once another thread waits for the lock (its
 * waiters bit) frees the block workerData.p, a large run (a free of the caller's, at the same moment
 * as that thread's realloc of it: a double free), then lets the lock go and stores 2 into ctl[0].
 * Gives up waiting for a waiter after 10 s (ctl[1] 1 then).
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, LOCK_WAITERS } from '../src/layout.js';
import { lockAcquire, lockRelease } from '../src/lock.js';

const { buffer, ctl, p } = workerData as { buffer: SharedArrayBuffer; ctl: Int32Array; p: number };
const heap = SharedHeap.attach(buffer);
const t = internals(heap);
lockAcquire(t);
Atomics.store(ctl, 0, 1);
Atomics.notify(ctl, 0);
const end = Date.now() + 10_000;
while ((Atomics.load(t.i32, G_LOCK) & LOCK_WAITERS) === 0 && Date.now() < end) Atomics.wait(ctl, 2, 0, 1);
if ((Atomics.load(t.i32, G_LOCK) & LOCK_WAITERS) === 0) Atomics.store(ctl, 1, 1);
heap.free(p);
lockRelease(t);
Atomics.store(ctl, 0, 2);
Atomics.notify(ctl, 0);
heap.detach();
