/**
 * An audit (2026-12-05), after the one of revoked proxies as numbers (revoked-proxy-argument.test.ts)
 * and of SharedArrayBuffer look-alikes (attach-buffer-lookalike.test.ts): where a call takes an
 * object, a revoked Proxy made V8 throw its own TypeError ("Cannot perform 'getPrototypeOf' on a
 * proxy that has been revoked", or 'get', or 'ownKeys'), naming neither the call nor the argument:
 * attach(), attachAsync() (its buffer and its options), readHeapMap(), create(options), watch(),
 * reclaim(), watchPool(). And an object made from WebAssembly.Memory.prototype passed attach()'s
 * test for a heap's memory, whose buffer getter then threw "WebAssembly.Memory.buffer: Receiver is
 * not a WebAssembly.Memory". Each must be the call's own TypeError, and the heap untouched.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, readHeapMap } from '../src/index.js';
import { watchPool } from '../src/node.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

/** The message of what `call` throws (sync or as a rejection), or 'returned'. */
async function thrown(call: () => unknown): Promise<string> {
  try {
    await call();
  } catch (e) {
    return e instanceof TypeError ? e.message : `not a TypeError: ${String(e)}`;
  }
  return 'returned';
}

describe('a revoked Proxy or a WebAssembly.Memory look-alike where a call takes an object', () => {
  it("gets the call's own TypeError naming the call and the argument, and the heap stays intact", async () => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    heaps.push(heap);
    const p = heap.malloc(100);
    heap.u8.fill(7, p, p + 100);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const revoked = proxy as never;
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: { prototype: object } } }).WebAssembly;
    const fakeMemory = Object.create(wasm.Memory.prototype) as never;
    const pool = { threads: [], on: () => undefined };
    const calls: [RegExp, () => unknown][] = [
      [/^SharedHeap\.attach\(buffer\): expected the heap's SharedArrayBuffer, got a revoked proxy$/, () => SharedHeap.attach(revoked)],
      [/^SharedHeap\.attach\(buffer\): expected the heap's SharedArrayBuffer, got an object$/, () => SharedHeap.attach(fakeMemory)],
      [/^SharedHeap\.attachAsync\(buffer, options\): expected the heap's SharedArrayBuffer, got a revoked proxy$/, () => SharedHeap.attachAsync(revoked, { threadId: 1 << 30 })],
      [/^SharedHeap\.attachAsync\(buffer, options\): expected the heap's SharedArrayBuffer, got an object$/, () => SharedHeap.attachAsync(fakeMemory, { threadId: 1 << 30 })],
      [/^SharedHeap\.attachAsync\(buffer, options\): options: expected \{ threadId \}, got a revoked proxy$/, () => SharedHeap.attachAsync(heap.buffer, revoked)],
      [/^readHeapMap\(buffer\): expected a heap's SharedArrayBuffer .*got a revoked proxy$/, () => readHeapMap(revoked)],
      [/^readHeapMap\(buffer\): expected a heap's SharedArrayBuffer .*got an object$/, () => readHeapMap(fakeMemory)],
      [/^SharedHeap\.create\(options\): expected an object, got a revoked proxy$/, () => SharedHeap.create(revoked)],
      [/^watch\(worker\): expected a Worker, got a revoked proxy$/, () => heap.watch(revoked)],
      [/^reclaim\(threadId\): expected a threadId or a Worker, got a revoked proxy$/, () => heap.reclaim(revoked)],
      [/^watchPool\(heap, pool\): expected a SharedHeap, got a revoked proxy$/, () => watchPool(revoked, pool)],
      [/^watchPool\(heap, pool\): expected a worker pool/, () => watchPool(heap, revoked)],
    ];
    const outcomes: string[] = [];
    for (const [pattern, call] of calls) {
      const msg = await thrown(call);
      outcomes.push(pattern.test(msg) ? 'ok' : msg);
    }
    expect(outcomes).toEqual(calls.map(() => 'ok'));
    heap.check();
    expect(heap.u8.subarray(p, p + 100).every((b) => b === 7)).toBe(true);
    expect(SharedHeap.attach(heap.buffer)).toBe(heap);
    heap.free(p);
    heap.check();
  });
});
