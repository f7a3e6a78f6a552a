/**
 * Test worker for test/realloc-freed-meanwhile.test.ts, in one of two roles (workerData.role):
 * 'realloc' reallocates the block it is sent ({ p, size }) and posts what came of it; 'free' waits
 * (synchronously, so that its event loop cannot answer yet) until another thread asks it to flush
 * (its TH_FLUSH_ASK word, flush-ask.ts), then frees the blocks it was sent ({ ps }) and posts
 * 'freed': the asker, out of memory in the middle of a realloc's move, waits for that answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HeapError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { FA_LISTENING, TH_FLUSH_ASK } from '../src/layout.js';

const { buffer, role } = workerData as { buffer: SharedArrayBuffer; role: 'realloc' | 'free' };
const heap = SharedHeap.attach(buffer);
const t = internals(heap);
parentPort!.on('message', (m: { p: number; size: number } | { ps: number[] }) => {
  if (role === 'realloc') {
    const { p, size } = m as { p: number; size: number };
    try {
      const q = heap.realloc(p, size);
      parentPort!.postMessage({ q });
    } catch (e) {
      parentPort!.postMessage({ name: (e as Error).name, message: (e as Error).message, heapError: e instanceof HeapError });
    }
    return;
  }
  const w = t.thW + TH_FLUSH_ASK;
  parentPort!.postMessage('waiting');
  const asked = Atomics.wait(t.i32, w, FA_LISTENING, 10_000) !== 'timed-out' || Atomics.load(t.i32, w) !== FA_LISTENING;
  for (const p of (m as { ps: number[] }).ps) heap.free(p);
  parentPort!.postMessage({ freed: true, asked });
});
parentPort!.postMessage('ready');
