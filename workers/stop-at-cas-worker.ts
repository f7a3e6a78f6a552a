/**
 * Test worker (test/adopt-abandoned-stopped.test.ts and others): attaches to workerData.buffer, posts
 * { threadId, slot }, then runs each message's ops ({ malloc: size } | { free: p } | { flush: true })
 * with a stop armed: at the Atomics.compareExchange on the heap's words whose index is stop.index
 * and whose expected value is stop.expected (after: 0, before it), or before the after-th Atomics
 * call of any kind that follows it (after >= 1), the thread exits (process.exit(), as
 * worker.terminate() stops a thread before an Atomics call: no finally block runs, a held lock
 * stays held), with gate[0] = 1 first. Without a stop met, it posts { ps } (malloc results).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { ATOMICS_METHODS, stopHere } from './atomics-stop.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const heap = SharedHeap.attach(buffer);
parentPort!.postMessage({ threadId: heap.threadId, slot: internals(heap).runner.slot });

type Op = { malloc: number } | { free: number } | { flush: true };
interface Msg { ops: Op[]; stop?: { index: number; expected: number; after?: number }; gate: Int32Array }

parentPort!.on('message', (m: Msg) => {
  const table = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = ATOMICS_METHODS.map((k) => table[k]!);
  const restore = (): void => ATOMICS_METHODS.forEach((k, j) => (table[k] = originals[j]!));
  if (m.stop !== undefined) {
    const { index, expected } = m.stop;
    const after = m.stop.after ?? 0;
    let seen = -1; // Atomics calls since the CAS; -1: not met yet
    ATOMICS_METHODS.forEach((name, j) => {
      const original = originals[j]!;
      table[name] = function (this: unknown, ...args: unknown[]): unknown {
        const isIt = name === 'compareExchange' && (args[0] as Int32Array).buffer === buffer && args[1] === index && args[2] === expected;
        if (seen >= 0) seen++;
        if ((isIt && after === 0) || (seen >= 0 && seen === after)) {
          restore();
          Atomics.store(m.gate, 0, 1);
          return stopHere();
        }
        const r = original.apply(Atomics, args);
        if (isIt && seen < 0 && r === expected) seen = 0;
        return r;
      };
    });
  }
  const ps: number[] = [];
  for (const op of m.ops) {
    if ('malloc' in op) ps.push(heap.malloc(op.malloc));
    else if ('free' in op) heap.free(op.free);
    else heap.flush();
  }
  restore();
  parentPort!.postMessage({ ps });
});
