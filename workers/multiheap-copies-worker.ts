/**
 * Test worker for test/multiheap-copies.test.ts: a thread that loads two copies of the
 * package (this bundle's and the one at workerData.copy) and attaches to two heaps with them:
 * copy 1 to heap A and heap B, copy 2 to heap B (and, with workerData.both, to heap A too). It
 * mallocs and frees through each attachment (blocks cached in each slot's magazines), keeps
 * workerData.live blocks of each live (filled with 0xa5), and, when workerData.hold is 'A' or 'B',
 * takes that heap's global lock through copy 2 (copy 1 where copy 2 is not attached to it).
 * Then it answers { threadIds, slots: { A: number[]; B: number[] }, live: { A: number[]; B: number[] } } and idles.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { testHoldLock } from '../src/lock.js';

interface HeapLike { threadId: number; malloc(n: number): number; free(p: number): void }
const { a, b, copy, hold, live, both } = workerData as {
  a: SharedArrayBuffer; b: SharedArrayBuffer; copy: string; hold: '' | 'A' | 'B'; live: number; both: boolean;
};

async function main(): Promise<void> {
  const two = (await import(`${copy}/index.js`)) as { SharedHeap: { attach(b: SharedArrayBuffer): HeapLike } };
  const twoHeap = (await import(`${copy}/heap.js`)) as { internals(h: unknown): { slot: number } };
  const twoLock = (await import(`${copy}/lock.js`)) as { testHoldLock(t: unknown): void };
  const atts: { heap: 'A' | 'B'; h: HeapLike; slot: () => number; hold: () => void }[] = [];
  const one = (buffer: SharedArrayBuffer, key: 'A' | 'B'): void => {
    const h = SharedHeap.attach(buffer);
    atts.push({ heap: key, h, slot: () => internals(h).slot, hold: () => testHoldLock(internals(h)) });
  };
  const other = (buffer: SharedArrayBuffer, key: 'A' | 'B'): void => {
    const h = two.SharedHeap.attach(buffer);
    atts.push({ heap: key, h, slot: () => twoHeap.internals(h).slot, hold: () => twoLock.testHoldLock(twoHeap.internals(h)) });
  };
  one(a, 'A');
  other(b, 'B');
  one(b, 'B');
  if (both) other(a, 'A');
  const kept: { A: number[]; B: number[] } = { A: [], B: [] };
  for (const c of atts) {
    const buffer = c.heap === 'A' ? a : b;
    const ps: number[] = [];
    for (let i = 0; i < 200; i++) ps.push(c.h.malloc(16 + (i % 7) * 40));
    for (const p of ps) new Uint8Array(buffer, p, 8).fill(0xa5);
    kept[c.heap].push(...ps.splice(0, live));
    for (const p of ps) c.h.free(p);
  }
  if (hold !== '') {
    const on = atts.filter((c) => c.heap === hold);
    on[on.length - 1]!.hold();
  }
  const slots = { A: atts.filter((c) => c.heap === 'A').map((c) => c.slot()), B: atts.filter((c) => c.heap === 'B').map((c) => c.slot()) };
  parentPort!.postMessage({ threadIds: atts.map((c) => c.h.threadId), slots, live: kept });
  setInterval(() => 0, 1 << 30);
}
void main();
