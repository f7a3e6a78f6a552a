/**
 * Test worker for test/nested-watch.test.ts: a tree of workers, each watching the workers it
 * starts (heap.watch), as a worker that runs a pool of its own does.
 *
 * workerData: { buffer, depth, fanout, lockLeaf, ctl, filename }. Each node attaches, allocates a
 * few blocks (some freed again, so its magazines hold blocks), starts `fanout` nodes of depth - 1
 * when depth > 0 and watch()es each, waits for their reports, and posts { ids }: its own threadId
 * and every descendant's. With lockLeaf, the first leaf, once it reported, waits for ctl[0] to be
 * 1, takes the global lock, keeps it and stores 1 into ctl[1]. Then every node idles until it is
 * ended (its parent's end ends it: Node's rule).
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { testHoldGlobalLock } from '../src/heap.js';

interface NodeData {
  buffer: SharedArrayBuffer;
  depth: number;
  fanout: number;
  lockLeaf: boolean;
  ctl: Int32Array;
  filename: string;
}

const d = workerData as NodeData;
const heap = SharedHeap.attach(d.buffer);
const kept: number[] = [];
for (let k = 0; k < 8; k++) {
  const p = heap.malloc(k % 2 === 0 ? 48 : 3000);
  heap.u8.fill(0x40 + k, p, p + 48);
  if (k < 4) heap.free(p);
  else kept.push(p);
}

const ids: number[] = [heap.threadId];
if (d.depth === 0) {
  parentPort!.postMessage({ ids });
  if (d.lockLeaf) {
    Atomics.wait(d.ctl, 0, 0);
    testHoldGlobalLock(heap);
    Atomics.store(d.ctl, 1, 1);
    Atomics.notify(d.ctl, 1);
  }
} else {
  let waiting = d.fanout;
  for (let c = 0; c < d.fanout; c++) {
    const child = new Worker(d.filename, {
      workerData: { ...d, depth: d.depth - 1, lockLeaf: d.lockLeaf && c === 0 },
      execArgv: process.execArgv,
    });
    heap.watch(child);
    child.once('message', (m: { ids: number[] }) => {
      ids.push(...m.ids);
      if (--waiting === 0) parentPort!.postMessage({ ids });
    });
  }
}
setInterval(() => kept.length, 1 << 30); // idle, alive, until ended
