/**
 * A call cut off by an exception the allocator did not throw itself: a stack overflow (V8's
 * RangeError "Maximum call stack size exceeded", which a deep recursion calling the heap near
 * its stack limit can meet at any call inside a slow path; other engines' "too much recursion"),
 * or an error in the allocator's own code. The heap's shared state is then what a thread killed
 * at that instruction leaves, which a reclaim repairs (README, "Dead and misbehaving workers"),
 * but the thread lives on: going on with its half-done step, or letting a `finally` release the
 * global lock over it, is what corrupted the heap. So the thread stops using the heap right there
 * (stopOnFault): its slot is marked DEAD (so a thread waiting on a lock it holds breaks it and
 * repairs the slot table), the lock stays held (lockRelease keeps it once `runner.faulted` is
 * set), its context refuses every call, and the call throws HeapStateError with the original
 * error as its cause. Its slot is reclaimed when that thread attaches again (reclaimOwnDead), at
 * a worker's exit by watch(), or by reclaim(threadId) in any other thread.
 */
import { DETACHED_TOPS_W, TH_STATE, TS_ATTACHED, TS_DEAD } from './layout.js';
import type { ThreadContext } from './context.js';
import { HeapError, HeapStateError } from './errors.js';
import { WOULD_BLOCK } from './lock.js';

/** An error that is not the allocator's own, for stopOnFault's second call (SharedHeap.attach). */
export const FAULT: Error = new Error('sabmalloc: a call was cut off');

/** Whether `e` is one the allocator throws before it changes anything (argument and state errors). */
export function isOwnError(e: unknown): boolean {
  if (e === WOULD_BLOCK || e instanceof HeapError) return true;
  // No regular expression here: V8 compiling one at the stack's limit ends the process.
  if (!(e instanceof TypeError || e instanceof RangeError)) return false;
  const m = e.message;
  return !(m.includes('call stack') || m.includes('recursion'));
}

/**
 * If `e` is not the allocator's own: this thread stops using the heap, as described above.
 * Called where the exception is caught, first at each critical section of the lock (before its
 * `finally`), then at the call's entry; a second call only marks the slot DEAD again (in case
 * the first ran out of stack before it could).
 */
export function stopOnFault(t: ThreadContext, e: unknown): boolean {
  if (isOwnError(e)) return false;
  if (!t.runner.faulted) {
    t.runner.faulted = true; // first: from here on lockRelease keeps the lock
    t.detached = true;
    t.topW = DETACHED_TOPS_W; // malloc's fast path misses, into a slow path that throws
    t.slotLimit = 0; // and free's
  }
  if (t.runner.slot >= 0) Atomics.compareExchange(t.i32, t.threadW(t.runner.slot) + TH_STATE, TS_ATTACHED, TS_DEAD);
  return true;
}

/** The error a call entry throws for `e` caught there: `e` itself, or the HeapStateError of a fault. */
export function faultError(t: ThreadContext, e: unknown, call: string): unknown {
  if (!stopOnFault(t, e)) return e;
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new HeapStateError(
    `${call}: cut off by ${what}, in the middle of a change to the heap. This thread has stopped using the heap, as if ` +
      `it had died there: attach again in this thread (which reclaims its slot), or reclaim(${t.threadId}) from another`,
    { cause: e },
  );
}
