/**
 * Test worker for test/multiheap-*.test.ts: a thread attached to several heaps at once,
 * driven through comlink. Every call names the heap by a key the test chose at attach(key, buffer).
 */
import { parentPort, threadId } from 'node:worker_threads';
import { expose } from 'comlink';
import { nodeEndpoint, type NodeEndpointLike } from './comlink-node.js';
import { HeapError, SharedHeap, type HeapStats, type SharedMemory } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';

const heaps = new Map<string, SharedHeap>();
function h(key: string): SharedHeap {
  const heap = heaps.get(key);
  if (heap === undefined) throw new Error(`multiheap-worker: no heap ${key}`);
  return heap;
}

/** Fills [p, p + n) with bytes derived from p and `seed`. */
function fillAt(u8: Uint8Array, p: number, n: number, seed: number): void {
  for (let i = 0; i < n; i++) u8[p + i] = (Math.imul(p + i, 0x9e3779b1) >>> 24) ^ seed;
}

const api = {
  threadId,
  /** Attaches to `buffer` under `key`; returns { threadId, slot }. */
  attach(key: string, buffer: SharedArrayBuffer | SharedMemory): { threadId: number; slot: number } {
    const heap = SharedHeap.attach(buffer);
    heaps.set(key, heap);
    return { threadId: heap.threadId, slot: internals(heap).slot };
  },
  /** attach() again: whether it gave the instance held under `key`, and the slot it is on. */
  attachAgain(key: string, buffer: SharedArrayBuffer | SharedMemory): { same: boolean; slot: number } {
    const heap = SharedHeap.attach(buffer);
    const same = heap === heaps.get(key);
    heaps.set(key, heap);
    return { same, slot: internals(heap).slot };
  },
  slot(key: string): number {
    return internals(h(key)).slot;
  },
  detached(key: string): boolean {
    return internals(h(key)).detached;
  },
  malloc(key: string, n: number): number {
    return h(key).malloc(n);
  },
  free(key: string, p: number): void {
    h(key).free(p);
  },
  realloc(key: string, p: number, n: number): number {
    return h(key).realloc(p, n);
  },
  /** `fn` of heap `key` with `args`, its result or the error's name and message. */
  call(key: string, fn: string, args: number[]): { result: unknown; error: string } {
    try {
      const r = (h(key) as unknown as Record<string, (...a: number[]) => unknown>)[fn]!(...args);
      return { result: r, error: '' };
    } catch (e) {
      return { result: undefined, error: `${(e as Error).name}: ${(e as Error).message}` };
    }
  },
  /**
   * Makes `count` blocks of mixed sizes on heap `key` (malloc, calloc, alignedAlloc, realloc),
   * filled with a pattern, frees every other one (cached in this thread's magazines), and returns
   * the live ones with their sizes.
   */
  mixed(key: string, count: number, seed: number): { p: number; n: number }[] {
    const heap = h(key);
    const out: { p: number; n: number }[] = [];
    const freeLater: number[] = [];
    for (let i = 0; i < count; i++) {
      const n = 16 + ((i * 977 + seed * 131) % (i % 17 === 0 ? 300_000 : 3000));
      let p: number;
      switch (i % 4) {
        case 0: p = heap.malloc(n); break;
        case 1: p = heap.calloc(1, n); break;
        case 2: p = heap.alignedAlloc(64, n); break;
        default: p = heap.realloc(heap.malloc(8), n); break;
      }
      if (p === 0) throw new Error(`multiheap-worker: out of memory on ${key}`);
      fillAt(heap.u8, p, n, seed);
      if (i % 2 === 0) freeLater.push(p);
      else out.push({ p, n });
    }
    for (const p of freeLater) heap.free(p);
    return out;
  },
  /** Index of the first wrong byte of each block (as `mixed` filled them with `seed`), -1 when all are right. */
  verify(key: string, blocks: { p: number; n: number }[], seed: number): number[] {
    const u8 = h(key).u8;
    return blocks.map(({ p, n }) => {
      for (let i = 0; i < n; i++) if (u8[p + i] !== ((Math.imul(p + i, 0x9e3779b1) >>> 24) ^ seed)) return i;
      return -1;
    });
  },
  freeAll(key: string, ps: number[]): void {
    const heap = h(key);
    for (const p of ps) heap.free(p);
  },
  stats(key: string): HeapStats {
    return h(key).stats();
  },
  check(key: string): string {
    try {
      h(key).check();
      return 'passes';
    } catch (e) {
      return (e as Error).message;
    }
  },
  flush(key: string): void {
    h(key).flush();
  },
  detach(key: string): void {
    h(key).detach();
  },
  reclaim(key: string, id: number): boolean | string {
    try {
      return h(key).reclaim(id);
    } catch (e) {
      if (e instanceof HeapError) return `${e.name}: ${e.message}`;
      throw e;
    }
  },
  /** Takes heap `key`'s global lock and keeps it (as a thread that died inside a slow path). */
  holdLock(key: string): void {
    testHoldGlobalLock(h(key));
  },
  /** Ends this thread at once, without detaching from anything. */
  exitNow(code: number): void {
    process.exit(code);
  },
};

export type MultiHeapApi = typeof api;
expose(api, nodeEndpoint(parentPort as unknown as NodeEndpointLike));
