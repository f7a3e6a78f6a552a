/**
 * Test helper: a watchdog worker (workers/watchdog-worker.ts) that turns a main thread stuck in
 * watch() exit handlers into a counted stall instead of a hung test run.
 *
 *   const dog = startWatchdog(heap, 10_000);
 *   dog.arm(workers.map((w) => w.threadId)); // before terminating them
 *   ... terminate, await every exit ...
 *   dog.disarm();
 *   expect(dog.stalls()).toBe(0);
 */
import type { SharedHeap } from '../src/index.js';
import { WD_ARMED, WD_IDS, WD_N, WD_STALLS, WD_WORDS, type WatchdogData } from '../workers/watchdog-worker.js';
import { startWorker } from './remote-heap.js';

export interface Watchdog {
  /** Watches the next exits of these workers (their threadIds). */
  arm(threadIds: number[]): void;
  /** Their exits were all handled. */
  disarm(): void;
  /** Times the main thread was found stuck. */
  stalls(): number;
}

export function startWatchdog(heap: SharedHeap, stallMs: number): Watchdog {
  const ctl = new Int32Array(new SharedArrayBuffer(WD_WORDS * 4));
  const data: WatchdogData = { kind: 'watchdog', buffer: heap.buffer, ctl, stallMs };
  startWorker('watchdog-worker', data); // terminated by terminateAll()
  let gen = 0;
  return {
    arm(threadIds) {
      if (threadIds.length > WD_WORDS - WD_IDS) throw new RangeError(`watchdog: at most ${WD_WORDS - WD_IDS} threads`);
      threadIds.forEach((id, k) => Atomics.store(ctl, WD_IDS + k, id));
      Atomics.store(ctl, WD_N, threadIds.length);
      gen += 2;
      Atomics.store(ctl, WD_ARMED, gen + 1);
      Atomics.notify(ctl, WD_ARMED);
    },
    disarm() {
      Atomics.store(ctl, WD_ARMED, gen + 2);
      Atomics.notify(ctl, WD_ARMED);
    },
    stalls: () => Atomics.load(ctl, WD_STALLS),
  };
}
