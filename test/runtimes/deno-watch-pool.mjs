// Run by test/deno-watch-pool.test.ts under Deno: watchPool(heap, pool) of a pool with no thread
// yet (piscina with minThreads 0 starts its threads later, at its 'workerCreate' events). watch()
// throws in Deno, and watchPool must say so at its own call, not at the pool's next thread start,
// where the error came out of the pool's event (out of pool.run() in piscina). Prints one JSON line.
import { SharedHeap } from '../../dist/src/index.js';
import { watchPool } from '../../dist/src/node.js';

const heap = SharedHeap.create({ initialBytes: 8 << 20 });
const listeners = [];
const pool = { threads: [], on: (event, fn) => listeners.push({ event, fn }) };
let atCall = null;
try {
  watchPool(heap, pool);
} catch (e) {
  atCall = { name: e.name, message: e.message };
}
// The pool starts a thread (a Worker-like object: watch() reads threadId and once()).
pool.threads.push({ threadId: 7, once: () => undefined });
let atEvent = null;
for (const l of listeners) {
  try {
    l.fn();
  } catch (e) {
    atEvent = { name: e.name, message: e.message };
  }
}
heap.check();
console.log(JSON.stringify({ atCall, atEvent, listeners: listeners.length }));
heap.detach();
