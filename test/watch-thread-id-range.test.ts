/**
 * An audit (2026-12-05): watch(worker) took any safe integer as worker.threadId and recorded
 * threadId + 1 in an Int32 word of its thread area (TH_WATCHING), where 2**32 + k wrapped to k + 1:
 * the record of the running thread k. When the watching thread ended, the thread that marked it
 * dead followed that record (reclaim.ts markDead) and marked thread k dead too, and reclaimed its
 * slot while it ran (check() then found its cached blocks in no magazine). A worker attached to
 * the heap with a Worker-like object { threadId: 2**32 + k, once } showed it; the id must be refused,
 * naming the call, the argument and the value, and nothing recorded.
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { TH_WATCHING, WATCH_ENTRIES } from '../src/layout.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('watch(worker) with a threadId that does not fit its record', () => {
  it.each([2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1])('%d is refused with a RangeError naming it, and nothing is recorded', (id) => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    heaps.push(heap);
    const p = heap.malloc(100);
    heap.u8.fill(3, p, p + 100);
    let error: unknown;
    try {
      heap.watch({ threadId: id, once: () => undefined });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe(`watch(worker): worker.threadId: ${id} (0x${id.toString(16)}) is above the limit ${2 ** 31 - 2}`);
    const t = internals(heap);
    expect(Array.from(t.i32.subarray(t.thW + TH_WATCHING, t.thW + TH_WATCHING + WATCH_ENTRIES))).toEqual(new Array(WATCH_ENTRIES).fill(0));
    heap.check();
    expect(heap.u8.subarray(p, p + 100).every((b) => b === 3)).toBe(true);
    // The largest id that fits is still watched.
    expect(() => heap.watch({ threadId: 2 ** 31 - 2, once: () => undefined })).not.toThrow();
  });
});

/** The build's module (dist/), for a worker started from eval'd code. */
const dist = (path: string): string => pathToFileURL(new URL(`../dist/src/${path}`, import.meta.url).pathname).href;

/**
 * A worker that attaches, watches a Worker-like object with `threadId` workerData.watchId (if
 * given), posts what watch() did, then (B) waits for a message and allocates again, or (A) ends.
 */
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { SharedHeap } = await import(workerData.index);
  const heap = SharedHeap.attach(workerData.buffer);
  const p = heap.malloc(100);
  heap.u8.fill(6, p, p + 100);
  let watched = 'no watch';
  if (workerData.watchId !== undefined) {
    try {
      heap.watch({ threadId: workerData.watchId, once: () => undefined });
      watched = 'watched';
    } catch (e) {
      watched = e.message;
    }
  }
  parentPort.postMessage(watched);
  if (workerData.watchId !== undefined) return; // A ends here, attached
  parentPort.once('message', () => {
    const q = heap.malloc(100);
    heap.free(q);
    parentPort.postMessage(heap.u8.subarray(p, p + 100).every((b) => b === 6) ? 'intact' : 'changed');
  });
})();
`;

/** A worker's messages in order, and its exit, listened for from its start (an error rejects both). */
function listen(w: Worker): { next: () => Promise<unknown>; exited: Promise<void> } {
  const queue: unknown[] = [];
  const waiting: ((v: unknown) => void)[] = [];
  let failed: unknown;
  const failures: ((e: unknown) => void)[] = [];
  w.on('message', (m) => (waiting.length > 0 ? waiting.shift()!(m) : queue.push(m)));
  const exited = new Promise<void>((resolve, reject) => {
    w.once('exit', () => resolve());
    w.once('error', (e) => {
      failed = e;
      reject(e);
      for (const f of failures.splice(0)) f(e);
    });
  });
  const next = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failed !== undefined) reject(failed);
      else if (queue.length > 0) resolve(queue.shift());
      else {
        waiting.push(resolve);
        failures.push(reject);
      }
    });
  return { next, exited };
}

describe('a worker that watched a threadId past 2**32', () => {
  it('ends without its exit marking the running thread whose id the wrapped record named dead', async () => {
    const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 4 });
    heaps.push(heap);
    const start = (watchId?: number): Worker =>
      new Worker(workerCode, { eval: true, execArgv: [], workerData: { buffer: heap.buffer, index: dist('index.js'), watchId } });
    const b = start();
    const bEvents = listen(b);
    heap.watch(b);
    expect(await bEvents.next()).toBe('no watch');
    const bId = b.threadId;
    const a = start(2 ** 32 + bId);
    const aEvents = listen(a);
    heap.watch(a);
    const aId = a.threadId;
    const watched = await aEvents.next();
    await aEvents.exited;
    // watch() reclaims A at its exit: wait for its slot to go.
    for (let k = 0; k < 250 && heap.stats().threads.some((s) => s.threadId === aId); k++) await new Promise((r) => setTimeout(r, 20));
    const states = heap.stats().threads.map((s) => `${s.threadId === bId ? 'B' : s.threadId === aId ? 'A' : s.threadId} ${s.state}`);
    b.postMessage('go');
    const bAfter = await bEvents.next();
    let checked = 'passes';
    try {
      heap.check();
    } catch (e) {
      checked = (e as Error).message;
    }
    await b.terminate();
    expect({ watched, states, bAfter, checked }).toEqual({
      watched: `watch(worker): worker.threadId: ${2 ** 32 + bId} (0x${(2 ** 32 + bId).toString(16)}) is above the limit ${2 ** 31 - 2}`,
      states: ['0 attached', 'B attached'],
      bAfter: 'intact',
      checked: 'passes',
    });
  });
});
