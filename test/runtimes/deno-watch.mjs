// Run by test/other-runtimes.test.ts under Deno: watch(worker) is refused (Deno's 'exit' event can
// come while a terminated worker still runs), and reclaim(worker) after the exit says so too rather
// than advise watch(). Prints one JSON line.
import { Worker } from 'node:worker_threads';
import { SharedHeap } from '../../dist/src/index.js';

const heap = SharedHeap.create({ initialBytes: 64 << 20 });
const w = new Worker(new URL('./share-worker.mjs', import.meta.url), { workerData: { buffer: heap.buffer, free: [] } });
let error = null;
try {
  heap.watch(w);
} catch (e) {
  error = { name: e.name, code: e.code, message: e.message };
}
const made = await new Promise((resolve) => w.once('message', resolve));
for (const [p] of made) heap.free(p);
await new Promise((resolve) => {
  w.once('exit', resolve);
  w.postMessage('detach');
});
let reclaimError = null;
try {
  heap.reclaim(w);
} catch (e) {
  reclaimError = { name: e.name, message: e.message };
}
heap.check();
console.log(JSON.stringify({ error, reclaimError }));
// The main thread's Web Lock (Deno has navigator.locks) keeps Deno's event loop alive until detach().
heap.detach();
