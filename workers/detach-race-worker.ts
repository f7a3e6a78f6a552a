/**
 * Test worker for test/detach-race.test.ts: a thread that allocates blocks for the main thread to
 * free, then detaches, pausing at chosen crash points of its detach so that the main thread's
 * remote frees land exactly there (as they do when a detaching thread is preempted there).
 *
 * Messages in: { op: 'malloc', n, size } -> { ps }; { op: 'free', ps, pauses, gate } -> { done } (frees
 * the blocks, then flushes with pauses as detach's); { op: 'detach', pauses, gate } -> { done }:
 * `pauses` lists crash paths (src/crash.ts); the thread stops at the next crash point of
 * pauses[0], stores 1 into gate[0] and waits until gate[1] is 1, then at the next of pauses[1]
 * (2, 2), and so on; then it finishes its detach. { op: 'reclaim', id, pauses, gate } -> { done }:
 * reclaims the thread `id` (killed), pausing the same way. { op: 'attach' } -> { error } or { threadId }: attaches
 * again (after a detach). Posts { threadId } once attached.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { armCrash } from '../src/crash.js';

const buffer = (workerData as { buffer: SharedArrayBuffer }).buffer;
let heap = SharedHeap.attach(buffer);

function pauseAt(pauses: number[], gate: Int32Array): void {
  let i = 0;
  const on = (path: number): never => {
    if (i < pauses.length && path === pauses[i]) {
      i++;
      Atomics.store(gate, 0, i);
      Atomics.notify(gate, 0);
      for (let v = Atomics.load(gate, 1); v < i; v = Atomics.load(gate, 1)) Atomics.wait(gate, 1, v, 1000);
    }
    armCrash(i < pauses.length ? 1 : 0, on);
    return undefined as never; // not stopping: the crash point returns
  };
  armCrash(1, on);
}

type Message =
  | { op: 'malloc'; n: number; size: number }
  | { op: 'detach'; pauses: number[]; gate: Int32Array }
  | { op: 'reclaim'; id: number; pauses: number[]; gate: Int32Array }
  | { op: 'free'; ps: number[]; pauses: number[]; gate: Int32Array }
  | { op: 'attach' };

parentPort!.postMessage({ threadId: heap.threadId });
parentPort!.on('message', (m: Message) => {
  if (m.op === 'malloc') {
    const ps: number[] = [];
    for (let i = 0; i < m.n; i++) ps.push(heap.malloc(m.size));
    parentPort!.postMessage({ ps });
  } else if (m.op === 'free') {
    // Remote frees (the blocks are another thread's): they wait in this thread's magazine, and the
    // flush publishes them as one chain, pausing as asked.
    for (const p of m.ps) heap.free(p);
    pauseAt(m.pauses, m.gate);
    heap.flush();
    armCrash(0, () => process.exit(0));
    parentPort!.postMessage({ done: true });
  } else if (m.op === 'attach') {
    try {
      heap = SharedHeap.attach(buffer);
      parentPort!.postMessage({ threadId: heap.threadId });
    } catch (e) {
      parentPort!.postMessage({ error: String(e) });
    }
  } else if (m.op === 'reclaim') {
    pauseAt(m.pauses, m.gate);
    const done = heap.reclaim(m.id);
    armCrash(0, () => process.exit(0));
    parentPort!.postMessage({ done });
  } else {
    pauseAt(m.pauses, m.gate);
    heap.detach();
    armCrash(0, () => process.exit(0));
    parentPort!.postMessage({ done: true });
  }
});
