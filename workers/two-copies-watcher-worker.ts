/**
 * Test worker for test/two-copies-watcher.test.ts: a watcher thread that loads two copies of the
 * package (this bundle's, A, and the one at workerData.copy, B) and attaches through each, then
 * starts two workers (workerData.child: workers/two-copies-worker.ts, so each has two slots too)
 * and watches the first through copy A and the second through copy B; the second keeps the global
 * lock through its second copy. Once both answered it posts { ids: [its own, first's, second's] }
 * and idles until ended (its end ends them: Node's rule).
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';

interface Watcher {
  threadId: number;
  watch(w: Worker): void;
}
const { buffer, copy, child } = workerData as { buffer: SharedArrayBuffer; copy: string; child: string };

async function main(): Promise<void> {
  const two = (await import(`${copy}/index.js`)) as { SharedHeap: { attach(b: SharedArrayBuffer): Watcher } };
  const a = SharedHeap.attach(buffer);
  const b = two.SharedHeap.attach(buffer);
  const ids: number[] = [a.threadId];
  const copies: Watcher[] = [a, b];
  for (let k = 0; k < 2; k++) {
    // One after the other: the second keeps the lock, which the first's slow paths would wait on.
    const w = new Worker(child, { workerData: { buffer, copy, hold: k === 1 ? 2 : 0, live: 5 } });
    copies[k]!.watch(w);
    const said = await new Promise<{ threadId: number[] }>((resolve) => w.once('message', resolve));
    ids.push(said.threadId[0]!);
  }
  parentPort!.postMessage({ ids });
  setInterval(() => 0, 1 << 30);
}
void main();
