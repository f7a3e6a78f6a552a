/**
 * The one place where the buffer's layout is drawn. Every offset, shift and size is here.
 *
 * Glossary
 *   block       what malloc returns: a byte offset into the buffer, > 0, a multiple of 16
 *   slab slot   64 KiB of the heap, aligned to 64 KiB: `block >>> SLOT_SHIFT` is its index
 *   SuperSlab   1 MiB, aligned to 1 MiB, 16 slab slots: `block >>> SUPER_SHIFT` is its index
 *   slab        1, 2, 4, 8 or 16 slots of one SuperSlab serving one size class (`cls`)
 *   large run   slots (or whole SuperSlabs) holding one allocation above MAX_SMALL
 *   magazine    a thread's stack of free blocks of one class, in the thread's area
 *   thread slot `tid`, 0 .. maxThreads-1: the area one attached thread owns
 *
 * The whole buffer:
 *
 *   0                                  META_BYTES (a multiple of 1 MiB)           buffer end
 *   | global header | slot meta table | thread areas | SuperSlab | SuperSlab | ...|
 *   |<----------- metadata SuperSlabs (never handed out) ------->|<- carved on demand ->
 *
 * Tags on every shared field say who may touch it and how:
 *   [C] constant after initialisation (plain reads by anyone)
 *   [O] owner thread only, plain reads and writes (others may read it racily for stats)
 *   [A] any thread, Atomics only
 *   [L] under the global lock, plain access (others may read it racily for stats)
 *
 * Word offsets end in W; byte offsets are nouns. All Int32 words unless said Float64.
 */

// ---- Geometry -------------------------------------------------------------------------
export const SLOT_SHIFT = 16;
export const SLOT_BYTES = 1 << SLOT_SHIFT; // 64 KiB
export const SUPER_SHIFT = 20;
export const SUPER_BYTES = 1 << SUPER_SHIFT; // 1 MiB
export const SLOTS_PER_SUPER = SUPER_BYTES / SLOT_BYTES; // 16
export const FULL_MASK = (1 << SLOTS_PER_SUPER) - 1; // 0xffff: every slot of a SuperSlab free
export const MAX_HEAP_BYTES = 2047 * SUPER_BYTES; // offsets stay below 2^31
export const MAX_SLOTS = MAX_HEAP_BYTES >>> SLOT_SHIFT;
export const MAX_SUPERS = MAX_HEAP_BYTES >>> SUPER_SHIFT;

export const MAGIC = 0x5ab3a11c;
export const LAYOUT_VERSION = 1;

// ---- Global header (words 0 .. HEADER_WORDS-1) ----------------------------------------
export const G_MAGIC = 0; //            [C] MAGIC
export const G_VERSION = 1; //          [C] LAYOUT_VERSION
export const G_HEAP_ID = 2; //          [C] random id: attach() finds an existing instance by it
export const G_MAX_SUPERS = 3; //       [C] maxBytes >>> SUPER_SHIFT
export const G_MAX_THREADS = 4; //      [C]
export const G_META_SUPERS = 5; //      [C] SuperSlabs taken by metadata
export const G_MAG_CAP = 6; //          [C] magazineCapacity (entries per class, upper bound)
export const G_REFILL = 7; //           [C] refillCount
export const G_DRAIN_INTERVAL = 8; //   [C] drainInterval
export const G_S1_KEEP = 9; //          [C] EMPTY slabs a class keeps in Stage 1 before giving slots back
export const G_GEN = 10; //             [A] bumped (under the lock) each time the buffer grows
export const G_BUFFER_SUPERS = 11; //   [A] written under the lock: buffer length >>> SUPER_SHIFT
export const G_CARVED = 12; //          [A] written under the lock: SuperSlabs carved, metadata included
export const G_LOCK = 13; //            [A] ((holder tid + 1) << 2) | state; state 0 free, 1 held, 2 held with waiters (lock.ts)
// word 14 is unused
export const G_STAGE1 = 15; //          [A] Stage-1 pops (Atomics.add)
export const G_TEST_DELAY = 16; //      [A] test hook: spin iterations between a Stage-1 read and its CAS
export const G_TEST_NO_TAG = 17; //     [A] test hook: 1 disables the Stage-1 ABA tag (to show the test fails)
export const G_THREADS_ATTACHED = 18; //[A] attached thread count
export const G_NEXT_THREAD_ID = 19; //  [A] ids for threads that have no Node threadId (browsers)
export const G_STAGE1_PUSHES = 20; //   [A] slabs given to Stage 1
export const G_ORPHANS = 21; //         [A] blocks that threads which died inside a slow path may have
//                                      left in flight (CACHED or PENDING, in no magazine or list);
//                                      check() allows that many and no more
// DETACHED_W: a constant fake magazine top table for detached instances: every class's top
// points just past a 0 sentinel, so malloc on a detached instance misses into the slow path.
export const DETACHED_W = 128 + 64 * 4; // [C] word 0 = 0, words 2 .. 2+64 = DETACHED_W + 2
// Float64 counters, updated under the lock (plain), read racily by stats(): F_* are Float64Array indices.
export const F_BASE_W = 32; // word index where the Float64 counters start (8-byte aligned)
export const F_LOCK_ACQ = F_BASE_W / 2 + 0; //       [L] acquisitions
export const F_LOCK_CONTENDED = F_BASE_W / 2 + 1; // [L] acquisitions that did not succeed on the first CAS
export const F_LOCK_SPINS = F_BASE_W / 2 + 2; //     [L] spin iterations before getting it
export const F_LOCK_WAITS = F_BASE_W / 2 + 3; //     [L] Atomics.wait calls (the futex-wait count)
export const F_LOCK_WAKES = F_BASE_W / 2 + 4; //     [L] Atomics.notify calls that were needed
export const F_LOCK_WAIT_MS = F_BASE_W / 2 + 5; //   [L] total milliseconds spent waiting
export const F_LOCK_MAX_WAIT_MS = F_BASE_W / 2 + 6; // [L] longest single acquisition wait
export const F_LOCK_RECOVERIES = F_BASE_W / 2 + 7; // [L] locks broken because the holder died
export const F_STAGE2 = F_BASE_W / 2 + 8; //         [L] Stage-2 takes
export const F_STAGE3 = F_BASE_W / 2 + 9; //         [L] Stage-3 carves
export const F_ADOPTED = F_BASE_W / 2 + 10; //       [L] abandoned slabs adopted
export const F_LARGE_LIVE_BYTES = F_BASE_W / 2 + 11; // [L] bytes in live large runs
export const F_LARGE_ALLOCS = F_BASE_W / 2 + 12; //  [L] large allocations
export const F_SLOTS_RETURNED = F_BASE_W / 2 + 13; // [L] slab slots given back to Stage 2
export const F_PEAK_CARVED = F_BASE_W / 2 + 14; //   [L] peak G_CARVED
export const F_RECLAIMS = F_BASE_W / 2 + 15; //      [L] threads reclaimed
export const F_WORDS = 32; // words of Float64 counters
// Per-class arrays in the header
export const S1_HEAD_W = F_BASE_W + F_WORDS; //            [A] Stage-1 LIFO head per class: (tag << 15) | slot, 0 = empty
export const S1_COUNT_W = S1_HEAD_W + 64; //               [A] slabs on each Stage-1 list (push adds before its CAS, pop subtracts after)
export const ABANDONED_W = S1_COUNT_W + 64; //             [L] abandoned-slab list head per class (slot, 0 = empty)
export const HEADER_WORDS = DETACHED_W + 2 + 64; //         (64 >= NUM_CLASSES)

export const S1_SLOT_BITS = 15; // slot index bits in a Stage-1 head; the rest is the ABA tag
export const S1_SLOT_MASK = (1 << S1_SLOT_BITS) - 1;

// ---- SuperSlab table: one word per SuperSlab -------------------------------------------
// SS_FREEMASK [L]: bit i set when slot i of the SuperSlab is UNUSED (Stage 2 can take it).
// Invariant: for carved SuperSlabs, bit i set <=> slot meta SM_KIND == K_FREE.
export const SS_TABLE_W = HEADER_WORDS;

// ---- Slot meta table: SM_WORDS words per slab slot -------------------------------------
// Every slot of a slab carries CLS, DATA, STATE, HEAD and SPAN so that free() reads the
// slot of the pointer only. The slab's control fields live in its head slot's entry.
// Invariants of a slab owned by a thread (head entry):
//   BUMP <= COUNT[cls];  INUSE + NFREE == BUMP;  |local free list| == NFREE
//   every block on the local list has state FREE, every block on the remote list PENDING
export const SM_SHIFT = 5;
export const SM_WORDS = 1 << SM_SHIFT; // 32 words (128 bytes)
export const SM_KIND = 0; //        [L] K_NONE, K_FREE, K_SLAB, K_LARGE (changed only under the lock)
export const SM_CLS = 1; //         [L] class while K_SLAB, else -1 (the fast path tests < 0)
export const SM_DATA = 2; //        [L] byte offset of block 0 of the slab this slot belongs to
export const SM_STATE = 3; //       [L] byte offset of block 0's state byte (the slab start)
export const SM_HEAD = 4; //        [L] head slot of the slab or large run
export const SM_SPAN = 5; //        [L] slots of the slab or large run
export const SM_OWNER = 6; //       [A] head: owner tid, OWNER_NONE (abandoned) or OWNER_POOL (EMPTY, Stage 1)
export const SM_BUMP = 7; //        [O] head: blocks carved so far (blocks >= BUMP were never handed out)
export const SM_FREE = 8; //        [O] head: local free list, byte offset of first block (link in block word 0), 0 = empty
export const SM_NFREE = 9; //       [O] head: length of the local free list
export const SM_INUSE = 10; //      [O] head: blocks out of the slab (allocated, in a magazine, or remote-freed but not collected)
export const SM_REMOTE = 11; //     [A] head: remote free list (Treiber push of chains; the owner takes all with exchange)
export const SM_NOTIFIED = 12; //   [A] head: 1 while the slab is on its owner's notice list
export const SM_NOTICE_NEXT = 13; //[A] head: next slot on the owner's notice list
export const SM_POOL_NEXT = 14; //  [A] head: next slot on a Stage-1 list ([L] on an abandoned list)
export const SM_PART_NEXT = 15; //  [O] head: owner's partial list (slabs with local free blocks, not current)
export const SM_PART_PREV = 16; //  [O]
export const SM_LISTED = 17; //     [O] head: 1 when on the owner's partial list, 2 when it is the current slab
export const SM_LARGE = 18; //      [L] head of a large run: LARGE_LIVE, or LARGE_FREED after free (double-free detection)
export const SM_ABANDON_LISTED = 19; // [L] head: 1 while on an abandoned list
export const SM_ABANDON_NEXT = 20; //  [L] head: next slot on the abandoned list of its class
export const SM_FREED_CLS = 21; //     [L] class + 1 of the slab these slots held before they were given
//                                     back (0: none), so a late second free is still a double free
export const SM_FREED_DATA = 22; //    [L] that slab's SM_DATA
export const SM_COLLECTS = 23; //      [A] head: bumped before every exchange that takes the remote list
// Words SM_STATES_W .. SM_WORDS-1 of a head entry hold the state bytes of slabs with at most
// SM_STATE_BYTES blocks (classes of 8 KiB and up), whose blocks then fill the slab exactly.
export const SM_STATES_W = 24; //      [O] head: state bytes (only for classes with META_STATES)
export const SM_STATE_BYTES = (SM_WORDS - SM_STATES_W) * 4; // 32

export const K_NONE = 0; //  metadata or not carved
export const K_FREE = 1; //  UNUSED slot of a carved SuperSlab
export const K_SLAB = 2;
export const K_LARGE = 3;

export const OWNER_NONE = -1; // abandoned: blocks still out, no owner; adopted by CAS
export const OWNER_POOL = -2; // EMPTY, on a Stage-1 list

export const LARGE_LIVE = 1;
export const LARGE_FREED = 2;

// ---- Block state bytes (one per block: in the slab header, or in the head meta entry) -----
// The thread holding a block is the only one that changes its byte, so plain writes suffice.
export const ST_FREE = 0; //      on the slab's local free list, or never carved (index >= BUMP)
export const ST_ALLOCATED = 1; // returned by malloc, not yet freed
export const ST_CACHED = 2; //    in some thread's magazine
export const ST_PENDING = 3; //   on the slab's remote free list (set before the CAS that publishes it)

// ---- Thread areas ----------------------------------------------------------------------
// One per thread slot, threadWords(magCap) words, touched by its thread only ([O]) except the
// [A] words. A reclaimer acts as the dead thread after winning TH_STATE.
export const TH_STATE = 0; //     [A] TS_FREE, TS_ATTACHED, TS_DEAD, TS_RECLAIMING
export const TH_NODE_ID = 1; //   [A] Node threadId of the attached thread (+1; 0 = unknown)
export const TH_NOTICE = 2; //    [A] notice list: slabs of this thread that got remote frees (slot, 0 = empty)
// Journal words: what a slow path is in the middle of, so that a reclaimer can finish or undo it
// when the thread died there (worker.terminate() stops a thread at any call or loop back-edge).
export const TH_RETURNING = 4; //  [O] under the lock, between marking a slab POOLED and giving its slots back (0: none)
export const TH_COLLECT_MW = 5; // [A] while collecting a remote list: the slab's meta word index (stored
//                                 before the exchange; reclaimers read it, see resolveInflight) ...
export const TH_COLLECT_NEXT = 6; //[O] ...and the next block of the taken list still to move (-1: not taken yet)
export const TH_PUSHING = 7; //   [O] while pushing a slab onto a Stage-1 list: its slot (0: none)
export const TH_TOP = 8; //       [O] per class: absolute word index of the magazine's next free entry
export const TH_DRAIN = TH_TOP + 64; //   [O] per class: frees left before the next periodic drain
export const TH_CUR = TH_DRAIN + 64; //    [O] per class: current slab's head slot (0 = none)
export const TH_PARTIAL = TH_CUR + 64; // [O] per class: first slab on the partial list (0 = none)
export const TH_F64_W = TH_PARTIAL + 64; // Float64 counters [O]
export const TF_REMOTE_FREES = 0; // blocks this thread freed that belong to another thread's slab
export const TF_REFILLS = 1;
export const TF_DRAINS = 2;
export const TF_SLABS = 3; //        slabs taken from the pool
export const TF_LOCK_ACQ = 4; //     global lock acquisitions by this thread
export const TF_WORDS = 16; //       (8 doubles)
export const TH_INFLIGHT = TH_F64_W + TF_WORDS; // [O] blocks of a remote chain between its first PENDING state and its CAS
export const TH_JOURNAL_N = TH_INFLIGHT + 1; //      [O] words in the drain journal (0: no drain under way)
export const TH_JOURNAL_DONE = TH_INFLIGHT + 2; //   [O] words of the journal already returned to their slabs
export const TH_JOURNAL_CLS = TH_INFLIGHT + 3; //    [O] class of the journal's blocks
export const TH_JOURNAL_W = TH_INFLIGHT + 4; //      [O] drain journal: the magazine entries being drained
// After the journal (magazineWords(magCap) words) come the magazines: per class, (cap + 2)
// entries of 2 words; Geometry.magW is their offset in the thread area.

// A magazine entry is [block, stateByte]. Entry 0 of a class is a sentinel with block 0 (empty
// test on pop) and the entry after the last is a sentinel with block -1 (full test on push).
export const MAG_ENTRY_WORDS = 2;
export const MAG_EMPTY_SENTINEL = 0;
export const MAG_FULL_SENTINEL = -1;

export const TS_FREE = 0;
export const TS_ATTACHED = 1;
export const TS_DEAD = 2;
export const TS_RECLAIMING = 3;

export function magazineWords(magCap: number): number {
  return (magCap + 2) * MAG_ENTRY_WORDS;
}

/** Offset of the magazines in a thread area. */
export function magazinesOffset(magCap: number): number {
  return TH_JOURNAL_W + magazineWords(magCap);
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
  threadsW: number; // word index of thread 0's area
  threadWords: number;
  magW: number; // offset of the magazines in a thread area
  metaSupers: number; // SuperSlabs the metadata takes
}

export function geometry(maxSupers: number, maxThreads: number, magCap: number, numClasses: number): Geometry {
  const slotMetaW = SS_TABLE_W + ((maxSupers + 15) & ~15);
  const threadsW = slotMetaW + maxSupers * SLOTS_PER_SUPER * SM_WORDS;
  const tw = threadWords(magCap, numClasses);
  const endBytes = (threadsW + maxThreads * tw) * 4;
  const metaSupers = Math.ceil(endBytes / SUPER_BYTES);
  return { maxSupers, maxThreads, magCap, slotMetaW, threadsW, threadWords: tw, magW: magazinesOffset(magCap), metaSupers };
}
