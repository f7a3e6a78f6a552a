/**
 * A heap attached in a Node worker, driven from the main thread through comlink. The API's
 * type is exported, so the main thread's proxy (`Remote<HeapWorkerApi>`) is typed.
 */
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import { SharedHeap, type SharedMemory } from 'sabmalloc';
import { nodeEndpoint } from './node-endpoint.js';

let heap: SharedHeap | undefined;

function attached(fn: string): SharedHeap {
  if (heap === undefined) throw new Error(`${fn}: call attach(buffer) first`);
  return heap;
}

const api = {
  /** Attaches this worker; returns its heap.threadId (Node's threadId here). */
  attach(buffer: SharedArrayBuffer | SharedMemory): number {
    heap = SharedHeap.attach(buffer);
    return heap.threadId;
  },
  /** A block holding `text` as UTF-8: [length: Int32][bytes]. */
  store(text: string): number {
    const h = attached('store');
    const bytes = new TextEncoder().encode(text);
    const block = h.malloc(4 + bytes.length);
    if (block === 0) throw new Error('store: out of memory');
    new DataView(h.buffer).setInt32(block, bytes.length, true);
    h.u8.set(bytes, block + 4);
    return block;
  },
  /** Reads a block made by store() (on any thread) and frees it here. */
  take(block: number): string {
    const h = attached('take');
    const n = new DataView(h.buffer).getInt32(block, true);
    const text = new TextDecoder().decode(h.u8.slice(block + 4, block + 4 + n));
    h.free(block);
    return text;
  },
  /** Gives the thread slot back before the worker ends. */
  detach(): void {
    attached('detach').detach();
    heap = undefined;
  },
};

export type HeapWorkerApi = typeof api;

if (parentPort === null) throw new Error('worker.ts runs as a worker thread');
expose(api, nodeEndpoint(parentPort));
