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
 * now collects once its run is over, and the main thread after each run as
 * well as before it (bench/bench-task.ts runThread, bench/run.ts), untimed.
 *
 * `gc` is exposed by setting --expose-gc at run time and fetching the
 * function from a fresh context; if that fails, this does nothing.
 */
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
