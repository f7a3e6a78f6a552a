/**
 * Many threads, one heap, driven through comlink (workers/heap-worker.ts): cross-thread free in
 * both directions, remote-free counters, attach/detach and thread slots, reclaim of a dead
 * worker. Every test ends with all blocks freed, stats().liveBytes 0 and check() passing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, ThreadSlotsExhaustedError, type HeapStats } from '../src/index.js';
import { startHeapWorker, terminateAll, type RemoteHeap } from './remote-heap.js';
import { reallocChurn } from '../workers/realloc-churn.js';

const MiB = 1 << 20;
const TIMEOUT = 20_000;

afterEach(terminateAll);

/** Bytes derived from the block's offset, so a block written as another would not match. */
function pattern(p: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (Math.imul(p + i, 0x9e3779b1) >>> 24) ^ i;
  return out;
}

/** Index of the first byte where `got` differs from `want`, or -1 (cheaper than toEqual on big arrays). */
function firstMismatch(got: Uint8Array, want: Uint8Array): number {
  if (got.length !== want.length) return Math.min(got.length, want.length);
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return i;
  return -1;
}

function threadOf(s: HeapStats, threadId: number): HeapStats['threads'][number] {
  const t = s.threads.find((x) => x.threadId === threadId && x.state === 'attached');
  if (t === undefined) throw new Error(`stats(): no attached thread with threadId ${threadId}: ${JSON.stringify(s.threads)}`);
  return t;
}

async function attachedWorker(heap: SharedHeap): Promise<RemoteHeap> {
  const r = startHeapWorker((w) => heap.watch(w));
  const id = await r.remote.attach(heap.buffer);
  expect(id).toBe(r.worker.threadId);
  return r;
}

function expectEmpty(heap: SharedHeap): void {
  heap.flush();
  heap.check();
  const s = heap.stats();
  expect(s.liveBytes).toBe(0);
  expect(s.liveBlocks).toBe(0);
}

describe('large runs resized by several threads at once', () => {
  it('three workers and the main thread grow and shrink large blocks in place and by moving, under one lock', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxBytes: 96 * MiB, maxThreads: 8 });
    const workers = await Promise.all([0, 1, 2].map(() => attachedWorker(heap)));
    const runs = workers.map((r, k) => r.remote.reallocChurn(1000 + k, 40));
    // The main thread does the same meanwhile, in parallel with the workers (their calls are posted).
    const mine = reallocChurn(heap, 7, 40);
    const results = [...(await Promise.all(runs)), mine];
    for (const r of results) expect(r.mismatches).toBe(0);
    const resizes = results.reduce((a, r) => a + r.resizes, 0);
    const inPlace = results.reduce((a, r) => a + r.inPlace, 0);
    expect(resizes).toBe(4 * 40 * 6);
    expect(inPlace).toBeGreaterThan(0); // some resizes found their slots free
    expect(inPlace).toBeLessThan(resizes); // and some had to move
    for (const r of workers) await r.remote.flush();
    expectEmpty(heap);
  }, TIMEOUT);
});

describe('cross-thread free', () => {
  it('a block malloc-ed and written in a worker is read and freed on the main thread', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const r = await attachedWorker(heap);
    const sizes = [8, 100, 1000, 5000, 40_000, 200_000]; // the last one is a large run
    const blocks: number[] = [];
    for (const size of sizes) {
      const p = await r.remote.malloc(size);
      expect(p).toBeGreaterThan(0);
      expect(p % 16).toBe(0);
      await r.remote.write(p, pattern(p, size));
      blocks.push(p);
    }
    expect(new Set(blocks).size).toBe(blocks.length);
    for (let i = 0; i < blocks.length; i++) {
      const p = blocks[i]!;
      expect(firstMismatch(heap.u8.slice(p, p + sizes[i]!), pattern(p, sizes[i]!))).toBe(-1);
      heap.free(p);
    }
    await r.remote.flush();
    await r.remote.check();
    expectEmpty(heap);
  }, TIMEOUT);

  it('a block malloc-ed and written on the main thread is read and freed in a worker', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const r = await attachedWorker(heap);
    const sizes = [16, 48, 300, 4096, 70_000, 300_000];
    const blocks = sizes.map((size) => {
      const p = heap.malloc(size);
      expect(p).toBeGreaterThan(0);
      heap.u8.set(pattern(p, size), p);
      return p;
    });
    for (let i = 0; i < blocks.length; i++) {
      const p = blocks[i]!;
      expect(firstMismatch(await r.remote.read(p, sizes[i]!), pattern(p, sizes[i]!))).toBe(-1);
      await r.remote.free(p);
    }
    await r.remote.flush();
    expectEmpty(heap);
    await r.remote.check();
  }, TIMEOUT);

  it('remote frees are counted per thread after flush, in both directions', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const r = await attachedWorker(heap);
    const n = 200;
    // Main thread allocates, the worker frees.
    const mine: number[] = [];
    for (let i = 0; i < n; i++) mine.push(heap.malloc(64));
    const before = threadOf(heap.stats(), r.worker.threadId).remoteFrees;
    for (const p of mine) await r.remote.free(p);
    await r.remote.flush();
    const workerStats = threadOf(await r.remote.stats(), r.worker.threadId);
    expect(workerStats.remoteFrees - before).toBe(n);
    // The worker allocates, the main thread frees.
    const theirs: number[] = [];
    for (let i = 0; i < n; i++) theirs.push(await r.remote.malloc(64));
    const mainBefore = threadOf(heap.stats(), heap.threadId).remoteFrees;
    for (const p of theirs) heap.free(p);
    heap.flush();
    expect(threadOf(heap.stats(), heap.threadId).remoteFrees - mainBefore).toBe(n);
    // The owner collects its remote frees; nothing is live and both views agree.
    await r.remote.flush();
    expectEmpty(heap);
    expect((await r.remote.stats()).liveBytes).toBe(0);
  }, TIMEOUT);

  it('a dead worker is reclaimed, and the blocks it allocated can still be freed', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const r = startHeapWorker(); // not watched: reclaimed by hand
    await r.remote.attach(heap.buffer);
    const blocks: number[] = [];
    for (let i = 0; i < 50; i++) {
      const p = await r.remote.malloc(24 + i * 40);
      await r.remote.write(p, pattern(p, 24));
      blocks.push(p);
    }
    const threadId = r.worker.threadId;
    await r.worker.terminate();
    expect(heap.reclaim(threadId)).toBe(true);
    expect(heap.reclaim(threadId)).toBe(false); // already reclaimed
    heap.check();
    expect(heap.stats().threads.some((t) => t.threadId === threadId && t.state === 'attached')).toBe(false);
    for (const p of blocks) {
      expect(firstMismatch(heap.u8.slice(p, p + 24), pattern(p, 24))).toBe(-1);
      heap.free(p);
    }
    expectEmpty(heap);
  }, TIMEOUT);
});

describe('attach, detach and thread slots', () => {
  it('attaching twice in one thread returns the same instance', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    expect(SharedHeap.attach(heap.buffer)).toBe(heap);
    const r = await attachedWorker(heap);
    expect(await r.remote.attachAgainIsSame(heap.buffer)).toBe(true);
    expect(heap.stats().threadsAttached).toBe(2);
    expectEmpty(heap);
  }, TIMEOUT);

  it('thread slots run out with ThreadSlotsExhaustedError; detach gives the slot back', async () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 }); // the main thread takes one
    const a = await attachedWorker(heap);
    const pa = await a.remote.malloc(100);
    const b = startHeapWorker((w) => heap.watch(w));
    const err = await b.remote.attach(heap.buffer).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // comlink re-creates the error on this side with its name and message.
    expect((err as Error).name).toBe(ThreadSlotsExhaustedError.name);
    expect((err as Error).message).toMatch(/all 2 thread slots are taken/);
    expect(heap.stats().threadsAttached).toBe(2);

    await a.remote.free(pa);
    await a.remote.detach();
    expect(heap.stats().threadsAttached).toBe(1);
    expect(await b.remote.attach(heap.buffer)).toBe(b.worker.threadId);
    const pb = await b.remote.malloc(100);
    expect(pb).toBeGreaterThan(0);
    await b.remote.free(pb);
    await b.remote.flush();
    expectEmpty(heap);
  }, TIMEOUT);

  it('a worker that detached can attach again and take the slot back', async () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
    const a = await attachedWorker(heap);
    await a.remote.detach();
    expect(heap.stats().threadsAttached).toBe(1);
    expect(await a.remote.attach(heap.buffer)).toBe(a.worker.threadId);
    expect(heap.stats().threadsAttached).toBe(2);
    const p = await a.remote.malloc(10);
    heap.free(p);
    expectEmpty(heap);
  }, TIMEOUT);
});
