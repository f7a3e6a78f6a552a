/**
 * The retries of reclaims after a watched worker's exit (reclaim.ts reclaimRetry) keep the thread
 * alive for at most 5 s after that exit (README: "which keeps the process alive for at most 5 s
 * after the exit"). A retry made inside those 5 s but due after them (an attach or a detach made
 * for reclaims is retried after up to a second, heap.ts retryLater) kept it alive up to a second
 * longer (an audit). With the clock faked: such a timer keeps nothing alive, one due inside does.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { reclaimRetry } from '../src/reclaim.js';

const MiB = 1 << 20;

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** The timer reclaimRetry(fn, ms) makes. */
function retryTimer(ms: number): { hasRef(): boolean } {
  const spy = vi.spyOn(globalThis, 'setTimeout');
  reclaimRetry(() => undefined, ms);
  const timer = spy.mock.results[spy.mock.results.length - 1]!.value as { hasRef(): boolean };
  spy.mockRestore();
  return timer;
}

describe('the retries of reclaims after a watched exit', () => {
  it('keep the thread alive only when due within 5 s of the exit', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000 });
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
    try {
      // A watched worker's exit (a stand-in Worker: an id no slot carries, so nothing to reclaim).
      let exit: (() => void) | undefined;
      heap.watch({ threadId: 999_999, once: (_event: 'exit', fn: () => void) => (exit = fn) });
      exit!();
      expect(retryTimer(1).hasRef()).toBe(true); // at the exit
      vi.setSystemTime(1_000_000 + 4500);
      expect(retryTimer(400).hasRef()).toBe(true); // due at 4.9 s
      expect(retryTimer(1000).hasRef()).toBe(false); // due at 5.5 s
      vi.setSystemTime(1_000_000 + 5001);
      expect(retryTimer(1).hasRef()).toBe(false); // after the 5 s
    } finally {
      vi.clearAllTimers();
      heap.detach();
    }
  });
});
