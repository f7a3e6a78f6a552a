/**
 * Test worker for test/multiheap-nested.test.ts: a tree of workers, each attached to every
 * heap of workerData.buffers and watching the workers it starts on every one of them (as
 * workers/nested-watch-worker.ts does for one heap). The first leaf, with lockHeap >= 0, takes the
 * global lock of heap lockHeap once the test set ctl[0] to 1 (the whole tree reported), keeps it
 * and sets ctl[1] to 1. Each node posts { ids } (its own
 * threadId and every descendant's) and idles until ended.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { testHoldGlobalLock } from '../src/heap.js';

interface NodeData {
  buffers: SharedArrayBuffer[];
  depth: number;
  fanout: number;
  lockHeap: number;
  /** ctl[0]: set to 1 by the test once the whole tree reported; ctl[1]: set to 1 by the leaf once it holds the lock. */
  ctl: Int32Array;
  filename: string;
}

const d = workerData as NodeData;
const heaps = d.buffers.map((b) => SharedHeap.attach(b));
const kept: number[] = [];
for (const heap of heaps) {
  for (let k = 0; k < 8; k++) {
    const p = heap.malloc(k % 2 === 0 ? 48 : 3000);
    heap.u8.fill(0x40 + k, p, p + 48);
    if (k < 4) heap.free(p);
    else kept.push(p);
  }
}
const ids: number[] = [heaps[0]!.threadId];
if (d.depth === 0) {
  parentPort!.postMessage({ ids });
  if (d.lockHeap >= 0) {
    Atomics.wait(d.ctl, 0, 0);
    testHoldGlobalLock(heaps[d.lockHeap]!);
    Atomics.store(d.ctl, 1, 1);
  }
} else {
  let waiting = d.fanout;
  for (let c = 0; c < d.fanout; c++) {
    const child = new Worker(d.filename, {
      workerData: { ...d, depth: d.depth - 1, lockHeap: c === 0 ? d.lockHeap : -1 },
      execArgv: process.execArgv,
    });
    for (const heap of heaps) heap.watch(child);
    child.once('message', (m: { ids: number[] }) => {
      ids.push(...m.ids);
      if (--waiting === 0) parentPort!.postMessage({ ids });
    });
  }
}
setInterval(() => kept.length, 1 << 30);
