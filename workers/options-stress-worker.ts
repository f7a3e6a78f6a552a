/**
 * options-stress: a worker of test/options-stress.test.ts; the loop is workers/options-stress-core.ts.
 */
import { workerData } from 'node:worker_threads';
import { C_FREED, recordError, run, type OptionsStressData } from './options-stress-core.js';

const d = workerData as OptionsStressData;
try {
  run(d);
} catch (e) {
  recordError(d.ctl, e);
  Atomics.add(d.ctl, C_FREED, 1);
  Atomics.notify(d.ctl, C_FREED);
}
