/**
 * Worker of test/stats-concurrent.test.ts: attaches to workerData.buffer and, until ctl[0]
 * is 1, mallocs, callocs, reallocs and frees blocks of mixed sizes (small and large runs), hands
 * some of them to the next worker through a shared mailbox (frees from another thread), and frees
 * those the previous worker handed it. At the end it frees all it holds, flushes and detaches.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

const { buffer, ctl, boxes, id, n, seed } = workerData as {
  buffer: SharedArrayBuffer; ctl: Int32Array; boxes: Int32Array; id: number; n: number; seed: number;
};
const BOX = boxes.length / n;
const heap = SharedHeap.attach(buffer);
let x = seed | 0 || 1;
const rnd = (m: number): number => {
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
  return (x >>> 0) % m;
};
const size = (): number => {
  const r = rnd(100);
  if (r < 70) return 1 + rnd(512);
  if (r < 93) return 513 + rnd(40_000);
  return 130_000 + rnd(600_000);
};
const mine: number[] = [];
parentPort!.postMessage({ threadId: heap.threadId });
let ops = 0;
const out = id * BOX;
const inb = ((id + n - 1) % n) * BOX;
while (Atomics.load(ctl, 0) === 0) {
  ops++;
  const r = rnd(100);
  if (mine.length > 400 || (mine.length > 0 && r < 40)) {
    const k = rnd(mine.length);
    const p = mine[k]!;
    mine[k] = mine[mine.length - 1]!;
    mine.pop();
    // hand it to the next worker, or free it here
    const slot = out + rnd(BOX);
    if (rnd(2) === 0 && Atomics.compareExchange(boxes, slot, 0, p) === 0) continue;
    heap.free(p);
  } else if (mine.length > 0 && r < 55) {
    const k = rnd(mine.length);
    const q = heap.realloc(mine[k]!, size());
    if (q !== 0) mine[k] = q;
  } else if (r < 65) {
    const p = heap.calloc(1, size());
    if (p !== 0) mine.push(p);
  } else if (r < 70 && ops % 7 === 0) {
    const p = heap.alignedAlloc(1 << (5 + rnd(12)), size());
    if (p !== 0) mine.push(p);
  } else {
    const p = heap.malloc(size());
    if (p !== 0) mine.push(p);
  }
  if ((ops & 15) === 0) {
    for (let i = 0; i < BOX; i++) {
      const p = Atomics.exchange(boxes, inb + i, 0);
      if (p !== 0) heap.free(p);
    }
  }
  if ((ops & 1023) === 0) heap.flush();
}
for (const p of mine) heap.free(p);
heap.flush();
// Wait for the others to stop handing blocks, then free what is left in the inbox.
Atomics.add(ctl, 1, 1);
while (Atomics.load(ctl, 1) < n) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 10);
for (let i = 0; i < BOX; i++) {
  const p = Atomics.exchange(boxes, inb + i, 0);
  if (p !== 0) heap.free(p);
}
heap.flush();
parentPort!.postMessage({ ops });
heap.detach();
parentPort!.postMessage({ done: true });
