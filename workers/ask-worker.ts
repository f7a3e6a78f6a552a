/**
 * Test worker for test/flush-ask-asker-dies.test.ts: attaches to workerData.buffer and mallocs
 * workerData.size bytes until malloc answers 0 (a full heap: it then asks the other threads to
 * flush, flush-ask.ts askOthersToFlush). Its Atomics.notify is wrapped so that the first notify of
 * another thread's ask word that reads FA_ASKED stops this thread at the notify's entry, before the
 * operation, as worker.terminate() can stop a thread between two Atomics calls (README, "Tested
 * systematically"; workers/crash-worker.ts stops at Atomics calls the same way). So the ask's CAS
 * (LISTENING -> ASKED) is made and its notify is not. Writes the ask word's index into
 * workerData.ctl[0] just before it stops (not a message, which a thread ending at once may not
 * deliver), or -1 if it got 0 without asking anyone.
 */
import { workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { FA_ASKED, TH_FLUSH_ASK } from '../src/layout.js';

const { buffer, size, ctl } = workerData as { buffer: SharedArrayBuffer; size: number; ctl: Int32Array };
const heap = SharedHeap.attach(buffer);
const t = internals(heap);
const askWords = new Set<number>();
for (let s = 0; s < t.geo.maxThreads; s++) if (s !== t.slot) askWords.add(t.threadW(s) + TH_FLUSH_ASK);

const table = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
const notify = table.notify!;
table.notify = function (this: unknown, ...args: unknown[]): unknown {
  const [a, index] = args as [Int32Array, number];
  if (a.buffer === buffer && askWords.has(index) && Atomics.load(a, index) === FA_ASKED) {
    Atomics.store(ctl, 0, index);
    process.exit(0);
    for (;;) {
      // process.exit() in a worker stops the thread at its next interrupt check: this back-edge.
    }
  }
  return notify.apply(Atomics, args);
};

while (heap.malloc(size) !== 0);
Atomics.store(ctl, 0, -1);
