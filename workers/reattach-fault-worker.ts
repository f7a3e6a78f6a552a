/**
 * Test worker for test/reclaim-reattached.test.ts: attaches to workerData.buffer and has a 3 MiB
 * malloc cut off under the global lock by the RangeError of a stack overflow (as
 * workers/lock-fault-worker.ts): its instance stops, its slot is DEAD, the lock stays held in its
 * name. Posts { thrown, threadId, slot }. At the next message it does what the HeapStateError says,
 * "attach again in this thread": a new instance under the same threadId, in a new slot, which then
 * reclaims the stopped one (under the global lock, so it waits while another thread holds it);
 * posts { slot, same }. At each further message it allocates and frees for a while and posts
 * { error, attached }: whether its slot is still ATTACHED under its id.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { faultUnderLock } from './fault-under-lock.js';
import { TH_STATE, TH_THREAD_ID, TS_ATTACHED } from '../src/layout.js';

const { buffer } = workerData as { buffer: SharedArrayBuffer };
const first = SharedHeap.attach(buffer);
const firstSlot = internals(first).slot;
const thrown = faultUnderLock(first);
parentPort!.postMessage({ thrown, threadId: first.threadId, slot: firstSlot });
parentPort!.once('message', () => {
  const heap = SharedHeap.attach(buffer);
  const t = internals(heap);
  parentPort!.postMessage({ slot: t.slot, same: heap === first });
  parentPort!.on('message', () => {
    let error = '';
    try {
      for (let i = 0; i < 2000; i++) heap.free(heap.malloc(64 + (i % 700)));
    } catch (e) {
      error = String(e);
    }
    const w = t.threadW(t.slot);
    parentPort!.postMessage({
      error,
      attached: Atomics.load(t.i32, w + TH_STATE) === TS_ATTACHED && Atomics.load(t.i32, w + TH_THREAD_ID) === heap.threadId + 1,
    });
  });
});
