/** A scenario of test/crash-interrupt-points.test.ts only, in the form of workers/crash-scenarios.ts. */
import { ledgerFree, ledgerMalloc, type CrashScenario } from './crash-scenarios.js';

/** detach() of a thread with cached blocks and emptied slabs (test/crash-points.test.ts stops detach at its Atomics calls only). */
export const DETACH_SCENARIOS: Record<string, CrashScenario> = {
  detach: {
    options: { initialBytes: 12 << 20, maxBytes: 40 << 20, maxThreads: 4, magazineCapacity: 4, refillCount: 2, drainInterval: 8, stage1Keep: 1 },
    workerSetup(heap, d) {
      const a: number[] = [];
      for (let k = 0; k < 24; k++) a.push(ledgerMalloc(heap, d, [24, 200, 5000, 40 << 10][k % 4]!));
      for (let k = 0; k < a.length; k += 3) ledgerFree(heap, d, a[k]!); // in the magazines; some slabs emptied
    },
    workerRun(heap) {
      heap.detach();
    },
  },
};
