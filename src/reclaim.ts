/**
 * Reclaiming the slot of a thread that died (worker.terminate() gives it no chance to clean up).
 * A reclaimer wins the dead slot with one CAS (ATTACHED or DEAD -> RECLAIMING) and then acts as
 * that thread through a thread context bound to its slot (the lock stays in the reclaimer's
 * name): it finishes what the journal words say the thread was doing, drains its magazines,
 * collects its notices, recounts each of its slabs from the block state bytes (the thread may
 * have stopped half-way through a refill or a drain) and gives empty slabs to the pool and the
 * others to the abandoned lists. watch() does this when a Node worker exits.
 */
import {
  F_RECLAIMS, writeLink, G_ORPHANS, G_UNSURE, SM_NOTIFIED, TH_FLAGGED, TH_NOTIFYING, TH_NOTIFY_TO, K_LARGE, K_SLAB, MAG_ENTRY_WORDS, MAG_STATE, OWNER_RETURNING, SM_CLS1,
  SM_COLLECTS, SM_HEAD, SM_KIND, SM_OWNER, SM_REMOTE, SM_SHIFT, ST_PENDING, isCached, TH_COLLECT_MW, TH_COLLECT_NEXT,
  TH_INFLIGHT, TH_JOURNAL_CLS, TH_JOURNAL_DONE, TH_JOURNAL_N, TH_JOURNAL_SRC, TH_POPPING, TH_PUSHING, TH_RECLAIMER, TH_RETURNING, TH_S1_PRIVATE, TH_LARGE_HELD, G_LARGE_POOLED,
  TH_STATE, TH_THREAD_ID, TH_TOP, TH_WATCHING, TS_ATTACHED, TS_DEAD, TS_FREE, WATCH_ENTRIES,
  TS_RECLAIMING, magazineWords, journalEntryWords, usedSlots, deepMagazineBlock, DEEP_CAP, SLOT_SHIFT, SM_DATA, SM_STATE, ST_CACHED, ST_DEEP, G_LOCK, TH_LOCK_GEN, LOCK_STATE_MASK, G_UNDECIDED, UD_ENTRIES, UD_FIRST, UD_LAST, UD_N, UD_SLAB, UD_W, UD_WORDS,
} from './layout.js';
import { CP_RECLAIM, crashPoint } from './crash.js';
import { NUM_CLASSES } from './size-classes.js';
import { ThreadContext, type Runner } from './context.js';
import { HeapError, HeapStateError, checkInteger, describe, isObjectArgument, isRevokedProxy } from './errors.js';
import { WOULD_BLOCK, attachmentSlot, countWatched, lockAcquire, lockHolder, lockRelease, tryLockAcquire } from './lock.js';
import { returnSlots } from './slots.js';
import { putBackChain, repairStage1 } from './pool.js';
import { finishCollect, onRemoteList, publishChain, settleUndecided, slabMetaOf, someoneCollecting } from './remote.js';
import { notifyOrAdopt, processNotices, recountFree, repairRefill } from './slab.js';
import { DEEP_CLS, drainJournal, journalEntries } from './magazine.js';
import { abandonAll } from './attach.js';
import { guarded } from './fault.js';
import { wakeAskedListeners } from './flush-ask.js';

/** Finds the slot of the thread known by `threadId` in one of `states`; -1 when none. */
function findThread(t: ThreadContext, threadId: number, states: number[]): number {
  const i32 = t.i32;
  for (let s = 0, used = usedSlots(i32, t.geo.maxThreads); s < used; s++) {
    const w = t.threadW(s);
    if (Atomics.load(i32, w + TH_THREAD_ID) === threadId + 1 && states.includes(Atomics.load(i32, w + TH_STATE))) return s;
  }
  return -1;
}

/**
 * Marks the slots of an exited thread DEAD, so a waiter on the lock it may hold breaks it; and so,
 * in turn, the workers it watched (TH_WATCHING), which Node ended with it (`depth` bounds the
 * nesting followed; a slot met again is left alone, as the CAS fails on it). Every ATTACHED slot
 * under the id: a thread that loads two copies of the package (two installs of it, or a bundle
 * beside the package) attaches once through each, under its one Node threadId; with the first
 * slot alone marked, the second stayed ATTACHED for good, its cached blocks with it, and a lock it
 * died holding was never broken: every slow path of every thread waited (test/two-package-copies).
 */
export function markDead(t: ThreadContext, threadId: number, depth = 0): void {
  const i32 = t.i32;
  for (let s = 0, used = usedSlots(i32, t.geo.maxThreads); s < used; s++) {
    const w = t.threadW(s);
    if (Atomics.load(i32, w + TH_THREAD_ID) !== threadId + 1) continue;
    // Never the caller's own slot; but a detached context (a watcher that detached, whose watched
    // workers' exits still come to it) names a slot that is no longer its own, and may be the very
    // worker's that exited (an audit: skipped, a lock it died holding was never broken).
    if (s === t.runner.slot && !t.detached) continue;
    if (Atomics.compareExchange(i32, w + TH_STATE, TS_ATTACHED, TS_DEAD) !== TS_ATTACHED || depth >= WATCH_DEPTH) continue;
    for (const id of watchedIds(t, s)) markDead(t, id, depth + 1);
  }
}

/** How deep markDead and a reclaim follow workers of workers (TH_WATCHING). */
const WATCH_DEPTH = 8;

/** The largest worker.threadId watch() records: its TH_WATCHING entry, id + 1, must fit an Int32 word. */
const MAX_WATCHED_ID = 2 ** 31 - 2;

/** The thread ids slot `s`'s thread recorded as workers it watches (TH_WATCHING); read after it ended. */
function watchedIds(t: ThreadContext, s: number): number[] {
  const ids: number[] = [];
  const w = t.threadW(s) + TH_WATCHING;
  for (let k = 0; k < WATCH_ENTRIES; k++) {
    const id = Atomics.load(t.i32, w + k) - 1;
    if (id >= 0) ids.push(id);
  }
  return ids;
}

/**
 * Records in t's thread area (TH_WATCHING) that its thread watches the worker `id`, so that a
 * thread that marks it dead or reclaims it as ended does the same for that worker (Node ends a
 * worker's workers with it, and their exits are seen by nobody). An entry of a worker whose exit
 * this thread has reclaimed stays until its room is needed. With WATCH_ENTRIES workers running at
 * once, the next is not recorded (its slot then stays taken at this thread's end until a
 * reclaim(threadId) of it, as before). One plain store (no call) writes an entry or clears one.
 * Returns the entry's word when this call wrote it, else -1 (watch() undoes it if once() throws).
 */
export function recordWatching(t: ThreadContext, id: number): number {
  if (t.detached) return -1;
  const i32 = t.i32;
  const w = t.thW + TH_WATCHING;
  let room = -1;
  for (let k = 0; k < WATCH_ENTRIES; k++) {
    const v = i32[w + k];
    if (v === id + 1) return -1;
    if (v === 0 && room < 0) room = k;
  }
  if (room < 0) {
    const running = watchesOf(t.runner);
    const pending = pendingOf(t.runner);
    for (let k = 0; k < WATCH_ENTRIES && room < 0; k++) {
      const v = i32[w + k] - 1;
      if (!running.has(v) && !pending.includes(v)) room = k;
    }
    if (room < 0) return -1;
  }
  i32[w + room] = id + 1;
  return w + room;
}

/**
 * reclaim(worker) of a watched Worker that exited: as watch()'s own reclaim, never waiting for the
 * lock. This runs in 'exit' handlers, where the lock's holder may be another exited worker whose
 * own exit (which marks it dead, so that the lock can be broken) cannot be seen while this one
 * waits: it would wait out the lock's timeout and throw. When the lock is busy the worker joins
 * watch()'s list, reclaimed as soon as the lock is free, and this answers false.
 */
export function reclaimExited(t: ThreadContext, threadId: number): boolean {
  markDead(t, threadId);
  const done = reclaimLocked(t, threadId, false);
  if (done !== 'busy') return done;
  const list = pendingOf(t.runner);
  if (!list.includes(threadId)) list.push(threadId);
  later(() => reclaimPending(t));
  return false;
}

/** reclaim()'s name as its errors write it: reclaim(worker) for an object, reclaim(threadId) else. */
export function reclaimCall(thread: unknown): string {
  return thread !== null && typeof thread === 'object' ? 'reclaim(worker)' : 'reclaim(threadId)';
}

/**
 * reclaim()'s argument checked and turned into a thread id: a watched Worker that exited, or a
 * threadId that is not the caller's nor a watched worker's still running. Reads only what the
 * caller passed (a getter of its own may throw) and changes nothing, so heap.ts runs it before
 * guarded(), where an error that is not the allocator's own would stop the thread as a fault.
 */
export function reclaimTarget(t: ThreadContext, thread: unknown): number {
  // Named after the argument, as the call's other errors are (a Worker's: reclaim(worker); an audit).
  if (t.detached) throw new HeapStateError(`${reclaimCall(thread)}: this thread has detached from the heap`);
  let threadId: number;
  if (thread !== null && typeof thread === 'object') {
    if (isRevokedProxy(thread) || typeof (thread as WatchableWorker).once !== 'function') {
      throw new TypeError(`reclaim(threadId): expected a threadId or a Worker, got ${describe(thread)}`);
    }
    threadId = watchedId(t, thread as WatchableWorker);
  } else {
    if (thread === -1) {
      throw new RangeError(
        'reclaim(threadId): -1 is what worker.threadId reads once the worker has exited; pass the Worker itself ' +
          '(after watch(worker) while it ran: watch() also reclaims it), or the threadId saved while it ran',
      );
    }
    threadId = checkInteger('reclaim', 'threadId', thread, 2 ** 31 - 1);
    const w = watchesOf(t.runner).get(threadId);
    if (w !== undefined && w.threadId === threadId) {
      throw new HeapStateError(
        `reclaim(threadId): ${threadId} is a watched worker that is still running (its 'exit' has not been seen); ` +
          'reclaiming a running thread corrupts the heap. terminate() it: watch() reclaims it at its exit',
      );
    }
  }
  if (threadId === t.threadId) {
    throw new HeapStateError(`reclaim(threadId): ${threadId} is the calling thread; use detach()`);
  }
  return threadId;
}

/** reclaim() of the thread id reclaimTarget() gave: marks its slot dead and reclaims it. */
export function reclaimId(t: ThreadContext, threadId: number): boolean {
  // A slot a fault left DEAD under the id is what goes; an ATTACHED one beside it may be the same
  // thread attached again, neither marked nor, if the DEAD one is gone by the time the lock is
  // held (that attach reclaimed it), reclaimed (reclaimUnderLock). Unless it is inside its own
  // reclaim of a stopped slot under the id (that slot names it as its reclaimer), or ended there
  // (an audit: the lock stayed held for good, and every slow path of the heap waited on it): its
  // lock is broken by this reclaim's acquisition, and it is marked under the lock
  // (reclaimUnderLock). Holding the lock is not enough: an attach again whose reclaim gave up (a
  // LockTimeoutError, WOULD_BLOCK) runs on, holding the lock in its own slow paths; and the lock
  // read here may have been let go and taken again since (an audit of 5d43d86).
  // Decided once, from the holder now: a later attachment of the thread that takes the lock for its
  // own reclaim while this one waits is live, and left alone (test/reclaim-reattached.test.ts).
  const deadOnly = markForReclaim(t, threadId);
  return reclaimLocked(t, threadId, true, deadOnly, stoppedHolder(t, threadId, deadOnly)) === true;
}

/**
 * The slot holding the global lock when it is an attachment under `threadId` inside (or ended
 * inside) its reclaim of a stopped slot under the id, which reclaimId and reclaimIdNoWait take as
 * stopped; else -1. Only where a slot under the id is DEAD (`deadOnly`: otherwise the ATTACHED
 * one is marked DEAD, and its lock broken as a dead holder's).
 */
function stoppedHolder(t: ThreadContext, threadId: number, deadOnly: boolean): number {
  const holder = deadOnly ? lockHolder(Atomics.load(t.i32, G_LOCK)) : -1;
  return holder >= 0 && holder < t.geo.maxThreads && holder !== t.runner.slot && inOwnReclaim(t, threadId, holder) ? holder : -1;
}

/**
 * Whether the ATTACHED slot `holder` under `threadId` is inside (or ended inside) its reclaim of
 * another slot under the id: its own TH_RECLAIMER word is set (reclaimOwnDead, the one way a thread
 * reclaims a slot under its own id, marks it there before it takes the lock and clears it after it
 * let the lock go; attach zeroes it).
 */
function inOwnReclaim(t: ThreadContext, threadId: number, holder: number): boolean {
  const i32 = t.i32;
  if (Atomics.load(i32, t.threadW(holder) + TH_THREAD_ID) !== threadId + 1) return false;
  // Its own mark (reclaimOwnDead: set from before it takes the lock until after it let it go, so
  // over the whole time a stopped slot names it as reclaimer, and after: that slot may be FREE
  // already, reclaimed, the thread ending before its release, while another stopped slot under the
  // id waits for the same reclaim).
  return Atomics.load(i32, t.threadW(holder) + TH_RECLAIMER) !== 0;
}

/**
 * reclaimId for reclaimWhenGone, which was granted the id's Web Lock, and never waits for the
 * global lock: 'busy' where it would wait for a live holder (reclaimWhenGone tries again once the
 * lock word changed, its event loop running; a page's reclaimWhenGone that waited in lockAcquire
 * threw LockTimeoutError while another terminated worker, which Chromium runs on for about 2 s,
 * held the lock: test/browser/chaos.test.ts). 'own-reclaim' where an ATTACHED slot under the id
 * stands in the way before the caller knows it gone (`tries.holderGone`: the id's Web Lock,
 * asked for again, granted). The lock granted first may have been let go by an instance a fault
 * stopped, the thread attaching again under the same id (attach(), Node's threadId: SharedHeap
 * #stopStale) and running on; so until then:
 * - an ATTACHED slot under the id found alone at the first try is left alone (it may be that
 *   attachment, its own reclaim of the stopped slot done: test/reclaim-when-gone-live-own-reclaim.test.ts);
 * - the slots to take are decided at the first try, as reclaimId decides once: after it, DEAD ones
 *   only (a later try found that reclaim done and marked the live attachment DEAD), until the
 *   id's Web Lock is granted again: then every slot under the id, ATTACHED ones marked DEAD;
 * - an ATTACHED holder of the global lock under the id is not taken as stopped, inside its own
 *   reclaim or past it (nor left alone for good: once its Web Lock is granted, it is gone, and its
 *   lock is broken; before, a holder that ended there left reclaimWhenGone pending for good).
 * In a browser, where every attachment has an id of its own, the second request is granted at once.
 */
export function reclaimIdNoWait(t: ThreadContext, threadId: number, tries: NoWaitTries): boolean | 'busy' | 'own-reclaim' {
  if (!tries.holderGone && !tries.tried && findThread(t, threadId, [TS_DEAD]) < 0 && findThread(t, threadId, [TS_ATTACHED]) >= 0) return 'own-reclaim';
  // Once the id's Web Lock was granted again, every attachment under the id is gone, a DEAD slot
  // beside it or not: all are marked and go. (markForReclaim took the DEAD one alone there: a thread
  // with two copies of the package, one stopped by a fault, that ended holding the global lock
  // through the other, left that holder unmarked, its lock never broken, and this pending for good:
  // an audit of 7bfcd5e, test/two-copies-stopped-holder-gone.test.ts.)
  let deadOnly = true;
  if (tries.holderGone) {
    markDead(t, threadId);
    deadOnly = false;
  } else if (!tries.tried) {
    deadOnly = markForReclaim(t, threadId);
  }
  tries.tried = true;
  if (!tries.holderGone && attachedHolder(t, threadId)) return 'own-reclaim';
  return reclaimLocked(t, threadId, false, deadOnly, stoppedHolder(t, threadId, deadOnly));
}

/** The slot the lock word `word` names when it is ATTACHED and not the caller's; -1 otherwise. */
function attachedHolderSlot(t: ThreadContext, word: number): number {
  const holder = lockHolder(word);
  if (holder < 0 || holder >= t.geo.maxThreads || holder === t.runner.slot) return -1;
  return Atomics.load(t.i32, t.threadW(holder) + TH_STATE) === TS_ATTACHED ? holder : -1;
}

/** Whether the global lock's holder is an ATTACHED slot under `threadId` (not the caller's). */
function attachedHolder(t: ThreadContext, threadId: number): boolean {
  const holder = attachedHolderSlot(t, Atomics.load(t.i32, G_LOCK));
  return holder >= 0 && Atomics.load(t.i32, t.threadW(holder) + TH_THREAD_ID) === threadId + 1;
}

/**
 * The thread id of the global lock's holder when the lock word is `word` and names an attachment
 * still ATTACHED in its slot (the same TH_LOCK_GEN), not the caller's; -1 otherwise.
 */
export function lockHolderId(t: ThreadContext, word: number): number {
  const holder = attachmentSlot(t, word);
  if (holder < 0 || holder === t.runner.slot) return -1;
  return Atomics.load(t.i32, t.threadW(holder) + TH_THREAD_ID) - 1;
}

/**
 * reclaimWhenGone was granted the Web Lock of thread `threadId`, which held the global lock under
 * `word` when it was asked for: that thread is gone (as surely as for reclaimWhenGone(threadId)).
 * Its slot is marked DEAD if it still holds the lock under that word, so that the next try breaks
 * the lock (the slot itself is reclaimed by a reclaim of that id). True when it was marked.
 */
export function markLockHolderGone(t: ThreadContext, word: number, threadId: number): boolean {
  if ((Atomics.load(t.i32, G_LOCK) & ~LOCK_STATE_MASK) !== (word & ~LOCK_STATE_MASK) || lockHolderId(t, word) !== threadId) return false;
  return Atomics.compareExchange(t.i32, t.threadW(lockHolder(word)) + TH_STATE, TS_ATTACHED, TS_DEAD) === TS_ATTACHED;
}

/** reclaimWhenGone's record across its tries of reclaimIdNoWait. */
export interface NoWaitTries {
  /** A try was made (markForReclaim ran). */
  tried: boolean;
  /** The id's Web Lock was granted again after a try met an attachment under the id ('own-reclaim'). */
  holderGone: boolean;
}

/**
 * reclaim(threadId)'s first step: marks the thread's ATTACHED slot DEAD unless a slot under the id
 * is DEAD already (a stopped instance: then that is what goes, reclaimId). Returns whether there
 * was one (reclaimUnderLock's `deadOnly`).
 */
function markForReclaim(t: ThreadContext, threadId: number): boolean {
  const deadOnly = findThread(t, threadId, [TS_DEAD]) >= 0;
  if (!deadOnly) markDead(t, threadId);
  return deadOnly;
}

/** The threadId watch() recorded for `worker`, which must have exited. */
function watchedId(t: ThreadContext, worker: WatchableWorker): number {
  let id = everWatchedOf(t.runner).get(worker);
  for (const m of mergedEverOf(t.runner)) if (id === undefined) id = m.get(worker);
  if (id !== undefined) {
    if (worker.threadId !== -1) {
      throw new HeapStateError(
        `reclaim(worker): the worker with threadId ${id} is still running (its 'exit' has not been seen); ` +
          'reclaiming a running thread corrupts the heap. terminate() it: watch() reclaims it at its exit',
      );
    }
    return id; // in an exit handler that ran after watch()'s own, the slot is reclaimed already: false
  }
  // In Deno no worker was watched (watch() refuses there): the advice is Deno's course, not watch().
  if (!EXIT_MEANS_STOPPED) throw exitNotStoppedError('reclaim(worker)');
  const running = typeof worker.threadId === 'number' && worker.threadId >= 0;
  throw new HeapStateError(
    running
      ? `reclaim(worker): the worker with threadId ${worker.threadId} is still running (its 'exit' has not been seen); ` +
          'reclaiming a running thread corrupts the heap. Call watch(worker) after starting it: it reclaims the worker at its exit'
      : 'reclaim(worker): this worker was not passed to watch(worker) while it ran, so its thread id is unknown ' +
          "(worker.threadId reads -1 after the exit). Call heap.watch(worker) right after starting it, or save " +
          'worker.threadId while it runs and pass it to reclaim(threadId)',
  );
}

/**
 * The reclaim holds the global lock from start to end (the slow paths it runs take it again,
 * re-entrantly). With mayWait false it returns 'busy' instead of waiting for a live holder.
 */
function reclaimLocked(t: ThreadContext, threadId: number, mayWait: boolean, deadOnly = false, stopped = -1): boolean | 'busy' {
  if (t.detached) throw new HeapStateError('reclaim(threadId): this thread has detached from the heap');
  if (threadId === t.threadId) {
    throw new HeapStateError(`reclaim(threadId): ${threadId} is the calling thread; use detach()`);
  }
  // A slot reserved under the id and left FREE (releaseReserved). The same id may name a DEAD slot
  // too: an instance of that thread that a fault stopped (fault.ts), then its attach again killed
  // half way. Both go.
  const freed = releaseReserved(t, threadId);
  if (findThread(t, threadId, [TS_ATTACHED, TS_DEAD]) < 0) return freed;
  // `stopped`: an attachment under the id that was inside its reclaim of a stopped slot under the
  // id when the caller asked (reclaimId); its lock is broken while it still is.
  const isStopped = stopped >= 0 ? (holder: number): boolean => holder === stopped && inOwnReclaim(t, threadId, holder) : undefined;
  if (mayWait) lockAcquire(t, isStopped);
  else if (!tryLockAcquire(t, isStopped)) return 'busy';
  try {
    return reclaimUnderLock(t, threadId, deadOnly, stopped) || freed;
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
}

/**
 * A thread killed in attach between reserving a slot (its id) and marking it ATTACHED, or in
 * detach between marking it FREE and clearing its id, holds nothing there: its id goes, which
 * frees the slot. True when it did.
 */
function releaseReserved(t: ThreadContext, threadId: number): boolean {
  const reserved = findThread(t, threadId, [TS_FREE]);
  return reserved >= 0 && Atomics.compareExchange(t.i32, t.threadW(reserved) + TH_THREAD_ID, threadId + 1, 0) === threadId + 1;
}

function reclaimUnderLock(t: ThreadContext, threadId: number, deadOnly: boolean, stopped: number): boolean {
  // A DEAD slot first: where a fault stopped an instance of the thread and the thread is attaching
  // again (its new slot ATTACHED under the same Node threadId, its reclaim of the old one waiting
  // for this lock), the stopped instance is what the caller means (fault.ts's message), not the
  // live one in whichever slot comes first (an audit). `deadOnly`: there was a DEAD one when the
  // caller asked, so an ATTACHED one is not taken in its place. Every DEAD slot under the id goes:
  // a stopped instance, and `stopped`, the attachment that ended reclaiming it (marked here, under
  // the lock, where it can no longer finish that reclaim and go on).
  if (stopped >= 0 && inOwnReclaim(t, threadId, stopped)) Atomics.compareExchange(t.i32, t.threadW(stopped) + TH_STATE, TS_ATTACHED, TS_DEAD);
  let any = false;
  for (let s = findThread(t, threadId, [TS_DEAD]); s >= 0; s = findThread(t, threadId, [TS_DEAD])) {
    if (!reclaimFound(t, s, threadId, true)) break;
    any = true;
  }
  if (any || deadOnly) return any;
  const s = findThread(t, threadId, [TS_ATTACHED]);
  return s >= 0 && reclaimFound(t, s, threadId, true);
}

/**
 * Reclaims the slots an earlier attachment of this very thread left DEAD, when a call of its was
 * cut off by a fault (fault.ts): `t` is the thread's new attachment, and such a slot carries its
 * threadId (Node's), or is `staleSlot` under `staleId`, the slot of the stopped instance this
 * thread still had (a thread whose id the heap handed out gets a new one at each attach; a slot
 * reclaimed meanwhile by another thread, and maybe taken again, carries another id or none).
 * SharedHeap.attach calls this right after attaching.
 */
export function reclaimOwnDead(t: ThreadContext, staleSlot = -1, staleId = -1): void {
  const i32 = t.i32;
  for (let s = 0, used = usedSlots(i32, t.geo.maxThreads); s < used; s++) {
    const w = t.threadW(s);
    if (s === t.runner.slot || Atomics.load(i32, w + TH_STATE) !== TS_DEAD) continue;
    const id = Atomics.load(i32, w + TH_THREAD_ID) - 1;
    if (id !== t.threadId && !(s === staleSlot && id === staleId)) continue;
    // Marked before the lock is taken (in this slot's own TH_RECLAIMER word, 0 while ATTACHED
    // otherwise): a thread that ends after taking it (breaking the stopped slot's lock runs
    // repairSlotTable) and before reclaimFound names it in the stopped slot is known to be inside
    // this reclaim all the same (inOwnReclaim; an audit of ab9e8a1: reclaim(threadId) waited for good).
    const mark = t.thW + TH_RECLAIMER;
    Atomics.store(i32, mark, s + 1);
    try {
      lockAcquire(t);
    } catch (e) {
      i32[mark] = 0;
      throw e;
    }
    try {
      // Again under the lock: another thread may have reclaimed it meanwhile, and an attach taken it.
      // (Not ended: this thread runs on, and so do the workers it watches.)
      if (Atomics.load(i32, w + TH_STATE) === TS_DEAD && Atomics.load(i32, w + TH_THREAD_ID) === id + 1) reclaimFound(t, s, id, false);
    } catch (e) {
      if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
      throw e;
    } finally {
      lockRelease(t);
      i32[mark] = 0; // after the lock went: a thread that ends in lockRelease is still known inside
    }
  }
}

/**
 * [L] Reclaims slot `s`, found ATTACHED or DEAD under `threadId`; false when another reclaimer
 * took it first. `ended`: the thread has ended (not an instance of a thread that runs on,
 * reclaimOwnDead), so the workers it watched have too, and go with it (reclaimSlot).
 */
function reclaimFound(t: ThreadContext, s: number, threadId: number, ended: boolean, depth = 0): boolean {
  const i32 = t.i32;
  const stateW = t.threadW(s) + TH_STATE;
  const old = Atomics.load(i32, stateW);
  if (old !== TS_ATTACHED && old !== TS_DEAD) return false;
  i32[t.threadW(s) + TH_RECLAIMER] = t.runner.slot + 1; // under the lock: one reclaimer at a time
  if (Atomics.compareExchange(i32, stateW, old, TS_RECLAIMING) !== old) return false;
  // Slots this thread was reclaiming when it stopped (it held the lock, which we broke): the
  // journal words of each say how far it got; a reclaim from the start finishes them. Each
  // such thread ended, unless it is an instance of this very thread (reclaimOwnDead). Named ours
  // before slot s goes FREE (reclaimSlot's end): a reclaimer stopped after that store and before
  // this left them naming a FREE slot, which no reclaim looks for, RECLAIMING for good (an audit
  // of 23da6d8, test/reclaimer-of-reclaimer-stopped.test.ts).
  const taken: number[] = [];
  for (let v = 0, used = usedSlots(i32, t.geo.maxThreads); v < used; v++) {
    const vW = t.threadW(v);
    if (Atomics.load(i32, vW + TH_STATE) === TS_RECLAIMING && i32[vW + TH_RECLAIMER] === s + 1) {
      i32[vW + TH_RECLAIMER] = t.runner.slot + 1;
      taken.push(v);
    }
  }
  reclaimSlot(t, s, threadId, ended, depth);
  for (const v of taken) {
    const id = Atomics.load(i32, t.threadW(v) + TH_THREAD_ID) - 1;
    reclaimSlot(t, v, id, id !== t.threadId, depth);
  }
  // It may have died between an ask to flush and the ask's notify (flush-ask.ts): the asked
  // threads' listeners are woken again, else they slept for good and were never asked again.
  wakeAskedListeners(t);
  return true;
}

/**
 * [L] Reclaims slot `s` (state RECLAIMING, won by this thread) of the thread known as `threadId`;
 * when it `ended`, then the threads of the workers it watched (TH_WATCHING) too, before its slot
 * is free: a reclaimer stopped among them leaves this slot RECLAIMING in its name, and the
 * reclaim of that reclaimer starts this one again, with them.
 */
function reclaimSlot(t: ThreadContext, s: number, threadId: number, ended: boolean, depth: number): void {
  const i32 = t.i32;
  const stateW = t.threadW(s) + TH_STATE;
  // Act as the dead thread: a context bound to its slot, run by this thread (same runner).
  const dead = new ThreadContext(t.buffer, t.geo, t.runner);
  dead.bind(s);
  dead.threadId = threadId;
  dead.detached = false;
  dead.refreshViews();
  // Its magazines: every entry still CACHED that the journal did not hold.
  settleDeepTops(dead);
  const seen = finishJournals(dead);
  crashPoint(CP_RECLAIM);
  for (let c = 0; c < NUM_CLASSES; c++) repairRefill(dead, c); // a refill batch cut short
  const src = new Int32Array(magazineWords(dead.geo.magCap));
  const chunk = journalEntryWords(dead.geo.magCap); // the most words a journal area holds
  // Every class below the 64 KiB one before it (magazine.ts DEEP_CLS): a deep magazine's block is
  // given back (releaseDeep) before the magazine it may also sit in is drained.
  for (let c = 0; c < NUM_CLASSES; c++) {
    const base = dead.magazineBase(c);
    const topW = dead.thW + TH_TOP + c;
    const deep = dead.deep(c);
    const cap = dead.magazineCap(c);
    // From the top down, at most a journal area's worth at a time (a deep magazine holds more).
    for (;;) {
      const top = Math.min(i32[topW], base + cap * MAG_ENTRY_WORDS);
      if (top <= base) break;
      const from = Math.max(base, top - chunk);
      let n = 0;
      for (let w = from; w < top; w += MAG_ENTRY_WORDS) {
        const b = i32[w];
        if (isCached(dead.bytes[i32[w + MAG_STATE]]) && !seen.has(b)) {
          seen.add(b);
          src[n++] = b;
          src[n++] = i32[w + MAG_STATE];
        }
      }
      if (n > 0) {
        // The journal first, then the magazine lowered past them: a reclaimer stopped between
        // the two leaves the blocks in both, and the next reclaim drains them once (finishJournals).
        journalEntries(dead, c, src, 0, n);
        i32[topW] = from;
        crashPoint(CP_RECLAIM);
        drainJournal(dead, c, false);
      } else {
        i32[topW] = from;
      }
    }
    if (deep) releaseDeep(dead, c, base);
    i32[topW] = dead.shallowBase(c);
  }
  // Chains undecided while their slab was being collected (resolveInflight): decided now if no
  // collection of their slab is announced any more; the dead thread's own collection, if it was
  // one, was finished (or given up) by finishJournals. Published ones are notified as the dead
  // thread (its own slab: collected just below; an abandoned one is adopted, and released with
  // the dead thread's other slabs).
  if (Atomics.load(i32, G_UNDECIDED) !== 0) {
    for (const slot of settleUndecided(dead, 0)) notifyOrAdopt(dead, slot);
  }
  processNotices(dead, true); // the last look: the list stays closed (remote.ts takeNotices)
  crashPoint(CP_RECLAIM);
  abandonAll(dead, (mW, cls) => recountFree(dead, mW, cls));
  crashPoint(CP_RECLAIM);
  if (ended && depth < WATCH_DEPTH) {
    for (const id of watchedIds(t, s)) {
      releaseReserved(t, id); // one ended inside its attach
      // Every slot under the id (a stopped instance and its attachment again, as reclaimUnderLock):
      // one left DEAD here stayed so for good, under an id nobody else knows (an audit of 5d43d86).
      for (let c = findThread(t, id, [TS_ATTACHED, TS_DEAD]); c >= 0 && c !== s && c !== t.runner.slot; c = findThread(t, id, [TS_ATTACHED, TS_DEAD])) {
        Atomics.compareExchange(i32, t.threadW(c) + TH_STATE, TS_ATTACHED, TS_DEAD);
        if (!reclaimFound(t, c, id, true, depth + 1)) break;
      }
    }
  }
  i32.fill(0, t.threadW(s) + TH_WATCHING, t.threadW(s) + TH_WATCHING + WATCH_ENTRIES);
  t.f64[F_RECLAIMS]++;
  Atomics.store(i32, t.threadW(s) + TH_THREAD_ID, 0);
  // TH_RECLAIMER is left naming this reclaimer (attach zeroes it): a reclaimer stopped before the
  // store below leaves the slot RECLAIMING, which the reclaim of that reclaimer finishes only if
  // the slot still names it (cleared here first, it stayed RECLAIMING for good, one thread slot
  // fewer: an audit, test/reclaimer-stopped-at-atomics.test.ts).
  Atomics.store(i32, stateW, TS_FREE);
}


/**
 * Before the journals are redone: the top of each class whose magazine is deep but whose block
 * the magazine no longer holds (deepBlockHeld false) goes back into the thread area. That block
 * is FREE (a stop inside deepen before its state was set: the recount of the dead thread's slabs
 * finds it so), or CACHED in the thread's magazine of DEEP_CLS (a stop inside undeepen after its
 * push) or in the journal (a reclaimer stopped inside releaseDeep after its state): drained by
 * the journal's redo or with that magazine, it may go back to the pool and to another thread,
 * and a top still in it would have the class loop below read that thread's data as entries.
 */
function settleDeepTops(dead: ThreadContext): void {
  for (let c = 0; c < DEEP_CLS; c++) {
    if (dead.deep(c) && !deepBlockHeld(dead, deepMagazineBlock(dead.magazineBase(c)))) dead.i32[dead.thW + TH_TOP + c] = dead.shallowBase(c);
  }
}

/**
 * Whether the dead thread's deep magazine block `block` is its magazine's still, for releaseDeep
 * to give back: ST_DEEP, or CACHED in no magazine and in no journal (a stop inside undeepen's
 * push, between the state and the top). False for a block that is not a deep block (never), FREE,
 * or CACHED in the thread's magazine of DEEP_CLS or in its journal (see settleDeepTops).
 */
function deepBlockHeld(dead: ThreadContext, block: number): boolean {
  const i32 = dead.i32;
  const mW = dead.metaW(block >>> SLOT_SHIFT);
  if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_CLS1] - 1 !== DEEP_CLS || i32[mW + SM_DATA] !== block) return false;
  const state = dead.bytes[i32[mW + SM_STATE]];
  if (state === ST_DEEP) return true;
  if (!isCached(state)) return false;
  const dBase = dead.shallowBase(DEEP_CLS);
  const dTop = Math.min(i32[dead.thW + TH_TOP + DEEP_CLS], dBase + dead.magCapCls[DEEP_CLS] * MAG_ENTRY_WORDS);
  for (let w = dBase; w < dTop; w += MAG_ENTRY_WORDS) if (i32[w] === block) return false;
  const n = i32[dead.thW + TH_JOURNAL_N];
  const jW = i32[dead.thW + TH_JOURNAL_SRC];
  if (n > 0 && jW >= dead.thW && jW + n <= dead.thW + dead.geo.threadWords) {
    for (let w = jW; w < jW + n; w += MAG_ENTRY_WORDS) if (i32[w] === block) return false;
  }
  return true;
}

/**
 * The dead thread's deep magazine of `cls`, whose entries the reclaim drained (its base at
 * `base`): its block goes back if the magazine still holds it (deepBlockHeld), through a journal
 * of its own, marked CACHED after the journal names it, and the top moved back into the thread
 * area before the drain that may give the block to another thread. A reclaimer stopped anywhere
 * here leaves it for the next: still ST_DEEP with the top still deep (the journal's redo skips
 * it, this step takes it again), or CACHED in the journal (settleDeepTops moves the top, the redo
 * drains it). Given back before the top moved, a reclaimer stopped between the two left a top in a
 * block that another thread could take, and the next reclaim gave that thread's cached block
 * back as the dead thread's (an audit: a block handed out twice).
 */
function releaseDeep(dead: ThreadContext, cls: number, base: number): void {
  const i32 = dead.i32;
  const block = deepMagazineBlock(base);
  if (!deepBlockHeld(dead, block)) return;
  const st = i32[dead.metaW(block >>> SLOT_SHIFT) + SM_STATE];
  journalEntries(dead, DEEP_CLS, Int32Array.of(block, st), 0, MAG_ENTRY_WORDS);
  dead.bytes[st] = ST_CACHED;
  i32[dead.thW + TH_TOP + cls] = dead.shallowBase(cls);
  crashPoint(CP_RECLAIM);
  drainJournal(dead, DEEP_CLS, false);
}

/**
 * Finishes what a dead thread was in the middle of, from its journal words: a remote list it
 * had taken, a Stage-1 push, a give-back, a drain. The blocks of a remote chain it may or may
 * not have published (TH_INFLIGHT) are resolved by resolveInflight. Returns the blocks the drain
 * journal held (the magazine may still hold copies of them).
 */
function finishJournals(dead: ThreadContext): Set<number> {
  const i32 = dead.i32;
  // First, before this reclaim notifies anything as the dead thread (TH_NOTIFYING is its word too).
  const notifying = i32[dead.thW + TH_NOTIFYING];
  let anew = 0;
  if (notifying > 0 && notifying < dead.slotLimit) {
    // Flag 0: it stopped after publishing a chain (or after clearing its flag) and before its
    // notice or its adoption: the owner has not been told, and no other freer will be (their
    // frees may have found the dead thread's flag set before): noticed anew just below.
    // Nonzero and set by its notice, not pushed yet (TH_FLAGGED): marked unsure. Nonzero otherwise,
    // the flag is another freer's or one it pushed before (its slab on a list, maybe of an owner
    // that gave the slab up since), and its chain, if published, is collected with that notice.
    if (Atomics.load(i32, dead.metaW(notifying) + SM_NOTIFIED) === 0) anew = notifying;
    else if (i32[dead.thW + TH_FLAGGED] === notifying) markUnsureNotice(dead, notifying); // again by a reclaimer stopped before the clear below: no change
  }
  // A dead freer pushes nothing more: the slot it named may be attached to again (attach.ts).
  Atomics.store(i32, dead.thW + TH_NOTIFY_TO, 0);
  if (anew !== 0) {
    // As the dead thread, as resolveInflight does. The dead thread's own slab (adopted just before
    // it stopped) is left to abandonAll, which collects it.
    const mW = dead.metaW(anew);
    if (i32[mW + SM_KIND] === K_SLAB && i32[mW + SM_HEAD] === anew && Atomics.load(i32, mW + SM_REMOTE) !== 0 &&
      Atomics.load(i32, mW + SM_OWNER) !== dead.slot) {
      notifyOrAdopt(dead, anew);
    }
  }
  // Cleared once done, so that a reclaimer stopped before this leaves the notice to the next.
  i32[dead.thW + TH_FLAGGED] = 0;
  i32[dead.thW + TH_NOTIFYING] = 0;
  const collectW = i32[dead.thW + TH_COLLECT_MW];
  if (collectW !== 0) {
    // NEXT is -1 when it died around the exchange itself: whatever it took is lost (rare).
    const next = i32[dead.thW + TH_COLLECT_NEXT];
    if (next > 0) finishCollect(dead, collectW, (i32[collectW + SM_CLS1] - 1), next, true);
    Atomics.store(i32, dead.thW + TH_COLLECT_MW, 0);
  }
  // A reclaimer of this thread stopped while it held a Stage-1 list whole: put the list back first.
  const privateList = i32[dead.thW + TH_S1_PRIVATE];
  if (privateList !== 0) putBackChain(dead, privateList < dead.slotLimit ? privateList : 0);
  for (const w of [TH_POPPING, TH_PUSHING]) {
    const slot = i32[dead.thW + w];
    if (slot !== 0) {
      if (slot < dead.slotLimit) repairStage1(dead, slot);
      i32[dead.thW + w] = 0;
    }
  }
  // Slots it counted in G_LARGE_POOLED that are on no list (a reservation not pushed, a pop not
  // subtracted): taken back, the word cleared with no call after (a reclaimer stopped before
  // the subtraction leaves it to the next).
  const largeHeld = i32[dead.thW + TH_LARGE_HELD];
  if (largeHeld !== 0) {
    Atomics.sub(i32, G_LARGE_POOLED, largeHeld);
    i32[dead.thW + TH_LARGE_HELD] = 0;
  }
  const returning = i32[dead.thW + TH_RETURNING];
  if (returning !== 0) {
    // It died under the lock between marking a slab OWNER_RETURNING (off every list) and giving
    // its slots back: finish that (the reclaimer holds the lock). Not marked yet: still its own
    // slab, which abandonAll releases.
    const mW = dead.metaW(returning);
    const kind = i32[mW + SM_KIND];
    if ((kind === K_SLAB || kind === K_LARGE) && i32[mW + SM_HEAD] === returning && Atomics.load(i32, mW + SM_OWNER) === OWNER_RETURNING) {
      // (A large run: the lock was broken, and repairSlotTable's recount left it out of the held bytes.)
      returnSlots(dead, returning); // a large run's head marked LARGE_FREED with its metas
    }
    i32[dead.thW + TH_RETURNING] = 0;
  }
  const held = new Set<number>();
  const n = i32[dead.thW + TH_JOURNAL_N];
  if (n === 0) return held;
  // The journal's entries: in the dead thread's magazine (a drain in place) or in its journal
  // area (a copy); a word index outside its thread area is not trusted.
  const jW = i32[dead.thW + TH_JOURNAL_SRC];
  if ((jW < dead.thW || jW + n > dead.thW + dead.geo.threadWords) && !inDeepMagazine(dead, jW, n)) {
    i32[dead.thW + TH_JOURNAL_N] = 0;
    return held;
  }
  for (let w = jW; w < jW + n; w += MAG_ENTRY_WORDS) held.add(i32[w]);
  const inflight = i32[dead.thW + TH_INFLIGHT];
  const done = i32[dead.thW + TH_JOURNAL_DONE] + MAG_ENTRY_WORDS * (inflight > 0 ? inflight : 0);
  if (inflight > 0) resolveInflight(dead, jW + i32[dead.thW + TH_JOURNAL_DONE], inflight);
  // Entries after those were never published: still ours while their state says CACHED, or
  // PENDING (a chain whose states were being set, TH_INFLIGHT -k); FREE: a run of its own slab's
  // blocks whose states were set (counted by the slab already, or by the recount of the dead
  // thread's slabs at the end of the reclaim). Of the chain's first k, whose states it set
  // PENDING, only those still PENDING: one that is not was taken by a collection that a stray
  // write led there (see resolveInflight), and may be cached again in another magazine since.
  const reachedEnd = jW + done + (inflight < 0 ? -MAG_ENTRY_WORDS * inflight : 0);
  const rest = new Int32Array(n);
  let m = 0;
  for (let w = jW + done; w < jW + n; w += MAG_ENTRY_WORDS) {
    const st = dead.bytes[i32[w + MAG_STATE]];
    if (!isCached(st) && st !== ST_PENDING) continue;
    if (st !== ST_PENDING && w < reachedEnd) continue;
    rest[m++] = i32[w];
    rest[m++] = i32[w + MAG_STATE];
  }
  const cls = i32[dead.thW + TH_JOURNAL_CLS];
  journalEntries(dead, cls, rest, 0, m);
  drainJournal(dead, cls, false);
  return held;
}

/** Whether words [jW, jW + n) lie in the dead thread's deep magazine of its journal's class (a drain in place there). */
function inDeepMagazine(dead: ThreadContext, jW: number, n: number): boolean {
  const cls = dead.i32[dead.thW + TH_JOURNAL_CLS];
  if (!(cls >= 0 && cls < NUM_CLASSES)) return false;
  if (!dead.deep(cls)) return false;
  const base = dead.magazineBase(cls);
  // At most a journal area's worth: a thread drains a deep magazine in such parts (magazine.ts
  // drainDownTo), and finishJournals copies what is left of it into one journal area.
  return jW >= base && n <= journalEntryWords(dead.geo.magCap) && jW + n <= base + DEEP_CAP * MAG_ENTRY_WORDS;
}

/**
 * The dead thread was notifying the owner of the slab at `slot` (TH_NOTIFYING): if the slab's
 * notice flag is still the one it set (its slot + 1), the slab may be on the owner's notice list
 * (pushed, not taken yet) or on none (stopped before the push), and nothing tells which. Left
 * as it was, the flag would make every later remote free skip the notice while the owner never
 * looks: their blocks would wait on the slab's remote list. Marked -epoch instead (the epoch
 * after G_UNSURE's, published by the CAS that follows the mark, so after the death and any push),
 * for the owner to settle (slab.ts settleUnsure). A reclaimer stopped before the CAS leaves TH_NOTIFYING for the next.
 */
function markUnsureNotice(dead: ThreadContext, slot: number): void {
  const i32 = dead.i32;
  const mW = dead.metaW(slot);
  // The mark first, then the epoch's publication (reclaimers hold the lock: no other marks now).
  // Published first, an owner could read the new epoch, find the flag not marked yet, record the
  // epoch as settled, and never look at the mark stored next (an audit). A reclaimer stopped
  // between the two leaves the mark ahead of G_UNSURE: the next one publishes it.
  const epoch = Atomics.load(i32, G_UNSURE) + 1;
  const flag = Atomics.load(i32, mW + SM_NOTIFIED);
  if (flag === dead.slot + 1) {
    if (Atomics.compareExchange(i32, mW + SM_NOTIFIED, flag, -epoch) !== flag) return;
  } else if (flag !== -epoch) return;
  crashPoint(CP_RECLAIM);
  Atomics.compareExchange(i32, G_UNSURE, epoch - 1, epoch);
}

const INFLIGHT_WAIT_MS = 50; // a live collector takes microseconds; the reclaimer holds the lock meanwhile

/**
 * A dead thread's remote chain (journal words from `fromW`, `n` blocks, states PENDING) may or
 * may not have been published by its CAS. Published: its first block is on the slab's remote
 * list, or was collected since (its state is no longer PENDING). A collection under way can hide
 * it for a moment (taken off the list, states not yet FREE); collectors announce themselves in
 * TH_COLLECT_MW before taking and bump SM_COLLECTS, so the test below is repeated until no
 * collection overlaps it. Unpublished: publish it now. Undecided after INFLIGHT_WAIT_MS (a
 * collector that died in the middle, not yet known dead, or one paused): handed over to the table
 * of undecided chains (handOver), decided once that collection has ended; only when the table is
 * full is it left, counted in G_ORPHANS, rather than risk a block on two lists.
 */
function resolveInflight(dead: ThreadContext, fromW: number, n: number): void {
  const i32 = dead.i32;
  const first = i32[fromW];
  const mW = slabMetaOf(dead, first);
  const cls = i32[mW + SM_CLS1] - 1;
  const stateW = i32[fromW + MAG_STATE];
  const deadline = performance.now() + INFLIGHT_WAIT_MS;
  for (;;) {
    if (dead.bytes[stateW] !== ST_PENDING) return; // published and collected since
    const epoch = Atomics.load(i32, mW + SM_COLLECTS);
    if (!someoneCollecting(dead, mW)) {
      if (onRemoteList(dead, mW, cls, first)) return;
      if (dead.bytes[stateW] !== ST_PENDING) return;
      if (Atomics.load(i32, mW + SM_COLLECTS) === epoch && !someoneCollecting(dead, mW)) {
        // Never published: link the chain again (the links may be half written) and publish it,
        // its blocks still PENDING only. A block of it that is not was taken by the owner's
        // collection, led there by a program's stray write into a block on the slab's remote list
        // (a link to this chain): it is FREE, or handed out since, live, cached. Linked and
        // published again, it had its first word overwritten while live, and was on the list
        // while in use (test/stray-write-dead-freer-chain.test.ts).
        let last = first;
        for (let k = 1; k < n; k++) {
          if (dead.bytes[i32[fromW + MAG_ENTRY_WORDS * k + MAG_STATE]] !== ST_PENDING) continue;
          const b = i32[fromW + MAG_ENTRY_WORDS * k];
          writeLink(i32, last, b);
          last = b;
        }
        publishChain(i32, mW, first, last);
        notifyOrAdopt(dead, (mW - dead.smW) >>> SM_SHIFT);
        return;
      }
    }
    if (performance.now() > deadline) {
      if (!handOver(dead, mW, fromW, n)) Atomics.add(i32, G_ORPHANS, n);
      return;
    }
  }
}

/**
 * [L] Moves the dead thread's undecided chain (journal words from `fromW`, `n` blocks, slab at
 * `mW`) into an empty entry of the table of undecided chains (layout.ts UD_W); false when the
 * table is full. The entry becomes live by its UD_SLAB store, and with no call in between the
 * journal forgets the chain (TH_JOURNAL_DONE past it, TH_INFLIGHT 0): a reclaimer stopped anywhere
 * leaves the chain in exactly one of the two, and a reclaim that runs again never looks at a
 * chain that a settle may have published meanwhile. Then one look at once: the collection may
 * have ended since the last one (its collector, finding the lock held, left the chain to us).
 */
function handOver(dead: ThreadContext, mW: number, fromW: number, n: number): boolean {
  const i32 = dead.i32;
  let live = 0;
  let eW = 0;
  for (let k = 0; k < UD_ENTRIES; k++) {
    const w = UD_W + k * UD_WORDS;
    if (i32[w + UD_SLAB] !== 0) live++;
    else if (eW === 0) eW = w;
  }
  if (eW === 0) return false;
  Atomics.store(i32, G_UNDECIDED, live + 1); // never 0 while an entry is live
  crashPoint(CP_RECLAIM);
  i32[eW + UD_FIRST] = i32[fromW];
  i32[eW + UD_LAST] = i32[fromW + MAG_ENTRY_WORDS * (n - 1)];
  i32[eW + UD_N] = n;
  crashPoint(CP_RECLAIM);
  i32[eW + UD_SLAB] = mW;
  i32[dead.thW + TH_JOURNAL_DONE] += MAG_ENTRY_WORDS * n;
  i32[dead.thW + TH_INFLIGHT] = 0;
  // Stored again now that the entry is live: a collector that clears its announcement and then
  // reads this value sees the entry (remote.ts settleOwn), or came before this store, and then the
  // look below sees its announcement gone.
  Atomics.store(i32, G_UNDECIDED, live + 1);
  crashPoint(CP_RECLAIM);
  for (const slot of settleUndecided(dead, mW)) notifyOrAdopt(dead, slot);
  return true;
}

/** What watch() needs of a Node Worker. */
export interface WatchableWorker {
  threadId: number;
  once(event: 'exit', fn: () => void): unknown;
}

/**
 * Whether a Worker's 'exit' event means its thread has stopped running, which watch() rests on:
 * not in Deno (2.9.6, measured by test/other-runtimes.test.ts), whose node:worker_threads Worker
 * emits 'exit' right after terminate() while a worker busy in a loop runs on, for seconds; a
 * reclaim at that event handed out blocks the worker was still using (check() then found a block
 * CACHED in no magazine). Bun's 'exit' comes after the thread stopped, as Node's does.
 */
export const EXIT_MEANS_STOPPED = (globalThis as { Deno?: unknown }).Deno === undefined;

/**
 * watch()'s refusal where EXIT_MEANS_STOPPED is false (Deno), `fn` naming the call: watch(worker),
 * and watchPool (node.ts), which refuses at its own call rather than at the pool's next thread.
 */
export function exitNotStoppedError(fn: string): HeapStateError {
  return new HeapStateError(
    `${fn}: in Deno a Worker's 'exit' event can come before the worker has stopped (a terminated worker busy in ` +
      'a loop runs on), and a reclaim at that event would hand out blocks it still uses. In Deno, start Web Workers ' +
      "(new Worker(url, { type: 'module' })), attach them with SharedHeap.attachAsync(buffer, { threadId: heap.newThreadId() }) " +
      'and reclaim each with heap.reclaimWhenGone(threadId), or have each worker detach() before it ends',
  );
}

/**
 * The thread id of `worker` as watch() takes it, or the error of a value that is not a Worker
 * (`call` and `what` name the call and the argument: watch(worker) and worker, or watchPool's
 * pool.threads[i], which watchPool checks for every thread before it watches any).
 */
export function watchableId(worker: unknown, call: string, what: string): number {
  if (!isObjectArgument(worker) || typeof (worker as { once?: unknown }).once !== 'function') {
    throw new TypeError(`${call}: ${what === 'worker' ? '' : `${what}: `}expected a Worker, got ${describe(worker)}`);
  }
  const id = (worker as { threadId?: unknown }).threadId;
  if (typeof id !== 'number') throw new TypeError(`${call}: ${what}.threadId: expected a number, got ${describe(id)}`);
  if (id === -1) {
    throw new RangeError(`${call}: ${what === 'worker' ? 'the worker' : what} has exited already (threadId ${describe(id)}); watch it right after starting it`);
  }
  // Anything else that is not an id is not a Worker's (an audit: 1.5 and NaN read as "exited already").
  if (!Number.isSafeInteger(id) || id < 0) {
    throw new RangeError(`${call}: ${what}.threadId: expected a non-negative safe integer, got ${describe(id)}`);
  }
  // Its entry in the thread area (TH_WATCHING) is id + 1 in an Int32 word: a larger id wrapped
  // there to another thread's (an audit: 2**32 + k recorded k's, and the running thread k was
  // marked dead and reclaimed when this one ended).
  if (id > MAX_WATCHED_ID) {
    throw new RangeError(`${call}: ${what}.threadId: ${describe(id)} is above the limit ${MAX_WATCHED_ID}`);
  }
  return id;
}

export function watchWorker(t: ThreadContext, worker: WatchableWorker): void {
  if (!EXIT_MEANS_STOPPED) throw exitNotStoppedError('watch(worker)');
  const id = watchableId(worker, 'watch(worker)', 'worker');
  // Its exit would mark this running thread's own slot dead (an audit): refused, as reclaim() refuses it.
  if (id === t.threadId) {
    throw new RangeError(`watch(worker): worker.threadId ${id} is the calling thread's own id; a thread cannot watch itself (use detach())`);
  }
  const watches = watchesOf(t.runner);
  const ever = everWatchedOf(t.runner);
  const before = watches.get(id); // (an earlier watch of this id, or of this very worker, stands if once() throws)
  const everBefore = ever.get(worker);
  watches.set(id, worker);
  ever.set(worker, id);
  const recorded = recordWatching(t, id); // after the record: a thread stopped here is no worse off than before
  countWatched(1); // this thread's lock waits are bounded until the exit (lock.ts)
  let exited = false; // the listener ran, or the watch was undone: either happens once
  try {
    worker.once('exit', onExit);
  } catch (e) {
    // A Worker-like object's once() threw: the watch is undone (it left the worker recorded as running
    // for good, and this thread's lock waits bounded), and the error is watch()'s.
    if (!exited) {
      exited = true; // a listener once() registered before it threw does nothing when called later
      countWatched(-1);
      if (before !== undefined) watches.set(id, before);
      else watches.delete(id);
      if (everBefore !== undefined) ever.set(worker, everBefore);
      else ever.delete(worker);
      // Its entry in the thread area too (an audit: left there, the thread that object's threadId
      // named, running and no worker of this one, was marked dead and reclaimed at this one's end).
      // (Not once a call in once() detached t: its slot, zeroed then, may be another thread's now.)
      if (recorded >= 0 && !t.detached && t.i32[recorded] === id + 1) t.i32[recorded] = 0;
    }
    const what = e instanceof Error ? `${e.name}: ${e.message}` : describe(e);
    throw new TypeError(`watch(worker): expected a Worker, got ${describe(worker)} whose once('exit', listener) threw ${what}`, { cause: e });
  }
  function onExit(): void {
    if (exited) return; // (a Worker-like object may call it twice; a Worker calls it once)
    exited = true;
    countWatched(-1);
    // The record stays until this handler ran: reclaim(threadId) of a recorded worker is refused
    // while it runs. (reclaim(worker) finds the worker in everWatched, before and after this.)
    if (watches.get(id) === worker) watches.delete(id);
    keepAliveUntil = Date.now() + RECLAIM_KEEPALIVE_MS;
    const c = latestAttachment(t);
    markDead(c, id);
    pendingOf(c.runner).push(id);
    try {
      reclaimPending(c);
    } catch (e) {
      // A fault in the reclaim stopped this thread's instance (fault.ts: its slot DEAD, its watches
      // taken over by its next attachment). Still the program's uncaught exception, as before, but
      // thrown on a later turn: thrown here, it kept the worker's later 'exit' listeners (the one
      // behind `await worker.terminate()`) from running (an audit).
      setTimeout(() => {
        throw e;
      }, 0);
    }
  }
}

/**
 * Whether t's thread has workers it watches still running, or exits still to reclaim: a detach
 * hands them to the thread's next attachment (heap.ts), or to one made for their reclaims alone.
 */
export function hasWatches(t: ThreadContext): boolean {
  return watchesOf(t.runner).size > 0 || hasPending(t);
}

/** Whether exits of workers t's thread watched wait to be reclaimed. */
export function hasPending(t: ThreadContext): boolean {
  return pendingOf(t.runner).length > 0;
}

/**
 * How a thread that detached reclaims the exits of the workers it watched: it attaches again (which
 * takes the detached attachment's watches over: adoptWatches), reclaims, and detaches (heap.ts).
 * Without it, such a worker kept its slot for good.
 */
let reattachToReclaim: (detached: ThreadContext) => void = () => {};
export function onDetachedReclaim(fn: (detached: ThreadContext) => void): void {
  reattachToReclaim = fn;
}

/**
 * The thread attached again (`to`) after a fault stopped `from` (fault.ts): the workers `from`
 * watched, and the reclaims it had pending, are `to`'s from now on, so that their exits are
 * still reclaimed and reclaim(threadId) still refuses a watched worker that runs.
 */
export function adoptWatches(from: ThreadContext, to: ThreadContext): void {
  // to joins from's line as its latest: an exit listener that names an attachment before from keeps
  // the line's cell and to, not the attachments between (ThreadContext.line). A to taken over
  // already keeps its own cell, which names its taker.
  if (to.line.latest === to) to.line = from.line;
  from.line.latest = to;
  watchedWorkers.set(to.runner, watchesOf(from.runner));
  everWatched.set(to.runner, everWatchedOf(from.runner));
  mergedEver.set(to.runner, mergedEverOf(from.runner));
  pendingReclaims.set(to.runner, pendingOf(from.runner));
  for (const id of watchesOf(to.runner).keys()) recordWatching(to, id);
  // Exited workers whose reclaim waited for a busy lock, and found the stopped instance (reclaimPending).
  if (pendingOf(to.runner).length > 0) later(() => reclaimPending(to));
}

/**
 * `from`, detached, watched workers that `to`, this thread's attachment now, did not take over
 * (watched through an old instance after the thread attached again, or an instance the collector
 * detached after that): its watches and pending reclaims become `to`'s, and its exits go to `to`.
 */
export function mergeWatches(from: ThreadContext, to: ThreadContext): void {
  if (latestAttachment(from) === to) return;
  const watches = watchesOf(to.runner);
  for (const [id, w] of watchesOf(from.runner)) {
    watches.set(id, w);
    recordWatching(to, id);
  }
  const pending = pendingOf(to.runner);
  for (const id of pendingOf(from.runner).splice(0)) if (!pending.includes(id)) pending.push(id);
  // The workers `from` ever watched (a WeakMap, which cannot be copied): looked up too (watchedId).
  const ever = mergedEverOf(to.runner);
  for (const m of [everWatchedOf(from.runner), ...mergedEverOf(from.runner)]) if (m !== everWatchedOf(to.runner) && !ever.includes(m)) ever.push(m);
  latestAttachment(from).line.latest = to; // from's line goes on through to's
  if (pending.length > 0) later(() => reclaimPending(to));
}

/**
 * How long after a watched worker's exit this thread's retries of its reclaim (and of the attach and
 * detach made for it, heap.ts) keep the thread alive. Kept alive for good, a thread whose lock
 * nobody frees (a worker died holding it, watched by nobody) never ended (an audit); never kept
 * alive, a worker that watched others ended before it had reclaimed them, its slot left attached.
 */
const RECLAIM_KEEPALIVE_MS = 5000;
let keepAliveUntil = 0;

/** A timer for a retry of reclaims: `fn` after `ms`, keeping the thread alive only within RECLAIM_KEEPALIVE_MS of the last watched exit. */
export function reclaimRetry(fn: () => void, ms: number): void {
  const timer = setTimeout(fn, ms) as unknown as { unref?: () => void };
  // Only when it is due within that time: one made inside it and due after it (the retries of an
  // attach or detach made for reclaims wait up to a second, heap.ts) kept the thread alive up to a
  // second past it, where the README says at most 5 s (an audit, test/reclaim-retry-keep-alive.test.ts).
  if (Date.now() + ms > keepAliveUntil) timer.unref?.();
}

function later(fn: () => void): void {
  reclaimRetry(fn, 1);
}

/** The thread's attachment that now stands for `t`: `t`, or a later one that took its watches over (adoptWatches, mergeWatches). */
export function latestAttachment(t: ThreadContext): ThreadContext {
  let c = t.line.latest;
  while (c.line.latest !== c) c = c.line.latest; // lines that mergeWatches joined
  t.line.latest = c;
  return c;
}

/** The record of `runner` in `table`, made by `make` the first time it is asked for. */
function recordOf<V>(table: WeakMap<Runner, V>, runner: Runner, make: () => V): V {
  let v = table.get(runner);
  if (v === undefined) table.set(runner, (v = make()));
  return v;
}

/** Workers this thread watches, by threadId (recorded while they live). */
const watchedWorkers = new WeakMap<Runner, Map<number, WatchableWorker>>();
const watchesOf = (runner: Runner): Map<number, WatchableWorker> => recordOf(watchedWorkers, runner, () => new Map());

/**
 * Every worker this thread ever watched, with its threadId, kept after its exit (weakly: a
 * Worker nobody holds is forgotten), so that reclaim(worker) knows it in exit handlers that run
 * after watch()'s own and later on.
 */
const everWatched = new WeakMap<Runner, WeakMap<object, number>>();
const everWatchedOf = (runner: Runner): WeakMap<object, number> => recordOf(everWatched, runner, () => new WeakMap());

/** The everWatched maps of attachments merged into this one (mergeWatches). */
const mergedEver = new WeakMap<Runner, WeakMap<object, number>[]>();
const mergedEverOf = (runner: Runner): WeakMap<object, number>[] => recordOf(mergedEver, runner, () => []);

/** Exited workers whose reclaim is still to be done (reclaimPending). */
const pendingReclaims = new WeakMap<Runner, number[]>();
const pendingOf = (runner: Runner): number[] => recordOf(pendingReclaims, runner, () => []);

/**
 * Reclaims the exited workers waiting for it. Never waits for the lock: its holder may be
 * another exited worker whose own exit callback (which marks it dead) cannot run while this one
 * blocks. What stays busy is retried after the next exit, or a millisecond later.
 */
export function reclaimPending(stale: ThreadContext): void {
  // The thread's attachment now: a fault may have stopped the one that scheduled this, and the
  // thread attached again, taking the list over (adoptWatches). A thread that detached attaches
  // again for these reclaims (onDetachedReclaim).
  const t = latestAttachment(stale);
  if (t.detached) {
    if (hasPending(t)) reattachToReclaim(t);
    return;
  }
  // From an event callback, but a reclaim all the same: a fault inside it stops this thread's use of
  // the heap as in any call (fault.ts), its slot marked DEAD so that the next waiter breaks the lock.
  guarded(t, 'watch(worker)', reclaimPendingNow);
}

function reclaimPendingNow(t: ThreadContext): void {
  const list = pendingOf(t.runner);
  for (let i = 0; i < list.length; ) {
    if (reclaimLocked(t, list[i], false) !== 'busy') list.splice(i, 1);
    else i++;
  }
  if (list.length > 0) later(() => reclaimPending(t));
}
