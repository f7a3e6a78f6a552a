/**
 * The global shared pool: hands slabs to threads in three stages, each counted.
 *   Stage 1  pop an EMPTY slab of the same class from a lock-free per-class LIFO. The head word
 *            packs an ABA tag above the slot index: (tag << S1_SLOT_BITS) | slot, and every
 *            successful push or pop increments the tag, so a stale CAS fails.
 *   Stage 2  under the global lock, take UNUSED slots of any carved SuperSlab for any class
 *            (multi-class sharing): 1, 2, 4, 8 or 16 slots aligned to the span.
 *   Stage 3  under the global lock, carve a fresh SuperSlab, growing the buffer if it may grow.
 * Before Stage 2 the lock holder adopts an abandoned slab of the class (left by a detached or
 * dead thread) if there is one. The slot table itself (masks, metas) is slots.ts.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import { CP_GIVE_BACK, CP_RECLAIM, CP_STAGE1_POP, CP_STAGE1_PUSH, CP_TAKE, crashArmed, crashPoint } from './crash.js';
import type { ThreadContext } from './context.js';
import { HeapError } from './errors.js';
import { WOULD_BLOCK, lockAcquire, lockRelease, tryLockAcquire } from './lock.js';
import { abandonedUnlink, carveSuperSlabs, commitTaken, findSlots, findUntouchedSlot, initSlab, returnSlots, touchedBytes } from './slots.js';
import { adoptSlab, collectRemote } from './remote.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { ABANDONED_W, F_LARGE_HELD_BYTES, F_STAGE2, F_STAGE3, G_LARGE_CREDIT, G_LARGE_POOLED, G_S1_KEEP, K_LARGE,
  K_SLAB, LARGE_LIVE, LARGE_POOLED, LARGE_POOL_SLOTS, LARGE_POOL_SPANS, LARGE_POOL_W, OWNER_POOL,
  OWNER_RETURNING, S1_HEAD_W, SLOT_BYTES, SLOT_SHIFT, SM_LARGE, SM_SPAN, S1_SLOT_BITS, S1_SLOT_MASK, CLASS_SLOTS, TH_LARGE_HELD, SM_ABANDON_LISTED, SM_ABANDON_NEXT, SM_BUMP, SM_CLS1,
  SM_FREE_REGIONS, SM_HEAD, SM_INUSE, SM_KIND, SM_NFREE, SM_OWNER, SM_POOL_DEPTH, SM_POOL_NEXT, TF_SLABS, TF_STAGE1, TF_STAGE1_PUSHES, TH_POPPING,
  SM_RUN_GEN, TH_PUSHING, TH_RETURNING, TH_S1_PRIVATE } = layout;
const { clearUnsureMark, largeClaimMark, listCountHint } = layout;
const { COUNT, NUM_CLASSES, SPAN } = classes;

// ---- Stage 1: lock-free per-class LIFO of EMPTY slabs -----------------------------------------

/**
 * Test hooks of this thread's Stage-1 operations, null in production (a plain load of a module
 * variable per pop or push, no Atomics): words[0] spin iterations between a read of the head and
 * its CAS; words[1] 1 disables both guards against ABA, the tag and the pop's claim (to show that
 * the ABA test can fail), 2 the tag only (to show that the claim alone guards).
 */
let stage1Hooks: Int32Array | null = null;

/** Installs (or, with null, removes) this thread's Stage-1 test hooks (test/aba.test.ts). */
export function setStage1TestHooks(words: Int32Array | null): void {
  stage1Hooks = words;
}

function hookDelay(words: Int32Array): void {
  const n = Atomics.load(words, 0);
  let x = 0;
  for (let i = 0; i < n; i++) x = (x + i) | 0;
  if (x === 0x7fffffff) Atomics.add(words, 0, 0); // keeps the loop from being removed
}

function nextHead(head: number, slot: number, hooks: Int32Array | null): number {
  if (hooks !== null && Atomics.load(hooks, 1) !== 0) return slot;
  return ((((head >>> S1_SLOT_BITS) + 1) << S1_SLOT_BITS) | slot) | 0;
}

/**
 * Takes the slab at the head of class `cls`'s Stage-1 list, owned by t's slot on return; 0 when
 * the list is empty, or when its head is claimed by another thread that is popping it (or still
 * owned by its pusher) and the head did not move: the caller then goes on to Stage 2.
 */
export function stage1Pop(t: ThreadContext, cls: number): number {
  const slot = listPop(t, S1_HEAD_W + cls);
  t.i32[t.thW + TH_POPPING] = 0; // the slab is t's own now (or nothing was taken)
  // An unsure mark it was pooled with (its freer killed after a detach pooled it flagged): t may
  // have settled that epoch already, and would never look at it again (an audit).
  if (slot !== 0) clearUnsureMark(t.i32, t.metaW(slot));
  return slot;
}

/**
 * Pops the head of the LIFO at word `headW` (a Stage-1 list or a large-run list): the slab or
 * run is claimed first (its owner CAS from POOL to t's slot: no other thread pops or gives it back
 * meanwhile), then unlinked by the head's CAS, the commit point. TH_POPPING names it from before
 * the claim until the caller clears it: a thread stopped anywhere leaves either a claimed entry
 * still on the list or an unlinked one it owns, which repairStage1 tells apart. 0 as stage1Pop,
 * with TH_POPPING 0 again.
 */
export function listPop(t: ThreadContext, headW: number): number {
  const i32 = t.i32;
  // Test hooks read once a call (see crash.ts crashArmed): every slab trip pops and pushes once.
  const cp = crashArmed();
  const hooks = stage1Hooks;
  const popW = t.thW + TH_POPPING;
  // A large-run list's span: its runs' slots stay in G_LARGE_POOLED from the unlinking CAS until
  // the caller's Atomics.sub, held by t meanwhile (TH_LARGE_HELD).
  const span = headW > LARGE_POOL_W && headW < LARGE_POOL_W + CLASS_SLOTS ? headW - LARGE_POOL_W : 0;
  // The head read plain, a hint (layout.ts [H]): the claim and the head's CAS below check it, and a
  // failed CAS returns the head as it is, which the next round starts from; an empty list is read
  // again by Atomics before the caller goes on to Stage 2. Two Atomics calls fewer a pop than a
  // load each round (tcl_lists takes a Stage-1 slab every third malloc: 16 KiB blocks four to a
  // slab, 40 KiB blocks one).
  let head = i32[headW]!;
  for (;;) {
    if ((head & S1_SLOT_MASK) === 0) {
      head = Atomics.load(i32, headW);
      if ((head & S1_SLOT_MASK) === 0) return 0;
    }
    const slot = head & S1_SLOT_MASK;
    const mW = t.metaW(slot);
    i32[popW] = slot; // journal: see repairStage1
    if (cp) crashPoint(CP_STAGE1_POP);
    if (!claim(i32, mW, t.slot, hooks)) {
      // Claimed by another popper, not yet POOL after its push, or no longer on the list: a live
      // claimant moves the head within a few instructions; a dead one not until its reclaim.
      i32[popW] = 0;
      if (!headMoves(i32, headW, head)) return 0;
      head = Atomics.load(i32, headW);
      continue;
    }
    if (cp) crashPoint(CP_STAGE1_POP);
    const next = i32[mW + SM_POOL_NEXT]!; // plain (layout.ts [H]): claimed, the entry is linked and its link stays
    if (hooks !== null) hookDelay(hooks);
    const seen = Atomics.compareExchange(i32, headW, head, nextHead(head, next, hooks));
    if (seen === head) {
      i32[t.thW + TH_LARGE_HELD] = span; // no call since the CAS
      if (cp) crashPoint(CP_STAGE1_POP);
      return slot;
    }
    // The head moved: the entry is still on a list (claimed, nobody unlinks it); unclaim it.
    if (cp) crashPoint(CP_STAGE1_POP);
    if (hooks === null || Atomics.load(hooks, 1) !== 1) Atomics.store(i32, mW + SM_OWNER, OWNER_POOL);
    i32[popW] = 0;
    head = seen;
  }
}

/** A popper's claim of a pooled slab (owner POOL -> its slot); the no-guard test hook skips it. */
function claim(i32: Int32Array, mW: number, slot: number, hooks: Int32Array | null): boolean {
  if (hooks !== null && Atomics.load(hooks, 1) === 1) return true;
  return Atomics.compareExchange(i32, mW + SM_OWNER, OWNER_POOL, slot) === OWNER_POOL;
}

const HEAD_SPINS = 256; // re-reads of a head whose slab is claimed before Stage 1 gives up

/** Whether the head word moves from `head` within HEAD_SPINS reads. */
function headMoves(i32: Int32Array, headW: number, head: number): boolean {
  for (let k = 0; k < HEAD_SPINS; k++) if (Atomics.load(i32, headW) !== head) return true;
  return false;
}

/** Pushes t's empty slab onto class `cls`'s Stage-1 list (listPush). */
export function stage1Push(t: ThreadContext, cls: number, slot: number): void {
  t.i32[t.thW + TH_PUSHING] = slot; // journal: see repairStage1
  listPush(t, S1_HEAD_W + cls, slot);
  t.f64[t.tfW + TF_STAGE1_PUSHES]++; // (layout.ts TF_STAGE1_PUSHES: a plain count in t's slot)
}

/**
 * Pushes `slot` (t's, named by TH_PUSHING, which this clears) onto the LIFO at word `headW`: its
 * link and depth (SM_POOL_DEPTH: the list's length with it) written before the head's CAS, the
 * commit point; its owner stays t's slot until after the CAS, then POOL, so that no popper claims
 * an entry that is not linked yet.
 */
function listPush(t: ThreadContext, headW: number, slot: number): void {
  const i32 = t.i32;
  // Test hooks read once a call (see crash.ts crashArmed): every slab trip pops and pushes once.
  const cp = crashArmed();
  const hooks = stage1Hooks;
  const mW = t.metaW(slot);
  // The head read plain, a hint (layout.ts [H]): the CAS checks it, and a failed CAS returns the
  // head as it is, which the next round links to (one Atomics call fewer a push than a load each round).
  let head = i32[headW]!;
  for (;;) {
    if (cp) crashPoint(CP_STAGE1_PUSH);
    const top = head & S1_SLOT_MASK;
    // Plain writes (layout.ts [H]): the CAS below publishes them; the popper reads them after its claim.
    i32[mW + SM_POOL_NEXT] = top;
    i32[mW + SM_POOL_DEPTH] = top === 0 ? 1 : i32[t.metaW(top) + SM_POOL_DEPTH]! + 1;
    if (hooks !== null) hookDelay(hooks);
    const seen = Atomics.compareExchange(i32, headW, head, nextHead(head, slot, hooks));
    if (seen === head) {
      i32[t.thW + TH_LARGE_HELD] = 0; // no call since the CAS: a large run's reservation is its list's now
      break;
    }
    head = seen;
  }
  if (cp) crashPoint(CP_STAGE1_PUSH);
  Atomics.store(i32, mW + SM_OWNER, OWNER_POOL);
  if (cp) crashPoint(CP_STAGE1_PUSH);
  i32[t.thW + TH_PUSHING] = 0;
}

/** Word of the LIFO head that the slab or large run heading at meta word `mW` goes on. */
function listWordOf(i32: Int32Array, mW: number): number {
  return i32[mW + SM_KIND] === K_LARGE ? LARGE_POOL_W + i32[mW + SM_SPAN] : S1_HEAD_W + i32[mW + SM_CLS1] - 1;
}

const LARGE_CREDIT_MAX = 8; // G_LARGE_CREDIT stays within -8 .. 8 (about: it is moved by separate Atomics calls)

/**
 * Whether a freed large run of `span` slots is kept for reuse: while the large-run lists hold
 * fewer than LARGE_POOL_SLOTS slots with it (G_LARGE_POOLED), and its span's list fewer than
 * stage1Keep runs (0 keeps none). A small budget: runs of sizes that come back soon are reused
 * without the lock, while runs of sizes that do not come back keep few slots from Stage 2.
 * A true answer has reserved the run's slots in G_LARGE_POOLED (one Atomics.add, taken back when
 * it overshoots), so that frees in other threads cannot all pass the test at once: the caller
 * pushes the run (largePoolPush). Pops subtract after they unlink, so the lists never hold more
 * than the count, which stays within LARGE_POOL_SLOTS. A thread's share of the count on no list
 * (TH_LARGE_HELD) is what the reclaim of a thread stopped inside a push or pop takes back: a
 * recount of the lists would drop the reservations of pushes (and keep the slots of pops) still
 * under way in other threads, the count off by those for good.
 */
export function largePoolReserve(t: ThreadContext, head: number, span: number): boolean {
  const i32 = t.i32;
  if (span > LARGE_POOL_SPANS || Atomics.load(i32, G_LARGE_POOLED) + span > LARGE_POOL_SLOTS) return false;
  if (listCountHint(i32, t.smW, LARGE_POOL_W + span) >= i32[G_S1_KEEP]) return false;
  // While kept runs mostly go back unused (sizes that do not come back), only every eighth is kept,
  // to find out when that changes (G_LARGE_CREDIT).
  if (Atomics.load(i32, G_LARGE_CREDIT) < 0 && (++t.largeProbes & 7) !== 0) return false;
  // The push's journal from before the reservation: a thread stopped from here on is repaired
  // (repairStage1); the reservation is t's (TH_LARGE_HELD, no call after the add) until the push's
  // CAS, and a reclaim takes it back.
  i32[t.thW + TH_PUSHING] = head;
  const before = Atomics.add(i32, G_LARGE_POOLED, span);
  i32[t.thW + TH_LARGE_HELD] = span;
  if (before + span > LARGE_POOL_SLOTS) {
    Atomics.sub(i32, G_LARGE_POOLED, span);
    i32[t.thW + TH_LARGE_HELD] = 0;
    i32[t.thW + TH_PUSHING] = 0;
    return false;
  }
  return true;
}

/** largePoolPush's answers: pushed; not live at the claim (a double free); claimed, but its span was not the one reserved. */
export const POOL_PUSHED = 0;
export const POOL_NOT_LIVE = 1;
export const POOL_SPAN_CHANGED = 2;

/**
 * Frees the live large run at `head` into its span's list (no lock): after largePoolReserve
 * (which journals it in TH_PUSHING and reserves its slots), the claim (the mark's CAS from
 * LARGE_LIVE to t's claim mark), the owner (t's slot) and the mark LARGE_POOLED, then listPush.
 * POOL_NOT_LIVE, the reservation taken back and nothing else changed, when the run was not live
 * at the claim: another thread freed it since the caller checked it (a double free).
 * POOL_SPAN_CHANGED, the reservation and the claim taken back (the run live as before), when its
 * span was not `span` at the claim (a realloc resized it in place since the caller read it, an
 * audit): the caller frees it under the lock instead, where the claim comes after the lock is
 * taken (a claim kept across a lock wait that gave up was never undone: a second audit). A
 * thread stopped before the claim leaves a live run; after it, repairStage1 gives the run back or
 * hands it to its list; its reclaim takes back the reservation of a run on no list
 * (TH_LARGE_HELD).
 */
export function largePoolPush(t: ThreadContext, head: number, span: number): number {
  const i32 = t.i32;
  const mW = t.metaW(head);
  crashPoint(CP_STAGE1_PUSH); // TH_PUSHING names the run already (largePoolReserve)
  const live = Atomics.compareExchange(i32, mW + SM_LARGE, LARGE_LIVE, largeClaimMark(t.slot)) === LARGE_LIVE;
  if (!live || i32[mW + SM_SPAN] !== span) {
    Atomics.sub(i32, G_LARGE_POOLED, span);
    i32[t.thW + TH_LARGE_HELD] = 0; // no call since the subtraction
    if (live) Atomics.store(i32, mW + SM_LARGE, LARGE_LIVE); // its own claim, no call since: live again
    i32[t.thW + TH_PUSHING] = 0;
    return live ? POOL_SPAN_CHANGED : POOL_NOT_LIVE;
  }
  crashPoint(CP_STAGE1_PUSH);
  Atomics.store(i32, mW + SM_OWNER, t.slot);
  Atomics.store(i32, mW + SM_LARGE, LARGE_POOLED);
  listPush(t, LARGE_POOL_W + span, head);
  return POOL_PUSHED;
}

/**
 * A pooled run of `span` slots made live again for t (no lock), or 0 when the list is empty or its
 * head is busy. The mark goes LIVE before TH_POPPING is cleared (repairStage1 gives back a run it
 * finds unlinked and still POOLED).
 */
export function largePoolPop(t: ThreadContext, span: number): number {
  const head = listPop(t, LARGE_POOL_W + span);
  if (head === 0) return 0;
  // Subtracted while the run is still marked POOLED: a popper stopped before the LIVE mark leaves a
  // run its repair gives back (and its reclaim subtracts TH_LARGE_HELD if this had not); after the
  // mark, the count is right.
  Atomics.sub(t.i32, G_LARGE_POOLED, span);
  t.i32[t.thW + TH_LARGE_HELD] = 0; // no call since the subtraction
  // Bytes from its start that may be non-zero: calloc's zeroing and debug mode's record, just below, stop there.
  t.largeDirtyBytes = touchedBytes(t, head, span);
  if (t.debugLarge !== null) t.debugLarge(head << SLOT_SHIFT); // debug mode: the record before the run is live
  Atomics.add(t.i32, t.metaW(head) + SM_RUN_GEN, 1); // a new generation before it is live (layout.ts SM_RUN_GEN)
  Atomics.store(t.i32, t.metaW(head) + SM_LARGE, LARGE_LIVE);
  crashPoint(CP_STAGE1_POP);
  t.i32[t.thW + TH_POPPING] = 0;
  if (Atomics.load(t.i32, G_LARGE_CREDIT) < LARGE_CREDIT_MAX) Atomics.add(t.i32, G_LARGE_CREDIT, 1);
  return head;
}

/**
 * [L] Gives the slots of large run `head` back (UNUSED) and marks it freed, its bytes out of the
 * held count: a live run freed under the lock (large.ts largeFree), a pooled run on no list (a
 * repair), or one the pool returns.
 */
export function giveBackRun(t: ThreadContext, head: number): void {
  const i32 = t.i32;
  t.f64[F_LARGE_HELD_BYTES] -= i32[t.metaW(head) + SM_SPAN] * SLOT_BYTES;
  returnSlots(t, head); // marks the head LARGE_FREED with its metas (slots.ts giveBack)
}

/**
 * [L] Gives back the slots of t's slab or large run `slot`, taken off a list (TH_POPPING may still
 * name it) or never listed: TH_RETURNING names it, then it is marked OWNER_RETURNING (only then is
 * TH_POPPING cleared: until the mark, repairStage1 can tell what to do with it), then its slots go
 * back (a run's bytes out of the held count, giveBackRun). A reclaim finishes the give-back of a
 * marked one (reclaim.ts finishJournals).
 */
function giveBackOwned(t: ThreadContext, slot: number): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  i32[t.thW + TH_RETURNING] = slot; // journal: see finishJournals
  crashPoint(CP_GIVE_BACK);
  Atomics.store(i32, mW + SM_OWNER, OWNER_RETURNING);
  i32[t.thW + TH_POPPING] = 0;
  crashPoint(CP_GIVE_BACK);
  if (i32[mW + SM_KIND] === K_LARGE) giveBackRun(t, slot);
  else {
    // A slab a detaching thread listed as abandoned and then took back (attach.ts abandonAll),
    // given back by its reclaim: off the list before its slots are no slab's.
    if (i32[mW + SM_ABANDON_LISTED] !== 0) abandonedUnlink(t, i32[mW + SM_CLS1] - 1, slot);
    returnSlots(t, slot);
  }
  i32[t.thW + TH_RETURNING] = 0;
}

/**
 * [L] A thread died inside stage1Push or stage1Pop of `slot` (TH_PUSHING, TH_POPPING), or inside a
 * free of the large run `slot` (TH_PUSHING; large.ts largeFree); t is the dead thread, the caller
 * its reclaimer. A run still marked with t's claim was freed by t and is on no list: its slots go
 * back. Otherwise only when the slab still names it as owner is anything left to do: on its list (a push past its CAS, or a pop's claim before its unlink), the slab is
 * given to the list (POOL); on no list, it is the dead thread's empty slab like any other, which
 * the reclaim's abandonAll releases. Membership is decided on a private copy of the list, taken
 * whole with one CAS (ABA-free; pops and pushes meanwhile see an empty list or fail their CAS)
 * and put back in one CAS (putBackChain), recorded meanwhile in the dead thread's TH_S1_PRIVATE.
 */
export function repairStage1(t: ThreadContext, slot: number): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  const kind = i32[mW + SM_KIND];
  // A large run it had claimed to free (its mark names this thread alone), pushed on no list: given back.
  if (kind === K_LARGE && i32[mW + SM_HEAD] === slot && Atomics.load(i32, mW + SM_LARGE) === largeClaimMark(t.slot)) {
    giveBackRun(t, slot);
    return;
  }
  if (Atomics.load(i32, mW + SM_OWNER) !== t.slot) return; // not its slab or run (any more)
  if ((kind !== K_SLAB && kind !== K_LARGE) || i32[mW + SM_HEAD] !== slot) return;
  if (kind === K_LARGE && (i32[mW + SM_LARGE] !== LARGE_POOLED || i32[mW + SM_SPAN] > LARGE_POOL_SPANS)) return; // live
  const headW = listWordOf(i32, mW);
  let first = 0;
  for (;;) {
    const head = Atomics.load(i32, headW);
    if (Atomics.compareExchange(i32, headW, head, nextHead(head, 0, stage1Hooks)) === head) {
      first = head & S1_SLOT_MASK;
      i32[t.thW + TH_S1_PRIVATE] = first; // no call since the CAS: a reclaimer stopped from here on leaves it recorded
      break;
    }
  }
  crashPoint(CP_RECLAIM);
  let member = false;
  for (let s = first, n = 0; s !== 0 && n < t.slotLimit; n++) {
    if (s === slot) member = true;
    s = Atomics.load(i32, t.metaW(s) + SM_POOL_NEXT);
  }
  if (member) Atomics.store(i32, mW + SM_OWNER, OWNER_POOL);
  crashPoint(CP_RECLAIM);
  putBackChain(t, first);
  // A pooled run on no list: freed, or taken and not yet live; either way the run goes back.
  if (!member && kind === K_LARGE) giveBackRun(t, slot);
}

/**
 * [L] Puts the private chain of Stage-1 slabs starting at `first` (taken whole off its list by a
 * repair of t, recorded in t's TH_S1_PRIVATE) back on its list, on top of whatever was pushed
 * meanwhile, its depths rewritten; then clears the record. Also what the reclaim of a reclaimer
 * stopped inside repairStage1 does with the record.
 */
export function putBackChain(t: ThreadContext, first: number): void {
  const i32 = t.i32;
  if (first === 0) {
    i32[t.thW + TH_S1_PRIVATE] = 0;
    return;
  }
  const headW = listWordOf(i32, t.metaW(first));
  let last = first;
  let n = 1;
  for (let s = Atomics.load(i32, t.metaW(first) + SM_POOL_NEXT); s !== 0 && n < t.slotLimit; n++) {
    last = s;
    s = Atomics.load(i32, t.metaW(s) + SM_POOL_NEXT);
  }
  for (;;) {
    crashPoint(CP_RECLAIM);
    const head = Atomics.load(i32, headW);
    const top = head & S1_SLOT_MASK;
    Atomics.store(i32, t.metaW(last) + SM_POOL_NEXT, top);
    const below = top === 0 ? 0 : Atomics.load(i32, t.metaW(top) + SM_POOL_DEPTH);
    for (let s = first, k = 0; k < n; k++, s = Atomics.load(i32, t.metaW(s) + SM_POOL_NEXT)) {
      Atomics.store(i32, t.metaW(s) + SM_POOL_DEPTH, below + n - k);
    }
    if (Atomics.compareExchange(i32, headW, head, nextHead(head, first, stage1Hooks)) === head) {
      i32[t.thW + TH_S1_PRIVATE] = 0; // no call since the CAS
      return;
    }
  }
}

/**
 * [O] An owned slab with no block out (INUSE 0) forgets its free blocks: BUMP, FREE_REGIONS and
 * NFREE to 0, so that whoever takes it from Stage 1 carves its blocks again in address order,
 * without scanning their states. Every block's state says FREE, as for blocks never carved. A
 * thread stopped between the three stores leaves a slab it still owns, whose counts the reclaim
 * takes from the states (recountFree); a later free of one of its blocks is still a double free
 * (classifyBlock tells handed-out blocks by the slot's SM_TOUCHED, not by BUMP).
 */
function forgetFreeBlocks(t: ThreadContext, slot: number): void {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  i32[mW + SM_BUMP] = 0;
  crashPoint(CP_STAGE1_PUSH);
  i32[mW + SM_FREE_REGIONS] = 0;
  crashPoint(CP_STAGE1_PUSH);
  i32[mW + SM_NFREE] = 0;
}

/**
 * An owned slab whose blocks are all back: to Stage 1 while its class keeps fewer than
 * stage1Keep there (reuse without the lock), else its slots to Stage 2 (any class); to Stage 2
 * whatever Stage 1 keeps during a trim (t.trimming: magazine.ts trimOthers). Never waits:
 * when the lock is busy the slab goes to Stage 1 anyway (Stage-1 slabs give their slots back
 * before the heap grows), so tryMalloc, whose refill may get here, never blocks.
 */
export function releaseEmptySlab(t: ThreadContext, slot: number, cls: number): void {
  const i32 = t.i32;
  if ((!t.trimming && listCountHint(i32, t.smW, S1_HEAD_W + cls) < i32[G_S1_KEEP]) || !tryLockAcquire(t)) {
    forgetFreeBlocks(t, slot);
    stage1Push(t, cls, slot);
    return;
  }
  try {
    giveBackOwned(t, slot);
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
}

// ---- Taking a slab ----------------------------------------------------------------------------

/** A slab of class `cls` from its Stage-1 list, owned by t's slot, or 0 when the list has none. */
export function takeStage1Slab(t: ThreadContext, cls: number): number {
  const slot = stage1Pop(t, cls);
  if (slot !== 0) {
    // Ours (the pop claimed it); the views next, since another thread may have grown the buffer
    // and carved this slab.
    t.f64[t.tfW + TF_STAGE1]++; // (layout.ts TF_STAGE1: a plain count in t's slot)
    t.ensureViews();
    t.f64[t.tfW + TF_SLABS]++;
  }
  return slot;
}

/**
 * A slab of class `cls` owned by t's slot on a slot that no block or run ever used (slots.ts
 * findUntouchedSlot), without waiting for the lock: 0 when the lock is busy or no such slot is
 * left. For a deep magazine's block (magazine.ts deepen), which a program that writes into a block
 * after freeing it must not reach. Where the carved SuperSlabs have no such slot, a fresh one is
 * carved only if the next slab of any class would be carved too (memoryWaiting false: a heap
 * being filled); otherwise 0, and the class stays shallow. A deep magazine's block, given back,
 * may serve the program and counts touched for good, so a SuperSlab carved for each new one grew
 * the footprint by 64 KiB a round, and a growable buffer with it, in a program that freed a batch
 * of 16 KiB blocks and asked for it again with a flush or another phase between (1,000 rounds,
 * nothing live between them: 1.7 -> 64 MiB, a buffer of 8 -> 78 MiB; an audit,
 * test/deep-magazine-footprint.test.ts). (Never carving for it was tried: the fills of
 * test/capacity-phases.test.ts and test/drain.test.ts deepened less often then, and held more in
 * their shallow caches, 7.0 MiB against the 6 MiB they allow.)
 */
export function takeFreshSlab(t: ThreadContext, cls: number): number {
  if (SPAN[cls] !== 1) return 0; // (one slot: the 64 KiB class)
  return lockedTake(t, false, () => {
    const found = findUntouchedSlot(t);
    return found !== 0 || !memoryWaiting(t) ? foundOrCarved(t, cls, found) : 0;
  });
}

/**
 * [L] Whether the carved SuperSlabs hold memory a slab could be made of: a free slot, an EMPTY
 * slab on a Stage-1 list, a pooled large run (a hint: the lists' counts are read plain).
 */
function memoryWaiting(t: ThreadContext): boolean {
  const i32 = t.i32;
  if (Atomics.load(i32, G_LARGE_POOLED) > 0 || findSlots(t, 1, 1) !== 0) return true;
  for (let c = 0; c < NUM_CLASSES; c++) if (listCountHint(i32, t.smW, S1_HEAD_W + c) > 0) return true;
  return false;
}

/**
 * A slab of class `cls` owned by t's slot, or 0 when the heap is full (or, with mayBlock false,
 * when the lock is busy).
 */
export function takeSlab(t: ThreadContext, cls: number, mayBlock: boolean): number {
  const slot = takeStage1Slab(t, cls);
  if (slot !== 0) return slot;
  return lockedTake(t, mayBlock, () => {
    const adopted = adoptAbandoned(t, cls);
    if (adopted !== 0) return adopted;
    const span = SPAN[cls];
    if (Atomics.load(t.i32, G_LARGE_POOLED) > 0) returnLargeRuns(t, false);
    let found = findSlots(t, span, span);
    if (found === 0 && returnStage1Slabs(t) > 0) found = findSlots(t, span, span);
    return foundOrCarved(t, cls, found);
  });
}

/** `take` under the global lock (tried once unless `mayBlock`): the slab it took, counted, or 0. */
function lockedTake(t: ThreadContext, mayBlock: boolean, take: () => number): number {
  if (mayBlock) lockAcquire(t);
  else if (!tryLockAcquire(t)) return 0;
  let slot = 0;
  try {
    slot = take();
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
  if (slot !== 0) t.f64[t.tfW + TF_SLABS]++;
  return slot;
}

/** [L] Stage 2's `found` slot (0: none), else Stage 3's fresh SuperSlab, made a slab of `cls` owned by t; 0 when neither. */
function foundOrCarved(t: ThreadContext, cls: number, found: number): number {
  let slot = found;
  if (slot !== 0) t.f64[F_STAGE2]++;
  else {
    slot = carveSuperSlabs(t, 1);
    if (slot !== 0) t.f64[F_STAGE3]++;
  }
  if (slot !== 0) {
    initSlab(t, slot, cls);
    crashPoint(CP_TAKE);
    commitTaken(t, slot, SPAN[cls]);
    crashPoint(CP_TAKE);
  }
  return slot;
}

/**
 * [L] Before the heap grows: every EMPTY slab waiting in any class's Stage-1 list, and every
 * pooled large run, gives its slots back (UNUSED), so that memory kept for reuse never makes the
 * heap grow. Returns the slabs and runs given back.
 */
export function returnStage1Slabs(t: ThreadContext): number {
  let n = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    for (let slot = listPop(t, S1_HEAD_W + c); slot !== 0; slot = listPop(t, S1_HEAD_W + c)) {
      giveBackOwned(t, slot);
      n++;
    }
  }
  return n + returnLargeRuns(t, true);
}

/**
 * [L] Pooled large runs give their slots back (UNUSED): all of them (`all`, before the heap
 * grows), or, before any slab or run is taken under the lock, as many as G_LARGE_POOLED counts
 * (from the smallest span up), so that runs kept for reuse do not make the heap touch pages it
 * has not used yet (a pooled run's slots are all touched). Returns the runs given back.
 */
export function returnLargeRuns(t: ThreadContext, all: boolean): number {
  const i32 = t.i32;
  let n = 0;
  let left = Atomics.load(i32, G_LARGE_POOLED);
  for (let span = 1; span <= LARGE_POOL_SPANS && (all || left > 0); span++) {
    for (let head = listPop(t, LARGE_POOL_W + span); head !== 0; head = listPop(t, LARGE_POOL_W + span)) {
      Atomics.sub(i32, G_LARGE_POOLED, span); // before the give-back, as in largePoolPop
      i32[t.thW + TH_LARGE_HELD] = 0; // no call since the subtraction
      giveBackOwned(t, head);
      if (!all && Atomics.load(i32, G_LARGE_CREDIT) > -LARGE_CREDIT_MAX) Atomics.sub(i32, G_LARGE_CREDIT, 1);
      left -= span;
      n++;
    }
  }
  return n;
}

/** [L] An abandoned slab of `cls` with free blocks, now owned by t's slot; 0 when none. */
function adoptAbandoned(t: ThreadContext, cls: number): number {
  const i32 = t.i32;
  for (;;) {
    const slot = i32[ABANDONED_W + cls];
    if (slot === 0) return 0;
    const mW = t.metaW(slot);
    // Adopted before it leaves the list: a thread stopped between the two leaves the slab its own
    // and listed, which its reclaim gives up again (abandonAll; abandonedPush skips a listed slab).
    // Off the list first, a thread stopped at the adopting CAS left a slab of no owner on no list,
    // whose free blocks no thread could find until one of its blocks was freed (an audit of the
    // crash points, test/adopt-abandoned-stopped.test.ts).
    const adopted = i32[mW + SM_KIND] === K_SLAB && (i32[mW + SM_CLS1] - 1) === cls && i32[mW + SM_HEAD] === slot && adoptSlab(t, slot);
    i32[ABANDONED_W + cls] = i32[mW + SM_ABANDON_NEXT];
    i32[mW + SM_ABANDON_LISTED] = 0;
    if (!adopted) continue; // not a slab of the class any more, adopted meanwhile by a remote free, or pooled
    collectRemote(t, mW, cls);
    // Every block back, free blocks on the list, or blocks never carved: usable now.
    if (i32[mW + SM_INUSE] === 0 || i32[mW + SM_NFREE] > 0 || i32[mW + SM_BUMP] < COUNT[cls]) return slot;
    // full: keep it as ours (remote frees will notify us) and look further
  }
}
