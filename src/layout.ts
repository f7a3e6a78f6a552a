/**
 * The one map of the buffer. Every word, offset, shift and size of the shared heap is defined
 * here, with who may touch it and how; no other file writes a layout number.
 *
 * Glossary
 *   block       what malloc returns: a byte offset into the buffer, > 0, a multiple of 16
 *   slab slot   64 KiB of the heap, aligned to 64 KiB: `block >>> SLOT_SHIFT` is its index
 *   SuperSlab   1 MiB, aligned to 1 MiB, 16 slab slots: `block >>> SUPER_SHIFT` is its index
 *   slab        1, 2, 4, 8 or 16 slots of one SuperSlab serving one size class (`cls`)
 *   large run   slots (or whole SuperSlabs) holding one allocation above MAX_SMALL
 *   magazine    a thread's stack of free blocks of one class, in the thread's area
 *   thread slot 0 .. maxThreads-1: the area one attached thread owns (`slot` in a ThreadContext)
 *
 * The whole buffer:
 *
 *   0                                      META_BYTES (metaSupers MiB)              buffer end
 *   | header | SuperSlab table | slot meta table | thread areas |  SuperSlab | SuperSlab | ...
 *   |<------------- metadata SuperSlabs (never handed out) ----->|<-- carved on demand -->
 *
 * A slab (SPAN slots of one SuperSlab, size-classes.ts gives SPAN, HDR and COUNT per class):
 *
 *   slab start                  + HDR[cls]
 *   | state bytes, one per block | block 0 | block 1 | ... | block COUNT-1 | tail waste |
 *
 *   Classes of at most SM_STATE_BYTES blocks (8 KiB and up) keep their state bytes in the head
 *   slot's meta entry instead (SM_STATES_W; HDR = 0), so that their blocks fill the slab.
 *   A PENDING block, on the slab's remote list, holds in its first word (FREE_LINK_W) the byte
 *   offset of the next block of that list, 0 at the end, and in its second (FREE_CHECK_W) that
 *   link's check (linkCheck), so that a stray write over either word is told from the link the
 *   heap wrote (remote.ts linkOf). A block in any other state holds
 *   nothing of the allocator's: a FREE block is found by its state byte (SM_FREE_REGIONS), not
 *   by a link, so a write into a freed block cannot mislead the allocator.
 *
 * Tags on every shared field say who may touch it and how:
 *   [C] constant after initialisation (plain reads by anyone)
 *   [O] the owning thread only, plain reads and writes (stats() and check() read it racily)
 *   [A] any thread, Atomics only
 *   [H] as [A], with the plain accesses its line names and no others: a plain write made before
 *       the Atomics operation that publishes it (a reader that sees the publication through an
 *       Atomics read or CAS sees the write), or a plain read used as a hint only, followed by the
 *       Atomics operation when the hint says there may be work (a stale hint postpones the work
 *       to the next look, as if what it missed had come a moment later). An Atomics call costs
 *       6-12 ns here, a plain access about 1 (Stage 1's round trip had some twenty of them)
 *   [L] under the global lock, plain access (stats() and check() read it racily)
 *   [P] published: written under the lock only while no block of the slot exists anywhere
 *       (when the slot is taken or given back); read plain by any thread that holds a block of
 *       the slot. Such a thread got the block from a slab whose owner received it through the
 *       lock or an Atomics CAS after these words were written, so the plain read sees them.
 *   [R] reserved: unused, kept zero
 *
 * Word offsets end in W; byte offsets are nouns. All Int32 words unless said Float64.
 */

// ---- Geometry -------------------------------------------------------------------------------
export const SLOT_SHIFT = 16;
export const SLOT_BYTES = 1 << SLOT_SHIFT; // 64 KiB
export const SUPER_SHIFT = 20;
export const SUPER_BYTES = 1 << SUPER_SHIFT; // 1 MiB
export const SLOTS_SHIFT_IN_SUPER = SUPER_SHIFT - SLOT_SHIFT; // 4
export const SLOTS_PER_SUPER = 1 << SLOTS_SHIFT_IN_SUPER; // 16
export const FULL_MASK = (1 << SLOTS_PER_SUPER) - 1; // 0xffff: every slot of a SuperSlab free
export const MAX_HEAP_BYTES = 2047 * SUPER_BYTES; // 2,146,435,072: offsets stay below 2^31
export const MAX_SLOTS = MAX_HEAP_BYTES >>> SLOT_SHIFT;
export const MAX_SUPERS = MAX_HEAP_BYTES >>> SUPER_SHIFT;
export const PAGE_BYTES = 4096; // what the operating system maps on first touch (footprint accounting)
/** Length of every per-class array in the buffer (>= NUM_CLASSES, size-classes.ts checks). */
export const CLASS_SLOTS = 64;

export const MAGIC = 0x5ab3a11c;
export const LAYOUT_VERSION = 24; // 24: deep magazines (a top in a 64 KiB block of ST_DEEP: a thread of version 23 would take it for a stray top, and a reclaimer of version 23 would read past its magazine's bound and leave the block held); 23: a large run's generation, SM_RUN_GEN (SM_COLLECTS' word), bumped at each take and resize in place (a thread of version 22 would leave it as it is, and a realloc of version 23 would free a run such a thread resized or took again while it moved it); 22: ST_CLEAN, a cached block never handed out (a reclaimer of version 21 would leave a dead thread's CLEAN blocks in its magazine as strays, and its check() would fail on the state); 21: the Stage-1 counts in each thread slot's counters (TF_STAGE1, TF_STAGE1_PUSHES), the thread area 4 words longer (a thread of version 20 would count into the words that are reserved now, and read its journal 4 words off); 20: a PENDING block's second word holds its link's check (FREE_CHECK_W, linkCheck; a collector of version 19 would follow a stray link into a chain not yet published, a freer of version 19 would leave the check word stale and its links be taken for stray ones); 19: G_MAX_THREADS counts RECLAIM_SLOTS (a thread of version 18 would attach into that slot for its own use); 18: TH_LOCK_GEN, and its bits in the lock word (a thread of version 17 would read a holder slot out of the generation's bits), the journal areas and magazines one word further on; 17: two journal areas, TH_JOURNAL_W and the one after it, the magazines one journal area further on (a reclaimer of version 16 would copy a journal over the one it copies from); 16: TH_INFLIGHT is -k while a drain sets a chain's states (a reclaimer of version 15 would read a negative count as a chain and skip past the journal's start); 15: SM_LARGE may hold largeClaimMark(slot) while a free of the run is under way, LARGE_RESIZING while realloc resizes it in place (a thread of version 14 would free a claimed run again, and its reclaim would leave a dead freer's claimed run taken); 14: TH_WATCHING (a reclaimer of version 13 would leave a dead watcher's workers attached), the thread area 16 words longer; 13: TH_FLAGGED (a reclaimer of version 12 would mark a pushed flag unsure) and TH_LARGE_HELD (it would recount G_LARGE_POOLED), the thread area 2 words longer; 12: SM_NOTIFIED may hold NOTIFIED_WALK (a reclaim of version 11 would not clear it), TH_NOTIFYING set before a chain's publish; 11: TH_NOTIFY_TO (a freer of version 10 would not name its target), G_HEAP_ID_HIGH; 10: TH_NOTICE may hold NOTICE_CLOSED (a freer of version 9 would push onto it), TH_FLUSH_ASK; 9: the table of undecided chains (UD_W) after the detached tops, G_UNDECIDED; 8: the first class of two per doubling is 5 KiB, not 6 (a slab's class index means another size); 7: SM word 8 holds the free regions (SM_FREE_REGIONS), no longer a free-list head

// ---- Tuning knobs (not layout, but read by the layout's users) ------------------------------
/**
 * A magazine of a large class holds at most this many bytes of blocks; twice as many for the
 * classes of two per doubling (TWO_PER_DOUBLING_FROM to TWO_PER_DOUBLING_TO in size-classes.ts),
 * each of which serves the sizes of two classes of four per doubling (context.ts).
 */
export const MAG_BYTES_PER_CLASS = 256 << 10;

/**
 * A thread keeps at most this many bytes of empty slabs for its own reuse (at most an eighth of
 * the heap's largest size: context.ts keepBudget); past that an empty slab goes back to the pool
 * at once (slab.ts afterBlocksReturned). A thread that freed much and then stays idle holds no
 * more than this (and its magazines) out of other threads' reach; when a thread itself runs out,
 * it gives back everything it caches and tries again (magazine.ts refillMagazine, alloc.ts).
 */
export const KEEP_EMPTY_BYTES = 2 << 20;

// ---- Global header (words 0 .. HEADER_WORDS-1) ------------------------------------------------
export const G_MAGIC = 0; //            [C] MAGIC, stored last by create()
export const G_VERSION = 1; //          [C] LAYOUT_VERSION
export const G_HEAP_ID = 2; //          [C] random id's low 31 bits (odd): attach() finds an existing instance by the id
export const G_MAX_SUPERS = 3; //       [C] maxBytes >>> SUPER_SHIFT
export const G_MAX_THREADS = 4; //      [C] thread slots: options.maxThreads + RECLAIM_SLOTS
/**
 * Thread slots beyond options.maxThreads, the last ones, which only an attachment that reclaims
 * takes, when no other slot is free (attach.ts attachThread): a thread that detached after
 * watching its workers attaches again at an exit to reclaim it (heap.ts reattachToReclaim), and a
 * thread whose instance a fault stopped attaches again and reclaims its stopped slot (heap.ts
 * #takeOverStale). Where the slots to reclaim were all the others (maxThreads 1: the main thread
 * detached so that its worker could attach, or the main thread's own stopped slot), such an
 * attach found none, and no thread could attach again, nor so reclaim them (an audit).
 * Such an attachment may stay in the kept slot (the program goes on with it): while a kept slot
 * is taken, any other attach counts the slots taken, and at maxThreads is refused (attach.ts
 * takenSlots; else maxThreads + 1 threads attached, and the next reclaim found no slot).
 */
export const RECLAIM_SLOTS = 1;
export const G_META_SUPERS = 5; //      [C] SuperSlabs taken by metadata
export const G_MAG_CAP = 6; //          [C] magazineCapacity (entries per class, upper bound)
export const G_REFILL = 7; //           [C] refillCount
export const G_DRAIN_INTERVAL = 8; //   [C] drainInterval
export const G_S1_KEEP = 9; //          [C] EMPTY slabs a class keeps in Stage 1 before giving slots back
export const G_GEN = 10; //             [H] bumped under the lock each time the buffer grows (before G_BUFFER_SUPERS);
//                                      read plain by ThreadContext.ensureViews (context.ts) on slow paths, whose
//                                      refresh reads it again by Atomics.load: a block of the grown part reaches a
//                                      thread after the bump, through the lock, an Atomics operation or a message,
//                                      and a stale read only leaves the views as they were until the next look
export const G_BUFFER_SUPERS = 11; //   [A] stored under the lock: buffer length >>> SUPER_SHIFT
export const G_CARVED = 12; //          [A] stored under the lock: SuperSlabs carved, metadata included
export const G_LOCK = 13; //            [A] the global lock word: lockWord(holder slot, state, its TH_LOCK_GEN) (lock.ts)
export const G_SLOTS_USED = 14; //      [A] highest thread slot ever claimed + 1, raised by attach before the CAS that
//                                      claims a slot (so every claimed slot is below it at every instruction):
//                                      the thread areas beyond it were never touched (stats() metadataBytes),
//                                      and every scan of the thread areas stops at it (usedSlots), as reading
//                                      an area makes its page resident
export const G_LOCK_BEAT = 15; //       [A] raised by Atomics.add by the global lock's holder (ThreadContext.beatLock) every LOCK_BEAT_BYTES or so of
//                                      work in proportion to a block's size done under the lock (a large block's copy, debug mode's
//                                      marks); a waiter whose wait is bounded (a main thread) counts its bound again from each change
//                                      it sees, read with Atomics.load. Only the holder raises it (runner.lockDepth > 0): a thread's
//                                      work outside the lock must not keep a waiter waiting on a dead holder. Wraps; only changes
//                                      count. (Reserved and zero until now, until layout 21 the Stage-1 pops: a thread of layout 24
//                                      neither raises nor reads it, and its bounded waits give up beside a long hold, as they did.)
/** The most bytes of work in proportion to a size (copied, or written a word every 16) between two beats of G_LOCK_BEAT. */
export const LOCK_BEAT_BYTES = 16 << 20;
export const G_DEBUG = 16; //           [C] 1: debug mode (create({ debug: true })): every thread attaches a DebugSharedHeap (debug.ts)
export const G_TRIM_INTERVAL = 17; //   [C] trimInterval (0: off; see magazine.ts trimOthers)
export const G_HEAP_ID_HIGH = 18; //    [C] the id's high 22 bits (heap id = G_HEAP_ID_HIGH * 2^31 + G_HEAP_ID, 53 random
//                                        bits). Until layout 11 the word was unused (a retired count of attached threads)
export const G_NEXT_THREAD_ID = 19; //  [A] ids for threads that have no Node threadId (browsers): the next to hand out, raised by CAS by attach and
//                                      newThreadId (create.ts takeHeapThreadId), never past 2^31 - 1: the last id's + 1 fits TH_THREAD_ID
export const G_ADOPTED = 20; //         [A] slabs adopted (an owner's CAS from OWNER_NONE: remote.ts adoptSlab, from the abandoned
//                                      lists, by a remote free, or by a detaching thread taking a late chain back): Atomics.add
//                                      after the CAS. (Until layout 21 the Stage-1 pushes; then reserved, and F_ADOPTED counted the
//                                      adoptions from the abandoned lists only: a thread of layout 24 before this counts there
//                                      still, and stats() adds the two)
export const G_ORPHANS = 21; //         [A] blocks that threads which died inside a slow path may have
//                                      left in flight (CACHED or PENDING, in no magazine or list);
//                                      check() allows that many, and those of live undecided chains (UD_W), and no more
export const G_LARGE_POOLED = 22; //    [A] slots in the large-run lists and reserved for a push under way: Atomics.add by a
//                                      free before its push (taken back by Atomics.sub when it overshoots the budget),
//                                      Atomics.sub after a pop unlinks (before the run is marked LIVE or given back);
//                                      a dead thread's share on no list (TH_LARGE_HELD) subtracted by its reclaim;
//                                      read (Atomics.load) by the pool's keep test (pool.ts largePoolReserve), and by
//                                      largeAlloc and takeSlab, which give pooled runs back before taking a slot
//                                      while it is above 0, and by that give-back (pool.ts returnLargeRuns)
export const G_LARGE_CREDIT = 23; //    [A] whether keeping freed large runs pays, about: +1 when a kept run is taken again,
//                                      -1 when one goes back to Stage 2 unused (pool.ts), held within -8 .. 8
export const G_UNSURE = 24; //          [A] epoch of unsure notice flags: a reclaimer (under the lock) marks a slab's SM_NOTIFIED
//                                      -(G_UNSURE + 1) by CAS first, then publishes that epoch by a CAS of G_UNSURE from the
//                                      value it read (reclaim.ts markUnsureNotice; published first, an owner could settle the
//                                      epoch before the mark was stored); owners compare it with the epoch they last looked at
//                                      (slab.ts processNotices)
export const G_UNDECIDED = 25; //      [A] a hint: nonzero while the table of undecided chains (UD_W) may hold one. Stored
//                                      under the lock only: live entries + 1 before a reclaimer fills an entry and again once
//                                      it is live (reclaim.ts handOver), the live entries after each settle pass (remote.ts
//                                      settleUndecided); so it is never 0 while an entry is live, and may be higher. Read
//                                      without the lock by a slab's owner in collectRemote (after it cleared TH_COLLECT_MW)
export const G_LOCK_WANT = 26; //      [A] 0, or the lock word (lockWord: slot and generation) of the one thread whose waits for the
//                                      global lock are bounded (a main thread, a watcher: lock.ts) that wants the lock now: set by
//                                      CAS from 0 by that thread once its spin found the lock held, cleared by CAS back to 0 when
//                                      its wait ends (the lock taken, or given up), then Atomics.notify. Read with Atomics.load by
//                                      every blocking acquisition, which leaves a free lock to the thread named here (waiting on
//                                      this word, 1 ms at a time), for at most WANT_DEFER_MAX_MS an acquisition (counted across
//                                      the holds of threads that do not defer, restarted when the word changes); then it clears
//                                      the word by CAS as stale (its thread died waiting) and takes the lock; a word whose
//                                      thread slot is not ATTACHED in that generation (marked DEAD by a fault or a reclaim, which
//                                      marks it before it takes the lock; freed; attached again) it clears at once. A browser's main
//                                      thread spins for the lock, and two workers taking it back to back on a loaded machine
//                                      kept it from the page for 3 s (a LockTimeoutError). tryLockAcquire and the
//                                      asynchronous calls (noWait) ignore it: they never wait, and an async call that
//                                      met a stale word retried on microtasks for good (an audit of 58d7caa). A
//                                      thread of layout 24 before this neither sets nor reads it (its acquisitions go on as before).
// Words 27 .. F_BASE_W-1 are reserved [R] (26 and 27 held the Stage-1 counts' high bits until layout 21).

// Float64 counters, [L]: updated under the lock (plain), read racily by stats(). F_* are
// Float64Array indices: word F_BASE_W + 2 * k is counter k.
export const F_BASE_W = 32; // 8-byte aligned
export const F_LOCK_ACQ = F_BASE_W / 2 + 0; //        acquisitions
export const F_LOCK_CONTENDED = F_BASE_W / 2 + 1; //  acquisitions that did not succeed on the first CAS
export const F_LOCK_SPINS = F_BASE_W / 2 + 2; //      spin iterations before getting it
export const F_LOCK_WAITS = F_BASE_W / 2 + 3; //      Atomics.wait calls (the futex-wait count)
export const F_LOCK_WAKES = F_BASE_W / 2 + 4; //      releases that found the waiters bit (then Atomics.notify)
export const F_LOCK_WAIT_MS = F_BASE_W / 2 + 5; //    total milliseconds spent waiting
export const F_LOCK_MAX_WAIT_MS = F_BASE_W / 2 + 6; // longest single acquisition wait
export const F_LOCK_RECOVERIES = F_BASE_W / 2 + 7; // locks broken because the holder died
export const F_STAGE2 = F_BASE_W / 2 + 8; //          Stage-2 takes
export const F_STAGE3 = F_BASE_W / 2 + 9; //          Stage-3 carves
export const F_ADOPTED = F_BASE_W / 2 + 10; //        abandoned slabs adopted from the abandoned lists by a thread of layout 24 before G_ADOPTED; 0 since
export const F_LARGE_HELD_BYTES = F_BASE_W / 2 + 11; // bytes in large runs not given back: live, or pooled (LARGE_POOLED);
//                                                     not those marked OWNER_RETURNING (repairSlotTable recounts it so)
export const F_LARGE_ALLOCS = F_BASE_W / 2 + 12; //   large allocations
export const F_SLOTS_RETURNED = F_BASE_W / 2 + 13; // slab slots given back to Stage 2
export const F_RESERVED_14 = F_BASE_W / 2 + 14; //   [R] (was the peak of G_CARVED, which never decreases)
export const F_RECLAIMS = F_BASE_W / 2 + 15; //       threads reclaimed
export const F_WORDS = 32; //                         (16 doubles; the 16th and up are unused [R])
// Per-class arrays, CLASS_SLOTS words each (entries NUM_CLASSES and up are reserved [R]).
export const S1_HEAD_W = F_BASE_W + F_WORDS; //        [H] Stage-1 LIFO head: (tag << S1_SLOT_BITS) | slot, slot 0 = empty
//                                                       (a list's length is its head slab's SM_POOL_DEPTH: listCount);
//                                                       read plain by the keep tests and a refill's depth test (listCountHint), and by a
//                                                       push or pop as the hint its CAS checks (pool.ts listPush, listPop)
export const LARGE_POOL_W = S1_HEAD_W + CLASS_SLOTS; // [H] per span 1 .. LARGE_POOL_SPANS (entry 0 unused): LIFO head of
//                                                       freed large runs of that many slots kept for reuse (pool.ts
//                                                       largePoolPush/Pop), the same format and protocol as S1_HEAD_W
export const ABANDONED_W = LARGE_POOL_W + CLASS_SLOTS; //[L] abandoned-slab list head (slot, 0 = empty), linked by SM_ABANDON_NEXT
// DETACHED_W [C]: a fake magazine-top table that a detached instance points its topW at: word 0
// is an empty sentinel and every class's top points just past it, so malloc on a detached
// instance misses into the slow path (which throws).
export const DETACHED_W = ABANDONED_W + CLASS_SLOTS;
export const DETACHED_TOPS_W = DETACHED_W + 2; //      [C] CLASS_SLOTS tops, each = DETACHED_W + 2
// Undecided chains, [L]: UD_ENTRIES entries of UD_WORDS words from UD_W. A dead thread's remote chain
// (TH_INFLIGHT: PENDING, maybe published) that its reclaimer could not decide, because a collection
// of its slab was announced (TH_COLLECT_MW) through the reclaim's wait: the collection may have taken
// it. The reclaimer moves the chain here from the dead thread's journal (reclaim.ts handOver), and
// it is decided by resolveInflight's rule once no collection of the slab is announced (remote.ts
// settleUndecided): in every reclaim, after the dead thread's journal is finished, and by the
// slab's owner at the end of each collection of it (or a call to collect an empty list), with the
// lock if it gets it without waiting, else on its next look at its notices (it notifies itself).
// The owner reads UD_SLAB without the lock first, as a hint (tear-free Int32 reads). Only a slab's
// owner (or its reclaimer, acting as it) takes its remote list: at the end of its collection, and in
// the reclaim of a collector that died, that collection has ended and no block it freed has been
// handed out again, so the rule sees what it would have seen at once. Invariant: a live entry's
// blocks are PENDING, in no journal and on no list, or on the slab's remote list, or were collected
// (check() allows for them as for G_ORPHANS). A crash at any instruction: an entry becomes live by its
// UD_SLAB store, made with no call before the stores by which the dead thread's journal forgets the
// chain (TH_JOURNAL_DONE, TH_INFLIGHT), so exactly one of the two holds it; it is emptied by a
// UD_SLAB store of 0 made with no call after the CAS that publishes the chain (as drainJournal
// clears TH_INFLIGHT), or after the chain is found published or counted in G_ORPHANS.
export const UD_W = DETACHED_TOPS_W + CLASS_SLOTS;
export const UD_SLAB = 0; //  [L] meta word index of the chain's slab's head slot; 0: the entry is empty (stored last)
export const UD_FIRST = 1; // [L] the chain's first block (the one published by the CAS)
export const UD_LAST = 2; //  [L] its last block (whose FREE_LINK_W the publish writes)
export const UD_N = 3; //     [L] its blocks, linked from UD_FIRST through FREE_LINK_W (drainJournal wrote the links)
export const UD_WORDS = 4;
export const UD_ENTRIES = 8; // a full table: the reclaimer gives the chain up (G_ORPHANS), as before it existed
export const HEADER_WORDS = UD_W + UD_ENTRIES * UD_WORDS;

export const S1_SLOT_BITS = 15; // slot index bits in a Stage-1 head (MAX_SLOTS < 2^15); the rest is the ABA tag
export const S1_SLOT_MASK = (1 << S1_SLOT_BITS) - 1;

// ---- The lock word (G_LOCK) ---------------------------------------------------------------------
// word = (gen << LOCK_GEN_SHIFT) | ((holder slot + 1) << 2) | state; state LOCK_FREE (word 0),
// LOCK_HELD, or LOCK_WAITERS (held, and somebody may be waiting). The CAS that takes the lock
// writes the holder with it. gen: the low LOCK_GEN_BITS bits of the holder slot's TH_LOCK_GEN, the
// count of attachments that slot has had, so that a word names one attachment, not only a slot: a
// waiter that read the word of a dead holder and breaks its lock by a CAS from that word fails
// once the slot was reclaimed and attached again and its new thread took the lock (with the slot
// alone in the word, that CAS took the lock from the live new thread, whose word was the same; the
// breaker handed it back by a second CAS, and a breaker that died between the two left two holders:
// test/lock-break-breaker-dies.test.ts). The holder lets the lock go by a CAS from its own word
// (lock.ts lockRelease), so a holder whose lock was broken while it ran leaves the new holder's word.
export const LOCK_HELD = 1;
export const LOCK_WAITERS = 2;
export const LOCK_STATE_MASK = 3;
export const LOCK_SLOT_BITS = 11; // holder slot + 1 (maxThreads <= 1024, create.ts)
export const LOCK_GEN_SHIFT = 2 + LOCK_SLOT_BITS;
export const LOCK_GEN_BITS = 32 - LOCK_GEN_SHIFT;
/** The lock word naming thread slot `slot`, in its attachment `gen` (TH_LOCK_GEN), in state `state`. */
export function lockWord(slot: number, state: number, gen: number): number {
  return (((gen & ((1 << LOCK_GEN_BITS) - 1)) << LOCK_GEN_SHIFT) | ((slot + 1) << 2) | state) | 0;
}
/**
 * Entries of the LIFO whose head is word `headW` (a Stage-1 list or a large-run list): its head's
 * SM_POOL_DEPTH, read while the head word stays the same (its tag moves at every push and pop), so
 * a count the list had at that moment. The word is the slot's SM_FREED_DATA once the slab or run
 * is given back: read after another thread popped the head and gave it back, it was a byte offset
 * (stats(): largePooledBytes in terabytes, liveBytes as far below zero; an audit).
 */
export function listCount(i32: Int32Array, slotMetaW: number, headW: number): number {
  for (;;) {
    const head = Atomics.load(i32, headW);
    const slot = head & S1_SLOT_MASK;
    if (slot === 0) return 0;
    const depth = Atomics.load(i32, slotMetaW + (slot << SM_SHIFT) + SM_POOL_DEPTH);
    if (Atomics.load(i32, headW) === head) return depth;
  }
}

/**
 * listCount read plain (S1_HEAD_W and SM_POOL_DEPTH are [H]): a hint for the pool's keep tests
 * and for a refill's test whether to take more Stage-1 slabs (magazine.ts S1_EXTRA_DEPTH), which
 * are heuristics either way (a stale count keeps a slab or run one too many or too few, or takes
 * one slab more or fewer into a magazine).
 */
export function listCountHint(i32: Int32Array, slotMetaW: number, headW: number): number {
  const slot = i32[headW]! & S1_SLOT_MASK;
  return slot === 0 ? 0 : i32[slotMetaW + (slot << SM_SHIFT) + SM_POOL_DEPTH]!;
}

/** Slots held by the large-run lists together (each list's count times its span); exact as listCount is. */
export function largePooledSlots(i32: Int32Array, slotMetaW: number): number {
  let slots = 0;
  for (let span = 1; span <= LARGE_POOL_SPANS; span++) slots += listCount(i32, slotMetaW, LARGE_POOL_W + span) * span;
  return slots;
}

/** Large runs of at most this many slots (4032 KiB) are kept in the large-run lists when freed. */
export const LARGE_POOL_SPANS = CLASS_SLOTS - 1;
/** The large-run lists together keep at most this many slots (2 MiB) of runs. */
export const LARGE_POOL_SLOTS = 32;

/** Thread slots ever claimed (G_SLOTS_USED, kept within 0 .. maxThreads): the scans of the thread areas go no further. */
export function usedSlots(i32: Int32Array, maxThreads: number): number {
  const used = Atomics.load(i32, G_SLOTS_USED);
  return used < 0 ? 0 : used > maxThreads ? maxThreads : used;
}

/**
 * Clears the notice flag of the slab whose head meta is at `mW` if it is an unsure mark (-epoch),
 * by CAS; a flag a freer set (its slot + 1) stays, for that freer or a list's taker to clear. Called
 * where a slab changes hands (adopted, given up by a detach or a reclaim, carved anew).
 */
export function clearUnsureMark(i32: Int32Array, mW: number): void {
  const flag = Atomics.load(i32, mW + SM_NOTIFIED);
  if (flag < 0) Atomics.compareExchange(i32, mW + SM_NOTIFIED, flag, 0);
}

/** The id create() wrote into a heap's header (the key by which attach() finds an instance, and of the Web Lock names). */
export function heapIdOf(buffer: SharedArrayBuffer): number {
  const head = new Int32Array(buffer, 0, G_HEAP_ID_HIGH + 1);
  return head[G_HEAP_ID_HIGH]! * 0x80000000 + head[G_HEAP_ID]!;
}

/** The thread slot holding the lock, or -1 when the word says free (or names no slot). */
export function lockHolder(word: number): number {
  return word === 0 ? -1 : ((word >>> 2) & ((1 << LOCK_SLOT_BITS) - 1)) - 1;
}

// ---- SuperSlab table: one word per SuperSlab, from SS_TABLE_W --------------------------------
// [L] bit i set when slot i of the SuperSlab is UNUSED (Stage 2 can take it); 0 for metadata
// and uncarved SuperSlabs. Invariant, carved SuperSlabs: bit i set <=> slot meta SM_KIND == K_FREE.
export const SS_TABLE_W = HEADER_WORDS;

// ---- Slot meta table: SM_WORDS words per slab slot ------------------------------------------------
// Every slot of a slab carries CLS, DATA, STATE, HEAD and SPAN so that free() reads the slot of
// the pointer only. A slab's control fields live in its head slot's entry ("head:" below).
// Invariants of a slab (head entry), counting its carved blocks (index < BUMP) by state byte:
//   BUMP <= COUNT[cls]
//   INUSE == #ALLOCATED + #CACHED + #PENDING          (blocks out of the slab)
//   NFREE == #FREE                                   (so INUSE + NFREE == BUMP)
//   a FREE block's region bit is set in FREE_REGIONS  (a set bit may have no FREE block left)
//   every block on the remote list is PENDING
//   OWNER == OWNER_POOL  =>  INUSE == 0, and the slab is on exactly one Stage-1 list
//   on a Stage-1 list    =>  OWNER == OWNER_POOL, or a thread's slot while it pushes the slab (between
//                            its CAS and the POOL store) or claims it to pop it (pool.ts; TH_PUSHING,
//                            TH_POPPING name the slab meanwhile)
// They hold whenever the owner is outside a batch. Its two batches change them in steps that a
// reclaim puts right (reclaim.ts): a refill (slab.ts takeBlocks) raises the magazine top, sets
// the states CACHED, then moves BUMP, FREE_REGIONS and the counts (repairRefill advances BUMP
// over CACHED magazine entries and recounts NFREE, INUSE and FREE_REGIONS from the states); a
// drain of a run (magazine.ts drainJournal) sets the states FREE, then the region bits and the
// counts (the recount of the dead thread's slabs counts FREE blocks the counts did not reach).
export const SM_SHIFT = 5;
export const SM_WORDS = 1 << SM_SHIFT; // 32 words (128 bytes)
export const SM_KIND = 0; //        [L] K_NONE, K_FREE, K_SLAB, K_LARGE
export const SM_CLS1 = 1; //        [P] class + 1 while K_SLAB, else 0 (never written for an uncarved slot, so the
//                                  meta pages of uncarved SuperSlabs stay untouched; free's fast path tests cls < 0)
export const SM_DATA = 2; //        [P] byte offset of block 0 of the slab this slot belongs to
export const SM_STATE = 3; //       [P] byte offset of block 0's state byte
export const SM_HEAD = 4; //        [P] head slot of the slab or large run
export const SM_SPAN = 5; //        [P] slots of the slab or large run, read at its head only. A live large
//                                  run's head's also changes under the lock when realloc resizes the run in
//                                  place (large.ts largeResize; only the thread holding the block reads it
//                                  then): the commit point of the resize, slots taken beyond it are a dead
//                                  holder's to give back (slots.ts repairSlotTable); the run's other slots
//                                  keep the span they were written with
export const SM_OWNER = 6; //       [H] head: owner slot, OWNER_NONE (abandoned), OWNER_POOL (EMPTY, Stage 1; or a pooled
//                                  large run on its large-run list, whose owner is otherwise unused) or
//                                  OWNER_RETURNING (its slots going back to Stage 2 under the lock). A popper
//                                  claims a POOL slab by CAS to its slot before the CAS that unlinks it.
//                                  Atomics everywhere but two plain reads of "is this slab mine?" (magazine.ts
//                                  drainJournal; slab.ts repairRefill, a reclaimer's as the dead thread): only
//                                  the reader's own thread (or its reclaimer) makes the answer yes, so a stale
//                                  value can only say no for a slab that is not its own
export const SM_BUMP = 7; //        [O] head: blocks carved so far in this life of the slab (blocks >= BUMP are FREE
//                                  and counted nowhere); back to 0, with FREE_REGIONS and NFREE, when the
//                                  slab goes to Stage 1 empty (pool.ts forgetFreeBlocks), so that its next
//                                  owner carves its blocks again in address order instead of scanning
export const SM_FREE_REGIONS = 8; // [O] head: bit r set when the blocks r << REGION_SHIFT[cls] .. ((r + 1) <<
//                                  REGION_SHIFT[cls]) - 1 (size-classes.ts) may hold a FREE block below BUMP;
//                                  every such FREE block's bit is set (a refill scans the state bytes of the
//                                  set regions only, and clears the bit of a region it found empty)
export const SM_NFREE = 9; //       [O] head: FREE blocks below BUMP (the slab's free blocks a refill can take)
export const SM_INUSE = 10; //      [O] head: blocks out of the slab (see the invariants)
export const SM_REMOTE = 11; //     [H] head: remote free list (Treiber push of chains; the owner takes all with exchange).
//                                  The owner's refill reads it plain as a hint (slab.ts takeBlocks): a chain it
//                                  misses is on the owner's notice list, collected at a later look
export const SM_NOTIFIED = 12; //   [A] head: 0, or nonzero while a remote free's notice of the slab is pending: the
//                                  freer's thread slot + 1 (its CAS from 0), then on the notice list of the thread
//                                  slot it named in TH_NOTIFY_TO until that thread takes it and stores 0 (slab.ts
//                                  processNotices; a slab it gave up since is noticed anew to its owner). A flag a
//                                  live freer set is cleared by nobody else: that freer clears it by CAS when it
//                                  did not push (the list closed, the slab no longer that owner's), and the slab
//                                  may change hands meanwhile (pooled, adopted, carved anew) with the flag on, so
//                                  one slab is never on two lists (its link is one word). A reclaimer of a freer
//                                  that died around its notice (TH_NOTIFYING) turns its slot + 1 into -epoch
//                                  (G_UNSURE) by CAS: on the owner's list or not, nobody can tell, so the owner
//                                  clears it by CAS only after a take of its notice list that began after that
//                                  epoch, and collects; where the slab changes hands the mark is cleared
//                                  (clearUnsureMark). Nonzero with no owner: the next remote freer adopts
//                                  (remote.ts notifyOwner). NOTIFIED_WALK while the taker of a list holding the
//                                  slab clears it (slab.ts walkNotices): a value no push makes, so that the
//                                  reclaim that finishes a walk clears its own mark by CAS and never a later push
export const NOTIFIED_WALK = 0x7fffffff; // SM_NOTIFIED of a slab whose flag its notice list's walker is clearing
export const SM_NOTICE_NEXT = 13; //[A] head: next slot on the owner's notice list
export const SM_POOL_NEXT = 14; //  [H] head: next slot on its Stage-1 list (or large-run list). Written plain by
//                                  the pusher before the head's CAS that links the slab (pool.ts listPush), read
//                                  plain by the popper after its claim's CAS (the entry is linked and stays so
//                                  until its own unlink; a reclaimer's putBackChain may rewrite it meanwhile, and
//                                  then moves the head's tag, so the popper's CAS fails); Atomics elsewhere
export const SM_PART_NEXT = 15; //  [O] head: next slot on the owner's partial list (slabs with free blocks, not current)
export const SM_PART_PREV = 16; //  [O] head: previous slot on that list
export const SM_LISTED = 17; //     [O] head: LISTED_NONE, LISTED_PARTIAL or LISTED_CURRENT
export const SM_LARGE = 18; //      [L] head of a large run: LARGE_LIVE, or LARGE_FREED after free (double-free detection);
//                                  [O] LARGE_POOLED while on a large-run list, set and cleared by the thread that owns the
//                                  run meanwhile (its pusher before the CAS, its popper after); [A] a free leaves
//                                  LARGE_LIVE only by Atomics.compareExchange to largeClaimMark(its slot), with or
//                                  without the lock, so that of two threads freeing one run at once exactly one
//                                  frees it and the other gets a DoubleFreeError (large.ts largeFree); the claimer
//                                  alone then writes LARGE_POOLED or LARGE_FREED (or LARGE_LIVE again: a free into a
//                                  list that found the span changed, pool.ts largePoolPush); a dead claimer's run is given
//                                  back by its reclaim (TH_PUSHING names it; pool.ts repairStage1). A resize in
//                                  place claims it the same way, as LARGE_RESIZING, under the lock. realloc's fast
//                                  path (heap.ts) reads it plain, with SM_KIND, SM_HEAD and SM_SPAN, for a run that
//                                  stays put: the caller's own live block (a free of it at the same moment by
//                                  another thread is the program's race, as for two frees)
export const SM_ABANDON_LISTED = 19; // [L] head: 1 while on an abandoned list
export const SM_ABANDON_NEXT = 20; //  [L] head: next slot on the abandoned list of its class
export const SM_FREED_CLS = 21; //     [L] class + 1 of the slab these slots held before they were given
//                                     back (0: none), so a late second free is still a double free; debug mode's
//                                     take of the slots compares it to the new slab's (slots.ts clearStaleMarks)
export const SM_FREED_DATA = 22; //    [L] that slab's SM_DATA (read only while K_FREE, written by giveBack)
// The same word while the slot heads a slab on a Stage-1 list: the slabs on that list from this
// one to its end (1 for the last), written by the pusher before the CAS that links the slab and
// never changed while it is linked, so that a list's length is its head's word (listCount),
// exact whenever the head is, with no count to keep beside the CAS.
export const SM_POOL_DEPTH = SM_FREED_DATA; // [H] written plain by the pusher before the head's CAS, from its
//                                  plain read of the depth of the head it last read (plain on its first round, as
//                                  the CAS's return after: a head that moved since fails the CAS, whose tag moves at
//                                  every push and pop, and the value is made again: pool.ts listPush); read plain
//                                  as a hint by listCountHint (the keep tests and a refill's depth test, as
//                                  S1_HEAD_W's line says); Atomics elsewhere
export const SM_COLLECTS = 23; //      [A] head of a slab: bumped before every exchange that takes the remote list (of a large run: SM_RUN_GEN)
/**
 * [A] The head of a large run: its generation, the same word as SM_COLLECTS (a slab's; the word is
 * only ever added to, never reset, whatever the slot holds). Bumped by Atomics.add before each take
 * of the run that makes it LIVE (large.ts takeRun under the lock, pool.ts largePoolPop without it)
 * and, under the lock while the run is RESIZING, before each resize in place (large.ts largeResize).
 * realloc's move of a run reads it once the run is checked and compares it under the lock at its
 * free (large.ts largeFree, `gen0`): a run resized in place by another thread meanwhile, even back
 * to its old span, or freed and taken again (a double free), is refused instead of freed. A spurious
 * bump (a taker stopped between its bump and its LIVE mark) refuses nothing a correct program does.
 */
export const SM_RUN_GEN = SM_COLLECTS;
export const SM_TOUCHED = 24; //    [O]/[L] every slot: bytes from the slot's start that the heap has handed
//                                  out or written so far, over all the slabs and runs it was part of (it
//                                  never decreases): the pages below it are resident, those above never
//                                  touched (stats() footprintBytes). Written plain, only raised, by whoever
//                                  holds the slot: the slab's owner when it carves blocks ([O]), the lock
//                                  holder when it makes a slab or a large run there ([L]); check() tests
//                                  that it covers every block handed out; stats() reads it racily; so do
//                                  classifyBlock (alloc.ts: free, realloc or usableSize of a FREE block, from any
//                                  thread, to tell a double free from a block never handed out, in its message
//                                  only) and findUntouchedSlot (slots.ts, under the lock: which empty slot to take).
// Words SM_STATES_W .. SM_WORDS-1 of a head entry hold the state bytes of slabs with at most
// SM_STATE_BYTES blocks (classes with META_STATES, 2560 bytes and up); [R] for other slabs.
export const SM_STATES_W = 25; //      [O] head: state bytes (only for classes with META_STATES)
export const SM_STATE_BYTES = (SM_WORDS - SM_STATES_W) * 4; // 28

export const K_NONE = 0; //  metadata or not carved
export const K_FREE = 1; //  UNUSED slot of a carved SuperSlab
export const K_SLAB = 2;
export const K_LARGE = 3;

export const OWNER_NONE = -1; // abandoned: blocks still out, no owner; adopted by CAS
export const OWNER_POOL = -2; // EMPTY, on a Stage-1 list
export const OWNER_RETURNING = -3; // EMPTY, on no list, its slots going back to Stage 2 (under the lock; TH_RETURNING)

export const LISTED_NONE = 0; //    SM_LISTED: owned, on no list (full, or being worked on)
export const LISTED_PARTIAL = 1; // on the owner's partial list of its class
export const LISTED_CURRENT = 2; // the owner's current slab of its class (TH_CUR)

export const LARGE_LIVE = 1;
export const LARGE_FREED = 2;
export const LARGE_POOLED = 3; // freed into its span's large-run list (LARGE_POOL_W), on it or being pushed or popped
/**
 * SM_LARGE while the lock holder resizes the live run in place (large.ts largeResize; claimed from
 * LARGE_LIVE by CAS, LARGE_LIVE again after): a free meanwhile is refused. A holder that dies
 * there leaves it to repairSlotTable, which makes it LARGE_LIVE again when the lock is broken.
 */
export const LARGE_RESIZING = 8;
/** SM_LARGE while thread slot `slot` frees the run (claimed from LARGE_LIVE by CAS): LARGE_CLAIMED + slot. */
export const LARGE_CLAIMED = 16;
export function largeClaimMark(slot: number): number {
  return LARGE_CLAIMED + slot;
}

/** Word of a PENDING block (as a word offset from the block's start) that links its slab's remote list. */
export const FREE_LINK_W = 0;
/**
 * The word after it: the link's check, linkCheck(link), stored with it by whoever writes a link
 * (drainJournal, publishChain, a reclaim's relink: writeLink). A program's stray write into a block
 * waiting on a remote list (a freed node's `next` set to another freed node) changes one of the
 * two: a link that led the owner's collection into another freer's chain not yet published let it
 * hand out that chain's blocks, into which the freer's publish then wrote
 * (test/stray-write-live-freer-chain.test.ts). The readers follow the link where the two agree;
 * else the check's link when it names the end or a PENDING block of the slab, else the link
 * (remote.ts linkOf). The check is the link times an odd constant, XOR LINK_KEY: a word whose low
 * 4 bits are not LINK_KEY's (0, -1, a block offset, a byte pattern) stands for no block, and a byte
 * written over a check, for a link scattered far from the block's. In debug mode this word is DEBUG_MARK_W: the owner's
 * collection writes the mark again (remote.ts debugRemark).
 */
export const FREE_CHECK_W = 1;
export const LINK_KEY = 0x3c6ef375;
export const LINK_MUL = 0x9e3779b1 | 0;
const LINK_MUL_INV = 0x0e8b2f51; // Math.imul(LINK_MUL, LINK_MUL_INV) === 1
/** The check word of `link` (FREE_CHECK_W). */
export function linkCheck(link: number): number {
  return Math.imul(link, LINK_MUL) ^ LINK_KEY;
}
/** The link a check word stands for (linkCheck's inverse). */
export function checkedLink(check: number): number {
  return Math.imul(check ^ LINK_KEY, LINK_MUL_INV);
}
/**
 * Stores `link` into the PENDING block `b` (FREE_LINK_W and FREE_CHECK_W). Where a thread must not
 * stop between a block's state and the store after its link (drainJournal, TH_INFLIGHT), the two
 * stores are written out in place: a call is a point where V8 may stop a thread.
 */
export function writeLink(i32: Int32Array, b: number, link: number): void {
  i32[(b >>> 2) + FREE_LINK_W] = link;
  i32[(b >>> 2) + FREE_CHECK_W] = Math.imul(link, LINK_MUL) ^ LINK_KEY;
}

/**
 * Debug mode only (G_DEBUG; debug.ts): a live block of requested size n ends in a record of
 * DEBUG_RECORD_BYTES at usable - DEBUG_RECORD_BYTES, words [n, n ^ block ^ seal], with canary bytes
 * between n and the record; a freed small block holds a mark in word DEBUG_MARK_W (after the
 * remote list's FREE_LINK_W) and a fill after it.
 */
export const DEBUG_RECORD_BYTES = 8;
export const DEBUG_MARK_W = 1;
export const DEBUG_SEAL = 0x5ab3dbe6; // the record's second word: n ^ block ^ DEBUG_SEAL
export const DEBUG_FREED_MARK = 0x0df4ee0d; // the mark: DEBUG_FREED_MARK ^ block ^ usable

// ---- Block state bytes (one per block: in the slab header, or in the head meta entry) ---------
// The thread holding a block is the only one that changes its byte, so plain writes suffice.
export const ST_FREE = 0; //      back in its slab (counted in NFREE, its region's bit set), or not carved (index >= BUMP)
export const ST_ALLOCATED = 1; // returned by malloc, not yet freed
export const ST_CACHED = 2; //    in some thread's magazine (or its drain journal)
export const ST_PENDING = 3; //   on the slab's remote free list (set before the CAS that publishes it)
export const ST_CLEAN = 4; //     CACHED, and never handed out since the buffer was made: carved by a refill
//                                from bytes at or above every touched mark of its slab's slots (SM_TOUCHED), so
//                                its bytes read zero and calloc does not write them (no page of a fresh block is
//                                touched before the program touches it). Everything else takes it as CACHED;
//                                check() reads its first bytes, which must be zero (debug mode's pop makes it
//                                CACHED before it writes the block's record).
export const ST_DEEP = 5; //      a block of the 64 KiB class, on a slot no block used before, that the heap holds as
//                                one of its owner thread's magazines (a deep magazine, magazine.ts deepen): in use (INUSE counts it), never
//                                the program's: free, realloc and usableSize refuse it, stats() does not count it
//                                live, check() finds it named by exactly one top of its owner's
//
// Transitions, and who makes them (CLEAN moves as CACHED does, and is made only by a refill's carve):
//   from \ to   FREE                    ALLOCATED          CACHED / CLEAN            PENDING
//   FREE        -                       -                  owner refills a magazine  -
//   ALLOCATED   -                       -                  free() (any thread)       -
//   CACHED      drain, own slab         malloc() pops it   -                         drain, another's slab
//   PENDING     owner collects remote   -                  -                         -
//   FREE -> DEEP: the owner carves the one block of a slab it took on a slot no block ever used,
//   for a deep magazine (magazine.ts deepen); DEEP -> CACHED: it gives the block back (undeepen),
//   or a reclaim of the owner does (reclaim.ts releaseDeep)

/** CACHED or CLEAN: in some thread's magazine (or its drain journal). */
export function isCached(st: number): boolean {
  return st === ST_CACHED || st === ST_CLEAN;
}

// ---- Thread areas ---------------------------------------------------------------------------------
// One per thread slot, threadWords(magCap, classes) words from geometry().threadsW, touched by
// its thread only ([O]) except the [A] words. A reclaimer acts as the dead thread after winning
// TH_STATE (ATTACHED or DEAD -> RECLAIMING).
export const TH_STATE = 0; //     [H] TS_FREE, TS_ATTACHED, TS_DEAD, TS_RECLAIMING. ATTACHED -> DEAD by a CAS: by
//                                 watch() or reclaim() in another thread for a thread that exited (or by
//                                 reclaimWhenGone() for the global lock's holder once granted its Web Lock:
//                                 reclaim.ts markLockHolderGone), or by the
//                                 thread itself when a call of its was cut off by a fault (fault.ts: a plain
//                                 read of ATTACHED and of its TH_THREAD_ID, then a plain store, which makes
//                                 no call; an aligned Int32Array element is tear-free; other threads move a slot
//                                 out of ATTACHED only once its thread has ended), which then never touches
//                                 the heap through that slot again (its attach anew reclaims it). Attach,
//                                 detach and reclaim make the other moves, by Atomics.
export const TH_THREAD_ID = 1; // [H] threadId + 1 of the attached thread; 0 on a free slot. attach reserves a
//                                 slot by a CAS of this word from 0 before the CAS of TH_STATE from FREE, so
//                                 no slot is ATTACHED without an id; a FREE slot carrying an id was reserved
//                                 by a thread killed in between (or in detach, which stores FREE first and
//                                 the id last), and reclaim(id) sets it back to 0. A reclaim clears it while
//                                 the slot is still RECLAIMING, then stores FREE. Read plain by the thread itself
//                                 (fault.ts, as TH_STATE's line says) and by stats() (racily: whether a FREE
//                                 slot carries an id).
export const TH_NOTICE = 2; //    [H] notice list: slabs of this thread that got remote frees (slot, 0 = empty,
//                                 NOTICE_CLOSED once the thread took it for the last time: a detach's or a
//                                 reclaim's last look stores it by exchange; attach stores 0). Freers push by
//                                 CAS (remote.ts notifyOwner); the owner takes the list whole by exchange, after
//                                 a plain read as a hint (remote.ts takeNotices; not a last look): 0 skips it;
//                                 check() walks it with Atomics.load (check.ts), on a quiet heap
export const NOTICE_CLOSED = -1; // TH_NOTICE of a thread that will never look at its notices again: a freer
//                                 that finds it clears its own notice flag by CAS instead of pushing
export const TH_JOURNAL_SRC = 3; //[O] absolute word index of the drain journal's first entry: the thread's
//                                 magazine itself (a drain in place, at most magCap entries: a deep magazine drains
//                                 in such parts, magazine.ts drainDownTo), or one of the two journal areas (a reclaim's copy)
// Journal words: what a slow path is in the middle of, so that a reclaimer can finish or undo it
// when the thread died there (worker.terminate() stops a thread at any call or loop back-edge,
// and at any Atomics call: between two of them in about half of the terminations of a loop of
// two, measured; test/crash-points.test.ts stops a worker before each of its Atomics calls).
export const TH_RETURNING = 4; //  [O] under the lock, around marking a slab OWNER_RETURNING and giving its slots back (0: none)
export const TH_COLLECT_MW = 5; // [H] while collecting a remote list: the slab's meta word index (stored
//                                 before the exchange; reclaimers read it, see resolveInflight; cleared before
//                                 the collector reads G_UNDECIDED); plain: attach's store of 0 over the 0 a
//                                 detach or reclaim left (attach.ts), and a reclaimer's read of a dead thread's
//                                 under the lock (reclaim.ts finishJournals) ...
export const TH_COLLECT_NEXT = 6; //[O] ...and the next block of the taken list still to move (-1: not taken yet)
export const TH_PUSHING = 7; //   [O] while pushing a slab onto a Stage-1 list, or a large run onto its list (from before its
//                                slots are reserved in G_LARGE_POOLED), or freeing a large run under the lock (from
//                                before its claim's CAS to the end of its give-back): its slot (0: none; see repairStage1)
export const TH_TOP = 8; //       [O] per class: absolute word index of the magazine's next free entry
//                                 (in this area, or, while the class's magazine is deep, in the 64 KiB block
//                                 that holds it: isDeepTop, deepMagazineBase, magazine.ts deepen)
export const TH_CUR = TH_TOP + CLASS_SLOTS; //      [O] per class: current slab's head slot (0 = none)
export const TH_PARTIAL = TH_CUR + CLASS_SLOTS; //    [O] per class: first slab on the partial list (0 = none)
export const TH_PARTIAL_TAIL = TH_PARTIAL + CLASS_SLOTS; // [O] per class: last slab on the partial list (0 = none)
// Invariant of a partial list: its slabs with INUSE == 0 (empty, kept) come after all the others,
// so the periodic drain finds every empty one by walking back from the tail.
export const TH_F64_W = TH_PARTIAL_TAIL + CLASS_SLOTS; //  [O] Float64 counters (8 doubles), TF_* from (thW + TH_F64_W) / 2;
//                                 other threads read them plain: stats(), and a thread out of memory (flush-ask.ts
//                                 askRound: TF_REMOTE_FREES, TF_REFILLS, TF_DRAINS), where a torn read costs a round
export const TF_REMOTE_FREES = 0; // blocks this thread freed that belong to another thread's slab
export const TF_REFILLS = 1;
export const TF_DRAINS = 2;
export const TF_SLABS = 3; //        slabs taken from the pool
export const TF_LOCK_ACQ = 4; //     global lock acquisitions by this thread
/** Words of the counters area that attach zeroes: doubles 0-8 (the two below keep counting across the slot's threads). */
export const TF_ZEROED_WORDS = 18;
/**
 * Stage-1 pops (pool.ts takeSlab) and pushes (stage1Push) made by the threads that had this slot,
 * every one since the heap was made: not zeroed at attach. stats() sums them over the slots
 * below G_SLOTS_USED. A plain increment by the slot's thread (a reclaimer pushing a dead
 * thread's slabs counts in its own slot): an Atomics.add on one word for the whole heap cost a
 * tenth of a slab's round trip through Stage 1 (two of them a trip; 1,024 blocks of 40 KiB, one
 * a slab, malloc'd and freed in turn: 196-199 -> 179-191 ns a pair). A Float64: exact to 2^53.
 */
export const TF_STAGE1 = 9;
export const TF_STAGE1_PUSHES = 10;
export const TF_WORDS = 22; //       (11 doubles; 5 is TH_RECLAIMER's and TH_NOTIFYING's words, 6 TH_POPPING's and TH_FLUSH_ASK's, 7 TH_S1_PRIVATE's and TH_NOTIFY_TO's, 8 TH_FLAGGED's and TH_LARGE_HELD's)
export const TH_RECLAIMER = TH_F64_W + 2 * 5; // [L] (an Int32 word in the counters area) thread slot + 1 of the
//                                reclaimer, stored under the lock before the CAS that makes this slot RECLAIMING;
//                                a reclaim of that reclaimer finishes this one too (reclaim.ts); left so when the
//                                slot goes FREE (attach zeroes it), so that a reclaimer stopped right before that
//                                store is still named (reclaim.ts reclaimSlot); in an ATTACHED
//                                slot, [H]: the stopped slot + 1 its own reclaim (reclaimOwnDead) is taking, from
//                                before it takes the lock (Atomics.store) until after it let it go (a plain store
//                                of 0: a stale mark only makes another thread take it as inside its reclaim a
//                                moment longer), else 0; other threads read it by Atomics.load (reclaim.ts
//                                inOwnReclaim)
export const TH_NOTIFYING = TH_F64_W + 2 * 5 + 1; // [O] (an Int32 word in the counters area) while a remote freer
//                                notifies a slab's owner (remote.ts notifyOwner): the slab, stored before the CAS that
//                                publishes a drained chain onto its remote list (magazine.ts drainJournal) or before
//                                the CAS of SM_NOTIFIED, and cleared after the push onto the owner's notice list, the
//                                adoption, or the notice anew that follows a cleared flag (0: none); a reclaimer
//                                finding it set resolves the flag (reclaim.ts markUnsureNotice) or, the flag 0,
//                                notices the slab anew as the dead thread (reclaim.ts finishJournals)
export const TH_POPPING = TH_F64_W + 2 * 6; // [O] (an Int32 word in the counters area) while popping a Stage-1
//                                slab: the slab it claims or claimed (0: none; see repairStage1)
export const TH_FLUSH_ASK = TH_F64_W + 2 * 6 + 1; // [H] (an Int32 word in the counters area) asks to flush
//                                 (flush-ask.ts): FA_NONE (0) while the thread does not listen (no
//                                 Atomics.waitAsync, or detached: it stores FA_NONE and notifies); FA_LISTENING,
//                                 stored by the thread itself after attach, which it awaits with waitAsync;
//                                 FA_ASKED by any thread out of memory, by CAS from FA_LISTENING, then a notify;
//                                 the thread takes the ask up from its event loop by CAS to FA_FLUSHING and a
//                                 notify, flushes, and answers by CAS back to FA_LISTENING and a notify (a
//                                 thread stopped in its flush leaves FA_FLUSHING, which askers wait on for a
//                                 bounded time only, and its next attachment stores FA_LISTENING). Zeroed at
//                                 attach with the counters, by a plain fill after the slot is ATTACHED (attach.ts;
//                                 an asker that meets the zero, FA_NONE, asks no more of it)
export const FA_NONE = 0;
export const FA_LISTENING = 1;
export const FA_ASKED = 2;
export const FA_FLUSHING = 3;
export const TH_S1_PRIVATE = TH_F64_W + 2 * 7; // [L] (an Int32 word in the counters area) of a thread being
//                                reclaimed: the first slab of the Stage-1 list its reclaimer holds whole (taken off
//                                the list to repair a push or pop, pool.ts repairStage1), 0 when none; stored
//                                with no call after the CAS that takes the list and cleared likewise after the CAS
//                                that puts it back, so a reclaim of a reclaimer stopped in between puts it back;
//                                also zeroed, without the lock, by attach's fill of the counters (attach.ts) over
//                                the 0 its last reclaim left
export const TH_NOTIFY_TO = TH_F64_W + 2 * 7 + 1; // [H] (an Int32 word in the counters area) while a remote freer
//                                notifies a slab's owner (remote.ts notifyOwner): that owner's thread slot + 1, stored
//                                by the freer before it reads the owner again and pushes onto that slot's notice list,
//                                cleared after (0: none). An attacher does not take a slot some thread names here
//                                (attach.ts): a freer that read the slot's last thread as the owner would push the slab
//                                onto the list of the next. A reclaimer clears a dead thread's (reclaim.ts); attach's
//                                plain fill of the counters zeroes it again over that 0 (attach.ts)
export const TH_FLAGGED = TH_F64_W + 2 * 8; // [O] (an Int32 word in the counters area) while a remote freer
//                                notifies a slab's owner: the slab, stored with no call after the CAS of SM_NOTIFIED
//                                from 0 that set its flag, and cleared with no call after the push onto the owner's
//                                notice list or after the CAS that clears the flag again (0: none). A reclaimer
//                                that finds TH_NOTIFYING set and the flag nonzero marks the flag unsure only when
//                                this names the slab (reclaim.ts finishJournals): otherwise the flag is another
//                                freer's, or one this thread set and pushed earlier, its slab on a list (a late
//                                notice: maybe the list of an owner that gave the slab up since), which an unsure
//                                mark would let the slab's next owner clear while it is there, and the next notice
//                                put it on a second list (test/notice-unsure-open.test.ts)
export const TH_LARGE_HELD = TH_F64_W + 2 * 8 + 1; // [O] (an Int32 word in the counters area) slots this thread counts in
//                                G_LARGE_POOLED that are on no large-run list: a free's reservation, stored with no call
//                                after its Atomics.add, until the push's CAS (or the overshoot's Atomics.sub); a pop's
//                                run, stored with no call after its unlinking CAS, until its Atomics.sub (0: none).
//                                A reclaim subtracts it (reclaim.ts finishJournals)
export const TH_INFLIGHT = TH_F64_W + TF_WORDS; // [O] blocks of a remote chain between its first PENDING state and its CAS;
//                                                  -k while its states are set (k made PENDING so far: magazine.ts drainJournal)
export const TH_JOURNAL_N = TH_INFLIGHT + 1; //      [O] words in the drain journal (0: no drain under way)
export const TH_JOURNAL_DONE = TH_INFLIGHT + 2; //   [O] words of the journal already returned to their slabs
export const TH_JOURNAL_CLS = TH_INFLIGHT + 3; //    [O] class of the journal's blocks
export const TH_NOTICE_CUR = TH_INFLIGHT + 4; //     [O] while a taken notice list is walked (slab.ts walkNotices): the slab
//                                                  being handled, + before its flag is marked NOTIFIED_WALK, - after (0: none)...
export const TH_NOTICE_REST = TH_INFLIGHT + 5; //    [O] ...and the rest of that list, whose flags are still set (0: none): a
//                                                  reclaim finishes the walk (reclaim.ts); left undone, those slabs kept
//                                                  their flags for good, and their remote frees were never collected.
//                                                  attach() writes a probe value (-1 or -2) into it through a buffer it
//                                                  was given and puts it back, to tell a copy of the heap from its memory
//                                                  (heap.ts sharesMemory): the thread's own word, between its calls
export const TH_WATCHING = TH_INFLIGHT + 6; //       [O] WATCH_ENTRIES words: Node threadId + 1 of workers this thread watch()es
//                                                  (0: an empty entry). Its own thread writes an entry with one plain store
//                                                  after watch() recorded the worker (and clears it if the watch is undone),
//                                                  and clears entries of workers whose exits it reclaimed only to make room
//                                                  (reclaim.ts recordWatching). Zeroed by attach, by detach and a reclaim
//                                                  before the slot is FREE, and by a fault's stop before the slot is DEAD
//                                                  (fault.ts: the thread and its workers run on; its next attachment records
//                                                  them again). Read with Atomics.load by a thread that marks this one dead or
//                                                  reclaims it as ended: Node ends a worker's workers with it, before its
//                                                  'exit' event, and nobody sees their exits, so those threads are marked dead
//                                                  and reclaimed with it (reclaim.ts markDead, reclaimSlot). An entry naming a
//                                                  thread that ended and was reclaimed finds no slot (Node never reuses a
//                                                  threadId in a process)
export const WATCH_ENTRIES = 16;
export const JOURNAL_AREAS = 2;
export const TH_LOCK_GEN = TH_WATCHING + WATCH_ENTRIES; // [O] attachments this slot has had: the thread that claims the slot
//                                 (attach.ts) adds one with a plain store after its claim's CAS and before it takes the lock,
//                                 and puts its low bits into every lock word it writes (lockWord). Never zeroed: attach, detach
//                                 and reclaim leave it, so that two attachments of one slot that took the lock never share a
//                                 lock word (until 2^LOCK_GEN_BITS attachments later). A held lock word's generation bits are
//                                 its holder slot's (check.ts: a slot is attached again only after its lock was let go or broken);
//                                 an instance a fault stopped reads it (Atomics.load) to tell its own attachment of the slot from
//                                 a later one under the same id (fault.ts stopOnFault: another copy of the package in the thread);
//                                 so does another thread that would mark the lock's holder dead (reclaim.ts lockHolderId:
//                                 the generation the CAS that took the lock published)
export const TH_JOURNAL_W = TH_LOCK_GEN + 1; // [O] room for a copied journal (reclaim): JOURNAL_AREAS areas of magazineWords(magCap)
//                                 words, from TH_JOURNAL_W and from TH_JOURNAL_W + magazineWords(magCap). A reclaim copies the
//                                 entries it drains into the area TH_JOURNAL_SRC does not name (magazine.ts journalEntries), so
//                                 that a reclaimer stopped inside the copy (at its loop's back edge) leaves the journal it copies
//                                 from whole and still named: with one area, a reclaim redoing a reclaim's copy wrote over the
//                                 entries it read, under their old length and progress words, and the next reclaim lost some
//                                 blocks and published others twice (test/journal-redo-stopped.test.ts)
// After the journal come the magazines ([O]): per class, magazineWords(magCap) words from
// Geometry.magW: entry 0 is the empty sentinel (block MAG_EMPTY_SENTINEL: pop's empty test),
// then capacity entries, then the full sentinel (block MAG_FULL_SENTINEL: push's full test).
// Invariant: base <= top <= base + MAG_ENTRY_WORDS * capacity, base = the first entry after the
// empty sentinel, capacity = the class's magazine capacity (<= magCap); entries below top are
// CACHED blocks of the class.
export const MAG_ENTRY_WORDS = 2; // an entry is [block, state byte offset]
export const MAG_BLOCK = 0; //       entry word: the block
export const MAG_STATE = 1; //       entry word: byte offset of its state byte
export const MAG_EMPTY_SENTINEL = 0;
export const MAG_FULL_SENTINEL = -1;

export const TS_FREE = 0;
export const TS_ATTACHED = 1;
export const TS_DEAD = 2;
export const TS_RECLAIMING = 3;

/**
 * Deep magazines (magazine.ts deepen): a block of the 64 KiB class, which fills one slot
 * exactly, holds a class's magazine: its first entry is the empty sentinel, its last the full
 * sentinel, at most DEEP_CAP entries between (the capacity: deepMagazineCap). A top (TH_TOP) at or past the start of the data (the first
 * SuperSlab after the metadata) lies in such a block, so the top alone names the magazine: its
 * base is the top's slot start plus one entry (a top never reaches the slot's end). [O] Its words
 * are its owner thread's, read and written plain, as the magazines in the thread area are (a
 * reclaimer's once the owner is dead); check() reads them. The top moves back into the thread
 * area before the block can go back to its slab (undeepen: onto the owner's DEEP_CLS magazine
 * first; reclaim.ts releaseDeep: named by a journal first), so that no top lies in a block another
 * thread may hold; a reclaim moves a top whose block no longer says ST_DEEP back first of all
 * (reclaim.ts settleDeepTops).
 */
export const DEEP_CAP = (SLOT_BYTES / 4 - 2 * MAG_ENTRY_WORDS) / MAG_ENTRY_WORDS; // 8,190 entries

/** Whether magazine top `top` lies in a deep magazine (a heap whose metadata takes `metaSupers` SuperSlabs). */
export function isDeepTop(top: number, metaSupers: number): boolean {
  return top >= metaSupers << (SUPER_SHIFT - 2);
}

/**
 * The capacity of the deep magazine whose base is `base`: its empty sentinel's second word (pop's
 * empty test reads the first only), set when it was made (magazine.ts deepen, at most DEEP_CAP);
 * its full sentinel lies that many entries above the base. A value out of range reads as 0.
 */
export function deepMagazineCap(i32: Int32Array, base: number): number {
  const cap = i32[base - MAG_ENTRY_WORDS + MAG_STATE]!;
  return cap >= 1 && cap <= DEEP_CAP ? cap : 0;
}

/** The 64 KiB block that holds the deep magazine whose base is `base` (its slot's start). */
export function deepMagazineBlock(base: number): number {
  return (base - MAG_ENTRY_WORDS) << 2;
}

/** The base (first entry) of the deep magazine that top `top` lies in. */
export function deepMagazineBase(top: number): number {
  return ((top >>> (SLOT_SHIFT - 2)) << (SLOT_SHIFT - 2)) + MAG_ENTRY_WORDS;
}

/**
 * The most words of entries one journal area holds (magCap entries): a drain in place takes at most
 * this many at a time (magazine.ts drainDownTo), as a reclaim copies what is left of a journal, or
 * of a magazine, into one area (reclaim.ts finishJournals, reclaimSlot).
 */
export function journalEntryWords(magCap: number): number {
  return magCap * MAG_ENTRY_WORDS;
}

/** Words of one magazine (and of the drain journal): capacity entries and two sentinels. */
export function magazineWords(magCap: number): number {
  return (magCap + 2) * MAG_ENTRY_WORDS;
}

/** Offset of the magazines in a thread area. */
export function magazinesOffset(magCap: number): number {
  return TH_JOURNAL_W + JOURNAL_AREAS * magazineWords(magCap);
}

export function threadWords(magCap: number, numClasses: number): number {
  const w = magazinesOffset(magCap) + numClasses * magazineWords(magCap);
  return (w + 15) & ~15; // 64-byte aligned areas
}

/** Where everything sits, derived from the constants above and the create() options. */
export interface Geometry {
  maxSupers: number;
  maxThreads: number;
  magCap: number;
  slotMetaW: number; // word index of slot 0's meta
  threadsW: number; // word index of thread slot 0's area
  threadWords: number;
  magW: number; // offset of the magazines in a thread area
  metaSupers: number; // SuperSlabs the metadata takes
}

/** The most threads a heap is made for (create()'s maxThreads), its thread slots this plus RECLAIM_SLOTS. */
export const MAX_THREADS_OPTION = 1024;
/** The largest magazine (create()'s magazineCapacity). */
export const MAX_MAGAZINE_CAPACITY = 4096;

/**
 * What is wrong with a header's sizes (G_MAX_SUPERS, G_MAX_THREADS, G_MAG_CAP, G_BUFFER_SUPERS),
 * or undefined where each is one create() can write: a header damaged by a stray write, or a
 * buffer that starts like a heap's without being one, is refused by attach() and readHeapMap()
 * before any view is made with them (a negative count threw V8's own RangeError; an audit).
 */
export function headerSizesProblem(maxSupers: number, maxThreads: number, magCap: number, bufferSupers: number): string | undefined {
  const within = (v: number, lo: number, hi: number): boolean => Number.isInteger(v) && v >= lo && v <= hi;
  if (!within(maxSupers, 2, MAX_HEAP_BYTES / SUPER_BYTES)) return `its largest size, ${maxSupers} SuperSlabs`;
  if (!within(maxThreads, 1 + RECLAIM_SLOTS, MAX_THREADS_OPTION + RECLAIM_SLOTS)) return `its thread slots, ${maxThreads}`;
  if (!within(magCap, 1, MAX_MAGAZINE_CAPACITY)) return `its magazine capacity, ${magCap}`;
  if (!within(bufferSupers, 2, maxSupers)) return `its size, ${bufferSupers} SuperSlabs of at most ${maxSupers}`;
  return undefined;
}

export function geometry(maxSupers: number, maxThreads: number, magCap: number, numClasses: number): Geometry {
  const slotMetaW = SS_TABLE_W + ((maxSupers + 15) & ~15);
  const threadsW = slotMetaW + maxSupers * SLOTS_PER_SUPER * SM_WORDS;
  const tw = threadWords(magCap, numClasses);
  const endBytes = (threadsW + maxThreads * tw) * 4;
  const metaSupers = Math.ceil(endBytes / SUPER_BYTES);
  return { maxSupers, maxThreads, magCap, slotMetaW, threadsW, threadWords: tw, magW: magazinesOffset(magCap), metaSupers };
}
