/**
 * sabmalloc with comlink: the main thread calls a worker's heap through a typed proxy; strings
 * cross between the threads as block offsets into the shared heap. The worker detaches and is
 * terminated at the end, so the process exits at once.
 *
 * Build and run, copied into a project of your own with sabmalloc, comlink and @types/node installed
 * and "type": "module": `tsc --module nodenext --target esnext --types node --strict *.ts`, then `node main.js`
 * (worker.js beside it). (examples/tsconfig.json only type-checks them here, against ../src;
 * examples.test.ts runs them.)
 */
import { Worker } from 'node:worker_threads';
import { releaseProxy, wrap } from 'comlink';
import { SharedHeap } from 'sabmalloc';
import { nodeEndpoint } from './node-endpoint.js';
import type { HeapWorkerApi } from './worker.js';

const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 4 });
const worker = new Worker(new URL('./worker.js', import.meta.url));
heap.watch(worker); // if it dies, its slot comes back
const remote = wrap<HeapWorkerApi>(nodeEndpoint(worker));

const workerThreadId = await remote.attach(heap.memory ?? heap.buffer); // the memory: its realloc copies with memory.copy

// Worker -> main: the worker stores, the main thread reads and frees.
const fromWorker = await remote.store('made in the worker');
const n = new DataView(heap.buffer).getInt32(fromWorker, true);
const text = new TextDecoder().decode(heap.u8.slice(fromWorker + 4, fromWorker + 4 + n));
heap.free(fromWorker);

// Main -> worker: the main thread stores, the worker reads and frees.
const bytes = new TextEncoder().encode('made on the main thread');
const fromMain = heap.malloc(4 + bytes.length);
new DataView(heap.buffer).setInt32(fromMain, bytes.length, true);
heap.u8.set(bytes, fromMain + 4);
const echoed = await remote.take(fromMain);

await remote.detach();
remote[releaseProxy]();
await worker.terminate(); // without this the worker keeps the process alive
heap.check();
const s = heap.stats();
console.log(JSON.stringify({ workerThreadId, text, echoed, threadsAttached: s.threadsAttached, liveBytes: s.liveBytes }));
heap.detach();
