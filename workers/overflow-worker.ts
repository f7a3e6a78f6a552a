/**
 * Test worker for test/faults.test.ts ("a call cut off by a stack overflow"): attaches to the
 * heap in workerData.buffer, then, round after round, recurses to its stack's limit and calls
 * malloc, free and flush at each of the last 400 (first round, the fault path never run before)
 * or 1,000 depths on the way back, each through 16 frames of 8-byte steps, so that V8's
 * RangeError cuts calls off at every kind of point inside the slow paths (under the global lock,
 * in a drain's journal, in a lock-free push). After a round whose fault stopped its instance, it
 * attaches again (which reclaims the stopped slot). It runs in a worker so that a heap left
 * corrupt, which can make a list walk loop forever, fails the test by its timeout instead of
 * hanging the run. Posts { faults, messages, ops } at the end and stays attached.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { nearTheStackLimit, throughPads } from './stack-limit.js';

const { buffer, rounds } = workerData as { buffer: SharedArrayBuffer; rounds: number };
let heap = SharedHeap.attach(buffer);
const sizes = [16, 100, 1000, 5000, 20000, 70000, 200_000, 1_500_000];
let faults = 0;
let ops = 0;
const messages: string[] = [];

/** What the heap threw besides the overflow itself (a RangeError: at a call before anything changed, or while the error of a fault was being made). */
const keep = (e: unknown): void => {
  if (!(e instanceof RangeError) && messages.length < 200) messages.push((e as Error).message);
};

const op = (): void => {
  const p = heap.malloc(sizes[ops++ % sizes.length]!);
  if (p !== 0) heap.free(p);
  if ((ops & 7) === 0) heap.flush();
};
throughPads(op, keep); // the calls' own paths compiled first, not what a fault takes

for (let round = 0; round < rounds; round++) {
  nearTheStackLimit(round === 0 ? 400 : 1000, op, keep);
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
// Stays attached until terminated: a listener keeps the port, and so the thread, alive. (Without
// one the worker exited as soon as its script ended, and watch() reclaimed its slot at that exit,
// sometimes before the test had counted the slots it expects attached.)
parentPort!.on('message', () => {});
