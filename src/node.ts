/**
 * Node-only helpers (the package subpath sabmalloc/node): watchPool, which watches every thread of
 * a worker pool. (How the repository's own worker files are started is bench/worker-entry.ts: they
 * are not in the package.)
 */
import { describe, isObjectArgument } from './errors.js';
import { EXIT_MEANS_STOPPED, exitNotStoppedError, watchableId } from './reclaim.js';

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
    throw new TypeError(`watchPool(heap, pool): expected a worker pool with \`threads\` and on() (a Piscina), got ${describe(pool)}`);
  }
  // Where watch() refuses (Deno), here and not at the pool's next thread: a pool with no thread yet
  // (piscina's minThreads: 0) was accepted, and watch() then threw out of the pool's 'workerCreate'
  // event, an uncaught exception that ended the program at its first pool.run() (an audit).
  if (!EXIT_MEANS_STOPPED) throw exitNotStoppedError('watchPool(heap, pool)');
  // Every thread the pool holds now is checked before any is watched: a value that is not a Worker
  // (a number in the array) threw V8's own TypeError out of the WeakSet below, after the threads
  // before it were watched and with the pool's listener never added (an audit).
  pool.threads.forEach((w, i) => watchableId(w, 'watchPool(heap, pool)', `pool.threads[${i}]`));
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
  // piscina emits 'workerCreate' for a thread started after the pool's construction only once the
  // thread is ready, that is once it loaded the task module, which attaches it: a thread the pool
  // destroyed before that (pool.destroy() right after a run()) or that died while loading
  // kept its slot for good (an audit, test/watch-pool-unready-thread.test.ts). Node's process
  // 'worker' event comes a tick after any Worker's construction, before its 'exit' can, and the
  // pool holds the thread by then (piscina adds it in the same tick).
  let watchers = poolWatchers.get(pool);
  if (watchers === undefined) {
    poolWatchers.set(pool, (watchers = []));
    startedPools.add(new WeakRef(pool));
  }
  watchers.push(watchNew); // (a pool watched for two heaps: both)
  if (!listening) {
    listening = true;
    process.on('worker', watchStartedPools);
  }
}

/**
 * The pools watchPool watches in this thread (weakly: a pool nobody holds is forgotten), each
 * with the watchNew of each call for it (a WeakMap: kept while the pool is): one process listener
 * for them all, as each call adding its own would keep every pool and heap for good.
 */
const startedPools = new Set<WeakRef<WorkerPoolLike>>();
const poolWatchers = new WeakMap<WorkerPoolLike, (() => void)[]>();
let listening = false;

/** Node's process 'worker' event: the pools' threads not yet watched are, whichever pool started it. */
function watchStartedPools(): void {
  for (const ref of startedPools) {
    const pool = ref.deref();
    if (pool === undefined) startedPools.delete(ref);
    else for (const watchNew of poolWatchers.get(pool) ?? []) watchNew();
  }
}
