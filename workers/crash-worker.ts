/**
 * Test worker for test/crash-points.test.ts: runs one crash scenario on a shared heap, either
 * counting the crash points it passes (n = 0) or stopping at the n-th one. Stopping ends the
 * thread with process.exit(), which, like worker.terminate(), runs no finally block: a lock it
 * holds stays held, a journal stays half written. The worker is then left unreclaimed for the
 * test to reclaim.
 *
 * Messages: the worker posts { attached, threadId } and waits for 'go' (the main thread's part
 * of the setup runs between); then it posts { done, counts } when the scenario ended.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armCrash, countCrashPoints, crashCounts } from '../src/crash.js';
import { ATOMICS_STOP, CRASH_SCENARIOS, C_STOPPED, type CrashWorkerData } from './crash-scenarios.js';
import { armAtomics, stopHere } from './atomics-stop.js';

/** Stops the thread before its n-th Atomics call from now, saying so in d.ctl (armAtomics). */
function stopAtAtomicsCall(d: CrashWorkerData, n: number): () => number {
  return armAtomics(n, () => {
    Atomics.store(d.ctl, C_STOPPED, ATOMICS_STOP);
    return stopHere();
  });
}

/** Posts { faulted, stopped }: what the cut-off call threw, and whether the instance refuses calls now. */
function reportFault(heap: SharedHeap, e: unknown): void {
  let stopped = false;
  try {
    heap.stats();
  } catch (e2) {
    stopped = (e2 as Error).message.includes('detached from the heap');
  }
  parentPort!.postMessage({ faulted: `${(e as Error).name}: ${(e as Error).message}`, stopped });
}

function run(d: CrashWorkerData): void {
  if (d.lifecycle !== undefined) {
    const { phase, n } = d.lifecycle;
    const arm = (): (() => number) => stopAtAtomicsCall(d, n);
    let disarm = (): number => 0;
    if (phase === 'attach') disarm = arm();
    const heap = SharedHeap.attach(d.buffer);
    if (phase === 'detach') {
      const ps = [24, 200, 5000, 24, 200, 5000].map((size) => heap.malloc(size));
      ps.slice(1).forEach((p) => heap.free(p));
      disarm = arm();
      heap.detach();
    }
    parentPort!.postMessage({ counts: [disarm()] });
    return;
  }
  const heap = SharedHeap.attach(d.buffer);
  const scenario = CRASH_SCENARIOS[d.scenario]!;
  scenario.workerSetup?.(heap, d);
  parentPort!.postMessage({ attached: true, threadId: heap.threadId });
  parentPort!.once('message', () => {
    if (d.atomics === true && d.fault === true && d.n > 0) {
      // The RangeError of a stack overflow at the n-th Atomics call, where a call can meet it.
      // Only Atomics calls inside a call into the heap's slow paths count (guarded() on the stack):
      // the scenario's own ledger writes and the read-only stats() make Atomics calls too.
      let inHeap = false;
      const disarm = armAtomics(d.n, () => {
        Atomics.store(d.ctl, C_STOPPED, ATOMICS_STOP);
        inHeap = (new Error().stack ?? '').includes('guarded');
        throw new RangeError('Maximum call stack size exceeded');
      });
      try {
        scenario.workerRun(heap, d);
      } catch (e) {
        disarm();
        if (inHeap) reportFault(heap, e);
        else parentPort!.postMessage({ outside: true });
        return stopHere();
      }
      parentPort!.postMessage({ done: true, counts: [disarm()] });
      return;
    }
    if (d.atomics === true) {
      const disarm = stopAtAtomicsCall(d, d.n);
      scenario.workerRun(heap, d);
      const calls = disarm();
      parentPort!.postMessage({ done: true, counts: [calls] });
      return;
    }
    if (d.n === 0) countCrashPoints();
    else if (d.fault === true) {
      armCrash(d.n, (path) => {
        Atomics.store(d.ctl, C_STOPPED, path + 1);
        throw new RangeError('Maximum call stack size exceeded'); // V8's text, as a deep recursion gets it
      });
      try {
        scenario.workerRun(heap, d);
      } catch (e) {
        reportFault(heap, e);
        return stopHere();
      }
    } else {
      armCrash(d.n, (path) => {
        Atomics.store(d.ctl, C_STOPPED, path + 1);
        return stopHere();
      });
    }
    scenario.workerRun(heap, d);
    const counts = crashCounts();
    parentPort!.postMessage({ done: true, counts });
  });
}

if (parentPort !== null && (workerData as Partial<CrashWorkerData> | null)?.kind === 'crash') run(workerData as CrashWorkerData);
