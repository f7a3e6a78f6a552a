/**
 * A piscina task file (test/watch-pool-unready-thread.test.ts) whose thread attaches when it loads,
 * as examples/piscina/task.ts does, counts the attach in `control[0]`, and then, as workerData
 * says: goes on loading until it is terminated ('hold': the pool never sees it ready), throws
 * ('throw') or exits ('exit') while loading, or loads ('none').
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

export interface PoolAttachData {
  buffer: SharedArrayBuffer;
  control: Int32Array;
  atLoad: 'hold' | 'throw' | 'exit' | 'none';
  /** A second heap the thread attaches to as well. */
  also?: SharedArrayBuffer;
}

const data = workerData as PoolAttachData;
const heap = SharedHeap.attach(data.buffer);
if (data.also !== undefined) SharedHeap.attach(data.also);
Atomics.add(data.control, 0, 1);
Atomics.notify(data.control, 0);
if (data.atLoad === 'throw') throw new Error('pool-attach-task: thrown while loading, after the attach');
if (data.atLoad === 'exit') process.exit(3);
if (data.atLoad === 'hold') Atomics.wait(data.control, 1, 0); // nobody writes it: until terminated

/** A block of `n` bytes. */
export default function make(n: number): number {
  return heap.malloc(n);
}
