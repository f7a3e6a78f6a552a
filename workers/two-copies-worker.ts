/**
 * Test worker for test/two-package-copies.test.ts: a thread that loads two copies of the package,
 * this bundle's and the one at workerData.copy (a folder with a copy of dist/src, as a second
 * install would be), and attaches to workerData.buffer through each: two thread slots under its
 * one Node threadId. It mallocs and frees blocks through each (cached in both slots' magazines),
 * keeps workerData.live blocks of each live, and, when workerData.hold names a copy (1 or 2), takes
 * the global lock through that copy and keeps it. Then it answers { threadId, slots, live } and
 * idles until ended.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { testHoldLock } from '../src/lock.js';

interface Copy {
  heap: { threadId: number; malloc(n: number): number; free(p: number): void };
  slot: () => number;
  hold: () => void;
}
const { buffer, copy, hold, live } = workerData as { buffer: SharedArrayBuffer; copy: string; hold: 0 | 1 | 2; live: number };

async function main(): Promise<void> {
  const two = (await import(`${copy}/index.js`)) as { SharedHeap: { attach(b: SharedArrayBuffer): Copy['heap'] } };
  const twoHeap = (await import(`${copy}/heap.js`)) as { internals(h: unknown): { slot: number } };
  const twoLock = (await import(`${copy}/lock.js`)) as { testHoldLock(t: unknown): void };
  const a = SharedHeap.attach(buffer);
  const b = two.SharedHeap.attach(buffer);
  const copies: Copy[] = [
    { heap: a, slot: () => internals(a).slot, hold: () => testHoldLock(internals(a)) },
    { heap: b, slot: () => twoHeap.internals(b).slot, hold: () => twoLock.testHoldLock(twoHeap.internals(b)) },
  ];
  const kept: number[][] = [];
  for (const c of copies) {
    const ps: number[] = [];
    for (let i = 0; i < 200; i++) ps.push(c.heap.malloc(16 + (i % 7) * 40));
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      new Uint8Array(buffer, p, 8).fill(0xa5);
    }
    kept.push(ps.splice(0, live));
    for (const p of ps) c.heap.free(p); // cached in this slot's magazines
  }
  if (hold !== 0) copies[hold - 1]!.hold();
  parentPort!.postMessage({ threadId: [a.threadId, b.threadId], slots: copies.map((c) => c.slot()), live: kept });
  setInterval(() => 0, 1 << 30);
}
void main();
