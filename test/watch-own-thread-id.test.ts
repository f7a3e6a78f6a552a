/**
 * An audit (2026-12-04): watch() took a Worker-like object whose threadId is the calling thread's
 * own. At its 'exit' the watch marked the calling thread's slot DEAD while the thread went on
 * using it (stats() then listed the running thread as dead, and a thread waiting for the global
 * lock breaks a DEAD holder's lock), and the reclaim then threw "is the calling thread" as an
 * uncaught exception on a later turn. reclaim(threadId) refuses the calling thread's id; watch()
 * must refuse it too, before anything is recorded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const MiB = 1 << 20;
const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('watch() of a worker whose threadId is the calling thread\'s own', () => {
  it('is refused with an error naming watch(worker), worker.threadId and the value, and the thread stays attached', async () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
    heaps.push(heap);
    const p = heap.malloc(100);
    heap.u8.fill(7, p, p + 100);
    let listener: (() => void) | undefined;
    const fake = {
      threadId: heap.threadId,
      once(_event: string, fn: () => void): void {
        listener = fn;
      },
    };
    expect(() => heap.watch(fake as never)).toThrow(RangeError);
    expect(() => heap.watch(fake as never)).toThrow(new RegExp(`^watch\\(worker\\): worker\\.threadId ${heap.threadId} .*calling thread`));
    // Had it been recorded, its exit would mark this running thread's slot dead.
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => {
      uncaught.push(e);
    };
    process.on('uncaughtException', onUncaught);
    try {
      listener?.();
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
    const own = heap.stats().threads.find((th) => th.threadId === heap.threadId);
    expect(own?.state).toBe('attached');
    heap.check();
    expect(heap.u8.subarray(p, p + 100).every((b) => b === 7)).toBe(true);
    heap.free(p);
    heap.check();
  });
});

describe('watch() of a Worker-like object whose threadId is not a thread id', () => {
  // The same audit: 1.5, NaN or -2 were refused as "the worker has exited already", which only -1
  // (what worker.threadId reads after the exit) means.
  it.each([[1.5, '1.5'], [NaN, 'NaN'], [-2, '-2'], [Infinity, 'Infinity'], [2 ** 53, '9007199254740992']])('%s is refused as not an id, naming worker.threadId and the value', (id, shown) => {
    const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxThreads: 2 });
    heaps.push(heap);
    let e: unknown;
    try {
      heap.watch({ threadId: id, once: () => undefined } as never);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toBe(`watch(worker): worker.threadId: expected a non-negative safe integer, got ${shown}`);
    heap.check();
  });
});
