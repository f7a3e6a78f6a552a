// Run by test/other-runtimes.test.ts under Deno: two Web Workers attach with plain attach() (the
// browser's second course: the worker posts heap.threadId once threadLockHeld() resolved), each
// mallocs blocks the main thread frees; one is terminated and reclaimed by reclaimWhenGone(). Deno
// answers Node's threadId 0 in every Web Worker, which each took as its id before (the main
// thread's). Prints one JSON line.
import { SharedHeap } from '../../dist/src/index.js';

const heap = SharedHeap.create({ initialBytes: 16 << 20 });
const u8 = new Uint8Array(heap.buffer);
const workers = [0, 1].map(() => new Worker(new URL('./deno-web-attach-worker.mjs', import.meta.url), { type: 'module' }));
const answers = await Promise.all(
  workers.map((w, k) => {
    const answer = new Promise((resolve) => (w.onmessage = (e) => resolve(e.data)));
    w.postMessage({ buffer: heap.buffer, seed: k + 1 });
    return answer;
  }),
);
let wrong = 0;
for (const { blocks } of answers) {
  for (const [p, v] of blocks) {
    if (u8[p] !== v) wrong++;
    heap.free(p);
  }
}
workers[0].terminate();
const reclaimed = await heap.reclaimWhenGone(answers[0].threadId);
heap.check();
const ids = [heap.threadId, ...answers.map((a) => a.threadId)];
const attached = heap.stats().threadsAttached;
workers[1].terminate();
await heap.reclaimWhenGone(answers[1].threadId);
heap.check();
console.log(JSON.stringify({ distinct: new Set(ids).size, held: answers.map((a) => a.held), wrong, reclaimed, attached, end: heap.stats().threadsAttached }));
// The main thread's Web Lock keeps Deno's event loop alive until detach().
heap.detach();
