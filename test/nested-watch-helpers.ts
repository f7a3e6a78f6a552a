/**
 * Test helpers for test/nested-watch*.test.ts: workers started here (ended by endStarted, for
 * afterEach), a tree of nested-watch workers, and the ids of the threads a heap holds.
 */
import { Worker } from 'node:worker_threads';
import type { SharedHeap } from '../src/index.js';
import { workerEntry } from '../bench/worker-entry.js';
import { terminateAll } from './remote-heap.js';

const started = new Set<Worker>();

/** Starts workers/<name> with `workerData` (its filename added as `filename`); endStarted() ends it. */
export function startNamed(name: string, workerData: Record<string, unknown>): Worker {
  const e = workerEntry(name);
  const worker = new Worker(e.filename, { execArgv: e.execArgv, workerData: { ...workerData, filename: e.filename } });
  started.add(worker);
  return worker;
}

/** Ends every worker started here and by remote-heap.ts (for afterEach). */
export async function endStarted(): Promise<void> {
  const ws = [...started];
  started.clear();
  await Promise.all(ws.map((w) => w.terminate()));
  await terminateAll();
}

/** Starts a tree of nested-watch workers; resolves with the worker and every thread id in the tree. */
export async function tree(heap: SharedHeap, depth: number, fanout: number, ctl?: Int32Array): Promise<{ worker: Worker; ids: number[] }> {
  const lockLeaf = ctl !== undefined;
  const worker = startNamed('nested-watch-worker', { buffer: heap.buffer, depth, fanout, lockLeaf, ctl: ctl ?? new Int32Array(new SharedArrayBuffer(8)) });
  const ids = await new Promise<number[]>((resolve, reject) => {
    worker.once('message', (m: { ids: number[] }) => resolve(m.ids));
    worker.once('error', reject);
  });
  return { worker, ids };
}

/** The threadIds of the slots that are not free. */
export const attachedIds = (heap: SharedHeap): number[] => heap.stats().threads.filter((x) => x.state !== 'free').map((x) => x.threadId);
