/**
 * fuzz: a worker of the randomized heap fuzzer (test/fuzz-heap.test.ts). Attaches to the heap in
 * workerData, then runs rounds of random calls (workers/fuzz-core.ts) on messages from the test.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap, type SharedMemory } from '../src/index.js';
import { Fuzzer, Rng, type Block, type FuzzConfig } from './fuzz-core.js';

interface Init {
  buffer: SharedArrayBuffer | SharedMemory;
  seed: number;
  who: string;
  cfg: FuzzConfig;
}
type Msg = { type: 'round'; ops: number; inbox: Block[] } | { type: 'verify' } | { type: 'freeAll' } | { type: 'flush' } | { type: 'detach' } | { type: 'freeThese'; ps: number[]; flush: boolean } | { type: 'mallocN'; size: number; n: number };

const init = workerData as Init;
const heap = SharedHeap.attach(init.buffer);
const fz = new Fuzzer(heap, new Rng(init.seed), init.who, init.cfg);
parentPort!.postMessage({ type: 'ready', threadId: heap.threadId });
parentPort!.on('message', (m: Msg) => {
  try {
    switch (m.type) {
      case 'round': {
        fz.receive(m.inbox);
        for (let i = 0; i < m.ops; i++) fz.step(false);
        const outbox = fz.outbox;
        fz.outbox = [];
        parentPort!.postMessage({ type: 'done', outbox, counts: fz.counts, live: [...fz.live.values()] });
        break;
      }
      case 'verify':
        fz.verifyAll('verify');
        parentPort!.postMessage({ type: 'done', counts: fz.counts });
        break;
      case 'freeAll':
        fz.freeAll();
        heap.flush();
        parentPort!.postMessage({ type: 'done', counts: fz.counts });
        break;
      case 'flush':
        heap.flush();
        parentPort!.postMessage({ type: 'done', counts: fz.counts });
        break;
      case 'freeThese':
        for (const p of m.ps) heap.free(p);
        if (m.flush) heap.flush();
        parentPort!.postMessage({ type: 'done', counts: fz.counts });
        break;
      case 'mallocN': {
        const ps: number[] = [];
        for (let i = 0; i < m.n; i++) ps.push(heap.malloc(m.size));
        parentPort!.postMessage({ type: 'done', counts: fz.counts, ps });
        break;
      }
      case 'detach':
        heap.detach();
        parentPort!.postMessage({ type: 'done', counts: fz.counts });
        break;
    }
  } catch (e) {
    parentPort!.postMessage({ type: 'fail', message: (e as Error)?.stack ?? String(e) });
  }
});
