/**
 * Test helper: starts workers/heap-worker in a worker thread and wraps it with comlink, and
 * keeps a list of every worker started so that afterEach can terminate them all.
 */
import { Worker } from 'node:worker_threads';
import { wrap, releaseProxy, type Remote } from 'comlink';
import { nodeEndpoint } from '../workers/comlink-node.js';
import { workerEntry } from '../bench/worker-entry.js';
import type { HeapWorkerApi } from '../workers/heap-worker.js';

export { nodeEndpoint };

export interface RemoteHeap {
  worker: Worker;
  remote: Remote<HeapWorkerApi>;
  /** Resolves with the exit code once the worker has exited (after the 'exit' listeners that were added before it). */
  exited: Promise<number>;
}

/** Every worker started by startWorker/startHeapWorker and not yet terminated by terminateAll. */
const live = new Set<Worker>();

/** Starts workers/<name> with `workerData`; it is terminated by terminateAll(). */
export function startWorker(name: string, workerData?: unknown): Worker {
  const e = workerEntry(name);
  const worker = new Worker(e.filename, { execArgv: e.execArgv, workerData });
  live.add(worker);
  worker.once('exit', () => live.delete(worker));
  return worker;
}

/** Starts a heap-worker; `beforeExit` runs first (e.g. heap.watch) so it sees the exit before `exited` resolves. */
export function startHeapWorker(beforeExit?: (w: Worker) => void): RemoteHeap {
  const worker = startWorker('heap-worker');
  beforeExit?.(worker);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const remote = wrap<HeapWorkerApi>(nodeEndpoint(worker));
  return { worker, remote, exited };
}

/** Terminates every worker still running (for afterEach). */
export async function terminateAll(): Promise<void> {
  const ws = [...live];
  live.clear();
  await Promise.all(ws.map((w) => w.terminate()));
}

/** Drops comlink's proxy (its message listener) so the worker object can be collected. */
export function release(r: RemoteHeap): void {
  r.remote[releaseProxy]();
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs?: number) => {
  async: boolean;
  value: Promise<'ok' | 'timed-out'> | 'not-equal' | 'timed-out';
};
/** Atomics.waitAsync (Node 16+; not in the ES2022 lib typings). */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Resolves once `a[index]` satisfies `done`, waking on Atomics.notify of that word (and every
 * `sliceMs` in case a notify was missed); the main thread's event loop keeps running meanwhile.
 */
export async function waitFor(a: Int32Array, index: number, done: (v: number) => boolean, sliceMs = 50): Promise<number> {
  for (;;) {
    const v = Atomics.load(a, index);
    if (done(v)) return v;
    const r = waitAsync(a, index, v, sliceMs);
    if (r.async) await r.value;
  }
}

/** A test worker (workers/<name>.ts) given the heap's buffer, which posts { threadId } once attached. */
export interface TestThread {
  w: Worker;
  id: number;
  exit: Promise<number>;
}

/** Starts workers/<name>.ts on `buffer` and resolves once it has attached. */
export function startThread(name: string, buffer: SharedArrayBuffer): Promise<TestThread> {
  const w = startWorker(name, { buffer });
  const exit = new Promise<number>((r) => w.once('exit', r));
  return new Promise((r) => w.once('message', (m: { threadId: number }) => r({ w, id: m.threadId, exit })));
}

/** Posts `m` to the thread and resolves with its next message. */
export function ask<T>(x: TestThread, m: unknown): Promise<T> {
  return new Promise((r) => {
    x.w.once('message', r);
    x.w.postMessage(m);
  });
}

/**
 * Resolves once a heap-worker's callPausingAt call is paused at its crash point (gate[0] 1);
 * fails the test if the call ended first (it passed fewer crash points).
 */
export async function pausedAtCrashPoint(gate: Int32Array, call: Promise<unknown>): Promise<void> {
  const where = await Promise.race([waitFor(gate, 0, (x) => x === 1).then(() => 'paused'), call.then(() => 'ended')]);
  if (where !== 'paused') throw new Error('pausedAtCrashPoint: the call ended before its crash point');
}

/** Lets a call paused by callPausingAt go on. */
export function resumeFromCrashPoint(gate: Int32Array): void {
  Atomics.store(gate, 0, 2);
  Atomics.notify(gate, 0);
}
