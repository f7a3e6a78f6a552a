/**
 * Test worker for test/faults.test.ts ("a call cut off by a stack overflow"): attaches to the
 * heap in workerData.buffer, then, round after round, recurses to its stack's limit and calls
 * malloc, free and flush at each of the last 1,000 depths on the way back, so that V8's
 * RangeError cuts calls off at every kind of point inside the slow paths (under the global lock,
 * in a drain's journal, in a lock-free push). After a round whose fault stopped its instance, it
 * attaches again (which reclaims the stopped slot). It runs in a worker so that a heap left
 * corrupt, which can make a list walk loop forever, fails the test by its timeout instead of
 * hanging the run. Posts { faults, messages, ops } at the end and stays attached.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

const { buffer, rounds } = workerData as { buffer: SharedArrayBuffer; rounds: number };
let heap = SharedHeap.attach(buffer);
const sizes = [16, 100, 1000, 5000, 20000, 70000, 200_000, 1_500_000];
let faults = 0;
let ops = 0;
const messages: string[] = [];

function nearTheStackLimit(depths: number, op: () => void): void {
  let max = 0;
  const probe = (n: number): void => {
    if (n > max) max = n;
    try {
      probe(n + 1);
    } catch {
      // the limit
    }
    if (n > max - depths) op();
  };
  probe(0);
}

for (let round = 0; round < rounds; round++) {
  nearTheStackLimit(1000, () => {
    try {
      const p = heap.malloc(sizes[ops++ % sizes.length]!);
      if (p !== 0) heap.free(p);
      if ((ops & 7) === 0) heap.flush();
    } catch (e) {
      // RangeError: the overflow itself, at a call before anything changed or while a fault's
      // error was being made; anything else is kept (no RegExp here: V8 compiling one at the
      // stack's limit ends the process).
      if (!(e instanceof RangeError) && messages.length < 200) messages.push((e as Error).message);
    }
  });
  try {
    heap.stats();
  } catch (e) {
    messages.push(`after round ${round}: ${(e as Error).message}`);
    faults++;
    heap = SharedHeap.attach(buffer);
    heap.check();
  }
}
parentPort!.postMessage({ faults, messages, ops });
