import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../../dist/src/index.js';

const heap = SharedHeap.attach(workerData.buffer);
const u8 = new Uint8Array(heap.buffer);
for (const p of workerData.free) heap.free(p);
const out = [];
for (let i = 0; i < 4000; i++) {
  const n = i % 50 === 0 ? 130_000 + i * 7 : 16 + ((i * 53) % 2000);
  const p = heap.malloc(n);
  if (p === 0) throw new Error('out of memory');
  u8[p] = i & 255;
  u8[p + n - 1] = 9;
  out.push([p, n, i & 255]);
}
parentPort.postMessage(out);
parentPort.once('message', () => {
  heap.detach();
  process.exit(0);
});
