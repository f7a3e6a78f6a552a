// Run by test/other-runtimes.test.ts under Bun and Node: workers churning the heap (small and large blocks)
// terminated at varied moments, each watched (heap.watch: reclaimed at its 'exit'); after each,
// the main thread takes the global lock (a large block) and check() passes. Prints one JSON line.
import { Worker } from 'node:worker_threads';
import { SharedHeap } from '../../dist/src/index.js';

const heap = SharedHeap.create({ initialBytes: 64 << 20 });
const rounds = Number(process.argv[2] ?? 12);
let alone = 0;
for (let round = 0; round < rounds; round++) {
  const w = new Worker(new URL('./churn-worker.mjs', import.meta.url), { workerData: { buffer: heap.buffer, seed: round + 1 } });
  heap.watch(w);
  await new Promise((resolve) => w.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 5 + ((round * 7) % 40)));
  const exited = new Promise((resolve) => w.once('exit', resolve));
  await w.terminate();
  await exited;
  heap.free(await heap.mallocAsync(300_000));
  heap.check();
  if (heap.stats().threads.filter((t) => t.state !== 'free').length === 1) alone++;
}
console.log(JSON.stringify({ rounds, alone }));
// The main thread's Web Lock (Deno has navigator.locks) keeps Deno's event loop alive until detach().
heap.detach();
