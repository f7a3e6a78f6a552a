/**
 * Remote frees: blocks freed by a thread other than their slab's owner.
 *
 * A drain pushes the blocks of another thread's slab as one chain, with one CAS, onto that slab's
 * remote list (SM_REMOTE, linked through each block's FREE_LINK_W). The first push since the
 * owner last looked also puts the slab on the owner's notice list (TH_NOTICE), so that the owner
 * collects it on its next slow path: it takes the whole list with one exchange and moves the
 * blocks back into the slab (FREE, counted). A slab with no owner (abandoned) is adopted by the
 * pusher.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import { CP_COLLECT, CP_PUBLISH, CP_RECLAIM, crashArmed, crashPoint } from './crash.js';
import type { ThreadContext } from './context.js';
import { WOULD_BLOCK, lockRelease, tryLockAcquire } from './lock.js';
import { HeapCorruptionError, HeapError } from './errors.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { DEBUG_FREED_MARK, DEBUG_MARK_W, DEBUG_RECORD_BYTES, DEBUG_SEAL, FREE_CHECK_W, FREE_LINK_W, G_ADOPTED, G_DEBUG, OWNER_NONE, SLOT_SHIFT, SM_COLLECTS, SM_DATA, SM_FREE_REGIONS, SM_HEAD, SM_INUSE, SM_LISTED,
  SM_BUMP, SM_NFREE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_OWNER, SM_REMOTE, SM_SHIFT, SM_STATE, ST_FREE, ST_PENDING, TH_COLLECT_MW,
  TH_COLLECT_NEXT, TH_NOTICE, NOTICE_CLOSED, TH_FLAGGED, TH_NOTIFYING, TH_NOTIFY_TO, TH_NOTICE_REST, LISTED_NONE, clearUnsureMark, G_ORPHANS, G_UNDECIDED, K_SLAB, SM_CLS1, SM_KIND, UD_ENTRIES,
  UD_FIRST, UD_LAST, UD_N, UD_SLAB, UD_W, UD_WORDS } = layout;
const { COUNT, REGION_SHIFT, SIZE, blockIndex } = classes;

/** Word index of the head slot's meta of the slab holding `block`. */
export function slabMetaOf(t: ThreadContext, block: number): number {
  return t.metaW(t.i32[t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]);
}

/**
 * Byte offset of the state byte of `block` in the slab of class `cls` whose head meta is at `mW`,
 * or -1 unless `block` is a carved block of that slab whose state says `expect` (free's exact
 * division: an offset that is not a block start gives an index at or above COUNT).
 */
function stateIf(t: ThreadContext, mW: number, cls: number, block: number, expect: number): number {
  const i32 = t.i32;
  const idx = blockIndex(cls, block - i32[mW + SM_DATA]);
  if (idx >>> 0 >= COUNT[cls] || idx >= i32[mW + SM_BUMP]) return -1;
  const st = i32[mW + SM_STATE] + idx;
  return t.bytes[st] === expect ? st : -1;
}

/** Pushes the chain first..last onto the slab's remote list (a Treiber push of a whole chain). */
export function publishChain(i32: Int32Array, mW: number, first: number, last: number): void {
  for (;;) {
    crashPoint(CP_PUBLISH);
    const old = Atomics.load(i32, mW + SM_REMOTE);
    layout.writeLink(i32, last, old);
    if (Atomics.compareExchange(i32, mW + SM_REMOTE, old, first) === old) return;
  }
}

/**
 * After a push onto the remote list of `slot`: the first push since the owner last looked puts
 * the slab on the owner's notice list. Returns true when the slab had no owner and the caller
 * has just adopted it: the caller then collects it (see adoptAfterPush in slab.ts).
 */
export function notifyOwner(t: ThreadContext, slot: number): boolean {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  const notifyingW = t.thW + TH_NOTIFYING;
  if (Atomics.load(i32, mW + SM_NOTIFIED) !== 0) {
    // Another notice is under way (its freer pushes, or its reclaim marks it): none needed here.
    i32[notifyingW] = 0;
    // Set with no owner to take the notice: a thread that set it found the slab abandoned and
    // died before clearing it (or is about to clear it and adopt). Trusting the flag would leave
    // every later remote free on the list for good (the stress test found one: 133 blocks).
    // Whoever adopts first collects; adoptSlab's CAS decides.
    return Atomics.load(i32, mW + SM_OWNER) === OWNER_NONE && adoptSlab(t, slot);
  }
  // TH_NOTIFYING covers the flag's CAS up to the push: a reclaimer of a thread stopped in between
  // (TH_FLAGGED names the slab) cannot tell whether the slab reached the owner's list, and marks
  // the flag for the owner to settle (reclaim.ts markUnsureNotice); stopped with the flag 0 (before the CAS, or after its
  // clear below and before the notice anew or the adoption), it notices the slab anew. So the word
  // stays set up to the last of those steps (drainJournal sets it before its publish already).
  const mine = t.slot + 1;
  const flaggedW = t.thW + TH_FLAGGED;
  i32[notifyingW] = slot;
  crashPoint(CP_PUBLISH);
  if (Atomics.compareExchange(i32, mW + SM_NOTIFIED, 0, mine) !== 0) {
    i32[notifyingW] = 0;
    return false;
  }
  // With no call after the CAS: the flag is this notice's, not pushed yet, until the stores that
  // follow the push or the clear (layout.ts TH_FLAGGED; a reclaimer marks it unsure only then).
  i32[flaggedW] = slot;
  const owner = Atomics.load(i32, mW + SM_OWNER);
  if (owner >= t.geo.maxThreads) {
    // No thread slot: the heap's metadata was overwritten (V8's RangeError here before: an audit).
    // The flag and this thread's record of the notice go back as they were, then the error.
    Atomics.store(i32, mW + SM_NOTIFIED, 0);
    i32[flaggedW] = 0;
    i32[notifyingW] = 0;
    throw new HeapCorruptionError(`slot ${slot}'s slab names owner ${owner}, which is no thread slot of the heap: its metadata was overwritten`);
  }
  if (owner >= 0) {
    // The owner's thread slot is named in TH_NOTIFY_TO before the owner is read again: a slot so
    // named is not attached to anew (attach.ts), so the list this notice goes onto is the one of
    // the thread that owned the slab at that second read, never the list of a later thread in the
    // same slot (which would put the slab on two lists: its link is one word).
    const toW = t.thW + TH_NOTIFY_TO;
    crashPoint(CP_PUBLISH);
    Atomics.store(i32, toW, owner + 1);
    let pushed = false;
    if (Atomics.load(i32, mW + SM_OWNER) === owner) {
      const noticeW = t.threadW(owner) + TH_NOTICE;
      for (;;) {
        crashPoint(CP_PUBLISH);
        const old = Atomics.load(i32, noticeW);
        // The owner has taken its notices for the last time (a detach or a reclaim): a slab it
        // still owns is collected and decided by its abandonAll, which follows that last look.
        if (old === NOTICE_CLOSED) break;
        Atomics.store(i32, mW + SM_NOTICE_NEXT, old);
        if (Atomics.compareExchange(i32, noticeW, old, slot) === old) {
          // Forgotten with no call after the push: a reclaimer that took the flag for one not
          // pushed marked it unsure, which the slab's owner settles as if no list but its own held
          // the slab. After a late notice (onto the list of an owner that gave the slab up since)
          // the next owner cleared the mark while the slab was on that list, and the next push put
          // it on a second list (test/notice-unsure-late.test.ts; TH_FLAGGED, for a later chain's
          // notice of the same slab: test/notice-unsure-open.test.ts).
          i32[flaggedW] = 0;
          i32[notifyingW] = 0;
          pushed = true;
          break;
        }
      }
    }
    if (pushed) {
      Atomics.store(i32, toW, 0);
      crashPoint(CP_PUBLISH);
      return false;
    }
    crashPoint(CP_PUBLISH);
    // Not pushed: the flag goes back to 0, by CAS (only this thread or the taker of a list holding
    // the slab clears a flag set by a live freer). The remote frees it made others skip their
    // notices: so when the slab has changed hands (abandoned: adopted here; pooled and taken again:
    // its new owner), a list not empty is noticed anew. Still the closed owner's, its abandonAll
    // will collect it.
    // The slot stays named until the owner is read again after the clear: a thread attached
    // anew in that slot meanwhile could have taken the slab from the pool, and the same owner
    // number would hide the change (an audit).
    Atomics.compareExchange(i32, mW + SM_NOTIFIED, mine, 0);
    i32[flaggedW] = 0;
    const changed = Atomics.load(i32, mW + SM_OWNER) !== owner;
    Atomics.store(i32, toW, 0);
    if (changed && Atomics.load(i32, mW + SM_REMOTE) !== 0) return notifyOwner(t, slot);
    i32[notifyingW] = 0;
    return false;
  }
  // No owner to notify (abandoned, pooled or being given back): the flag goes back to 0, by CAS as
  // above. Adopted meanwhile by another thread (which kept the flag), the remote frees it made skip
  // their notices are noticed to that thread (an audit).
  crashPoint(CP_PUBLISH);
  Atomics.compareExchange(i32, mW + SM_NOTIFIED, mine, 0);
  i32[flaggedW] = 0;
  crashPoint(CP_PUBLISH);
  if (owner === OWNER_NONE && adoptSlab(t, slot)) {
    i32[notifyingW] = 0; // stopped before this store, its reclaim finds the slab its own: abandonAll's
    return true;
  }
  if (Atomics.load(i32, mW + SM_OWNER) >= 0 && Atomics.load(i32, mW + SM_REMOTE) !== 0) return notifyOwner(t, slot);
  i32[notifyingW] = 0;
  return false;
}

/**
 * Takes ownership of an abandoned slab with one CAS; true when t's slot now owns it. A notice flag
 * it carries stays: set by a live freer (slot + 1), that freer clears it or pushes the slab onto
 * t's list (remote.ts notifyOwner); set by a dead one, its reclaim marks it unsure for t to settle.
 * An unsure mark (-epoch) left from before is cleared: the slab's last owner took its list for the
 * last time after that epoch, so the slab is on no list.
 */
export function adoptSlab(t: ThreadContext, slot: number): boolean {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  if (Atomics.compareExchange(i32, mW + SM_OWNER, OWNER_NONE, t.slot) !== OWNER_NONE) return false;
  Atomics.add(i32, G_ADOPTED, 1); // stats() stages.adopted
  i32[mW + SM_LISTED] = LISTED_NONE;
  clearUnsureMark(i32, mW);
  return true;
}

/**
 * Takes the slab's whole remote list with one exchange and moves its blocks back into the slab,
 * one block at a time; TH_COLLECT_* record where it is, so a reclaimer can finish the walk.
 * Returns the blocks moved.
 */
export function collectRemote(t: ThreadContext, mW: number, cls: number): number {
  const i32 = t.i32;
  if (Atomics.load(i32, mW + SM_REMOTE) === 0) {
    // Nothing to take; but a chain of this slab may be waiting to be decided (settleOwn).
    return Atomics.load(i32, G_UNDECIDED) !== 0 && settleOwn(t, mW) ? collectRemote(t, mW, cls) : 0;
  }
  // Announce the collection before taking the list: a reclaimer deciding whether a dead
  // thread's chain was published looks at TH_COLLECT_MW and SM_COLLECTS (resolveInflight).
  i32[t.thW + TH_COLLECT_NEXT] = -1;
  Atomics.store(i32, t.thW + TH_COLLECT_MW, mW);
  Atomics.add(i32, mW + SM_COLLECTS, 1);
  crashPoint(CP_COLLECT);
  const first = Atomics.exchange(i32, mW + SM_REMOTE, 0);
  i32[t.thW + TH_COLLECT_NEXT] = first;
  crashPoint(CP_COLLECT);
  const n = finishCollect(t, mW, cls, first);
  Atomics.store(i32, t.thW + TH_COLLECT_MW, 0);
  // A chain a reclaimer could not decide while this collection was announced (layout.ts UD_W):
  // decided now, before any block this collection freed can be handed out again. Cleared the
  // announcement first: a reclaimer stores G_UNDECIDED before it looks at TH_COLLECT_MW again, so
  // one of the two sees the other.
  if (Atomics.load(i32, G_UNDECIDED) !== 0 && settleOwn(t, mW)) return n + collectRemote(t, mW, cls);
  return n;
}

/**
 * t, the owner of the slab at `mW`, is not collecting it: settles the undecided chains of that
 * slab (layout.ts UD_W), if any. True when one was published onto the slab's remote list (the
 * caller collects it, being the owner: no notice needed). Never waits for the lock (tryMalloc,
 * event-loop callbacks): when it is busy, the slab goes on t's own notice list, so that t's next
 * look at its notices (a refill, the periodic drain) comes back here.
 */
function settleOwn(t: ThreadContext, mW: number): boolean {
  const i32 = t.i32;
  let mine = false;
  for (let k = 0; k < UD_ENTRIES; k++) if (i32[UD_W + k * UD_WORDS + UD_SLAB] === mW) mine = true; // racy: only a hint
  if (!mine) return false;
  if (!tryLockAcquire(t)) {
    notifyOwner(t, (mW - t.smW) >>> SM_SHIFT);
    return false;
  }
  try {
    return settleUndecided(t, mW).length > 0;
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
}

/** Whether some thread has announced a collection of the slab whose meta is at `mW`. */
export function someoneCollecting(t: ThreadContext, mW: number): boolean {
  for (let s = 0, used = layout.usedSlots(t.i32, t.geo.maxThreads); s < used; s++) {
    if (Atomics.load(t.i32, t.threadW(s) + TH_COLLECT_MW) === mW) return true;
  }
  return false;
}

/**
 * The link of `b`, a block on a remote list of the slab of class `cls` at `mW` (layout.ts
 * FREE_CHECK_W): where its two words disagree, a stray write of the program hit one of them, and
 * the other is the heap's: the check word when it names the end or a PENDING block of the slab
 * (a stray write over it alone does not, but by a chance of about one in millions: layout.ts
 * linkCheck), else the link. Following a stray link that
 * named a PENDING block led the collection into another freer's chain not yet published.
 */
export function linkOf(t: ThreadContext, mW: number, cls: number, b: number): number {
  const i32 = t.i32;
  const link = i32[(b >>> 2) + FREE_LINK_W];
  const check = layout.checkedLink(i32[(b >>> 2) + FREE_CHECK_W]);
  if (link === check || check === 0) return check;
  return stateIf(t, mW, cls, check, ST_PENDING) >= 0 ? check : link;
}

/** Whether `block` is on the remote list of the slab of class `cls` at `mW` (a walk of at most a slab's count of links). */
export function onRemoteList(t: ThreadContext, mW: number, cls: number, block: number): boolean {
  const i32 = t.i32;
  for (let b = Atomics.load(i32, mW + SM_REMOTE), k = 0; b !== 0 && k < COUNT[cls]; k++, b = linkOf(t, mW, cls, b)) {
    if (b === block) return true;
  }
  return false;
}

/** Whether `b` is a carved block of the slab whose head meta is at `mW` and says PENDING. */
function pendingIn(t: ThreadContext, mW: number, b: number): boolean {
  const i32 = t.i32;
  if (b <= 0 || (b & 15) !== 0 || b >>> SLOT_SHIFT >= t.slotLimit || i32[mW + SM_KIND] !== K_SLAB) return false;
  if (slabMetaOf(t, b) !== mW) return false;
  return stateIf(t, mW, i32[mW + SM_CLS1] - 1, b, ST_PENDING) >= 0;
}

/**
 * [L] Settles every live undecided chain (layout.ts UD_W) of the slab at `onlyMW` (0: of any slab)
 * whose slab no thread is collecting, by resolveInflight's rule: a chain whose first block is no
 * longer PENDING was published and collected; one on the slab's remote list was published; else,
 * with no collection announced and SM_COLLECTS unchanged across the look, it was never published:
 * published now, its links checked first (each a PENDING block of the slab, n of them ending at its
 * last block; else a stray write hit them and it is given up, counted in G_ORPHANS). Returns the
 * head slots of the slabs that got a chain, for the caller to notify (or collect, as their owner).
 * Then stores the live entries left into G_UNDECIDED.
 */
export function settleUndecided(t: ThreadContext, onlyMW: number): number[] {
  const i32 = t.i32;
  const published: number[] = [];
  let live = 0;
  for (let k = 0; k < UD_ENTRIES; k++) {
    const eW = UD_W + k * UD_WORDS;
    const mW = i32[eW + UD_SLAB];
    if (mW === 0) continue;
    if ((onlyMW !== 0 && mW !== onlyMW) || !settleChain(t, eW, mW, published)) live++;
  }
  crashPoint(CP_RECLAIM);
  Atomics.store(i32, G_UNDECIDED, live);
  return published;
}

/** [L] One look at the undecided chain of entry `eW` (slab at `mW`): true when it is decided (the entry emptied). */
function settleChain(t: ThreadContext, eW: number, mW: number, published: number[]): boolean {
  const i32 = t.i32;
  const first = i32[eW + UD_FIRST];
  crashPoint(CP_RECLAIM);
  if (!pendingIn(t, mW, first)) {
    i32[eW + UD_SLAB] = 0; // published and collected since
    return true;
  }
  const epoch = Atomics.load(i32, mW + SM_COLLECTS);
  if (someoneCollecting(t, mW)) return false;
  const cls = i32[mW + SM_CLS1] - 1;
  if (onRemoteList(t, mW, cls, first)) {
    i32[eW + UD_SLAB] = 0; // published, not collected yet
    return true;
  }
  if (!pendingIn(t, mW, first)) {
    i32[eW + UD_SLAB] = 0;
    return true;
  }
  if (Atomics.load(i32, mW + SM_COLLECTS) !== epoch || someoneCollecting(t, mW)) return false;
  // Never published. The links drainJournal wrote, checked rather than trusted: a program's stray
  // write into a freed block may have changed one.
  const n = i32[eW + UD_N];
  const last = i32[eW + UD_LAST];
  let b = first;
  for (let k = 1; k < n && k < COUNT[cls] && pendingIn(t, mW, b); k++) b = linkOf(t, mW, cls, b);
  if (b !== last || !pendingIn(t, mW, b) || n < 1 || n > COUNT[cls]) {
    Atomics.add(i32, G_ORPHANS, n > 0 && n <= COUNT[cls] ? n : 0);
    i32[eW + UD_SLAB] = 0;
    return true;
  }
  // From the CAS to the store that empties the entry, no call (see drainJournal).
  publishChain(i32, mW, first, last);
  i32[eW + UD_SLAB] = 0;
  published.push((mW - t.smW) >>> SM_SHIFT);
  return true;
}

/**
 * Debug mode: a block freed by another thread, being collected: the drain wrote the link's check
 * over its freed mark (layout.ts FREE_CHECK_W is DEBUG_MARK_W). The mark is written again where
 * free left one (its size record, debug.ts, says n >= 8), so that the fill is checked when the
 * block is handed out again, as for a block freed by its owner.
 */
function debugRemark(i32: Int32Array, p: number, usable: number): void {
  const rec = (p + usable - DEBUG_RECORD_BYTES) >>> 2;
  const n = i32[rec];
  if ((n ^ p ^ DEBUG_SEAL) === i32[rec + 1] && n >= 8) i32[(p >>> 2) + DEBUG_MARK_W] = DEBUG_FREED_MARK ^ p ^ usable;
}

/**
 * Moves the blocks of the taken remote chain starting at `b` back into their slab: FREE,
 * counted, their regions marked. Each link was written into a freed block, where a stray write
 * of the program may have hit it: a link to anything but a PENDING block of the slab ends the
 * walk (the blocks after it stay PENDING, counted in use: lost to the heap, and reported by
 * check()), so that no state byte but a PENDING one of this slab is ever written.
 * `resumed`: a reclaim finishing a dead thread's walk from TH_COLLECT_NEXT, whose block the thread
 * may have moved already (FREE, its link intact) without recording the next: then the walk goes
 * on from its link (the reclaim's recount of the slab puts the counts right).
 */
export function finishCollect(t: ThreadContext, mW: number, cls: number, b: number, resumed = false): number {
  const i32 = t.i32;
  const bytes = t.bytes;
  const nextW = t.thW + TH_COLLECT_NEXT;
  const cp = crashArmed(); // (see crashArmed)
  let n = 0;
  const limit = COUNT[cls];
  const debug = i32[G_DEBUG] === 1; // the drain wrote over the freed mark: debugRemark
  if (resumed && b !== 0 && stateIf(t, mW, cls, b, ST_FREE) >= 0) b = linkOf(t, mW, cls, b);
  // The slab's fields are read once, and its counts kept in locals and stored after the walk
  // (stateIf written out): a thread stopped inside it leaves FREE blocks uncounted, which the
  // reclaim's recount of its slabs counts, as for a drain's run (reclaim.ts abandonAll, slab.ts
  // recountFree). A read-modify-write of three meta words a block, and the meta's fields read
  // again for each, were the most of a producer's collection of what a consumer freed (an audit
  // of fan-in: three producers, one consumer of 64-byte messages, 12.6 -> 5.4 ns a message).
  const data = i32[mW + SM_DATA];
  const state = i32[mW + SM_STATE];
  const bump = i32[mW + SM_BUMP];
  const regionShift = REGION_SHIFT[cls];
  let regions = 0;
  while (b !== 0 && n < limit) {
    if (cp) crashPoint(CP_COLLECT);
    const idx = blockIndex(cls, b - data);
    if (idx >>> 0 >= limit || idx >= bump || bytes[state + idx] !== ST_PENDING) break;
    const next = linkOf(t, mW, cls, b);
    if (debug) debugRemark(i32, b, SIZE[cls]);
    bytes[state + idx] = ST_FREE;
    regions |= 1 << (idx >>> regionShift);
    i32[nextW] = next;
    n++;
    b = next;
  }
  if (n !== 0) {
    i32[mW + SM_FREE_REGIONS] |= regions;
    i32[mW + SM_NFREE] += n;
    i32[mW + SM_INUSE] -= n;
  }
  return n;
}

/**
 * Takes t's notice list whole: the first slot (linked by SM_NOTICE_NEXT), 0 when empty. `last`
 * (a detach's or a reclaim's last look) leaves the list closed (layout.ts NOTICE_CLOSED): a freer
 * that reads t as a slab's owner from then on clears its flag instead of pushing a notice that
 * nobody would take, which left the slab flagged for good, and its next owner never notified.
 */
export function takeNotices(t: ThreadContext, last = false): number {
  // A plain read first (layout.ts [H]): most looks find the list empty, and the exchange, an
  // Atomics call, was one of about twenty in a slab's trip through Stage 1.
  if (!last && t.i32[t.thW + TH_NOTICE] === 0) {
    t.i32[t.thW + TH_NOTICE_REST] = 0;
    return 0;
  }
  const first = Atomics.exchange(t.i32, t.thW + TH_NOTICE, last ? NOTICE_CLOSED : 0);
  const taken = first > 0 ? first : 0; // NOTICE_CLOSED: a reclaim after a detach's (or another reclaim's) last look
  // Recorded with no call after the exchange: the list is the walk's now (slab.ts walkNotices),
  // which a reclaim finishes; a thread stopped in between lost it whole, every slab on it flagged
  // for good (an audit).
  t.i32[t.thW + TH_NOTICE_REST] = taken;
  return taken;
}

