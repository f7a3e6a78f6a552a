/**
 * The global lock: one Int32 word (G_LOCK) in the manner of the classic futex mutex (Drepper,
 * "Futexes Are Tricky", mutex #2), whose three states are kept in the low two bits:
 *   0 free, 1 held with no waiters, 2 held and somebody may be waiting,
 * and whose upper bits hold the holder's thread slot + 1 and its attachment's generation:
 * word = (gen << 13) | ((slot + 1) << 2) | state (layout.ts lockWord). The holder is thus recorded
 * by the very CAS that takes the lock, so a thread terminated at any point leaves either a free
 * lock or a lock that names it; a waiter breaks the lock of a holder whose slot is no longer
 * ATTACHED (marked by watch() or reclaim()), by a CAS from the word it read, which fails once
 * the slot was reclaimed and attached again (the generation differs).
 *
 * Acquire: one CAS 0 -> (me | 1); on failure spin a bounded number of times, then set the
 * waiters bit and Atomics.wait on that exact word. Release: a CAS from the holder's own word to
 * 0 (none when the word names another holder and this one was reclaimed: its lock was broken),
 * and Atomics.notify only when the old word had the waiters bit. On a thread that may not block (a browser main
 * thread) the lock only spins.
 *
 * The main thread never waits forever: a main thread (Node's, or any thread that may not block)
 * gives up after MAIN_THREAD_WAIT_MS with a LockTimeoutError naming the holder, because the
 * event that would tell it the holder died (a worker's 'exit') cannot run while it blocks. The
 * asynchronous calls (mallocAsync ...) run the synchronous ones with `noWait` set: where they
 * would wait they throw WOULD_BLOCK before changing anything, and the caller awaits the lock
 * word with Atomics.waitAsync (waitLockAsync), so exit handlers run meanwhile. A worker that
 * watches workers of its own (watch(): their 'exit' events run on its event loop) is bounded the
 * same way while any of them runs; other workers wait as long as needed.
 *
 * Counters (acquisitions, contended, spins, waits, wakes, wait time) are kept in the header's
 * Float64 area and updated by the holder under the lock, so any thread can read them.
 * The lock is re-entrant for its holder (runner.lockDepth): a reclaim holds it throughout.
 */
import {
  F_LOCK_ACQ, F_LOCK_CONTENDED, F_LOCK_MAX_WAIT_MS, F_LOCK_RECOVERIES, F_LOCK_SPINS, F_LOCK_WAITS,
  F_LOCK_WAIT_MS, F_LOCK_WAKES, G_LOCK, G_LOCK_BEAT, G_LOCK_WANT, LOCK_HELD, LOCK_STATE_MASK, LOCK_WAITERS, TH_LOCK_GEN, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TF_LOCK_ACQ,
  lockHolder, lockWord,
} from './layout.js';
import type { ThreadContext } from './context.js';
import { repairSlotTable } from './slots.js';
import { LockTimeoutError } from './errors.js';

const SPIN_LIMIT = 128; // bounded spin before waiting (an uncontended lock+unlock costs ~38 ns)
const WAIT_SLICE_MS = 20; // a waiter wakes this often to check whether the holder died
/**
 * The longest a blocking acquisition leaves a free lock to the thread that wants it (layout.ts
 * G_LOCK_WANT) before it takes the word for stale (that thread died waiting), clears it and
 * takes the lock: a main thread that wants the lock takes it within a spin of its release.
 */
const WANT_DEFER_MAX_MS = 50;
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

/** Whether this is a main thread, whose waits are bounded: Node's main thread, or one that may not block. */
export const IS_MAIN_THREAD: boolean = (() => {
  if (!CAN_BLOCK) return true;
  const proc = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process;
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as { isMainThread?: boolean } | undefined;
  return wt?.isMainThread === true;
})();

/**
 * How long a main thread waits for the global lock before a LockTimeoutError: counted from the
 * start of its wait, from the last change it saw of the holder's heartbeat (ThreadContext.beatLock),
 * or from the last hold it saw end (lockAcquireSlow).
 */
export const MAIN_THREAD_WAIT_MS = 3000;

/**
 * How many workers this thread watches (reclaim.ts watchWorker) and has not seen exit: while any,
 * its waits for the lock are bounded as a main thread's are, since a watched worker that died
 * holding the lock is marked dead only by an 'exit' event on this thread's event loop (an audit:
 * a worker blocked in malloc behind its own dead child waited forever).
 */
let watchedRunning = 0;

/** watchWorker's count of this thread's watched workers still running (+1 at watch(), -1 at the exit). */
export function countWatched(delta: 1 | -1): void {
  watchedRunning += delta;
}

/**
 * Whether a wait of this thread for the lock may give up (a main thread's or a watcher's
 * LockTimeoutError, runNoWait's WOULD_BLOCK). A slow path whose last step takes the lock after
 * it changed something (realloc's free of a large run it moved) takes the lock first then, so
 * that the wait gives up before anything changed; elsewhere the wait always ends with the lock.
 */
export function waitsMayGiveUp(): boolean {
  return IS_MAIN_THREAD || watchedRunning > 0 || noWait;
}

/** Thrown (never to the user) by a lock acquisition that would wait while noWait is set. */
export const WOULD_BLOCK: object = Object.freeze({ wouldBlock: true });

let noWait = false;

/** False inside runNoWait (the asynchronous calls), where no call may block. */
export function waitingAllowed(): boolean {
  return !noWait;
}

/**
 * The awaits of the asynchronous call now retried (heap.ts #withoutBlocking): since when (0: none)
 * and how many waitLockAsync slices. Its first acquisition of the lock counts them as its wait
 * (contended, waits, wait time), as a synchronous call's Atomics.wait calls are counted.
 */
let awaitedSince = 0;
let awaitedSlices = 0;

/**
 * Runs `fn` so that any wait for the global lock throws WOULD_BLOCK instead (before the caller
 * changed anything: every acquisition comes before its critical section's writes). `since` and
 * `slices`: what the caller awaited for the lock before this try (none: 0 and 0).
 */
export function runNoWait<T>(fn: () => T, since = 0, slices = 0): T {
  const before = noWait;
  const beforeSince = awaitedSince;
  const beforeSlices = awaitedSlices;
  noWait = true;
  awaitedSince = since;
  awaitedSlices = slices;
  try {
    return fn();
  } finally {
    noWait = before;
    awaitedSince = beforeSince;
    awaitedSlices = beforeSlices;
  }
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs?: number) => {
  async: boolean;
  value: Promise<'ok' | 'timed-out'> | 'not-equal' | 'timed-out';
};
/** Atomics.waitAsync where the platform has it (Node 16+, Chromium), else undefined. */
export const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/**
 * Resolves when the lock word changed or WAIT_SLICE_MS passed, the event loop running meanwhile
 * (exit handlers mark dead holders, so the next attempt breaks their lock).
 */
export function waitLockAsync(t: ThreadContext): Promise<unknown> {
  const i32 = t.i32;
  const c = Atomics.load(i32, G_LOCK);
  if (c === 0) return Promise.resolve();
  if (waitAsync !== undefined) {
    const r = waitAsync(i32, G_LOCK, c, WAIT_SLICE_MS);
    if (!r.async) return Promise.resolve();
    // Node's pending waitAsync keeps no event loop alive, its timeout included, and this waiter sets
    // no WAITERS bit, so a release does not notify it: where nothing else kept the loop alive (the
    // holder an unref()'d worker, or one that ended right after its release), the process exited
    // in the middle of the call (an audit: code 13 under a top-level await, the rest of the
    // program never run). A timer of the slice's length keeps the loop alive and ends the slice.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const slice = new Promise((resolve) => {
      timer = setTimeout(resolve, WAIT_SLICE_MS);
    });
    return Promise.race([r.value, slice]).finally(() => clearTimeout(timer));
  }
  return new Promise((resolve) => setTimeout(resolve, 1));
}

/** A wait of WAIT_SLICE_MS on a timer (which keeps Node's event loop alive), for a waiter with nothing to wait on. */
export function waitSlice(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, WAIT_SLICE_MS));
}

/** The thread slot holding the lock, or -1 when it is free (layout.ts). */
export { lockHolder };

function me(t: ThreadContext): number {
  return t.runner.lockMe;
}

/**
 * Whether thread slot `s` holds the runner's attachment still: its count of attachments
 * (TH_LOCK_GEN) is the one in the runner's lock word, so it was not reclaimed and claimed again
 * since (by another thread, or by another copy of the package in this one: fault.ts).
 */
export function runnersAttachment(t: ThreadContext, s: number): boolean {
  return lockWord(s, 0, Atomics.load(t.i32, t.threadW(s) + TH_LOCK_GEN)) === t.runner.lockMe;
}

/** Whether the runner's slot is ATTACHED still under the attachment its lock word names (not reclaimed since). */
function attachedAsLocker(t: ThreadContext): boolean {
  const s = t.runner.slot;
  if (s < 0 || s >= t.geo.maxThreads) return false;
  return Atomics.load(t.i32, t.threadW(s) + TH_STATE) === TS_ATTACHED && runnersAttachment(t, s);
}

/**
 * Acquires the global lock, waiting as long as needed. `stopped(slot)`: a holder slot still
 * ATTACHED that the caller knows stopped all the same (reclaim.ts: a thread that attached again and
 * ended inside its reclaim of its stopped slot), whose lock is broken as a dead holder's is; asked
 * again after the breaking CAS, as the slot's state is.
 */
export function lockAcquire(h: ThreadContext, stopped?: (slot: number) => boolean): void {
  if (h.runner.lockDepth > 0) {
    h.runner.lockDepth++;
    return;
  }
  // A free lock that a main thread wants (G_LOCK_WANT) is left to it: by the slow path.
  if (Atomics.load(h.i32, G_LOCK_WANT) !== 0 || Atomics.compareExchange(h.i32, G_LOCK, 0, me(h) | HELD) !== 0) lockAcquireSlow(h, true, stopped);
  else lockTaken(h, false, 0, 0, 0);
  h.runner.lockDepth = 1;
}

/**
 * Acquires the lock unless that means waiting for a live holder; returns whether it is held. A
 * holder known dead (its slot no longer ATTACHED) has its lock broken, which never waits: a call
 * cut off by a fault keeps the lock in the name of a slot it marks DEAD while its thread runs on
 * (fault.ts; no 'exit' comes for watch() to reclaim it), and tryMalloc, which only tried the lock,
 * then answered 0 for good to every request that needs it (an audit,
 * test/try-malloc-dead-holder.test.ts). Code in an event-loop callback (watch()) takes the lock
 * this way: it must not block on a holder that only another callback of the same loop can mark dead.
 * `stopped`: as lockAcquire's (reclaim.ts reclaimIdNoWait).
 */
export function tryLockAcquire(h: ThreadContext, stopped?: (slot: number) => boolean): boolean {
  if (h.runner.lockDepth > 0) {
    h.runner.lockDepth++;
    return true;
  }
  if (Atomics.compareExchange(h.i32, G_LOCK, 0, me(h) | HELD) === 0) lockTaken(h, false, 0, 0, 0);
  else if (!lockAcquireSlow(h, false)) {
    if (!breakLockIfHolderDead(h, Atomics.load(h.i32, G_LOCK), stopped)) return false;
    lockTaken(h, true, 0, 0, 0);
  }
  h.runner.lockDepth = 1;
  return true;
}

function lockAcquireSlow(h: ThreadContext, mayWait: boolean, stopped?: (slot: number) => boolean): boolean {
  const i32 = h.i32;
  const mine = me(h);
  const t0 = performance.now();
  let spins = 0;
  let waits = 0;
  // Only a blocking acquisition leaves a free lock to the thread that wants it (G_LOCK_WANT).
  // tryLockAcquire (mayWait false) never waits, and code on an event loop (watch()) takes the
  // lock that way; an asynchronous call (noWait) would throw WOULD_BLOCK, await the lock, find it
  // free and try again at once, without end while the word stays: one whose thread died waiting
  // was never cleared, and the call spun on microtasks for good (its event loop starved).
  const defers = mayWait && !noWait;
  for (; spins < SPIN_LIMIT; spins++) {
    if (Atomics.load(i32, G_LOCK) === 0 && (!defers || !wantedByOther(i32, mine)) && Atomics.compareExchange(i32, G_LOCK, 0, mine | HELD) === 0) {
      lockTaken(h, true, spins, 0, performance.now() - t0);
      return true;
    }
  }
  if (!mayWait) return false;
  // A thread whose wait is bounded says it wants the lock (G_LOCK_WANT), so that the others leave
  // it a free lock: a browser's main thread only spins, and lost every race for it to workers that
  // took it back to back.
  const bounded = (IS_MAIN_THREAD || watchedRunning > 0) && !noWait;
  // The want word this acquisition defers to, and since when: counted across the holds of others
  // between (threads that never defer, tryMalloc and the async calls, take a free lock in the middle
  // of a deferral; restarted at each, a stale word was never cleared, and a main thread deferring to
  // it waited for good: an audit), restarted when the word changes or its thread holds the lock.
  let deferWord = 0;
  let deferSince = 0;
  try {
    let beat = Atomics.load(i32, G_LOCK_BEAT);
    let since = t0; // the bound's start: the wait's, the holder's last beat seen, or the last hold seen to end
    let seenWord = -1; // the lock word as this wait last saw (or set) it; 0 once seen free
    for (;;) {
      // Named (again, if another thread cleared the word meanwhile, taking it for stale: this
      // thread was descheduled for longer than WANT_DEFER_MAX_MS) wherever the word is free.
      if (bounded && Atomics.load(i32, G_LOCK_WANT) === 0) Atomics.compareExchange(i32, G_LOCK_WANT, 0, mine);
      const c = Atomics.load(i32, G_LOCK);
      if (c === 0) {
        seenWord = 0; // a hold ended: its holder was alive
        const w = defers ? Atomics.load(i32, G_LOCK_WANT) : 0;
        if (w !== 0 && w !== mine) {
          // A word whose thread is known gone (marked DEAD by a fault or a reclaim, or its slot
          // freed or attached again since) is cleared at once: the reclaim of a thread that died
          // waiting left its own acquisition to that thread for 50 ms.
          if (attachmentSlot(h, w) < 0) {
            Atomics.compareExchange(i32, G_LOCK_WANT, w, 0);
            continue;
          }
          // Left to the thread that wants it, for at most WANT_DEFER_MAX_MS: then the word is taken
          // for stale (that thread died waiting, not yet known dead) and cleared.
          const now = performance.now();
          if (w !== deferWord) {
            deferWord = w;
            deferSince = now;
          } else if (now - deferSince > WANT_DEFER_MAX_MS) {
            Atomics.compareExchange(i32, G_LOCK_WANT, w, 0);
            deferWord = 0;
            continue;
          }
          if (CAN_BLOCK) {
            waits++;
            Atomics.wait(i32, G_LOCK_WANT, w, 1);
          } else {
            spins++;
          }
          continue;
        }
        // Taken with the waiters bit set, conservatively: others may still be waiting.
        if (Atomics.compareExchange(i32, G_LOCK, 0, mine | WAITERS) === 0) break;
        continue;
      }
      if ((c & ~STATE_MASK) === deferWord) deferWord = 0; // the wanting thread has it: a later word of its is a new wait
      if (breakLockIfHolderDead(h, c, stopped)) break;
      if (noWait) throw WOULD_BLOCK;
      if (bounded) {
        const now = performance.now();
        const b = Atomics.load(i32, G_LOCK_BEAT);
        // From the holder's last beat, and from the last hold seen to end (the lock seen free, a
        // release's wake, a word other than the one this wait set): a holder that let the lock go
        // was alive, and the next hold counts from its start (holds one after another, each alive,
        // gave up at 3 s as if one had died, blaming a live thread).
        if (b !== beat || c !== seenWord) {
          beat = b;
          seenWord = c;
          since = now;
        } else if (now - since > MAIN_THREAD_WAIT_MS) {
          throw lockTimeout(h, c, now - t0);
        }
      }
      const waiting = (c & ~STATE_MASK) | WAITERS;
      if (c !== waiting && Atomics.compareExchange(i32, G_LOCK, c, waiting) !== c) continue;
      if (seenWord === c) seenWord = waiting; // the same hold, with the bit this wait set
      if (CAN_BLOCK) {
        waits++;
        // Woken by a release (lockRelease notifies only then): that hold ended.
        if (Atomics.wait(i32, G_LOCK, waiting, WAIT_SLICE_MS) === 'ok') seenWord = 0;
      } else {
        spins++;
      }
    }
  } finally {
    // Taken or given up: the others may take a free lock again (those waiting for this word wake).
    if (bounded && Atomics.compareExchange(i32, G_LOCK_WANT, mine, 0) === mine) Atomics.notify(i32, G_LOCK_WANT);
  }
  lockTaken(h, true, spins, waits, performance.now() - t0);
  return true;
}

/**
 * The thread slot a lock word (G_LOCK's, or G_LOCK_WANT's) names when that slot is ATTACHED still
 * in the word's attachment (its TH_LOCK_GEN); -1 otherwise (no slot, not ATTACHED, or reclaimed
 * and attached again since).
 */
export function attachmentSlot(t: ThreadContext, word: number): number {
  const s = lockHolder(word);
  if (s < 0 || s >= t.geo.maxThreads || Atomics.load(t.i32, t.threadW(s) + TH_STATE) !== TS_ATTACHED) return -1;
  return lockWord(s, 0, Atomics.load(t.i32, t.threadW(s) + TH_LOCK_GEN)) === (word & ~STATE_MASK) ? s : -1;
}

/** Whether another thread wants the lock (G_LOCK_WANT): a free lock is left to it. */
function wantedByOther(i32: Int32Array, mine: number): boolean {
  const w = Atomics.load(i32, G_LOCK_WANT);
  return w !== 0 && w !== mine;
}

function lockTimeout(t: ThreadContext, c: number, ms: number): LockTimeoutError {
  const holder = lockHolder(c);
  const id = holder >= 0 && holder < t.geo.maxThreads ? Atomics.load(t.i32, t.threadW(holder) + TH_THREAD_ID) - 1 : -1;
  return new LockTimeoutError(
    `${IS_MAIN_THREAD ? 'the main thread' : 'this worker, which watches workers of its own,'} waited ${Math.round(ms)} ms for the heap's global lock, held by thread slot ${holder} ` +
      `(threadId ${id}), and does not wait longer: a worker that dies holding the lock can only be known dead once ` +
      `the event loop runs. If that worker stopped, call heap.reclaim(${id}) (or watch(worker) every worker); ` +
      'on such a thread use mallocAsync(), callocAsync(), reallocAsync(), alignedAllocAsync() or freeAsync(), which wait ' +
      'without blocking the event loop. Nothing was changed by this call.',
  );
}

function lockTaken(h: ThreadContext, contended: boolean, spins: number, waits: number, waitMs: number): void {
  // The buffer only grows under the lock: a critical section always works on current views.
  h.ensureViews();
  const f64 = h.f64;
  f64[F_LOCK_ACQ]++;
  h.f64[h.tfW + TF_LOCK_ACQ]++;
  if (awaitedSince !== 0) {
    // An asynchronous call that awaited the lock takes it: its awaits are this acquisition's wait.
    contended = true;
    waits += awaitedSlices;
    waitMs += performance.now() - awaitedSince;
    awaitedSince = 0;
    awaitedSlices = 0;
  }
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
  // A critical section cut off by a fault (fault.ts) keeps the lock, held by a slot marked DEAD:
  // the next thread to take it breaks it and repairs what the section left half done.
  if (h.runner.faulted) return;
  const i32 = h.i32;
  const mine = me(h);
  let c = Atomics.load(i32, G_LOCK);
  let counted = false;
  // A CAS from the word that names this attachment, not an exchange: a holder whose lock was
  // broken while it ran (a live thread wrongly reclaimed: its slot is no longer ATTACHED under
  // its attachment) finds another holder's word, and an exchange let that holder's lock go in the
  // middle of its critical section, so that a third thread ran one beside it; the word is left
  // as it is then. A holder still ATTACHED as itself that finds another word meets a breaker
  // between its CAS and its hand-back (breakLockIfHolderDead, whose `stopped` no longer counts
  // this holder stopped): it lets the lock go as before, and the hand-back's CAS then fails (left
  // to the breaker, the word would go back to a holder that had already released: held for good).
  for (;;) {
    if ((c & ~STATE_MASK) !== mine) {
      if (!attachedAsLocker(h)) return;
      c = Atomics.exchange(i32, G_LOCK, 0);
      break;
    }
    // Counted before the release (a wake is needed when the word has the waiters bit), so that
    // every Float64 counter of the lock is written under it (and only by its holder: not above,
    // where the word may be another's); a waiter that arrives between this load and the release
    // makes the CAS fail and is counted on the next pass.
    if (!counted && (c & WAITERS) !== 0) {
      h.f64[F_LOCK_WAKES]++;
      counted = true;
    }
    const was = Atomics.compareExchange(i32, G_LOCK, c, 0);
    if (was === c) break;
    c = was; // a waiter set the waiters bit in between
  }
  // Every waiter when a thread wants the lock (G_LOCK_WANT): one woken in its place would leave
  // the lock free to it and sleep again, and it might sleep on until its slice ends.
  if ((c & WAITERS) !== 0) Atomics.notify(i32, G_LOCK, Atomics.load(i32, G_LOCK_WANT) !== 0 ? Infinity : 1);
}

/**
 * When the holder named by lock word `c` is no longer ATTACHED (its worker exited and was
 * marked by watch() or reclaim()), takes the lock over from it with one CAS and repairs the
 * pool. Returns true when the caller now holds the lock.
 */
/** Whether the lock's holder slot is a live thread's: ATTACHED, and not one the caller knows stopped (lockAcquire). */
function holderLive(h: ThreadContext, holder: number, stopped: ((slot: number) => boolean) | undefined): boolean {
  return Atomics.load(h.i32, h.threadW(holder) + TH_STATE) === TS_ATTACHED && (stopped === undefined || !stopped(holder));
}

function breakLockIfHolderDead(h: ThreadContext, c: number, stopped?: (slot: number) => boolean): boolean {
  const i32 = h.i32;
  const holder = lockHolder(c);
  if (holder < 0 || holder === h.runner.slot || holder >= h.geo.maxThreads) return false;
  if (holderLive(h, holder, stopped)) return false;
  if (Atomics.compareExchange(i32, G_LOCK, c, me(h) | WAITERS) !== c) return false;
  // The word names an attachment (its slot and the slot's generation, layout.ts TH_LOCK_GEN): a
  // slot reclaimed and attached again between the load of the state above and the CAS, its new
  // thread holding the lock, writes another word, and the CAS fails. (With the slot alone in the
  // word it succeeded, took the lock from under that live holder, and gave it back by a second
  // CAS below; a breaker that died between the two left two holders: an audit's window,
  // test/lock-break-breaker-dies.test.ts.) What is left for the check below: a holder slot the
  // caller's `stopped` no longer counts stopped, or ATTACHED again under the same generation after
  // 2^LOCK_GEN_BITS attachments; the word goes back to it (with the waiters bit: others may
  // wait). If it let the lock go meanwhile (its release took this word), the CAS fails and
  // nothing is held.
  if (holderLive(h, holder, stopped)) {
    Atomics.compareExchange(i32, G_LOCK, me(h) | WAITERS, c | WAITERS);
    return false;
  }
  // Not ATTACHED, but the word may still have been a live thread's that has let the lock go since
  // (its release took this word with it: lockRelease) and then detached (FREE) or ended: the
  // lock is then free or another's, not this thread's (an audit of c3a32aa). Only this thread
  // writes its own word, so it is held here iff it still reads so; a holder seen not ATTACHED now
  // either released before that (detach releases before its slot goes FREE) or never will (a
  // fault keeps the lock; a thread that ended holding it).
  if (Atomics.load(i32, G_LOCK) !== (me(h) | WAITERS)) return false;
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
