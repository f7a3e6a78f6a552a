/**
 * Stopping a test worker at one of its Atomics calls, as worker.terminate() can stop a thread
 * (test/crash-points.test.ts measured it: a thread terminated in a loop of two Atomics calls stops
 * between them in about half the runs). Shared by workers/crash-worker.ts,
 * workers/oom-crash-worker.ts and workers/answer-crash-worker.ts.
 */

/** The Atomics methods wrapped by default. */
export const ATOMICS_METHODS = ['add', 'and', 'compareExchange', 'exchange', 'load', 'or', 'store', 'sub', 'xor', 'notify', 'wait'] as const;

/**
 * Wraps every method in `methods` of this thread's Atomics so that the n-th call from now runs
 * `onStop` at its entry, before the operation (the originals put back first). n = 0 only counts.
 * `onCall(method, call)` sees each call's method name and number. Returns a function that puts
 * the originals back and answers the number of calls made.
 */
export function armAtomics(
  n: number,
  onStop: () => never,
  methods: readonly string[] = ATOMICS_METHODS,
  onCall?: (method: string, call: number) => void,
): () => number {
  const table = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = methods.map((m) => table[m]!);
  const restore = (): void => methods.forEach((name, j) => (table[name] = originals[j]!));
  let calls = 0;
  methods.forEach((m, k) => {
    const original = originals[k]!;
    table[m] = function (this: unknown, ...args: unknown[]): unknown {
      onCall?.(m, calls + 1);
      if (++calls === n) {
        restore();
        onStop();
      }
      return original.apply(Atomics, args);
    };
  });
  return () => {
    restore();
    return calls;
  };
}

/** Ends this worker thread with process.exit(), which, like worker.terminate(), runs no finally block. */
export function stopHere(): never {
  process.exit(0);
  for (;;) {
    // process.exit() in a worker stops the thread at its next interrupt check: this loop's back-edge.
  }
}
