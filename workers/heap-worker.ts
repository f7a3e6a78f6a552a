/**
 * A heap attached in a worker, driven from another thread through comlink:
 *
 *   const e = workerEntry('heap-worker');
 *   const worker = new Worker(e.filename, { execArgv: e.execArgv });
 *   const remote = wrap<HeapWorkerApi>(nodeEndpoint(worker));
 *   await remote.attach(heap.buffer);
 *   const p = await remote.malloc(64);   // a block of the shared heap, allocated in the worker
 *   heap.free(p);                        // freed on this thread: a cross-thread free
 *
 * Every call is one message round trip (tens of microseconds): this is for tests and for
 * driving a worker's allocations from the outside, not for hot loops.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { expose } from 'comlink';
import { nodeEndpoint } from './comlink-node.js';
import { HeapError, SharedHeap, type HeapStats, type SharedMemory } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { lockAcquire, lockRelease } from '../src/lock.js';
import { G_LOCK, G_LOCK_WANT, LOCK_STATE_MASK } from '../src/layout.js';
import { setStage1TestHooks } from '../src/pool.js';
import { armCrash } from '../src/crash.js';
import { reallocChurn, type ChurnResult } from './realloc-churn.js';


let heap: SharedHeap | undefined;

function attached(fn: string): SharedHeap {
  if (heap === undefined) throw new Error(`heap-worker ${fn}: call attach(buffer) first`);
  return heap;
}

const api = {
  /** Node's threadId of this worker (what heap.reclaim() takes). */
  threadId,
  /** Attaches this worker to the heap; returns the heap's threadId (equal to `threadId`). */
  attach(buffer: SharedArrayBuffer | SharedMemory): number {
    heap = SharedHeap.attach(buffer);
    return heap.threadId;
  },
  /** Attaches again and says whether SharedHeap.attach returned the instance already held. */
  attachAgainIsSame(buffer: SharedArrayBuffer | SharedMemory): boolean {
    return SharedHeap.attach(buffer) === heap;
  },
  /** Whether this worker's instance has the heap's WebAssembly.Memory (heap.memory). */
  hasMemory(): boolean {
    return attached('hasMemory').memory !== undefined;
  },
  malloc(size: number): number {
    return attached('malloc').malloc(size);
  },
  calloc(n: number, size: number): number {
    return attached('calloc').calloc(n, size);
  },
  realloc(ptr: number, size: number): number {
    return attached('realloc').realloc(ptr, size);
  },
  free(ptr: number): void {
    attached('free').free(ptr);
  },
  /** heap.mallocAsync(size) and how long it took to resolve. */
  async timedMallocAsync(size: number): Promise<{ p: number; ms: number }> {
    const t0 = performance.now();
    const p = await attached('timedMallocAsync').mallocAsync(size);
    return { p, ms: performance.now() - t0 };
  },
  tryMalloc(size: number): number {
    return attached('tryMalloc').tryMalloc(size);
  },
  /**
   * For `ms` milliseconds: tryMalloc(size), then freeAsync of what it gave, again and again (two
   * acquisitions of the lock a round that never defer to G_LOCK_WANT). Returns the rounds made.
   */
  async nonDeferringLoop(size: number, ms: number): Promise<number> {
    const h = attached('nonDeferringLoop');
    const end = Date.now() + ms;
    let rounds = 0;
    while (Date.now() < end) {
      const p = h.tryMalloc(size);
      if (p !== 0) await h.freeAsync(p);
      rounds++;
    }
    return rounds;
  },
  /** Copies `bytes` into the heap at `ptr`. */
  write(ptr: number, bytes: Uint8Array | number[]): void {
    attached('write').u8.set(bytes, ptr);
  },
  /** A copy of `len` bytes of the heap at `ptr`. */
  read(ptr: number, len: number): Uint8Array {
    return attached('read').u8.slice(ptr, ptr + len);
  },
  stats(): HeapStats {
    return attached('stats').stats();
  },
  check(): void {
    attached('check').check();
  },
  flush(): void {
    attached('flush').flush();
  },
  /** heap.reclaim(threadId) from this worker: a dead thread's slot, magazines and slabs back to the pool. */
  reclaim(threadId: number): boolean {
    return attached('reclaim').reclaim(threadId);
  },
  detach(): void {
    attached('detach').detach();
    heap = undefined;
  },
  /** Mallocs and frees a `size`-byte block `count` times in a loop (loads the lock from several workers at once). */
  churn(size: number, count: number): void {
    const h = attached('churn');
    for (let i = 0; i < count; i++) {
      const p = h.malloc(size);
      if (p === 0) throw new Error(`heap-worker churn: malloc(${size}) returned 0 (out of memory)`);
      h.free(p);
    }
  },
  /** Frees every block of `ps` (another thread's, say: remote frees), then flushes. */
  freeMany(ps: number[]): void {
    const h = attached('freeMany');
    for (const p of ps) h.free(p);
    h.flush();
  },
  /** Calls malloc(size) `n` times, freeing each block it gets at once; returns how many it got (on a full heap, each 0 asks the others to flush). */
  mallocTimes(size: number, n: number): number {
    const h = attached('mallocTimes');
    let got = 0;
    for (let i = 0; i < n; i++) {
      const p = h.malloc(size);
      if (p !== 0) {
        got++;
        h.free(p);
      }
    }
    return got;
  },
  /**
   * Stays in synchronous code (its event loop, and so its answers to asks to flush, held up) until
   * gate[0] is not 0, or `ms` pass; true when the gate opened.
   */
  blockUntil(gate: Int32Array, ms: number): boolean {
    return Atomics.wait(gate, 0, 0, ms) !== 'timed-out';
  },
  /** One malloc of `size` bytes, and how long it took (ms). */
  timedMalloc(size: number): { p: number; ms: number } {
    const h = attached('timedMalloc');
    const t0 = performance.now();
    const p = h.malloc(size);
    return { p, ms: performance.now() - t0 };
  },
  /** Allocates blocks of `size` bytes until malloc returns 0, frees them all (no flush); returns how many it got. */
  fillAndFree(size: number): number {
    const h = attached('fillAndFree');
    const blocks: number[] = [];
    for (let p = h.malloc(size); p !== 0; p = h.malloc(size)) blocks.push(p);
    for (const p of blocks) h.free(p);
    return blocks.length;
  },
  /** Resizes large blocks by realloc (workers/realloc-churn.ts reallocChurn). */
  reallocChurn(seed: number, rounds: number): ChurnResult {
    return reallocChurn(attached('reallocChurn'), seed, rounds);
  },
  /**
   * Frees `ptr` and stops this thread (as worker.terminate() would) at the `nth` crash point of
   * path `path` (src/crash.ts) that the free passes; returns normally if it passes fewer.
   */
  freeStoppingAt(ptr: number, path: number, nth: number): void {
    const h = attached('freeStoppingAt');
    stoppingAt(path, nth, () => h.free(ptr));
  },
  /** realloc(ptr, size), stopping this thread at the `nth` crash point of `path` as freeStoppingAt; its result if it passes fewer. */
  reallocStoppingAt(ptr: number, size: number, path: number, nth: number): number {
    const h = attached('reallocStoppingAt');
    return stoppingAt(path, nth, () => h.realloc(ptr, size));
  },
  /** reclaim(threadId), stopping this thread at the `nth` crash point of `path` as freeStoppingAt; its answer if it passes fewer. */
  reclaimStoppingAt(threadId: number, path: number, nth: number): boolean {
    const h = attached('reclaimStoppingAt');
    return stoppingAt(path, nth, () => h.reclaim(threadId));
  },
  /**
   * Calls free(ptr) (`op` 'free') or realloc(ptr, size) (`op` 'realloc'), pausing at the `nth`
   * crash point of `path` it passes: there it sets gate[0] to 1 (notified) and waits until the
   * test sets it to 2, then goes on. Returns the call's result, or the name and message of the
   * HeapError it threw (a race with another thread's call, made while this one waits).
   */
  callPausingAt(op: 'free' | 'realloc', ptr: number, size: number, path: number, nth: number, gate: Int32Array): { result: number; error: string } {
    const h = attached('callPausingAt');
    armPause(path, nth, gate, Infinity);
    try {
      if (op === 'free') {
        h.free(ptr);
        return { result: 0, error: '' };
      }
      return { result: h.realloc(ptr, size), error: '' };
    } catch (e) {
      if (e instanceof HeapError) return { result: 0, error: `${e.name}: ${e.message}` };
      throw e;
    } finally {
      armCrash(0, () => process.exit(0));
    }
  },
  /**
   * Arms this thread to pause at the `nth` crash point of `path` that whatever it runs next
   * passes (its answer to an ask to flush, say, run from its event loop), as callPausingAt does,
   * but for at most `ms` milliseconds: gate[0] is 1 meanwhile (notified), 2 after. The test may
   * end the pause early by storing 2 and notifying gate[0]. Disarmed once it paused.
   */
  pauseNextAt(path: number, nth: number, gate: Int32Array, ms: number): void {
    armPause(path, nth, gate, ms);
  },
  /**
   * Takes the global lock, keeps it `ms` milliseconds, busy (a long critical section), with the
   * lock's heartbeat every `beatMs` if given (ThreadContext.beatLock: a long copy under the lock),
   * then lets it go. `handTo`, if given, is another attached thread's lock word (layout.ts
   * lockWord, no state bits): halfway through the hold the lock word names that thread instead (a
   * change of holder without a free lock between), and this one again just before the release.
   * Returns G_LOCK_WANT (layout.ts) as it read at the end of the hold: the word a thread waiting
   * for the lock meanwhile wrote there.
   */
  holdLockFor(ms: number, beatMs = 0, handTo = 0): number {
    const t = internals(attached('holdLockFor'));
    lockAcquire(t);
    const start = Date.now();
    const end = start + ms;
    let next = beatMs > 0 ? start + beatMs : Infinity;
    let handed = false;
    while (Date.now() < end) {
      if (Date.now() >= next) {
        t.beatLock();
        next += beatMs;
      }
      if (handTo !== 0 && !handed && Date.now() >= start + ms / 2) {
        renameHolder(t.i32, handTo);
        handed = true;
      }
    }
    if (handed) renameHolder(t.i32, t.runner.lockMe);
    const want = Atomics.load(t.i32, G_LOCK_WANT);
    lockRelease(t);
    return want;
  },
  /** Takes the global lock and keeps it (the test hook testHoldGlobalLock). */
  holdLock(): void {
    testHoldGlobalLock(attached('holdLock'));
  },
  /** Installs this worker's Stage-1 test hooks (src/pool.ts setStage1TestHooks). */
  installStage1Hooks(words: Int32Array): void {
    setStage1TestHooks(words);
  },
};

/** Makes the held lock word name `holder` (a lock word without state bits), keeping its state bits. */
function renameHolder(i32: Int32Array, holder: number): void {
  for (;;) {
    const c = Atomics.load(i32, G_LOCK);
    if (Atomics.compareExchange(i32, G_LOCK, c, (c & LOCK_STATE_MASK) | holder) === c) return;
  }
}

/**
 * Arms this thread's crash points: at the `nth` of `path` it passes, `action` runs (the others
 * return at once); then they are off.
 */
function armAt(path: number, nth: number, action: () => void): void {
  let seen = 0;
  const on = (at: number): never => {
    if (at === path && ++seen === nth) {
      armCrash(0, () => process.exit(0));
      action();
      return undefined as never;
    }
    armCrash(1, on);
    return undefined as never; // not this one: the crash point returns
  };
  armCrash(1, on);
}

/**
 * At the `nth` crash point of `path` this thread passes, it sets gate[0] to 1 (notified) and
 * waits until gate[0] is no longer 1 (the test stores 2 and notifies) or `ms` milliseconds went
 * by, then sets it to 2 and goes on.
 */
function armPause(path: number, nth: number, gate: Int32Array, ms: number): void {
  armAt(path, nth, () => {
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const end = Date.now() + ms;
    while (Atomics.load(gate, 0) === 1 && Date.now() < end) Atomics.wait(gate, 0, 1, Math.min(50, end - Date.now()));
    Atomics.store(gate, 0, 2);
  });
}

/** Runs `fn`, exiting the thread at the `nth` crash point of `path` it passes (the others return). */
function stoppingAt<T>(path: number, nth: number, fn: () => T): T {
  armAt(path, nth, () => process.exit(0));
  try {
    return fn();
  } finally {
    armCrash(0, () => process.exit(0));
  }
}

export type HeapWorkerApi = typeof api;

if (parentPort !== null) expose(api, nodeEndpoint(parentPort));
