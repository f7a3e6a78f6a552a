// Run by test/other-runtimes.test.ts under Bun and Deno: a heap shared by this thread and two
// node:worker_threads workers, blocks handed both ways as numbers and freed by the other side;
// prints one JSON line.
import { Worker } from 'node:worker_threads';
import { SharedHeap } from '../../dist/src/index.js';

const heap = SharedHeap.create({ initialBytes: 64 << 20 });
const u8 = new Uint8Array(heap.buffer);
const given = [];
for (let i = 0; i < 8000; i++) {
  const n = i % 100 === 0 ? 140_000 + i : 16 + ((i * 37) % 3000);
  const p = heap.malloc(n);
  if (p === 0) throw new Error('out of memory');
  u8[p] = i & 255;
  u8[p + n - 1] = 7;
  given.push(p);
}
const workers = [0, 1].map((k) => new Worker(new URL('./share-worker.mjs', import.meta.url), { workerData: { buffer: heap.buffer, free: given.slice(k * 4000, (k + 1) * 4000) } }));
const made = await Promise.all(workers.map((w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); })));
let wrong = 0;
let blocks = 0;
for (const list of made) {
  for (const [p, n, v] of list) {
    blocks++;
    if (u8[p] !== v || u8[p + n - 1] !== 9) wrong++;
    heap.free(p);
  }
}
await Promise.all(workers.map((w) => new Promise((resolve) => { w.once('exit', resolve); w.postMessage('detach'); })));
heap.check();
const s = heap.stats();
console.log(JSON.stringify({ blocks, wrong, attached: s.threads.filter((t) => t.state === 'attached').length }));
// The main thread's Web Lock (Deno has navigator.locks) keeps Deno's event loop alive until detach().
heap.detach();
