/**
 * A call cut off by an exception the allocator did not throw itself: a stack overflow (V8's
 * RangeError "Maximum call stack size exceeded", which a deep recursion calling the heap near
 * its stack limit can meet at any call inside a slow path; other engines' "too much recursion"),
 * or an error in the allocator's own code. The heap's shared state is then what a thread killed
 * at that instruction leaves, which a reclaim repairs (README, "Dead and misbehaving workers"),
 * but the thread lives on: going on with its half-done step, or letting a `finally` release the
 * global lock over it, is what corrupted the heap. So the thread stops using the heap right there:
 * each critical section of the lock sets `runner.faulted` in its catch (after which lockRelease
 * keeps the lock), and every call into a slow path goes through `guarded`, whose catch marks the
 * slot DEAD (so a thread waiting on a lock it holds breaks it and repairs the slot table) and
 * makes the context refuse every call; the call throws HeapStateError with the original error as
 * its cause. Its slot is reclaimed when that thread attaches again (reclaimOwnDead), at a
 * worker's exit by watch(), or by reclaim(threadId) in any other thread.
 *
 * Nothing on that way makes a call before the marks are written: a function that was never
 * called, or whose bytecode V8 flushed after a while unused, is compiled at its first call, and
 * compiling takes stack that a fault at the limit does not leave (an audit made the handlers
 * fail that way, the first fault of a process and one after seconds of garbage: the lock went
 * back over a half-done change). The catch blocks are part of functions already running, and
 * their marks are plain loads, stores, `instanceof` and string compares.
 */
import { DETACHED_TOPS_W, TH_FLUSH_ASK, TH_STATE, TH_THREAD_ID, TH_WATCHING, TS_ATTACHED, TS_DEAD, WATCH_ENTRIES } from './layout.js';
import type { ThreadContext } from './context.js';
import { HeapError, HeapStateError } from './errors.js';
import { WOULD_BLOCK, runnersAttachment } from './lock.js';

/** The messages of a stack overflow: V8's, JavaScriptCore's, SpiderMonkey's. */
const OVERFLOW_V8 = 'Maximum call stack size exceeded';
const OVERFLOW_JSC = 'Maximum call stack size exceeded.';
const OVERFLOW_SM = 'too much recursion';

/**
 * Runs `fn(t, a, b, c, d)`, the slow half of `call` ("malloc(size)"), and stops this thread's use
 * of the heap where an error not the allocator's own cut it off (above). The allocator's own
 * errors (HeapError, and the TypeError and RangeError of a bad argument, all thrown before
 * anything changed) pass through.
 */
export function guarded<R>(t: ThreadContext, call: string, fn: (t: ThreadContext, a: never, b: never, c: never, d: never) => R, a?: unknown, b?: unknown, c?: unknown, d?: unknown): R {
  try {
    return fn(t, a as never, b as never, c as never, d as never);
  } catch (e) {
    const own =
      e === WOULD_BLOCK ||
      e instanceof HeapError ||
      ((e instanceof TypeError || e instanceof RangeError) && e.message !== OVERFLOW_V8 && e.message !== OVERFLOW_JSC && e.message !== OVERFLOW_SM);
    // An instance stopped or detached (before this call, or by a guarded call inside it) has its
    // marks written, or gave its slot back; that slot may be another attachment's by now, even one
    // of this thread under the same id: nothing to mark, whatever cut this call off. (Detach gives
    // the slot back before it sets detached, so a fault inside it is marked.)
    if (t.detached || (own && !t.runner.faulted)) throw e;
    // No call until the marks are written (above): ThreadContext.refuseCalls() written out.
    t.runner.faulted = true; // lockRelease keeps the lock from here on
    t.detached = true;
    t.topW = DETACHED_TOPS_W; // malloc's fast path misses, into a slow path that throws
    t.slotLimit = 0; // and free's
    const stateW = t.thW + TH_STATE;
    // A plain store (tear-free, an aligned Int32Array element): ATTACHED -> DEAD, which only this
    // thread writes while it is attached (layout.ts), and only while the slot still carries this
    // instance's thread id: a slot reclaimed since may be another thread's, ATTACHED and live.
    // Its record of the workers it watches (TH_WATCHING) goes first, in plain stores: this thread
    // runs on, and so do they (its next attachment records them again: reclaim.ts adoptWatches).
    // Left there, a reclaim(threadId) of this stopped instance from another thread, which takes a
    // DEAD slot as a thread that ended, reclaimed them while they ran (an audit).
    if (t.i32[stateW] === TS_ATTACHED && t.i32[t.thW + TH_THREAD_ID] === t.threadId + 1) {
      for (let k = t.thW + TH_WATCHING, end = k + WATCH_ENTRIES; k < end; k++) t.i32[k] = 0;
      t.i32[stateW] = TS_DEAD;
    }
    // The marks are written: calls may fail from here on. This instance's listener for asks to
    // flush (flush-ask.ts) wakes, finds it detached and lets it go, else its pending waitAsync
    // would hold this context and its buffer for the thread's life (an audit). A notify only: the
    // word may be another attachment's by now, whose listener just waits again.
    try {
      Atomics.notify(t.i32, t.thW + TH_FLUSH_ASK);
    } catch {
      // no stack left even for this: the listener stays
    }
    throw faultError(t, e, call); // a RangeError instead, if even this finds no stack: the marks are written
  }
}

/**
 * Marks `t` stopped as guarded() does (SharedHeap.attach, for an instance a fault stopped: in case
 * it had no stack to mark its slot). Returns the slot when it is still this instance's (its
 * threadId and its attachment, ATTACHED or DEAD), else -1: another thread may have reclaimed it
 * since, and another attach taken it (reclaim(threadId) of a stopped thread is allowed; another
 * copy of the package in this thread reclaims it too), and then nothing there is this instance's
 * to touch. (Between the load of the id and the CAS the slot would have to be reclaimed, under
 * the lock, and claimed again for the CAS to meet another thread's ATTACHED.)
 */
export function stopOnFault(t: ThreadContext): number {
  t.runner.faulted = true;
  t.refuseCalls();
  const s = t.runner.slot;
  if (s < 0 || Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) !== t.threadId + 1) return -1;
  // The id is not enough: a thread that loads two copies of the package has slots under its one
  // Node threadId, and the other copy may have reclaimed this slot (reclaimOwnDead) and attached to
  // it again; marked here, that live attachment was reclaimed by this copy's next attach (an audit
  // of 7bfcd5e). Its count of attachments (TH_LOCK_GEN, in this instance's lock word) tells.
  if (!runnersAttachment(t, s)) return -1;
  // Still ATTACHED (the fault left no stack to mark it): its record of the workers it watches goes
  // first, as in guarded().
  const w = t.threadW(s);
  if (Atomics.load(t.i32, w + TH_STATE) === TS_ATTACHED) for (let k = w + TH_WATCHING, end = k + WATCH_ENTRIES; k < end; k++) t.i32[k] = 0;
  Atomics.compareExchange(t.i32, t.threadW(s) + TH_STATE, TS_ATTACHED, TS_DEAD);
  return Atomics.load(t.i32, t.threadW(s) + TH_STATE) === TS_DEAD ? s : -1;
}

/** The HeapStateError a call cut off by `e` throws. */
function faultError(t: ThreadContext, e: unknown, call: string): Error {
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new HeapStateError(
    `${call}: cut off by ${what}, in the middle of a change to the heap. This thread has stopped using the heap, as if ` +
      `it had died there: attach again in this thread (which reclaims its slot), or, if it will not attach again, ` +
        `reclaim(${t.threadId}) from another (not both: a reclaim(${t.threadId}) made after this thread attached again ` +
        `reclaims the new, live attachment)`,
    { cause: e },
  );
}
