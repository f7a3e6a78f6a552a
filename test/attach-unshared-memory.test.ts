/**
 * A WebAssembly.Memory that is not shared, given where a heap's memory (heap.memory) is taken:
 * attach(), attachAsync() and readHeapMap() refuse it with their own TypeError that says so. Since
 * their argument's type takes the DOM library's WebAssembly.Memory (SharedMemoryLike, whose buffer
 * may be an ArrayBuffer), such a memory type-checks; until 2026-12-05 the error said only that it
 * got "an object" (the memory's ArrayBuffer). The heap given the call beside it stays intact.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, readHeapMap, type SharedMemoryLike } from '../src/index.js';

let heap: SharedHeap | undefined;
afterEach(() => {
  heap?.detach();
  heap = undefined;
});

describe('a WebAssembly.Memory that is not shared', () => {
  // (The project's type libraries have no WebAssembly.Memory: ES2022 and Node's types only.)
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => SharedMemoryLike } }).WebAssembly;
  const unshared = (): SharedMemoryLike => new wasm.Memory({ initial: 64, maximum: 64 });
  const said = /got a WebAssembly\.Memory that is not shared/;

  it('attach() refuses it, naming the call and what it got; the heap beside it is intact', () => {
    heap = SharedHeap.create({ initialBytes: 8 << 20 });
    const p = heap.malloc(40);
    heap.u8.fill(7, p, p + 40);
    expect(() => SharedHeap.attach(unshared())).toThrow(TypeError);
    expect(() => SharedHeap.attach(unshared())).toThrow(/^SharedHeap\.attach\(buffer\): expected the heap's SharedArrayBuffer or its memory/);
    expect(() => SharedHeap.attach(unshared())).toThrow(said);
    heap.check();
    expect([...heap.u8.subarray(p, p + 40)].every((b) => b === 7)).toBe(true);
    heap.free(p);
  });

  it('attachAsync() rejects with its TypeError', async () => {
    heap = SharedHeap.create({ initialBytes: 8 << 20 });
    const threadId = heap.newThreadId();
    await expect(SharedHeap.attachAsync(unshared(), { threadId })).rejects.toThrow(TypeError);
    await expect(SharedHeap.attachAsync(unshared(), { threadId })).rejects.toThrow(/^SharedHeap\.attachAsync\(buffer, options\): /);
    await expect(SharedHeap.attachAsync(unshared(), { threadId })).rejects.toThrow(said);
    heap.check();
  });

  it('readHeapMap() throws its TypeError; a shared memory of a heap is read', () => {
    expect(() => readHeapMap(unshared())).toThrow(/^readHeapMap\(buffer\): /);
    expect(() => readHeapMap(unshared())).toThrow(said);
    heap = SharedHeap.create({ initialBytes: 8 << 20 });
    expect(heap.memory).toBeDefined();
    expect(readHeapMap(heap.memory!).supers).toBeGreaterThan(0);
  });
});
