/**
 * Test worker for test/stale-chain.test.ts: a thread of a shared heap that allocates blocks
 * filled with a pattern, flushes, or frees blocks of other threads and stops at the k-th crash
 * point of the remote-free publish (CP_PUBLISH) of the flush that follows, as terminate() can.
 *
 * Messages in: { op: 'malloc', n, size } -> { ps }; { op: 'flush' } -> { ok }; { op: 'free-flush-stop',
 * ps, k } -> { survived } when the flush passed fewer than k such crash points (else the thread
 * stops). Posts { threadId } once attached.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { CP_PUBLISH, armCrash } from '../src/crash.js';

const heap = SharedHeap.attach((workerData as { buffer: SharedArrayBuffer }).buffer);
const u32 = new Uint32Array(heap.buffer);

function stopHere(): never {
  process.exit(0);
  for (;;) {
    // process.exit() in a worker stops the thread at its next interrupt check: this loop's back-edge.
  }
}

/** Stops the thread at the k-th CP_PUBLISH crash point from now (the other paths pass). */
function stopAtPublish(k: number): void {
  let seen = 0;
  const on = (path: number): never => {
    if (path === CP_PUBLISH && ++seen === k) stopHere();
    armCrash(1, on);
    return undefined as never; // not stopping: the crash point returns
  };
  armCrash(1, on);
}

type Message = { op: 'malloc'; n: number; size: number } | { op: 'flush' } | { op: 'free-flush-stop'; ps: number[]; k: number };

parentPort!.postMessage({ threadId: heap.threadId });
parentPort!.on('message', (m: Message) => {
  if (m.op === 'malloc') {
    const ps: number[] = [];
    for (let i = 0; i < m.n; i++) {
      const p = heap.malloc(m.size);
      u32.fill(0xc0ffee00 + i, p >>> 2, (p + m.size) >>> 2);
      ps.push(p);
    }
    parentPort!.postMessage({ ps });
  } else if (m.op === 'flush') {
    heap.flush();
    parentPort!.postMessage({ ok: true });
  } else {
    for (const p of m.ps) heap.free(p);
    stopAtPublish(m.k);
    heap.flush();
    armCrash(0, () => stopHere());
    parentPort!.postMessage({ survived: true });
  }
});
