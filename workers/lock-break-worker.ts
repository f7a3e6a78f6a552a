/**
 * Test worker for test/lock-break-breaker-dies.test.ts: attaches to workerData.buffer, answers
 * { slot, threadId }, and once ctl[2] is nonzero mallocs a large block (which takes the global
 * lock). Its Atomics.compareExchange is wrapped: the first CAS of the lock word from a word that
 * names workerData.deadSlot (the lock of a dead holder, being broken) stores 1 into ctl[0] and
 * waits, before the CAS, until ctl[1] is nonzero. Then, with workerData.stop:
 * - 'before': the thread ends there (process.exit, as worker.terminate() can stop a thread at any
 *   Atomics call), the CAS not made;
 * - 'after': the CAS is made; where it took the lock (it returned the word it expected) the thread
 *   ends right after it, before anything else (ctl[0] = 2 first); where it failed, ctl[0] = 3
 *   and the malloc goes on.
 * Once the malloc returned: ctl[0] = 4, ctl[3] = the block, and it waits for ctl[2] = 2 to free it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { stopHere } from './atomics-stop.js';

const { buffer, ctl, deadSlot, stop } = workerData as { buffer: SharedArrayBuffer; ctl: Int32Array; deadSlot: number; stop: 'before' | 'after' };
const heap = SharedHeap.attach(buffer);
parentPort!.postMessage({ slot: internals(heap).slot, threadId: heap.threadId });
const table = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
const cas = table.compareExchange!;
const store = Atomics.store;
const notify = Atomics.notify;
let armed = true;
table.compareExchange = function (this: unknown, ...args: unknown[]): unknown {
  const [a, index, expected] = args as [Int32Array, number, number];
  if (!armed || a.buffer !== buffer || index !== G_LOCK || lockHolder(expected) !== deadSlot) return cas.apply(Atomics, args);
  armed = false;
  store(ctl, 0, 1);
  notify(ctl, 0);
  while (Atomics.load(ctl, 1) === 0) Atomics.wait(ctl, 1, 0);
  if (stop === 'before') stopHere();
  const r = cas.apply(Atomics, args) as number;
  if (r === expected) {
    store(ctl, 0, 2);
    notify(ctl, 0);
    stopHere();
  }
  store(ctl, 0, 3);
  notify(ctl, 0);
  return r;
};
while (Atomics.load(ctl, 2) === 0) Atomics.wait(ctl, 2, 0);
const p = heap.malloc(1 << 20);
store(ctl, 3, p);
store(ctl, 0, 4);
notify(ctl, 0);
while (Atomics.load(ctl, 2) !== 2) Atomics.wait(ctl, 2, 1);
heap.free(p);
store(ctl, 0, 5);
notify(ctl, 0);
