/** The browser pages' handle on the suite's worker (worker.ts): its attach request, and the workers a page started, ended together. */
import type { SharedMemory } from '../../../src/index.js';
import type { AttachReply, Request } from './protocol.js';
import { RequestWorker } from './request-worker.js';

export class TestWorker extends RequestWorker<Request> {
  constructor() {
    super('/worker.js');
  }

  attach(buffer: SharedArrayBuffer | SharedMemory): Promise<AttachReply> {
    return this.call<AttachReply>({ cmd: 'attach', buffer });
  }
}

const all: TestWorker[] = [];

/** A new worker, ended by the next endWorkers(). */
export function startWorker(): TestWorker {
  const w = new TestWorker();
  all.push(w);
  return w;
}

/** Terminates every worker startWorker() made since the last call. */
export function endWorkers(): void {
  for (const w of all.splice(0)) w.worker.terminate();
}
