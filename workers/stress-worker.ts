/**
 * A worker of the stress test (test/stress.test.ts): attaches to the heap and runs the harness
 * loop (test/stress-harness.ts) until the test terminates it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { C_READY, stressLoop, type StressWorkerData } from '../test/stress-harness.js';

function run(d: StressWorkerData): void {
  const heap = SharedHeap.attach(d.buffer);
  const mem = new Int32Array(d.buffer); // over a growable buffer, a view that tracks its length
  Atomics.add(d.shared.ctl, C_READY, 1);
  Atomics.notify(d.shared.ctl, C_READY);
  stressLoop(heap, mem, d.shared, d.w, d.id, Infinity, d.seed);
}

if (parentPort !== null && (workerData as Partial<StressWorkerData> | null)?.kind === 'stress') run(workerData as StressWorkerData);
