/**
 * Test worker for test/two-copies-stopped-holder-gone.test.ts: a thread that loads two copies of
 * the package (this bundle's, A, and the one at workerData.copy, B, as two-copies-worker.ts does)
 * and attaches to workerData.buffer through each: two slots under its one Node threadId. A fault
 * stops copy A's instance (a 3 MiB malloc cut off under the global lock: its slot DEAD), and the
 * thread runs on through copy B, which never reclaims that slot (its attach came before): B
 * mallocs blocks, keeps workerData.live of them and caches the others, and takes the global lock
 * (breaking the stopped instance's) and keeps it. Then it answers { threadId, slots, live, thrown }
 * and idles until ended.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { faultUnderLock } from './fault-under-lock.js';

interface CopyHeap {
  threadId: number;
  malloc(n: number): number;
  free(p: number): void;
}
const { buffer, copy, live } = workerData as { buffer: SharedArrayBuffer; copy: string; live: number };

async function main(): Promise<void> {
  const two = (await import(`${copy}/index.js`)) as { SharedHeap: { attach(b: SharedArrayBuffer): CopyHeap } };
  const twoHeap = (await import(`${copy}/heap.js`)) as { internals(h: unknown): { slot: number } };
  const twoLock = (await import(`${copy}/lock.js`)) as { testHoldLock(t: unknown): void };
  const a = SharedHeap.attach(buffer);
  const b = two.SharedHeap.attach(buffer);
  const slots = [internals(a).slot, twoHeap.internals(b).slot];
  const thrown = faultUnderLock(a);
  const ps: number[] = [];
  for (let i = 0; i < 200; i++) {
    const p = b.malloc(16 + (i % 7) * 40);
    new Uint8Array(buffer, p, 8).fill(0xa5);
    ps.push(p);
  }
  const kept = ps.splice(0, live);
  for (const p of ps) b.free(p); // cached in copy B's magazines
  twoLock.testHoldLock(twoHeap.internals(b));
  parentPort!.postMessage({ threadId: b.threadId, slots, live: kept, thrown });
  setInterval(() => 0, 1 << 30);
}
void main();
