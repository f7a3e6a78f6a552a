/**
 * The page of test/browser/reclaim-when-gone-one-at-a-time.test.ts: two workers of the chaos page
 * (chaos-worker.ts) attach under reserved ids, the second takes the global lock and keeps it, both
 * are terminated, and the page reclaims them one at a time, the holder of the lock second.
 */
import { SharedHeap } from '../../../src/index.js';
import { CTL_WORDS, X_HELD, type ChaosRequest } from './chaos-protocol.js';
import { RequestWorker } from './request-worker.js';

const MiB = 1 << 20;

/** `p`'s value, or 'pending' when it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function oneAtATime(): Promise<{ first: string; second: string; threadsAttached: number; checked: string; malloc: number }> {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const ids = [heap.newThreadId(), heap.newThreadId()];
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const workers = ids.map(() => new RequestWorker<ChaosRequest>('/chaos-worker.js'));
  try {
    for (let i = 0; i < 2; i++) await workers[i]!.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: ids[i]! });
    void workers[1]!.call({ cmd: 'holdLock', ctl }).catch(() => undefined);
    for (let k = 0; Atomics.load(ctl, X_HELD) === 0; k++) {
      if (k > 1000) throw new Error('the worker never took the lock');
      await sleep(10);
    }
    for (const w of workers) w.worker.terminate();
    // One at a time: the first worker's reclaim needs the global lock, which the second keeps.
    const first = String(await within(heap.reclaimWhenGone(ids[0]!), 15_000));
    const second = String(await within(heap.reclaimWhenGone(ids[1]!), 15_000));
    let checked = 'passed';
    try {
      heap.check();
    } catch (e) {
      checked = (e as Error).message;
    }
    const p = await within(heap.mallocAsync(3 * MiB), 5000); // takes the lock
    if (typeof p === 'number' && p !== 0) heap.free(p);
    return { first, second, threadsAttached: heap.stats().threadsAttached, checked, malloc: typeof p === 'number' ? p : -1 };
  } finally {
    for (const w of workers) w.worker.terminate();
  }
}

declare global {
  interface Window {
    reclaimOneAtATime: () => Promise<unknown>;
  }
}

window.reclaimOneAtATime = oneAtATime;
document.title = 'ready';
