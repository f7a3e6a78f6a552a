/**
 * Scenarios in which a main thread may block on the global lock. Each runs in a child process
 * (test/faults.test.ts starts `node --import tsx test/hang-scenarios.ts <name>` with a deadline
 * and kills it when the deadline passes), so that a hang fails one test instead of the run.
 * A scenario prints one line `RESULT <json>` and exits.
 */
import { SharedHeap, type HeapError } from '../src/index.js';
import { lockWord } from './fault-internals.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { checked } from './fixtures.js';

const MiB = 1 << 20;
const LARGE = 1 * MiB; // a large block: taken and given back under the global lock

export interface ErrorInfo {
  name: string;
  code: string | undefined;
  message: string;
}

function info(e: unknown): ErrorInfo {
  const err = e as HeapError;
  return { name: err?.name, code: err?.code, message: String(err?.message ?? e) };
}

type AsyncHeap = SharedHeap & { mallocAsync(size: number): Promise<number>; freeAsync(block: number): Promise<void> };

/**
 * A worker `heap` watches attaches, takes the global lock and is terminated holding it (not
 * awaited: its exit event runs only once the event loop does); returns its threadId.
 */
async function watchedHolderDies(heap: SharedHeap): Promise<number> {
  const r = startHeapWorker((w) => heap.watch(w));
  await r.remote.attach(heap.buffer);
  const id = r.worker.threadId;
  await r.remote.holdLock();
  void r.worker.terminate();
  return id;
}

export const scenarios: Record<string, () => Promise<Record<string, unknown>>> = {
  /** Finding 1: an unwatched worker dies holding the lock; the main thread calls reclaim(threadId). */
  async reclaimLockHolder() {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker();
    await r.remote.attach(heap.buffer);
    const id = r.worker.threadId;
    await r.remote.holdLock();
    await r.worker.terminate(); // awaited: the caller may state that the thread stopped
    const t0 = performance.now();
    const reclaimed = heap.reclaim(id);
    const reclaimMs = performance.now() - t0;
    const p = heap.malloc(LARGE);
    heap.free(p);
    return { reclaimed, reclaimMs, p, check: checked(heap), lock: lockWord(heap.buffer), attached: heap.stats().threadsAttached };
  },

  /** Finding 1, last sentence: neither watch() nor reclaim(); the main thread's next malloc. */
  async mallocAfterUnwatchedHolderDied() {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker();
    await r.remote.attach(heap.buffer);
    const id = r.worker.threadId;
    await r.remote.holdLock();
    await r.worker.terminate();
    const t0 = performance.now();
    let error: ErrorInfo | undefined;
    let p = -1;
    try {
      p = heap.malloc(LARGE);
    } catch (e) {
      error = info(e);
    }
    const ms = performance.now() - t0;
    // What the error says to do: reclaim the thread, then the heap works again.
    const reclaimed = heap.reclaim(id);
    const q = heap.malloc(LARGE);
    heap.free(q);
    return { id, p, error, ms, reclaimed, q, check: checked(heap), lock: lockWord(heap.buffer) };
  },

  /**
   * Finding 2: a watched worker dies holding the lock (terminate() not awaited) while the main
   * thread allocates: its exit event cannot run while the main thread blocks.
   */
  async watchedHolderDiesWhileMainAllocates() {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 }) as AsyncHeap;
    const id = await watchedHolderDies(heap);
    const t0 = performance.now();
    let syncRounds = 0;
    let syncError: ErrorInfo | undefined;
    try {
      for (let i = 0; i < 20; i++) {
        heap.free(heap.malloc(LARGE));
        syncRounds++;
      }
    } catch (e) {
      syncError = info(e);
    }
    const syncMs = performance.now() - t0;
    // The asynchronous call waits with the event loop running: the exit handler marks the worker.
    const t1 = performance.now();
    const p = await heap.mallocAsync(LARGE);
    const asyncMs = performance.now() - t1;
    heap.free(p);
    return {
      id, syncRounds, syncError, syncMs, p, asyncMs, check: checked(heap), lock: lockWord(heap.buffer),
      recoveries: heap.stats().lock.recoveries,
    };
  },


  /**
   * A watched worker dies holding the lock while the main thread frees a large block, which free
   * does under the lock: the synchronous free ends in a HeapError and frees nothing; freeAsync
   * waits with the event loop running and frees it.
   */
  async watchedHolderDiesWhileMainFrees() {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 }) as AsyncHeap;
    // Above the large-run lists' spans (layout.ts LARGE_POOL_SPANS): its free takes the lock.
    const UNPOOLED = 5 * MiB;
    const p = heap.malloc(UNPOOLED);
    heap.u8.fill(5, p, p + UNPOOLED);
    const id = await watchedHolderDies(heap);
    const t0 = performance.now();
    let syncError: ErrorInfo | undefined;
    try {
      heap.free(p);
    } catch (e) {
      syncError = info(e);
    }
    const syncMs = performance.now() - t0;
    const liveAfterSync = heap.stats().largeLiveBlocks;
    const keptAfterSync = heap.u8[p] === 5 && heap.u8[p + UNPOOLED - 1] === 5;
    await heap.freeAsync(p);
    return {
      id, syncError, syncMs, liveAfterSync, keptAfterSync, liveAfterAsync: heap.stats().largeLiveBlocks,
      check: checked(heap), lock: lockWord(heap.buffer), recoveries: heap.stats().lock.recoveries,
    };
  },
};

const name = process.argv[2];
if (name !== undefined && process.argv[1]?.endsWith('hang-scenarios.ts')) {
  const run = scenarios[name];
  if (run === undefined) {
    console.log(`RESULT ${JSON.stringify({ error: `no scenario ${name}` })}`);
    process.exit(2);
  }
  run()
    .then((r) => console.log(`RESULT ${JSON.stringify(r)}`))
    .catch((e) => console.log(`RESULT ${JSON.stringify({ thrown: info(e) })}`))
    .finally(async () => {
      await terminateAll();
      process.exit(0);
    });
}
