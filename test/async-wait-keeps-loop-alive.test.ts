/**
 * An audit (2026-12-05): mallocAsync (and the other async calls) wait for a busy global lock with
 * Atomics.waitAsync (lock.ts waitLockAsync), which in Node keeps no event loop alive, its timeout
 * included; and a release does not notify such a waiter (it sets no WAITERS bit). Where nothing else
 * kept the loop alive, the process exited in the middle of the call: code 13 under a top-level
 * await, and the rest of the program never ran. Here the holder is an unref()'d worker that keeps
 * the lock 300 ms: the main thread's `await heap.mallocAsync(100)` must return a block after it.
 * Run in a child process (vitest's own handles keep its loop alive), on the build (dist/).
 */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = (path: string): string => pathToFileURL(new URL(`../dist/src/${path}`, import.meta.url).pathname).href;

const workerCode = `
const { workerData } = require('node:worker_threads');
(async () => {
  const { SharedHeap } = await import(workerData.index);
  const { internals } = await import(workerData.heap);
  const { lockAcquire, lockRelease } = await import(workerData.lock);
  const heap = SharedHeap.attach(workerData.buffer);
  const t = internals(heap);
  lockAcquire(t);
  Atomics.store(workerData.gate, 0, 1);
  Atomics.notify(workerData.gate, 0);
  Atomics.wait(workerData.gate, 0, 1, 300); // holds the lock 300 ms
  lockRelease(t);
  Atomics.wait(workerData.gate, 0, 1, 5000); // and runs on, the main thread's exit ends it
})();
`;

const mainCode = `
import { Worker } from 'node:worker_threads';
import { SharedHeap } from ${JSON.stringify(dist('index.js'))};
const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
const gate = new Int32Array(new SharedArrayBuffer(4));
const workerData = {
  buffer: heap.buffer, gate,
  index: ${JSON.stringify(dist('index.js'))}, heap: ${JSON.stringify(dist('heap.js'))}, lock: ${JSON.stringify(dist('lock.js'))},
};
const worker = new Worker(${JSON.stringify(workerCode)}, { eval: true, workerData, execArgv: [] });
worker.unref();
Atomics.wait(gate, 0, 0, 10000); // the worker holds the lock
if (Atomics.load(gate, 0) !== 1) throw new Error('the worker did not take the lock');
const p = await heap.mallocAsync(100); // an empty magazine: the pool, under the lock
console.log('resumed', p > 0);
heap.free(p);
heap.check();
console.log('checked');
`;

describe('an async call waiting for the global lock', () => {
  it('keeps the event loop alive until it returns, where nothing else does', () => {
    let out: string;
    let status = 0;
    try {
      out = execFileSync(process.execPath, ['--input-type=module', '-e', mainCode], { encoding: 'utf8', timeout: 60_000 });
    } catch (e) {
      const err = e as { status: number; stdout: string; stderr: string };
      status = err.status;
      out = `${err.stdout}${err.stderr}`;
    }
    expect({ status, out: out.trim() }).toEqual({ status: 0, out: 'resumed true\nchecked' });
  });
});

describe('every async call at once, the only work of a process (an audit of the async calls interleaved)', () => {
  const allCalls = (withWorker: boolean): string => `
import { Worker } from 'node:worker_threads';
import { SharedHeap } from ${JSON.stringify(dist('index.js'))};
const heap = SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 2, stage1Keep: 0 });
const big = heap.malloc(300 << 10); heap.malloc(200 << 10); const big2 = heap.malloc(400 << 10);
heap.flush();
const gate = new Int32Array(new SharedArrayBuffer(4));
if (${withWorker}) {
  const workerData = { buffer: heap.buffer, gate, index: ${JSON.stringify(dist('index.js'))}, heap: ${JSON.stringify(dist('heap.js'))}, lock: ${JSON.stringify(dist('lock.js'))} };
  const worker = new Worker(${JSON.stringify(workerCode)}, { eval: true, workerData, execArgv: [] });
  worker.unref();
  Atomics.wait(gate, 0, 0, 10000);
  if (Atomics.load(gate, 0) !== 1) throw new Error('the worker did not take the lock');
}
// No await at top level: only the async calls (and the worker, unref()'d) are pending.
Promise.all([heap.callocAsync(10, 30000), heap.alignedAllocAsync(4096, 500 << 10), heap.reallocAsync(big, 900 << 10), heap.freeAsync(big2), heap.mallocAsync(64)]).then((ps) => {
  console.log('resolved', ps.filter((p) => p > 0).length);
  heap.check();
  globalThis.doneAt = performance.now();
});
process.on('exit', () => console.log('exit after', globalThis.doneAt === undefined ? 'never done' : Math.round(performance.now() - globalThis.doneAt) < 1000 ? 'under a second' : Math.round(performance.now() - globalThis.doneAt) + ' ms'));
`;
  for (const withWorker of [true, false]) {
    it(`${withWorker ? 'calls waiting for an unref()\'d worker\'s lock keep it alive until they resolve' : 'nothing waiting'}, and the process exits promptly after`, () => {
      let out: string;
      let status = 0;
      try {
        out = execFileSync(process.execPath, ['--input-type=module', '-e', allCalls(withWorker)], { encoding: 'utf8', timeout: 30_000 });
      } catch (e) {
        const err = e as { status: number; stdout: string; stderr: string };
        status = err.status;
        out = `${err.stdout}${err.stderr}`;
      }
      expect({ status, out: out.trim() }).toEqual({ status: 0, out: 'resolved 4\nexit after under a second' });
    }, 40_000);
  }
});
