/**
 * Test worker for the tests of calls made while another thread works (test/stats-pool-lists-changing,
 * test/debug-usable-size-freed-meanwhile): attaches to workerData.buffer, mallocs workerData.first
 * bytes if given (the block in ctl[1]), sets ctl[0] to 1, then waits until ctl[0] is 2, makes the
 * calls of workerData.ops in order ('free' frees the block in ctl[1]; 'malloc' stores its block in
 * ctl[1]), sets ctl[0] to 3 (notified), and idles. So a test can have another thread make calls at
 * one exact moment of a call it is making (from a hook, blocking until ctl[0] is 3).
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

type Op = ['malloc', number] | ['free'] | ['flush'];
const { buffer, first, ops, ctl } = workerData as { buffer: SharedArrayBuffer; first?: number; ops: Op[]; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
if (first !== undefined) Atomics.store(ctl, 1, heap.malloc(first));
Atomics.store(ctl, 0, 1);
Atomics.notify(ctl, 0);
while (Atomics.load(ctl, 0) !== 2) Atomics.wait(ctl, 0, 1);
for (const op of ops) {
  if (op[0] === 'malloc') Atomics.store(ctl, 1, heap.malloc(op[1]));
  else if (op[0] === 'free') heap.free(Atomics.load(ctl, 1));
  else heap.flush();
}
Atomics.store(ctl, 0, 3);
Atomics.notify(ctl, 0);
setInterval(() => {}, 1 << 30); // idles until terminated
