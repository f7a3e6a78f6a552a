/**
 * Test worker for test/out-of-memory-crash-points.test.ts: on a heap whose memory another (idle,
 * listening) thread holds, runs out of memory over and over, asking that thread to flush
 * (flush-ask.ts), and is stopped before its n-th Atomics call (as worker.terminate() can stop a
 * thread; workers/crash-worker.ts does the same for the crash-point scenarios, none of which runs
 * out of memory). n = 0 counts the calls and posts { calls, notifies } (the numbers of the calls that
 * are Atomics.notify).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armAtomics, ATOMICS_METHODS, stopHere } from './atomics-stop.js';

const { buffer, n, blocks, ctl, ledger } = workerData as { buffer: SharedArrayBuffer; n: number; blocks: number[]; ctl: Int32Array; ledger: Int32Array };
const heap = SharedHeap.attach(buffer);
Atomics.store(ctl, 1, heap.threadId + 1);
// The other thread's blocks, freed here: they wait on its slabs' remote lists.
for (const p of blocks) heap.free(p);
heap.flush();

const notifies: number[] = []; // the calls that are notifies (of asks to flush, answers' waits...)
const disarm = armAtomics(
  n,
  () => {
    Atomics.store(ctl, 0, 1); // stopped
    return stopHere();
  },
  ATOMICS_METHODS,
  (method, call) => {
    if (method === 'notify' && n === 0) notifies.push(call);
  },
);

// Every block this thread holds is in the ledger (plain writes, no Atomics call between a malloc's
// return and its entry, nor between an entry's clear and its free): what a thread that dies holds,
// the program frees (the blocks it had handed out, say).
function fill(size: number, max: number): void {
  let k = 0;
  for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) {
    ledger[k++] = p;
    if (k >= max) break;
  }
  while (k > 0) {
    const p = ledger[--k]!;
    ledger[k] = 0;
    heap.free(p);
  }
}
fill(1000, ledger.length);
fill(300000, ledger.length);
fill(100, ledger.length);
const calls = disarm();
parentPort!.postMessage({ calls, notifies });
