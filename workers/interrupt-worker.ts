/**
 * The worker of test/crash-interrupt-points.test.ts: runs a scenario of workers/crash-scenarios.ts
 * as workers/crash-worker.ts does, but stops at the places V8 can stop a terminated thread that
 * neither a crash point nor an Atomics call marks: a function's entry and a loop's back edge in
 * src/ (the test bundles src/ with a transform that calls globalThis.__ip() there, and counts
 * plain element stores in globalThis.__wc). Only such a place with a store since the last place
 * of any kind (crash point, Atomics call, entry, back edge) is counted: the others leave a state
 * test/crash-points.test.ts already stops in. n = 0 counts them ({ done, counts: [count] }).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armCrash } from '../src/crash.js';
import { ATOMICS_METHODS, stopHere } from './atomics-stop.js';
import { CRASH_SCENARIOS, C_STOPPED, type CrashWorkerData } from './crash-scenarios.js';

import { DETACH_SCENARIOS } from './detach-scenario.js';

const g = globalThis as unknown as { __ip?: () => void; __wc: number };
g.__wc = 0;
const d = workerData as CrashWorkerData & { where?: boolean };
const heap = SharedHeap.attach(d.buffer);
const scenario = CRASH_SCENARIOS[d.scenario] ?? DETACH_SCENARIOS[d.scenario]!;
scenario.workerSetup?.(heap, d);
parentPort!.postMessage({ attached: true, threadId: heap.threadId });

const WRITES = new Set(['add', 'and', 'compareExchange', 'exchange', 'or', 'store', 'sub', 'xor']);

parentPort!.once('message', () => {
  let lastMark = g.__wc;
  let count = 0;
  const stopAt = d.n;
  g.__ip = () => {
    if (g.__wc === lastMark) return;
    lastMark = g.__wc;
    count++;
    if (count === stopAt) {
      Atomics.store(d.ctl, C_STOPPED, 2000); // test/crash-run.ts INTERRUPT_STOP
      if (d.where === true) parentPort!.postMessage({ where: new Error().stack });
      stopHere();
    }
  };
  const onCp = (): never => {
    lastMark = g.__wc;
    armCrash(1, onCp);
    return undefined as never;
  };
  armCrash(1, onCp);
  const table = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = ATOMICS_METHODS.map((k) => table[k]!);
  ATOMICS_METHODS.forEach((name, j) => {
    const original = originals[j]!;
    const writes = WRITES.has(name);
    table[name] = function (this: unknown, ...args: unknown[]): unknown {
      lastMark = g.__wc;
      const r = original.apply(Atomics, args);
      if (writes) g.__wc++;
      return r;
    };
  });
  scenario.workerRun(heap, d);
  ATOMICS_METHODS.forEach((name, j) => (table[name] = originals[j]!));
  g.__ip = undefined;
  armCrash(0, onCp);
  parentPort!.postMessage({ done: true, counts: [count] });
});
