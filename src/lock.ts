/**
 * The global lock: one Int32 word (G_LOCK) in the manner of the classic futex mutex (Drepper,
 * "Futexes Are Tricky", mutex #2), whose three states are kept in the low two bits:
 *   0 free, 1 held with no waiters, 2 held and somebody may be waiting,
 * and whose upper bits hold the holder's thread slot + 1: word = ((tid + 1) << 2) | state.
 * The holder is thus recorded by the very CAS that takes the lock, so a thread terminated at
 * any point leaves either a free lock or a lock that names it; a waiter breaks the lock of a
 * holder whose slot is no longer ATTACHED (marked by watch() or reclaim()).
 *
 * Acquire: one CAS 0 -> (me | 1); on failure spin a bounded number of times, then set the
 * waiters bit and Atomics.wait on that exact word. Release: exchange to 0, and Atomics.notify
 * only when the old word had the waiters bit. On a thread that may not block (a browser main
 * thread) the lock only spins.
 *
 * Counters (acquisitions, contended, spins, waits, wakes, wait time) are kept in the header's
 * Float64 area and updated by the holder under the lock, so any thread can read them.
 * The lock is re-entrant for its holder (runner.lockDepth): a reclaim holds it throughout.
 */
import {
  F_LOCK_ACQ, F_LOCK_CONTENDED, F_LOCK_MAX_WAIT_MS, F_LOCK_RECOVERIES, F_LOCK_SPINS, F_LOCK_WAITS,
  F_LOCK_WAIT_MS, F_LOCK_WAKES, G_LOCK, LOCK_HELD, LOCK_STATE_MASK, LOCK_WAITERS, TH_STATE, TS_ATTACHED, TF_LOCK_ACQ,
  lockWord,
} from './layout.js';
import type { ThreadContext } from './context.js';
import { repairSlotTable } from './slots.js';

const SPIN_LIMIT = 128; // bounded spin before waiting (an uncontended lock+unlock costs ~38 ns)
const WAIT_SLICE_MS = 20; // a waiter wakes this often to check whether the holder died
const HELD = LOCK_HELD;
const WAITERS = LOCK_WAITERS;
const STATE_MASK = LOCK_STATE_MASK;

/** Whether Atomics.wait may be called on this thread (false on a browser main thread). */
export const CAN_BLOCK: boolean = (() => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
})();

/** The thread slot holding the lock, or -1 when it is free. */
export function lockHolder(word: number): number {
  return word === 0 ? -1 : (word >>> 2) - 1;
}

function me(t: ThreadContext): number {
  return lockWord(t.runner.slot, 0);
}

/** Acquires the global lock, waiting as long as needed. */
export function lockAcquire(h: ThreadContext): void {
  if (h.runner.lockDepth > 0) {
    h.runner.lockDepth++;
    return;
  }
  if (Atomics.compareExchange(h.i32, G_LOCK, 0, me(h) | HELD) !== 0) lockAcquireSlow(h, true);
  else lockTaken(h, false, 0, 0, 0);
  h.runner.lockDepth = 1;
}

/** Acquires the lock unless that means waiting; returns whether it is held. */
export function tryLockAcquire(h: ThreadContext): boolean {
  if (h.runner.lockDepth > 0) {
    h.runner.lockDepth++;
    return true;
  }
  if (Atomics.compareExchange(h.i32, G_LOCK, 0, me(h) | HELD) === 0) lockTaken(h, false, 0, 0, 0);
  else if (!lockAcquireSlow(h, false)) return false;
  h.runner.lockDepth = 1;
  return true;
}

/**
 * Takes the lock if it is free or its holder is known dead (then breaking it), without waiting
 * for a live holder: for code running in an event-loop callback (watch()), which must not block
 * on a holder that only another callback of the same loop can mark dead.
 */
export function lockAcquireNoWait(h: ThreadContext): boolean {
  if (tryLockAcquire(h)) return true;
  if (!breakLockIfHolderDead(h, Atomics.load(h.i32, G_LOCK))) return false;
  lockTaken(h, true, 0, 0, 0);
  h.runner.lockDepth = 1;
  return true;
}

function lockAcquireSlow(h: ThreadContext, mayWait: boolean): boolean {
  const i32 = h.i32;
  const mine = me(h);
  const t0 = performance.now();
  let spins = 0;
  let waits = 0;
  for (; spins < SPIN_LIMIT; spins++) {
    if (Atomics.load(i32, G_LOCK) === 0 && Atomics.compareExchange(i32, G_LOCK, 0, mine | HELD) === 0) {
      lockTaken(h, true, spins, 0, performance.now() - t0);
      return true;
    }
  }
  if (!mayWait) return false;
  for (;;) {
    const c = Atomics.load(i32, G_LOCK);
    if (c === 0) {
      // Taken with the waiters bit set, conservatively: others may still be waiting.
      if (Atomics.compareExchange(i32, G_LOCK, 0, mine | WAITERS) === 0) break;
      continue;
    }
    if (breakLockIfHolderDead(h, c)) break;
    const waiting = (c & ~STATE_MASK) | WAITERS;
    if (c !== waiting && Atomics.compareExchange(i32, G_LOCK, c, waiting) !== c) continue;
    if (CAN_BLOCK) {
      waits++;
      Atomics.wait(i32, G_LOCK, waiting, WAIT_SLICE_MS);
    } else {
      spins++;
    }
  }
  lockTaken(h, true, spins, waits, performance.now() - t0);
  return true;
}

function lockTaken(h: ThreadContext, contended: boolean, spins: number, waits: number, waitMs: number): void {
  // The buffer only grows under the lock: a critical section always works on current views.
  h.ensureViews();
  const f64 = h.f64;
  f64[F_LOCK_ACQ]++;
  h.f64[h.tfW + TF_LOCK_ACQ]++;
  if (contended) {
    f64[F_LOCK_CONTENDED]++;
    f64[F_LOCK_SPINS] += spins;
    f64[F_LOCK_WAITS] += waits;
    f64[F_LOCK_WAIT_MS] += waitMs;
    if (waitMs > f64[F_LOCK_MAX_WAIT_MS]) f64[F_LOCK_MAX_WAIT_MS] = waitMs;
  }
}

export function lockRelease(h: ThreadContext): void {
  if (--h.runner.lockDepth > 0) return;
  const i32 = h.i32;
  // Counted before the release (a wake is needed when the word has the waiters bit), so that
  // every Float64 counter of the lock is written under it; a waiter that arrives between this
  // load and the exchange is woken but not counted.
  if ((Atomics.load(i32, G_LOCK) & WAITERS) !== 0) h.f64[F_LOCK_WAKES]++;
  if ((Atomics.exchange(i32, G_LOCK, 0) & WAITERS) !== 0) {
    Atomics.notify(i32, G_LOCK, 1);
  }
}

/**
 * When the holder named by lock word `c` is no longer ATTACHED (its worker exited and was
 * marked by watch() or reclaim()), takes the lock over from it with one CAS and repairs the
 * pool. Returns true when the caller now holds the lock.
 */
function breakLockIfHolderDead(h: ThreadContext, c: number): boolean {
  const i32 = h.i32;
  const holder = lockHolder(c);
  if (holder < 0 || holder === h.runner.slot || holder >= h.geo.maxThreads) return false;
  if (Atomics.load(i32, h.threadW(holder) + TH_STATE) === TS_ATTACHED) return false;
  if (Atomics.compareExchange(i32, G_LOCK, c, me(h) | WAITERS) !== c) return false;
  h.f64[F_LOCK_RECOVERIES]++;
  repairSlotTable(h);
  return true;
}

/**
 * Test hook: takes the global lock and keeps it as if another thread held it (the re-entrancy
 * count is dropped, so this thread's own tryMalloc sees it busy). A worker calls this, then is
 * terminated; or a test checks that tryMalloc does not wait.
 */
export function testHoldLock(t: ThreadContext): void {
  lockAcquire(t);
  t.runner.lockDepth = 0;
}
