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

const { buffer, rounds } = workerData as { buffer: SharedArrayBuffer; rounds: number };
let heap = SharedHeap.attach(buffer);
const sizes = [16, 100, 1000, 5000, 20000, 70000, 200_000, 1_500_000];
let faults = 0;
let ops = 0;
const messages: string[] = [];

// Calls through frames of 0 to 15 more 8-byte arguments, so that the stack left where op runs
// takes every 8-byte step (an audit's way to meet every point of the slow paths).
type Pad = ((op: () => void, ...a: number[]) => void) & { go: (f: Pad, op: () => void) => void };
const pads: Pad[] = [];
for (let k = 0; k < 16; k++) {
  const args = Array.from({ length: k }, (_, j) => `a${j}`);
  const pad = new Function('op', ...args, 'return op();') as Pad;
  pad.go = new Function('f', 'op', `return f(op${',0'.repeat(k)});`) as Pad['go'];
  pads.push(pad);
}

/** Runs op through every pad, keeping what the heap threw (a RangeError: the overflow itself, at a call before anything changed, or while the error of a fault was being made). */
function throughPads(op: () => void): void {
  for (const pad of pads) {
    try {
      pad.go(pad, op);
    } catch (e) {
      // No RegExp here: V8 compiling one at the stack's limit ends the process.
      if (!(e instanceof RangeError) && messages.length < 200) messages.push((e as Error).message);
    }
  }
}

function nearTheStackLimit(depths: number, op: () => void): void {
  let max = 0;
  const probe = (n: number): void => {
    if (n > max) max = n;
    try {
      probe(n + 1);
    } catch {
      // the limit
    }
    if (n > max - depths) throughPads(op);
  };
  probe(0);
}

const op = (): void => {
  const p = heap.malloc(sizes[ops++ % sizes.length]!);
  if (p !== 0) heap.free(p);
  if ((ops & 7) === 0) heap.flush();
};
throughPads(op); // the calls' own paths compiled first, not what a fault takes

for (let round = 0; round < rounds; round++) {
  nearTheStackLimit(round === 0 ? 400 : 1000, op);
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
