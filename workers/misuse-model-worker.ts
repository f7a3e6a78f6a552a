/**
 * misuse-model: a worker of test/misuse-model.test.ts. Attaches to the heap in workerData; each
 * message hands it blocks of the main thread's (as numbers, with their model), which it frees,
 * reallocates or keeps, then it makes random calls, valid and invalid (workers/misuse-model-core.ts),
 * and hands every block it holds back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap, type SharedMemory } from '../src/index.js';
import { MisuseModel, Rand, type Owned } from './misuse-model-core.js';

interface Init {
  buffer: SharedArrayBuffer | SharedMemory;
  seed: number;
  who: string;
  debug: boolean;
  heapBytes: number;
  maxLive: number;
}
interface Round {
  blocks: Owned[];
  ops: number;
  /** Whether the other threads run meanwhile (then no check(), no misuse of offsets this thread does not own). */
  concurrent: boolean;
  /** The block starts the main thread owns, which this thread's misuse must not hit. */
  mainOwns: number[];
}

const init = workerData as Init;
const heap = SharedHeap.attach(init.buffer);
const model = new MisuseModel(heap, new Rand(init.seed), init.who, init.debug, init.heapBytes, init.maxLive);
parentPort!.postMessage({ type: 'ready', threadId: heap.threadId });
parentPort!.on('message', (m: Round) => {
  const mainOwns = new Set(m.mainOwns);
  model.others = (p) => mainOwns.has(p);
  model.concurrent = m.concurrent;
  model.round(m.blocks, m.ops).then(
    (blocks) => parentPort!.postMessage({ type: 'done', blocks, freed: model.freed, counts: model.counts }),
    (e: unknown) => parentPort!.postMessage({ type: 'fail', message: (e as Error)?.message ?? String(e) }),
  );
});
