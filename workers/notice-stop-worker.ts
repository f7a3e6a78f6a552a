/**
 * Test worker for test/notice-walk.test.ts: a thread that allocates blocks, then looks at its notices (flush)
 * and stops -- as worker.terminate() can, before an Atomics call -- or faults (the RangeError of a
 * stack overflow) at the first Atomics call after the exchange that takes its notice list
 * (remote.ts takeNotices), i.e. at the walk's first Atomics.load (slab.ts walkNotices).
 * Messages: { op: 'malloc', n, size } -> { ps }; { op: 'look', mode: 'stop' | 'fault', gate } ->
 * { faulted } (fault mode; stop mode never answers: the thread exits).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { TH_NOTICE } from '../src/layout.js';
import { armCrash } from '../src/crash.js';

const buffer = (workerData as { buffer: SharedArrayBuffer }).buffer;
const heap = SharedHeap.attach(buffer);
parentPort!.postMessage({ threadId: heap.threadId });

const METHODS = ['add', 'and', 'compareExchange', 'exchange', 'load', 'or', 'store', 'sub', 'xor', 'notify', 'wait'] as const;

parentPort!.on('message', (m: { op: string; n: number; size: number; mode: 'stop' | 'fault'; gate: Int32Array; id: number; noticeW: number }) => {
  if (m.op === 'malloc') {
    const ps: number[] = [];
    for (let i = 0; i < m.n; i++) ps.push(heap.malloc(m.size));
    parentPort!.postMessage({ ps });
    return;
  }
  if (m.op === 'lookCrash' || m.op === 'reclaimCrash') {
    // Stop (exit) at the n-th crash point from now, or answer { done } when there were fewer.
    armCrash(m.n, () => {
      Atomics.store(m.gate, 0, 1);
      process.exit(0);
      for (;;) { /* stops at this back-edge */ }
    });
    if (m.op === 'reclaimCrash') heap.reclaim(m.id);
    else heap.flush();
    armCrash(0, () => process.exit(0));
    parentPort!.postMessage({ done: true });
    return;
  }
  const t = internals(heap);
  // 'look': this thread's own list; 'reclaim': the list of the thread `id` it reclaims (word noticeW).
  const noticeW = m.op === 'reclaim' ? m.noticeW : t.thW + TH_NOTICE;
  const table = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = METHODS.map((k) => table[k]!);
  const restore = (): void => METHODS.forEach((k, j) => (table[k] = originals[j]!));
  let taken = false;
  METHODS.forEach((name, k) => {
    const original = originals[k]!;
    table[name] = function (this: unknown, ...args: unknown[]): unknown {
      if (taken) {
        // The first Atomics call after the take: stop (or fault) before it.
        restore();
        Atomics.store(m.gate, 0, 1);
        if (m.mode === 'fault') throw new RangeError('Maximum call stack size exceeded');
        process.exit(0);
        for (;;) { /* stops at this back-edge */ }
      }
      const r = original.apply(Atomics, args);
      if (name === 'exchange' && args[1] === noticeW && (r as number) > 0) taken = true; // a list taken (not NOTICE_CLOSED, not empty)
      return r;
    };
  });
  try {
    if (m.op === 'reclaim') heap.reclaim(m.id);
    else heap.flush();
    restore();
    parentPort!.postMessage({ faulted: 'none' });
  } catch (e) {
    restore();
    parentPort!.postMessage({ faulted: `${(e as Error).name}: ${(e as Error).message}` });
  }
});
