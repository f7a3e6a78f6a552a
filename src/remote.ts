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
import { CP_COLLECT, CP_PUBLISH, crashPoint } from './crash.js';
import type { ThreadContext } from './context.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { FREE_LINK_W, OWNER_NONE, SLOT_SHIFT, SM_COLLECTS, SM_DATA, SM_FREE_REGIONS, SM_HEAD, SM_INUSE, SM_LISTED,
  SM_BUMP, SM_NFREE, SM_NOTICE_NEXT, SM_NOTIFIED, SM_OWNER, SM_REMOTE, SM_SHIFT, SM_STATE, ST_FREE, ST_PENDING, TH_COLLECT_MW,
  TH_COLLECT_NEXT, TH_NOTICE, TH_NOTIFYING, LISTED_NONE } = layout;
const { COUNT, REGION_SHIFT, blockIndex } = classes;

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
    i32[(last >>> 2) + FREE_LINK_W] = old;
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
  if (Atomics.load(i32, mW + SM_NOTIFIED) !== 0) {
    // Set with no owner to take the notice: a thread that set it found the slab abandoned and
    // died before clearing it (or is about to clear it and adopt). Trusting the flag would leave
    // every later remote free on the list for good (the stress test found one: 133 blocks).
    // Whoever adopts first collects; adoptSlab's CAS decides, and clears the flag.
    return Atomics.load(i32, mW + SM_OWNER) === OWNER_NONE && adoptSlab(t, slot);
  }
  // TH_NOTIFYING covers the flag's CAS up to the push: a reclaimer of a thread stopped in between
  // cannot tell whether the slab reached the owner's list, and marks the flag for the owner to
  // settle (reclaim.ts markUnsureNotice).
  const notifyingW = t.thW + TH_NOTIFYING;
  i32[notifyingW] = slot;
  crashPoint(CP_PUBLISH);
  if (Atomics.compareExchange(i32, mW + SM_NOTIFIED, 0, t.slot + 1) !== 0) {
    i32[notifyingW] = 0;
    return false;
  }
  const owner = Atomics.load(i32, mW + SM_OWNER);
  if (owner >= 0) {
    const noticeW = t.threadW(owner) + TH_NOTICE;
    for (;;) {
      crashPoint(CP_PUBLISH);
      const old = Atomics.load(i32, noticeW);
      Atomics.store(i32, mW + SM_NOTICE_NEXT, old);
      if (Atomics.compareExchange(i32, noticeW, old, slot) === old) break;
    }
    crashPoint(CP_PUBLISH);
    i32[notifyingW] = 0;
    return false;
  }
  Atomics.store(i32, mW + SM_NOTIFIED, 0);
  i32[notifyingW] = 0;
  return owner === OWNER_NONE && adoptSlab(t, slot);
}

/** Takes ownership of an abandoned slab with one CAS; true when t's slot now owns it. */
export function adoptSlab(t: ThreadContext, slot: number): boolean {
  const i32 = t.i32;
  const mW = t.metaW(slot);
  if (Atomics.compareExchange(i32, mW + SM_OWNER, OWNER_NONE, t.slot) !== OWNER_NONE) return false;
  i32[mW + SM_LISTED] = LISTED_NONE;
  // A notice posted to the previous owner is lost with it; the caller collects the remote list
  // next, so clearing the flag first means any later push notifies the new owner.
  Atomics.store(i32, mW + SM_NOTIFIED, 0);
  return true;
}

/**
 * Takes the slab's whole remote list with one exchange and moves its blocks back into the slab,
 * one block at a time; TH_COLLECT_* record where it is, so a reclaimer can finish the walk.
 * Returns the blocks moved.
 */
export function collectRemote(t: ThreadContext, mW: number, cls: number): number {
  const i32 = t.i32;
  if (Atomics.load(i32, mW + SM_REMOTE) === 0) return 0;
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
  return n;
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
  let n = 0;
  const limit = COUNT[cls];
  if (resumed && b !== 0 && stateIf(t, mW, cls, b, ST_FREE) >= 0) b = i32[(b >>> 2) + FREE_LINK_W];
  while (b !== 0 && n < limit) {
    crashPoint(CP_COLLECT);
    const st = stateIf(t, mW, cls, b, ST_PENDING);
    if (st < 0) break;
    const next = i32[(b >>> 2) + FREE_LINK_W];
    bytes[st] = ST_FREE;
    i32[mW + SM_FREE_REGIONS] |= 1 << ((st - i32[mW + SM_STATE]) >>> REGION_SHIFT[cls]);
    i32[mW + SM_NFREE]++;
    i32[mW + SM_INUSE]--;
    i32[nextW] = next;
    n++;
    b = next;
  }
  return n;
}

/** Takes t's notice list whole: the first slot (linked by SM_NOTICE_NEXT), 0 when empty. */
export function takeNotices(t: ThreadContext): number {
  return Atomics.exchange(t.i32, t.thW + TH_NOTICE, 0);
}

