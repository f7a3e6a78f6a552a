/**
 * Test worker for test/attach-race-kept-slot.test.ts: attaches to the heap in workerData, held
 * right after attach counted the slots taken, at its first Atomics.compareExchange: it stores 1
 * into gate[0] and waits until gate[0] is 2, then goes on. Posts { threadId } or { error } (the
 * message of what attach threw).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

const { buffer, gate } = workerData as { buffer: SharedArrayBuffer; gate: Int32Array };
const cas = Atomics.compareExchange;
let armed = true;
(Atomics as { compareExchange: typeof cas }).compareExchange = ((a: Int32Array, i: number, e: number, r: number) => {
  if (armed) {
    armed = false;
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const until = Date.now() + 20_000;
    while (Atomics.load(gate, 0) !== 2 && Date.now() < until) Atomics.wait(gate, 0, 1, 50);
  }
  return cas(a, i, e, r);
}) as typeof cas;
try {
  const heap = SharedHeap.attach(buffer);
  (Atomics as { compareExchange: typeof cas }).compareExchange = cas;
  parentPort!.postMessage({ threadId: heap.threadId });
  parentPort!.once('message', () => {
    heap.detach();
    parentPort!.postMessage({ detached: true });
  });
} catch (e) {
  (Atomics as { compareExchange: typeof cas }).compareExchange = cas;
  parentPort!.postMessage({ error: (e as Error).message });
}
