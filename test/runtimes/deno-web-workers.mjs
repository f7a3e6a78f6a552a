// Run by test/other-runtimes.test.ts under Deno: Web Workers (new Worker(url, { type: 'module' }))
// attached with attachAsync under ids the main thread reserved, churning the heap in batches (a
// turn of the event loop between them), terminated at varied moments and reclaimed by
// reclaimWhenGone (the worker's Web Lock, which Deno lets go once the worker stopped); after each,
// a large block (the global lock) and check(). Prints one JSON line.
import { SharedHeap } from '../../dist/src/index.js';

const heap = SharedHeap.create({ initialBytes: 64 << 20 });
const rounds = Number(Deno.args[0] ?? 8);
let reclaimed = 0;
let alone = 0;
for (let round = 0; round < rounds; round++) {
  const w = new Worker(new URL('./deno-web-churn.mjs', import.meta.url), { type: 'module' });
  const threadId = heap.newThreadId();
  const started = new Promise((resolve) => (w.onmessage = resolve));
  w.postMessage({ buffer: heap.buffer, threadId, seed: round + 1 });
  await started;
  await new Promise((resolve) => setTimeout(resolve, 5 + ((round * 7) % 40)));
  w.terminate();
  if (await heap.reclaimWhenGone(threadId)) reclaimed++;
  heap.free(await heap.mallocAsync(300_000));
  heap.check();
  if (heap.stats().threads.filter((t) => t.state !== 'free').length === 1) alone++;
}
console.log(JSON.stringify({ rounds, reclaimed, alone }));
// The main thread's Web Lock (Deno has navigator.locks) keeps Deno's event loop alive until detach().
heap.detach();
