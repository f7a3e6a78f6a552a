/** Starts workers/capacity-worker.ts in worker threads, wrapped with comlink (test/remote-heap.ts startWorker). */
import type { Worker } from 'node:worker_threads';
import { wrap, releaseProxy, type Remote } from 'comlink';
import { nodeEndpoint, startWorker, terminateAll } from './remote-heap.js';
import type { CapacityWorkerApi } from '../workers/capacity-worker.js';

export interface CapacityWorker {
  worker: Worker;
  remote: Remote<CapacityWorkerApi>;
}

const live = new Set<CapacityWorker>();

export function startCapacityWorker(): CapacityWorker {
  const worker = startWorker('capacity-worker');
  const w = { worker, remote: wrap<CapacityWorkerApi>(nodeEndpoint(worker)) };
  live.add(w);
  return w;
}

/** Releases every capacity worker's proxy and terminates every worker started (remote-heap.ts terminateAll). */
export async function terminateWorkers(): Promise<void> {
  for (const w of live) w.remote[releaseProxy]();
  live.clear();
  await terminateAll();
}
