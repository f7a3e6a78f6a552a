/**
 * A worker for test/capacity-phases.test.ts: attaches to a heap and runs phases of allocations
 * on it (fill a kind of block until malloc answers 0 or up to a count, hold the blocks, free them
 * here or hand them out), driven through comlink (test/capacity-harness.ts).
 */
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import { SharedHeap, type HeapStats, type SharedMemory } from '../src/index.js';
import { nodeEndpoint } from './comlink-node.js';
import { allocOne, type Kind } from '../test/capacity-kinds.js';

let heap: SharedHeap | undefined;
const held = new Map<string, number[]>();
function h(): SharedHeap {
  if (heap === undefined) throw new Error('capacity-worker: attach first');
  return heap;
}

const api = {
  attach(buffer: SharedArrayBuffer | SharedMemory): number {
    heap = SharedHeap.attach(buffer);
    return heap.threadId;
  },
  /** Allocates blocks of `kind` until 0 or `max`; holds them under `key`; returns how many. */
  fill(kind: Kind, key: string, max = Infinity): number {
    const list = held.get(key) ?? [];
    held.set(key, list);
    let n = 0;
    while (n < max) {
      const p = allocOne(h(), kind);
      if (p === 0) break;
      list.push(p);
      n++;
    }
    return n;
  },
  /** Gives the blocks held under `key` to the caller (no longer held here). */
  take(key: string): number[] {
    const list = held.get(key) ?? [];
    held.delete(key);
    return list;
  },
  /** Frees the blocks held under `key`: all, or every other one (`odd`: indexes 1, 3, ...). */
  freeHeld(key: string, which: 'all' | 'odd' | 'even' = 'all'): number {
    const list = held.get(key) ?? [];
    const keep: number[] = [];
    let n = 0;
    list.forEach((p, i) => {
      if (which === 'all' || (which === 'odd') === (i % 2 === 1)) {
        h().free(p);
        n++;
      } else keep.push(p);
    });
    held.set(key, keep);
    return n;
  },
  /** Frees blocks another thread allocated (remote frees); flushes after if asked. */
  freeMany(ps: number[], flush = false): void {
    for (const p of ps) h().free(p);
    if (flush) h().flush();
  },
  /** Allocates `kind` until 0, frees them all (no flush); returns how many. */
  fillAndFree(kind: Kind): number {
    const list: number[] = [];
    for (let p = allocOne(h(), kind); p !== 0; p = allocOne(h(), kind)) list.push(p);
    for (const p of list) h().free(p);
    return list.length;
  },
  /** Mallocs `n` blocks of each size and frees them (fills this thread's magazines). */
  warm(sizes: number[], n: number): void {
    for (const s of sizes) {
      const list: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = h().malloc(s);
        if (p === 0) break;
        list.push(p);
      }
      for (const p of list) h().free(p);
    }
  },
  /** Synchronous work for `ms` milliseconds (the event loop, and answers to asks to flush, held up). */
  busy(ms: number): void {
    const end = Date.now() + ms;
    while (Date.now() < end);
  },
  realloc(p: number, size: number): number {
    return h().realloc(p, size);
  },
  stats(): HeapStats {
    return h().stats();
  },
  check(): void {
    h().check();
  },
  flush(): void {
    h().flush();
  },
  detach(): void {
    h().detach();
    heap = undefined;
  },
};

export type CapacityWorkerApi = typeof api;

if (parentPort !== null) expose(api, nodeEndpoint(parentPort));
