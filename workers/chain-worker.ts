/**
 * Test worker for test/stale-chain.test.ts: a thread of a shared heap that allocates blocks
 * filled with a pattern, flushes, or frees blocks of other threads and stops at the k-th crash
 * point of the remote-free publish (CP_PUBLISH) of the flush that follows, as terminate() can.
 *
 * Messages in: { op: 'malloc', n, size } -> { ps }; { op: 'flush' } -> { ok }; { op: 'free-flush-stop',
 * ps, k } -> { survived } when the flush passed fewer than k such crash points (else the thread
 * stops); { op: 'flush-stop', path, k } -> { survived }: the same at the k-th crash point of `path`
 * (test/orphan-chain.test.ts: an owner stopped after announcing a collection); { op: 'flush-pause',
 * path, k, ctl } -> { ok }: at that crash point the thread stores 1 into ctl[0] and waits until
 * ctl[0] is 2, then goes on (a live collector descheduled); { op: 'reclaim-stop', ids, k } ->
 * { survived }: reclaims the threads `ids` in turn and stops at the k-th crash point of any path
 * on the way. Posts { threadId } once attached.
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

/** Runs `what` at the k-th crash point of `at` from now (the other crash points pass), then stops watching. */
function atCrashPoint(at: number, k: number, what: () => void): void {
  let seen = 0;
  const on = (path: number): never => {
    if (path === at && ++seen === k) {
      what();
      return undefined as never; // `what` returned: the crash point returns, nothing armed any more
    }
    armCrash(1, on);
    return undefined as never; // not stopping: the crash point returns
  };
  armCrash(1, on);
}

/** Stops the thread at the k-th CP_PUBLISH crash point from now (the other paths pass). */
function stopAtPublish(k: number): void {
  atCrashPoint(CP_PUBLISH, k, stopHere);
}

type Message =
  | { op: 'malloc'; n: number; size: number }
  | { op: 'flush' }
  | { op: 'free-flush-stop'; ps: number[]; k: number }
  | { op: 'flush-stop'; path: number; k: number }
  | { op: 'flush-pause'; path: number; k: number; ctl: Int32Array }
  | { op: 'reclaim-stop'; ids: number[]; k: number };

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
  } else if (m.op === 'flush-stop') {
    atCrashPoint(m.path, m.k, stopHere);
    heap.flush();
    armCrash(0, () => stopHere());
    parentPort!.postMessage({ survived: true });
  } else if (m.op === 'flush-pause') {
    atCrashPoint(m.path, m.k, () => {
      Atomics.store(m.ctl, 0, 1);
      while (Atomics.load(m.ctl, 0) !== 2) Atomics.wait(m.ctl, 0, 1, 10); // descheduled, as far as the heap can tell
    });
    heap.flush();
    armCrash(0, () => stopHere());
    parentPort!.postMessage({ ok: true });
  } else if (m.op === 'reclaim-stop') {
    armCrash(m.k, () => stopHere());
    for (const id of m.ids) heap.reclaim(id);
    armCrash(0, () => stopHere());
    parentPort!.postMessage({ survived: true });
  } else {
    for (const p of m.ps) heap.free(p);
    stopAtPublish(m.k);
    heap.flush();
    armCrash(0, () => stopHere());
    parentPort!.postMessage({ survived: true });
  }
});
