/**
 * The global lock: one Int32 word (G_LOCK) with the three states of the classic futex mutex
 * (Drepper, "Futexes Are Tricky", mutex #2):
 *   0 free, 1 held with no waiters, 2 held and somebody may be waiting.
 * Acquire: one CAS 0 -> 1; on failure spin a bounded number of times, then exchange to 2 and
 * Atomics.wait while the word is 2. Release: exchange to 0, and Atomics.notify only when the old
 * value was 2. G_LOCK_OWNER records the holder (tid + 1) so that a waiter can tell when the
 * holder's thread died (its slot is no longer ATTACHED) and break the lock.
 *
 * Counters (acquisitions, contended, spins, waits, wakes, wait time) are kept in the header's
 * Float64 area and updated by the holder under the lock, so any thread can read them.
 * On a thread that may not block (a browser main thread) the lock only spins.
 */
import {
  F_LOCK_ACQ, F_LOCK_CONTENDED, F_LOCK_MAX_WAIT_MS, F_LOCK_RECOVERIES, F_LOCK_SPINS, F_LOCK_WAITS,
  F_LOCK_WAIT_MS, F_LOCK_WAKES, G_GEN, G_LOCK, G_LOCK_OWNER, TH_STATE, TS_ATTACHED, TF_LOCK_ACQ,
} from './layout.js';
import type { HeapInternals } from './heap.js';
import { repairPool } from './pool.js';

const SPIN_LIMIT = 128; // bounded spin before waiting (an uncontended lock+unlock costs ~38 ns)
const WAIT_SLICE_MS = 20; // a waiter wakes this often to check whether the holder died

/** Whether Atomics.wait may be called on this thread (false on a browser main thread). */
export const CAN_BLOCK: boolean = (() => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
})();

/** Acquires the global lock, waiting as long as needed. */
export function lockAcquire(h: HeapInternals): void {
  if (Atomics.compareExchange(h.i32, G_LOCK, 0, 1) === 0) {
    lockTaken(h, false, 0, 0, 0);
    return;
  }
  lockAcquireSlow(h, true);
}

/** Acquires the lock unless that means waiting; returns whether it is held. */
export function tryLockAcquire(h: HeapInternals): boolean {
  if (Atomics.compareExchange(h.i32, G_LOCK, 0, 1) === 0) {
    lockTaken(h, false, 0, 0, 0);
    return true;
  }
  return lockAcquireSlow(h, false);
}

function lockAcquireSlow(h: HeapInternals, mayWait: boolean): boolean {
  const i32 = h.i32;
  const t0 = performance.now();
  let spins = 0;
  let waits = 0;
  for (; spins < SPIN_LIMIT; spins++) {
    if (Atomics.load(i32, G_LOCK) === 0 && Atomics.compareExchange(i32, G_LOCK, 0, 1) === 0) {
      lockTaken(h, true, spins, 0, performance.now() - t0);
      return true;
    }
  }
  if (!mayWait) return false;
  for (;;) {
    if (Atomics.exchange(i32, G_LOCK, 2) === 0) break; // taken, in state 2 (conservatively)
    if (breakLockIfHolderDead(h)) break;
    if (CAN_BLOCK) {
      waits++;
      Atomics.wait(i32, G_LOCK, 2, WAIT_SLICE_MS);
    } else {
      spins++;
    }
  }
  lockTaken(h, true, spins, waits, performance.now() - t0);
  return true;
}

function lockTaken(h: HeapInternals, contended: boolean, spins: number, waits: number, waitMs: number): void {
  Atomics.store(h.i32, G_LOCK_OWNER, h.lockTid + 1);
  // The buffer only grows under the lock: a critical section always works on current views.
  if (h.i32[G_GEN] !== h.gen) h.refreshViews();
  const f64 = h.f64;
  f64[F_LOCK_ACQ]++;
  h.tf64[h.tfW + TF_LOCK_ACQ]++;
  if (contended) {
    f64[F_LOCK_CONTENDED]++;
    f64[F_LOCK_SPINS] += spins;
    f64[F_LOCK_WAITS] += waits;
    f64[F_LOCK_WAIT_MS] += waitMs;
    if (waitMs > f64[F_LOCK_MAX_WAIT_MS]) f64[F_LOCK_MAX_WAIT_MS] = waitMs;
  }
}

export function lockRelease(h: HeapInternals): void {
  const i32 = h.i32;
  Atomics.store(i32, G_LOCK_OWNER, 0);
  if (Atomics.exchange(i32, G_LOCK, 0) === 2) {
    // Counted before the notify would be under the lock, but we have released it: the wake count
    // is the one Float64 counter written outside the lock, hence approximate under heavy contention.
    h.f64[F_LOCK_WAKES]++;
    Atomics.notify(i32, G_LOCK, 1);
  }
}

/**
 * When the holder's thread slot is no longer ATTACHED (its worker exited and was marked by
 * watch() or reclaim()), takes the lock over from it and repairs the pool. Returns true when the
 * caller now holds the lock.
 */
function breakLockIfHolderDead(h: HeapInternals): boolean {
  const i32 = h.i32;
  const owner = Atomics.load(i32, G_LOCK_OWNER);
  if (owner === 0) return false;
  const holder = owner - 1;
  if (holder === h.lockTid || holder >= h.geo.maxThreads) return false;
  if (Atomics.load(i32, h.geo.threadsW + holder * h.geo.threadWords + TH_STATE) === TS_ATTACHED) return false;
  if (Atomics.compareExchange(i32, G_LOCK_OWNER, owner, h.lockTid + 1) !== owner) return false;
  Atomics.store(i32, G_LOCK, 2); // keep it held; waiters get notified on release
  h.f64[F_LOCK_RECOVERIES]++;
  repairPool(h);
  return true;
}

/** Test hook: takes the global lock and keeps it (a worker calls this, then is terminated). */
export function testHoldLock(h: HeapInternals): void {
  lockAcquire(h);
}
