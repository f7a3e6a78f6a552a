/**
 * The piscina task file: each pool thread attaches to the heap passed in workerData when it
 * loads this module, once; every task then allocates in the shared heap and returns an offset.
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap, type SharedMemory } from 'sabmalloc';

export interface PoolData {
  buffer: SharedArrayBuffer;
  /** heap.memory where the heap has one: attached with, realloc copies with WebAssembly's memory.copy. */
  memory: SharedMemory | undefined;
}

const data = workerData as PoolData;
const heap = SharedHeap.attach(data.memory ?? data.buffer);

/** Writes the squares 1..n as Int32 into a new block; the caller reads and frees it. */
export default function squares({ n }: { n: number }): number {
  const block = heap.malloc(n * 4);
  if (block === 0) throw new Error(`squares(${n}): out of memory`);
  const words = new Int32Array(heap.buffer, block, n);
  for (let i = 0; i < n; i++) words[i] = (i + 1) * (i + 1);
  return block;
}
