/**
 * A full garbage collection on demand, for the untimed gaps between runs.
 *
 * Each run gets a fresh heap: a SharedArrayBuffer that the main thread keeps
 * for the whole run, long enough to reach V8's old generation, which the
 * mostly idle main thread rarely collects. So with W5's traces the process
 * kept every run's heap: 2.9 GB resident after six replays of lua_inventory
 * (each ~276 MiB) following jq_customers, and the later lua replays slowed
 * down from 7.1M to 4.3M ops/s. With a collection in the main thread before
 * each run the process stayed under 1.2 GB and the six replays ran at
 * 8.3M-9.6M ops/s. The workers hold the heap too (their views of it, the
 * task that brought it), and an idle worker did not collect for runs, so the
 * memory of every run stayed mapped while the next ones ran; each worker
 * now collects after a run that grew the process by 128 MiB or more or left
 * it holding HEAVY_RSS_BYTES (1 GiB on a machine of 8 GiB or more; see
 * below), and the main thread, which runs no timed loop, after each run as
 * well as before it (bench/bench-task.ts runThread, bench/run.ts), untimed.
 * A worker holds its run's allocator (sabmalloc's heap instance, the peers'
 * pools; not dlmalloc-wasm's) until its next run is over, so a run's memory
 * goes at the first collection after that (bench/bench-task.ts runThread).
 *
 * `gc` is exposed by setting --expose-gc at run time and fetching the
 * function from a fresh context; if that fails, this does nothing.
 *
 * A thread that runs timed loops collects only when the process holds a lot
 * ({@link collectGarbageIfHeavy}), not after every run: a full collection
 * threw away the optimized code of the loop copies (V8's trace: "marking
 * dependent code ... for deoptimization, reason: weak objects", the maps and
 * objects of the run before, now dead, that the code depended on) and cleared
 * feedback the code needed, so the next "warm" run ran on-stack-replaced code
 * again, and W3's loop, called once a round, also left its optimized code at
 * the end of every round (a deoptimization for want of feedback). Measured in
 * one session (Intel Xeon, 2 cores, `bench W1 W3 --threads 1 --runs 5
 * --allocators sabmalloc,glibc,reference`, with a collection after every run
 * and then without): W3 at one thread sabmalloc 52.5 -> 67.9 M ops/s, the
 * reference allocator 64.3 -> 99.6 M, glibc unchanged (96.0, 97.0); W1
 * sabmalloc 39.7 -> 42.1 M. The natives' runs, in their own processes, never
 * paid this.
 */
import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null | undefined;

/** Runs a full garbage collection of this thread's isolate (no-op where impossible). */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const fn: unknown = runInNewContext('typeof gc === "function" ? gc : null');
      gcFn = typeof fn === 'function' ? (fn as () => void) : null;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

/** A run that grew the process's resident set by this much is followed by a collection. */
export const HEAVY_RUN_BYTES = 128 * 1024 ** 2;

/**
 * The resident set above which a worker collects after any run: an eighth of the machine's
 * memory, at most 1 GiB.
 */
export const HEAVY_RSS_BYTES = Math.min(1024 ** 3, Math.floor(totalmem() / 8));

/**
 * Collects, as {@link collectGarbage}, after the end of the current job (endOfJob), and only
 * when the process holds a lot: its resident set grew by HEAVY_RUN_BYTES or more since
 * `rssBefore` (taken before the run), or is above HEAVY_RSS_BYTES.
 * Returns whether it did. W1 and W3 runs touch a few MiB each and never get there, nor do W2's at
 * one or two threads (28-55 MiB) until several are held; the large traces' replays (about 300
 * MiB each) collect after every run, as every run did before, so that their heaps do not pile
 * up (with them held, runs met the expensive first touches of prime.ts's comment).
 */
export async function collectGarbageIfHeavy(rssBefore: number): Promise<boolean> {
  await endOfJob();
  const rss = process.memoryUsage.rss();
  if (rss - rssBefore < HEAVY_RUN_BYTES && rss < HEAVY_RSS_BYTES) return false;
  collectGarbage();
  return true;
}

/** {@link collectGarbage} after the end of the current job (see endOfJob). */
export async function collectGarbageAfterJob(): Promise<void> {
  await endOfJob();
  collectGarbage();
}

/**
 * Resolves on a later turn of the event loop: collectGarbageIfHeavy and collectGarbageAfterJob
 * wait for it, so that a collection takes what the code before it in the same task dropped. A heap create() or attach() made is held by the
 * WeakRef of its record (src/heap.ts), and V8 keeps a WeakRef's target alive until the end of the
 * job that made it, whatever a collection in that job finds. A bench worker ran task after task in
 * one job (piscina's Atomics.wait loop reads the next task and runs it without returning to the
 * event loop while the tasks finish synchronously), so no collection there took any run's heap:
 * `bench W2 --threads 4 --runs 25 --allocators sabmalloc` went on growing by about 47 MiB a run,
 * to 1.47 GB, above HEAVY_RSS_BYTES, where every run collected. With this await (dedbef5, before
 * runThread's hold of a run's allocator) the same command peaks at 1.07 GB, then stays at about
 * 200 MB (test/bench-worker-heap-release.test.ts bounds it by HEAVY_RSS_BYTES and 256 MiB).
 */
function endOfJob(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
