/**
 * Node-only helpers (the package subpath sabmalloc/node): watchPool, which watches every thread of
 * a worker pool. (How the repository's own worker files are started is bench/worker-entry.ts: they
 * are not in the package.)
 */
import { describe, isObjectArgument } from './errors.js';
import { EXIT_MEANS_STOPPED, exitNotStoppedError } from './reclaim.js';

/** What watchPool needs of a worker pool (piscina's Piscina has it: `threads` and the 'workerCreate' event). */
export interface WorkerPoolLike {
  readonly threads: readonly { threadId: number; once(event: 'exit', fn: () => void): unknown }[];
  on(event: 'workerCreate', fn: (...args: unknown[]) => void): unknown;
}

/**
 * Watches every thread of a worker pool (piscina), now and as the pool starts more, so that each
 * one's thread slot is reclaimed when it exits: when the pool shrinks or is destroyed
 * (`pool.destroy()` terminates its threads, which get no chance to detach).
 */
export function watchPool(heap: { watch(worker: WorkerPoolLike['threads'][number]): void }, pool: WorkerPoolLike): void {
  // A revoked Proxy first: reading its properties threw V8's own TypeError (an audit); and the heap,
  // whose watch() the pool's threads are given, now rather than at the pool's next thread.
  if (!isObjectArgument(heap) || typeof heap.watch !== 'function') {
    throw new TypeError(`watchPool(heap, pool): expected a SharedHeap, got ${describe(heap)}`);
  }
  if (!isObjectArgument(pool) || !Array.isArray(pool.threads) || typeof pool.on !== 'function') {
    throw new TypeError('watchPool(heap, pool): expected a worker pool with `threads` and on() (a Piscina)');
  }
  // Where watch() refuses (Deno), here and not at the pool's next thread: a pool with no thread yet
  // (piscina's minThreads: 0) was accepted, and watch() then threw out of the pool's 'workerCreate'
  // event, an uncaught exception that ended the program at its first pool.run() (an audit).
  if (!EXIT_MEANS_STOPPED) throw exitNotStoppedError('watchPool(heap, pool)');
  const watched = new WeakSet<object>();
  const watchNew = (): void => {
    for (const w of pool.threads) {
      if (watched.has(w)) continue;
      watched.add(w);
      heap.watch(w);
    }
  };
  watchNew();
  pool.on('workerCreate', watchNew);
}
