/**
 * Test watchdog (test/watchdog.ts). The main thread arms it before terminating workers and
 * disarms it once their exits were handled. If that takes longer than `stallMs`, the main thread
 * is stuck, typically blocked on the global lock inside a watch() exit handler while the lock's
 * holder is another terminated worker whose own exit event cannot be delivered. The watchdog then
 * counts a stall and does what those exit handlers would have done, marking the terminated
 * workers' slots DEAD, so that the test fails with a message instead of hanging the run.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ThreadContext, readGeometry } from '../src/context.js';
import { markDead } from '../src/reclaim.js';

export interface WatchdogData {
  kind: 'watchdog';
  buffer: SharedArrayBuffer;
  ctl: Int32Array;
  stallMs: number;
}

/** Odd while armed (a new odd value for every arming), even while disarmed. */
export const WD_ARMED = 0;
export const WD_STALLS = 1;
export const WD_N = 2; // threadIds in WD_IDS ..
export const WD_IDS = 4;
export const WD_WORDS = WD_IDS + 1024;

function run(d: WatchdogData): void {
  const { ctl } = d;
  // A context bound to no slot: all markDead needs (the thread table).
  const view = new ThreadContext(d.buffer, readGeometry(d.buffer, 'watchdog'), { slot: -1, lockMe: 0, lockDepth: 0, faulted: false });
  for (;;) {
    let g = Atomics.load(ctl, WD_ARMED);
    while ((g & 1) === 0) {
      Atomics.wait(ctl, WD_ARMED, g);
      g = Atomics.load(ctl, WD_ARMED);
    }
    if (Atomics.wait(ctl, WD_ARMED, g, d.stallMs) === 'timed-out' && Atomics.load(ctl, WD_ARMED) === g) {
      Atomics.add(ctl, WD_STALLS, 1);
      const n = Atomics.load(ctl, WD_N);
      for (let k = 0; k < n; k++) markDead(view, Atomics.load(ctl, WD_IDS + k));
      while (Atomics.load(ctl, WD_ARMED) === g) Atomics.wait(ctl, WD_ARMED, g);
    }
  }
}

if (parentPort !== null && (workerData as Partial<WatchdogData> | null)?.kind === 'watchdog') run(workerData as WatchdogData);
