/**
 * sabmalloc with a piscina pool: the heap goes to every pool thread in workerData; tasks return
 * block offsets (no copy of the data), which the main thread reads and frees. watchPool()
 * reclaims each pool thread's slot when it exits, so destroying the pool leaves no thread
 * attached.
 *
 * Build and run, copied into a project of your own with sabmalloc, piscina and @types/node installed
 * and "type": "module": `tsc --module nodenext --target esnext --types node --strict *.ts`, then `node main.js`
 * (task.js beside it). (examples/tsconfig.json only type-checks them here, against ../src;
 * examples.test.ts runs them.)
 */
import { Piscina } from 'piscina';
import { SharedHeap } from 'sabmalloc';
import { watchPool } from 'sabmalloc/node';
import type { PoolData } from './task.js';

const heap = SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 8 });
const pool = new Piscina<{ n: number }, number>({
  filename: new URL('./task.js', import.meta.url).href,
  workerData: { buffer: heap.buffer, memory: heap.memory } satisfies PoolData,
  minThreads: 4,
  maxThreads: 4,
  // Between tasks a pool thread waits in its event loop, not in Atomics.wait (piscina's default,
  // 'sync'): there it answers a thread out of memory that asks it to flush, which gives back the
  // blocks that other threads freed into its slabs. Blocked in Atomics.wait, an idle pool thread
  // never answered, and the memory of every block a task made and the main thread freed stayed out
  // of the other threads' reach while the pool idled (about a third of this heap, an audit).
  atomics: 'async',
});
watchPool(heap, pool);

const blocks = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.run({ n: i + 1 })));
let wrong = 0;
for (let i = 0; i < blocks.length; i++) {
  const n = i + 1;
  const words = new Int32Array(heap.buffer, blocks[i]!, n);
  for (let k = 0; k < n; k++) if (words[k] !== (k + 1) * (k + 1)) wrong++;
  heap.free(blocks[i]!); // a block made by a pool thread, freed here
}
const during = heap.stats().threadsAttached;

// While the pool idles, that memory is everyone's again: the main thread can take the whole heap
// (a malloc out of memory waits up to 50 ms for the answers; a later one finds what came later).
const refill: number[] = [];
const fill = (): void => {
  for (let p = heap.malloc(1024); p !== 0; p = heap.malloc(1024)) refill.push(p);
};
fill();
await new Promise((r) => setTimeout(r, 100));
fill();
for (const p of refill) heap.free(p);

await pool.destroy(); // terminates the pool's threads; watchPool reclaims their slots
heap.check();
const after = heap.stats();
console.log(
  JSON.stringify({
    tasks: blocks.length,
    wrong,
    attachedWhileRunning: during,
    refilledKiBBlocks: refill.length,
    attachedAfterDestroy: after.threadsAttached,
    reclaims: after.reclaims,
    liveBytes: after.liveBytes,
  }),
);
heap.detach();
