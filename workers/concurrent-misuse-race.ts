/**
 * A worker of test/concurrent-misuse.test.ts (from an audit of 2026-12-07): round after round it
 * calls free or realloc on the one large block that the other workers get at the very same moment
 * (behind a spin barrier), and records what its call did.
 *
 * ctrl (Int32): [0] the round (-1: end), [1] the block, [2] arrived, [3] done, [4] workers,
 * [5] the block's size; for worker k at 8 + 4k: [+0] its call (RACE_FREE, RACE_GROW, RACE_SHRINK),
 * [+1] its outcome (RACE_OK, RACE_DOUBLE_FREE, RACE_OTHER: then posted), [+2] realloc's answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DoubleFreeError, SharedHeap, type SharedMemory } from '../src/index.js';

export const RACE_FREE = 0;
const RACE_GROW = 1;
const RACE_SHRINK = 2;
export const RACE_OK = 1;
export const RACE_DOUBLE_FREE = 2;
const RACE_OTHER = 3;
export const raceWords = (workers: number): number => 8 + 4 * workers;

if (parentPort !== null && workerData?.ctrl !== undefined) {
  const { buffer, ctrl, k } = workerData as { buffer: SharedArrayBuffer | SharedMemory; ctrl: SharedArrayBuffer; k: number };
  const heap = SharedHeap.attach(buffer);
  const c = new Int32Array(ctrl);
  const at = 8 + 4 * k;
  parentPort.postMessage({ threadId: heap.threadId });
  for (let round = 0; ; ) {
    while (Atomics.load(c, 0) === round) Atomics.wait(c, 0, round, 1000);
    round = Atomics.load(c, 0);
    if (round < 0) break;
    const p = c[1]!;
    const size = c[5]!;
    const call = c[at]!;
    Atomics.add(c, 2, 1);
    while (Atomics.load(c, 2) < c[4]!); // every worker at this line: go
    let outcome = RACE_OK;
    let q = 0;
    try {
      if (call === RACE_FREE) heap.free(p);
      else if (call === RACE_GROW) q = heap.realloc(p, size * 2);
      else if (call === RACE_SHRINK) q = heap.realloc(p, (size >> 2) + 16);
    } catch (e) {
      outcome = e instanceof DoubleFreeError ? RACE_DOUBLE_FREE : RACE_OTHER;
      if (outcome === RACE_OTHER) parentPort.postMessage(`round ${round}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
    }
    c[at + 2] = q;
    c[at + 1] = outcome;
    Atomics.add(c, 3, 1);
    Atomics.notify(c, 3);
  }
  heap.flush();
}
