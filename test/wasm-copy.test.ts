/**
 * A heap of a fixed size is the buffer of a shared WebAssembly.Memory (src/wasm-copy.ts), and
 * realloc copies with WebAssembly's memory.copy in a thread that has that memory: the blocks it
 * moves keep their bytes, in every class and for large runs, in the creating thread and in a
 * worker given heap.memory; a worker given only heap.buffer copies as before. calloc zeroes with
 * memory.fill there (above ZERO_LOOP_MAX bytes): exactly the bytes asked, in every class.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CLASS_SIZES, MAX_SMALL, SharedHeap } from '../src/index.js';
import { ZERO_LOOP_MAX } from '../src/alloc.js';
import { createSharedMemory, memoryFunctions } from '../src/wasm-copy.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { fillPattern, firstWrong } from './fixtures.js';

afterEach(terminateAll);

const MiB = 1 << 20;


describe('memory.copy', () => {
  it('copies n bytes from one offset to another, overlapping both ways, as copyWithin does', () => {
    const memory = createSharedMemory(MiB)!;
    expect(memory).toBeDefined();
    const copy = memoryFunctions(memory)!.copy;
    const u8 = new Uint8Array(memory.buffer);
    const want = new Uint8Array(MiB);
    for (const [to, from, n] of [[70_000, 3, 65_000], [5, 40, 1_000], [200_000, 200_100, 5_000], [300_000, 299_990, 7_000], [9, 9, 0]] as const) {
      for (let i = 0; i < 400_000; i++) u8[i] = want[i] = (i * 7 + 3) & 0xff;
      copy(to, from, n);
      want.copyWithin(to, from, from + n);
      expect(u8.subarray(0, 400_000)).toEqual(want.subarray(0, 400_000));
    }
  });
});

describe('memory.fill', () => {
  it('zeroes exactly n bytes from an offset, the bytes around them untouched', () => {
    const memory = createSharedMemory(MiB)!;
    const zero = memoryFunctions(memory)!.zero;
    expect(zero).toBeDefined();
    const u8 = new Uint8Array(memory.buffer);
    for (const [p, n] of [[16, 1], [100, 47], [4096, 49], [70_000, 65_000], [9, 0], [MiB - 5, 5]] as const) {
      u8.fill(0xa5);
      zero(p, n);
      expect(u8.subarray(p, p + n).every((b) => b === 0)).toBe(true);
      if (p > 0) expect(u8[p - 1]).toBe(0xa5);
      if (p + n < MiB) expect(u8[p + n]).toBe(0xa5);
    }
  });
});

/** Asks calloc(1, n) for the block of `n` bytes just freed after filling it with 0xff: zero bytes, neighbours kept. */
function callocDirty(heap: SharedHeap, n: number): void {
  const before = heap.malloc(n);
  const p = heap.malloc(n);
  const after = heap.malloc(n);
  heap.u8.fill(0x5a, before, before + n);
  heap.u8.fill(0x5a, after, after + n);
  heap.u8.fill(0xff, p, p + heap.usableSize(p));
  heap.free(p);
  const q = heap.calloc(1, n);
  if (n <= MAX_SMALL) expect(q).toBe(p); // the block just freed, dirty: the zeroing is what is tested
  const u8 = heap.u8;
  let firstNonZero = -1;
  for (let i = 0; i < n && firstNonZero < 0; i++) if (u8[q + i] !== 0) firstNonZero = i;
  expect({ n, firstNonZero }).toEqual({ n, firstNonZero: -1 });
  expect(u8.subarray(before, before + n).every((b) => b === 0x5a)).toBe(true);
  expect(u8.subarray(after, after + n).every((b) => b === 0x5a)).toBe(true);
  heap.free(q);
  heap.free(before);
  heap.free(after);
}

/** Two workers attached to `heap`, one given heap.memory (it copies and zeroes with it), one given heap.buffer. */
async function twoWorkers(heap: SharedHeap) {
  const withMemory = startHeapWorker();
  const withBuffer = startHeapWorker();
  await withMemory.remote.attach(heap.memory!);
  await withBuffer.remote.attach(heap.buffer);
  expect(await withMemory.remote.hasMemory()).toBe(true);
  expect(await withBuffer.remote.hasMemory()).toBe(false);
  return { withMemory, withBuffer };
}

describe('a heap on a shared WebAssembly.Memory', () => {
  it('calloc zeroes a reused dirty block of every class, at and around ZERO_LOOP_MAX, and large runs', () => {
    const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 2 });
    expect(heap.memory).toBeDefined();
    const sizes = [1, 15, ZERO_LOOP_MAX - 1, ZERO_LOOP_MAX, ZERO_LOOP_MAX + 1, 100, ...CLASS_SIZES, MAX_SMALL + 1, 3 * MAX_SMALL];
    for (const n of sizes) callocDirty(heap, n);
    // calloc(n, size) with n > 1 and a product above the loop's limit.
    const p = heap.malloc(640);
    heap.u8.fill(0xff, p, p + 640);
    heap.free(p);
    const q = heap.calloc(10, 64);
    expect(q).toBe(p);
    expect(heap.u8.subarray(q, q + 640).every((b) => b === 0)).toBe(true);
    heap.free(q);
    heap.check();
  });


  it('a heap of a fixed size has its memory, a growable one has none', () => {
    const fixed = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
    expect(fixed.memory).toBeInstanceOf((globalThis as unknown as { WebAssembly: { Memory: new () => object } }).WebAssembly.Memory);
    expect(fixed.memory!.buffer).toBe(fixed.buffer);
    const growable = SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 16 * MiB, maxThreads: 2 });
    expect(growable.memory).toBeUndefined();
  });

  it('realloc keeps the bytes of blocks it moves, in every class, into and out of large runs', () => {
    const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 2 });
    expect(heap.memory).toBeDefined();
    const sizes = [...CLASS_SIZES, MAX_SMALL + 1, 3 * MAX_SMALL];
    const live: [number, number, number][] = [];
    sizes.forEach((size, k) => {
      // Grow from below the class to its size, then shrink to a quarter and below (a move each).
      let n = Math.max(1, size >>> 3);
      let p = heap.malloc(n);
      fillPattern(heap, p, n, k);
      for (const next of [size, Math.max(1, size >>> 3) + 1, size >>> 4 || 1]) {
        const q = heap.realloc(p, next);
        expect(q).not.toBe(0);
        const kept = Math.min(n, next);
        expect(firstWrong(heap, q, kept, k)).toBe(-1);
        fillPattern(heap, q, next, k);
        p = q;
        n = next;
      }
      live.push([p, n, k]);
    });
    heap.check();
    for (const [p, n, k] of live) expect(firstWrong(heap, p, n, k)).toBe(-1);
    for (const [p] of live) heap.free(p);
    heap.check();
  });

  it('a worker given heap.memory copies with it, one given heap.buffer without; both keep the bytes', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const { withMemory, withBuffer } = await twoWorkers(heap);
    for (const [w, seed] of [[withMemory, 1], [withBuffer, 2]] as const) {
      const p = heap.malloc(3000);
      fillPattern(heap, p, 3000, seed);
      const q = await w.remote.realloc(p, 20_000); // moves: another class
      expect(q).not.toBe(p);
      expect(firstWrong(heap, q, 3000, seed)).toBe(-1);
      const r = await w.remote.realloc(q, MAX_SMALL + 5000); // into a large run
      expect(firstWrong(heap, r, 3000, seed)).toBe(-1);
      await w.remote.free(r);
    }
    await withMemory.remote.detach();
    await withBuffer.remote.detach();
    heap.check();
  });

  it('a worker given heap.memory and one given heap.buffer both calloc zeroed blocks from dirty ones', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const { withMemory, withBuffer } = await twoWorkers(heap);
    for (const w of [withMemory, withBuffer]) {
      for (const n of [ZERO_LOOP_MAX, ZERO_LOOP_MAX + 1, 3000, MAX_SMALL + 5000]) {
        const p = await w.remote.malloc(n);
        heap.u8.fill(0xff, p, p + n);
        await w.remote.free(p);
        const q = await w.remote.calloc(1, n);
        if (n <= MAX_SMALL) expect(q).toBe(p);
        expect((await w.remote.read(q, n)).every((b) => b === 0)).toBe(true);
        await w.remote.free(q);
      }
    }
    await withMemory.remote.detach();
    await withBuffer.remote.detach();
    heap.check();
  });

  it('attaching again with the memory gives the instance held, which copies with it from then on', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 3 });
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    expect(await w.remote.hasMemory()).toBe(false);
    expect(await w.remote.attachAgainIsSame(heap.memory!)).toBe(true);
    expect(await w.remote.hasMemory()).toBe(true);
    await w.remote.detach();
  });

  it('a memory that is not a heap is refused, naming attach', () => {
    const memory = createSharedMemory(2 * MiB)!;
    expect(() => SharedHeap.attach(memory)).toThrow(/SharedHeap\.attach\(buffer\)/);
  });
});
