/**
 * Attaching a thread to a heap (claiming a thread slot and setting up its magazines) and
 * detaching it (flushing, abandoning its slabs, giving the slot back).
 */
import {
  G_SLOTS_USED, MAG_EMPTY_SENTINEL, MAG_ENTRY_WORDS,
  MAG_FULL_SENTINEL, MAG_STATE, OWNER_NONE, SM_CLS1, SM_INUSE,
  SM_LISTED, SM_OWNER, SM_REMOTE, TF_ZEROED_WORDS, TH_COLLECT_MW, TH_CUR, TH_INFLIGHT, TH_JOURNAL_N, TH_NOTICE, TH_NOTICE_CUR, TH_NOTICE_REST, TH_WATCHING, WATCH_ENTRIES,
  TH_PARTIAL, TH_PARTIAL_TAIL, TH_PUSHING, TH_RETURNING, TH_NOTIFY_TO, TH_STATE, TH_THREAD_ID, TH_TOP, TS_ATTACHED, TS_DEAD, TS_FREE, LISTED_NONE, TH_LOCK_GEN, RECLAIM_SLOTS, lockWord, usedSlots, clearUnsureMark,
} from './layout.js';
import { NUM_CLASSES } from './size-classes.js';
import { ThreadContext, readGeometry, type Runner } from './context.js';
import { HeapError, HeapStateError, ThreadSlotsExhaustedError } from './errors.js';
import { WOULD_BLOCK, lockAcquire, lockRelease } from './lock.js';
import { releaseEmptySlab } from './pool.js';
import { abandonedPush, abandonedUnlink, ownedSlabs } from './slots.js';
import { adoptSlab, collectRemote } from './remote.js';
import { flushThread } from './magazine.js';
import { stopListening } from './flush-ask.js';
import { CP_GIVE_BACK, crashPoint } from './crash.js';
import { takeHeapThreadId } from './create.js';

/**
 * The calling thread's Node threadId; -1 outside Node (a browser) and in Deno, where the heap hands
 * out ids. Deno's node:worker_threads answers threadId 0 (and isMainThread true) in every Web
 * Worker: each took the main thread's id, its Web Lock (the same name) waited behind the main
 * thread's for good (threadLockHeld() never resolved), and reclaimWhenGone() of its id was refused
 * as the caller's own (measured in Deno 2.9.6, test/other-runtimes.test.ts). No call there needs
 * Node's ids: watch() and reclaim(worker) refuse in Deno (reclaim.ts EXIT_MEANS_STOPPED).
 */
export function nodeThreadId(): number {
  if ((globalThis as { Deno?: unknown }).Deno !== undefined) return -1;
  const proc = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process;
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as { threadId?: number } | undefined;
  return typeof wt?.threadId === 'number' ? wt.threadId : -1;
}

const ATTACH_NAMED_WAIT_MS = 200; // how long an attach rescans while every free slot is named

/**
 * Whether a thread names slot `s` in TH_NOTIFY_TO: it read the slot's last thread as a slab's owner
 * and may still push onto the slot's notice list (remote.ts notifyOwner). Read after the slot was
 * seen FREE: a freer whose second read of the owner came before that thread gave the slab up named
 * the slot before that read, so it is seen here; one whose read came after sees the slab's new owner.
 */
function namedByFreer(t: ThreadContext, s: number): boolean {
  for (let o = 0, used = usedSlots(t.i32, t.geo.maxThreads); o < used; o++) {
    if (o !== s && Atomics.load(t.i32, t.threadW(o) + TH_NOTIFY_TO) === s + 1) return true;
  }
  return false;
}

/**
 * Whether a slot is DEAD under thread id `id`: an instance of this thread that a fault stopped,
 * which SharedHeap.attach reclaims once attached (reclaim.ts reclaimOwnDead).
 */
function ownDeadSlot(t: ThreadContext, id: number): boolean {
  for (let s = 0, used = usedSlots(t.i32, t.geo.maxThreads); s < used; s++) {
    const w = t.threadW(s);
    if (Atomics.load(t.i32, w + TH_STATE) === TS_DEAD && Atomics.load(t.i32, w + TH_THREAD_ID) === id + 1) return true;
  }
  return false;
}

/**
 * The thread slots taken (not FREE) where one kept for reclaims (at `maxThreads` and after) is
 * taken; 0 where none is (every taken slot then is one of the `maxThreads` first).
 */
function takenSlots(t: ThreadContext, maxThreads: number): number {
  const used = usedSlots(t.i32, t.geo.maxThreads);
  if (used <= maxThreads) return 0; // no kept slot was ever claimed
  let n = 0;
  let kept = false;
  for (let s = 0; s < used; s++) {
    if (Atomics.load(t.i32, t.threadW(s) + TH_STATE) === TS_FREE) continue;
    n++;
    if (s >= maxThreads) kept = true;
  }
  return kept ? n : 0;
}

/**
 * Claims a free thread slot of the heap in `buffer` for the calling thread; returns its context.
 * The thread is known by `givenId` when given (an id newThreadId() handed out, whose Web Lock the
 * caller holds: SharedHeap.attachAsync), else by Node's threadId, else by a fresh heap id.
 * `forReclaim`: an attachment made to reclaim watched workers' exits (heap.ts reattachToReclaim),
 * or one of a thread whose earlier instance a fault stopped, which reclaims that slot right after
 * (heap.ts #takeOverStale): it may take the slots kept for reclaims (the last RECLAIM_SLOTS) when
 * no other is free, as the slots it reclaims may be all the others (maxThreads 1).
 */
export function attachThread(buffer: SharedArrayBuffer, givenId = -1, forReclaim = false): ThreadContext {
  const geo = readGeometry(buffer, 'SharedHeap.attach(buffer)');
  const runner: Runner = { slot: -1, lockMe: 0, lockDepth: 0, faulted: false };
  const t = new ThreadContext(buffer, geo, runner);
  const i32 = t.i32;
  let id = givenId >= 0 ? givenId : nodeThreadId();
  if (id < 0) id = takeHeapThreadId(i32, 'SharedHeap.attach(buffer)');
  if (givenId >= 0) {
    // Under the id's Web Lock (attachAsync), no other thread attaches or reclaims under it now.
    for (let s = 0, used = usedSlots(i32, geo.maxThreads); s < used; s++) {
      if (Atomics.load(i32, t.threadW(s) + TH_THREAD_ID) === givenId + 1) {
        throw new HeapStateError(
          `SharedHeap.attachAsync(buffer, options): threadId ${givenId} names a thread slot still (a thread attached under it was not reclaimed)`,
        );
      }
    }
  }
  const maxThreads = geo.maxThreads - RECLAIM_SLOTS; // options.maxThreads
  const slots = forReclaim || (givenId < 0 && ownDeadSlot(t, id)) ? geo.maxThreads : maxThreads;
  let slot = -1;
  let named = false;
  let until = 0;
  // A thread that took a kept slot stays there once its reclaims are done (an attach again after a
  // fault, the program's attach while a reattachment for reclaims was under way): it is one of the
  // maxThreads, and the slot it reclaimed does not make room for one more (maxThreads + 1 attached,
  // and the next attach to reclaim a fault found no slot: an audit,
  // test/reclaim-slot-kept-after-fault.test.ts). Another attach counts the slots taken then.
  const full = slots === maxThreads && takenSlots(t, maxThreads) >= maxThreads;
  for (let s = 0; !full; s++) {
    if (s === slots) {
      // Every free slot was named by a remote freer about to notify its last thread (TH_NOTIFY_TO):
      // a live one is done within microseconds; a dead one, once reclaimed.
      if (!named) break;
      if (until === 0) until = Date.now() + ATTACH_NAMED_WAIT_MS;
      else if (Date.now() > until) break;
      named = false;
      s = -1;
      continue;
    }
    const w = t.threadW(s);
    if (Atomics.load(i32, w + TH_STATE) !== TS_FREE) continue;
    if (namedByFreer(t, s)) {
      named = true;
      continue;
    }
    // G_SLOTS_USED first: a scan bounded by it (usedSlots) never misses a claimed slot, even one
    // whose thread dies right after the claim. A failed claim leaves it one slot high: harmless.
    for (let used = Atomics.load(i32, G_SLOTS_USED); used < s + 1; used = Atomics.load(i32, G_SLOTS_USED)) {
      if (Atomics.compareExchange(i32, G_SLOTS_USED, used, s + 1) === used) break;
    }
    // The id first, by a CAS from 0 that reserves the slot against other attachers, then the
    // state: a thread killed between the two leaves a FREE slot carrying its id, which
    // reclaim(id) releases (reclaim.ts), and at no step a slot that no id names.
    if (Atomics.compareExchange(i32, w + TH_THREAD_ID, 0, id + 1) !== 0) continue;
    if (Atomics.compareExchange(i32, w + TH_STATE, TS_FREE, TS_ATTACHED) === TS_FREE) {
      slot = s;
      break;
    }
    Atomics.store(i32, w + TH_THREAD_ID, 0); // a slot being reclaimed (its id cleared, its state not yet FREE): not ours yet
  }
  if (slot >= 0 && slots === maxThreads && takenSlots(t, maxThreads) > maxThreads) {
    // Counted again with this slot taken: another ordinary attach passed the count above at the
    // same moment and took a slot too (both saw one free). Both may back out here (both were
    // over at that moment); neither stays as a thread more than maxThreads. The state first, as
    // a thread killed between the two CASes above leaves it (reclaim(id) releases such a slot).
    const w = t.threadW(slot);
    Atomics.store(i32, w + TH_STATE, TS_FREE);
    Atomics.store(i32, w + TH_THREAD_ID, 0);
    slot = -1;
  }
  if (slot < 0 && named) {
    throw new ThreadSlotsExhaustedError(
      `SharedHeap.attach(buffer): the only free thread slots are named by a remote free under way in another thread ` +
        '(stopped there: reclaim(threadId) it if it exited; or raise options.maxThreads)',
    );
  }
  if (slot < 0) {
    throw new ThreadSlotsExhaustedError(
      `SharedHeap.attach(buffer): all ${maxThreads} thread slots are taken (raise options.maxThreads, ` +
        'detach() threads that are done, and watch(worker) or reclaim(threadId) workers that exited)',
    );
  }
  t.bind(slot);
  runner.slot = slot;
  // This attachment's generation, before it can take the lock (layout.ts TH_LOCK_GEN): one plain
  // store, the slot ours since the CAS above.
  const gen = (i32[t.thW + TH_LOCK_GEN] + 1) | 0;
  i32[t.thW + TH_LOCK_GEN] = gen;
  runner.lockMe = lockWord(slot, 0, gen);
  t.threadId = id;
  const thW = t.thW;
  for (let c = 0; c < NUM_CLASSES; c++) {
    const base = t.shallowBase(c); // (a top left deep by an earlier attachment is never read: detach and reclaim give deep magazines back)
    const empty = base - MAG_ENTRY_WORDS;
    i32[empty] = MAG_EMPTY_SENTINEL;
    i32[empty + MAG_STATE] = MAG_EMPTY_SENTINEL;
    const end = base + t.magCapCls[c] * MAG_ENTRY_WORDS;
    i32[end] = MAG_FULL_SENTINEL;
    i32[end + MAG_STATE] = MAG_FULL_SENTINEL;
    i32[thW + TH_TOP + c] = base;
    i32[thW + TH_CUR + c] = 0;
    i32[thW + TH_PARTIAL + c] = 0;
    i32[thW + TH_PARTIAL_TAIL + c] = 0;
  }
  t.f64.fill(0, t.tfW, t.tfW + TF_ZEROED_WORDS / 2); // not the Stage-1 counts (layout.ts TF_STAGE1)
  i32[thW + TH_COLLECT_MW] = 0;
  i32[thW + TH_PUSHING] = 0;
  i32[thW + TH_RETURNING] = 0;
  i32[thW + TH_JOURNAL_N] = 0;
  i32[thW + TH_INFLIGHT] = 0;
  i32[thW + TH_NOTICE_CUR] = 0;
  i32[thW + TH_NOTICE_REST] = 0;
  i32.fill(0, thW + TH_WATCHING, thW + TH_WATCHING + WATCH_ENTRIES);
  Atomics.store(i32, thW + TH_NOTICE, 0);
  t.detached = false;
  t.refreshViews();
  return t;
}

/**
 * Gives up all slabs of t's slot: empty ones to the pool, the others to the abandoned lists.
 * `beforeRelease` (a reclaim's recount of each slab from its state bytes) runs on each first.
 */
export function abandonAll(t: ThreadContext, beforeRelease?: (mW: number, cls: number) => void): void {
  const i32 = t.i32;
  const toAbandon: number[] = [];
  for (const s of ownedSlabs(t, t.slot)) {
    const mW = t.metaW(s);
    const cls = i32[mW + SM_CLS1] - 1;
    collectRemote(t, mW, cls);
    if (beforeRelease !== undefined) beforeRelease(mW, cls);
    i32[mW + SM_LISTED] = LISTED_NONE;
    if (i32[mW + SM_INUSE] === 0) {
      // Every block back: no remote free of it can come any more. A flag still set belongs to a
      // freer whose chain came in after t's last look (flushThread): its notice finds t's list
      // closed, or the slab no longer t's, and it clears the flag itself, noticing to the slab's
      // next owner whatever that owner's remote frees left meanwhile (remote.ts notifyOwner). Not
      // cleared here: only that freer knows when it is done (cleared under it, a second freer's
      // notice could put the slab on a second list). An unsure mark is t's to settle: no list
      // holds the slab after t's last look.
      clearUnsureMark(i32, mW);
      releaseEmptySlab(t, s, cls);
    } else toAbandon.push(s);
  }
  if (toAbandon.length > 0) {
    lockAcquire(t);
    try {
      for (const s of toAbandon) {
        const mW = t.metaW(s);
        const cls = i32[mW + SM_CLS1] - 1;
        // On its abandoned list before it has no owner: a thread stopped anywhere below leaves the
        // slab either its own (its reclaim gives it up again) or on the list, where a slab of the
        // class that is needed finds it. (Listed and then owned again, or pooled, it is skipped
        // there: adoptAbandoned's CAS fails.)
        abandonedPush(t, cls, s);
        for (;;) {
          // A notice posted to this thread from now on finds its list closed; the freer then sees
          // the slab has no owner and adopts it (a flag left set makes the next remote free adopt
          // it too: remote.ts notifyOwner).
          clearUnsureMark(i32, mW);
          Atomics.store(i32, mW + SM_OWNER, OWNER_NONE);
          crashPoint(CP_GIVE_BACK);
          // A chain pushed since the collect above, before the owner store, notified t (lost with
          // it), and its blocks may be the slab's last: no later free would come to adopt it. Any
          // push from here on finds no owner (or its adopter). So a list not empty now is taken
          // back by t, as any remote freer would (unless one adopted the slab first), and the
          // slab decided again.
          if (Atomics.load(i32, mW + SM_REMOTE) === 0 || !adoptSlab(t, s)) break;
          collectRemote(t, mW, cls);
          if (i32[mW + SM_INUSE] === 0) {
            abandonedUnlink(t, cls, s);
            releaseEmptySlab(t, s, cls);
            break;
          }
        }
      }
    } catch (e) {
      if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
      throw e;
    } finally {
      lockRelease(t);
    }
  }
  for (let c = 0; c < NUM_CLASSES; c++) {
    i32[t.thW + TH_CUR + c] = 0;
    i32[t.thW + TH_PARTIAL + c] = 0;
    i32[t.thW + TH_PARTIAL_TAIL + c] = 0;
  }
}

/**
 * Flushes, abandons t's slabs, and gives its slot back; t then refuses every call. Holds the
 * global lock throughout (abandonAll's own acquisition is then re-entrant): a wait for it that
 * gives up (a main thread's LockTimeoutError, WOULD_BLOCK) does so before anything changed. It
 * used to come inside abandonAll, after the last look at t's notices had closed its list and
 * empty slabs had gone back: t stayed attached with its list closed, and the remote frees of its
 * slabs then went unnoticed (an audit's repro).
 */
export function detachThread(t: ThreadContext): void {
  lockAcquire(t);
  try {
    flushThread(t, true);
    abandonAll(t);
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
  stopListening(t);
  const i32 = t.i32;
  // The state first, the id last: the id going to 0 is what lets attach claim the slot, and a
  // thread killed between the two leaves a FREE slot carrying its id, which reclaim(id) releases
  // (the other order left an ATTACHED slot that no id named).
  // Its record of the workers it watches goes before the slot is free: a thread that takes the
  // slot and ends before its attach zeroes the record must not take them with it.
  i32.fill(0, t.thW + TH_WATCHING, t.thW + TH_WATCHING + WATCH_ENTRIES);
  Atomics.store(i32, t.thW + TH_STATE, TS_FREE);
  Atomics.store(i32, t.thW + TH_THREAD_ID, 0);
  t.refuseCalls();
}
