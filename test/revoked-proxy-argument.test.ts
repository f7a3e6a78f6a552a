/**
 * An audit (2026-12-04): a revoked Proxy passed where a number is expected made describe()
 * (errors.ts) throw V8's own TypeError from Array.isArray ("Cannot perform 'IsArray' on a proxy
 * that has been revoked"), which names neither the call, the argument nor the value, instead of
 * the call's TypeError. The heap was left intact; the message was not the documented one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('a revoked Proxy as a numeric argument', () => {
  it('gets the call\'s own TypeError naming the function and the argument, and the heap stays intact', () => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    heaps.push(heap);
    const p = heap.malloc(100);
    heap.u8.fill(5, p, p + 100);
    const { proxy, revoke } = Proxy.revocable([], {});
    revoke();
    const v = proxy as never;
    const calls: [string, () => unknown][] = [
      ['malloc(size)', () => heap.malloc(v)],
      ['tryMalloc(size)', () => heap.tryMalloc(v)],
      ['free(ptr)', () => heap.free(v)],
      ['realloc(size)', () => heap.realloc(p, v)],
      ['realloc(ptr)', () => heap.realloc(v, 16)],
      ['calloc(n)', () => heap.calloc(v, 1)],
      ['usableSize(ptr)', () => heap.usableSize(v)],
      ['alignedAlloc(align)', () => heap.alignedAlloc(v, 16)],
      ['SharedHeap.create(options.initialBytes)', () => SharedHeap.create({ initialBytes: v })],
    ];
    for (const [name, call] of calls) {
      expect(call, name).toThrow(TypeError);
      const msg = (() => {
        try {
          call();
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })();
      expect(msg.startsWith(`${name}: expected a number, got `), `${name}: ${msg}`).toBe(true);
    }
    heap.check();
    expect(heap.u8.subarray(p, p + 100).every((b) => b === 5)).toBe(true);
    heap.free(p);
    heap.check();
  });
});
