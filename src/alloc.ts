/**
 * The public calls other than the two fast paths, and the slow halves of malloc and free:
 * argument checks with clear errors, large blocks, calloc, realloc, usableSize, alignedAlloc,
 * tryMalloc. Every misuse throws before anything is changed.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import type { ThreadContext } from './context.js';
import { DoubleFreeError, HeapError, HeapStateError, InvalidPointerError, checkInteger, describe, hex } from './errors.js';
import { WOULD_BLOCK, lockAcquire, lockRelease, waitsMayGiveUp } from './lock.js';
import { largeAlloc, largeAllocToGrow, largeFree, largeResize, runGeneration } from './large.js';
import { allocFromClass, drainPeriodic, flushThread, freeDrainFull, freeSmall, giveBackDeep, magazineTop } from './magazine.js';
import { askRound, answersToAsksUnderLock, recordAsksUnderLock } from './flush-ask.js';

// Module-local copies of the layout's constants: V8 folds these into optimized code, while an
// imported binding is read through its module cell at every use (see heap.ts).
const { K_FREE, K_LARGE, LOCK_BEAT_BYTES, K_SLAB, LARGE_CLAIMED, LARGE_FREED, LARGE_LIVE, LARGE_POOLED, LARGE_RESIZING, MAX_HEAP_BYTES, SLOT_BYTES, SLOT_SHIFT,
  SM_CLS1, SM_DATA, SM_FREED_CLS, SM_FREED_DATA, SM_HEAD, SM_KIND, SM_LARGE, SM_SPAN, SM_STATE, SM_TOUCHED, ST_ALLOCATED,
  ST_CLEAN, ST_DEEP, ST_FREE, SUPER_BYTES, MAG_STATE } = layout;
const { COUNT, MAX_SMALL, SIZE, alignedClassOf, classOf } = classes;

/**
 * realloc keeps a small block where it is while the new size is above usable >>> REALLOC_SHRINK
 * (a quarter): a buffer trimmed after it grew is not copied again (gawk_records: 358 -> 267 MB
 * copied, its footprint unchanged). A large run keeps to half (REALLOC_SHRINK_LARGE), as its
 * slots could serve others.
 */
export const REALLOC_SHRINK = 2;
export const REALLOC_SHRINK_LARGE = 1;

/** A block that grows past this many bytes by realloc is given room to grow (reallocGrowth). */
const SLACK_FROM = 512; // module-local: folded into optimized code (an export is read through its cell: heap.ts)
export const REALLOC_SLACK_FROM = SLACK_FROM;
/**
 * ... and at most this size: the classes above have few blocks per slab and slabs of up to 1 MiB,
 * where the room would cost more memory than the copies it saves (gawk_records: up to 64 KiB,
 * 267 -> 221 MB copied and its footprint unchanged; up to 128 KiB, its footprint 2.74 -> 3.56).
 */
const SLACK_TO = 64 << 10;
export const REALLOC_SLACK_TO = SLACK_TO;

/**
 * A block that grows out of the smallest class to at most this size gets twice the size too
 * (17-32 bytes ask for 34-64): the first growth of a small array (Lua's tables grow 16 -> 32 ->
 * 64 bytes, 633,000 times a lua_inventory replay) then moves once for two doublings, and a block
 * that stops there holds at most 32 bytes it did not ask for. lua_inventory: its moves 1.49 M ->
 * 0.98 M a replay, 407 M instructions fewer (callgrind; about a tenth of the replay's), `ab`
 * 0.99-1.06 on a noisy machine, its footprint 1.06x -> 1.07x its peak live bytes; gawk_records,
 * whose reallocs start at 64 bytes, unchanged. From 64 or 128 bytes on instead, gawk_records'
 * footprint went over its 2.0x goal (docs/performance.md).
 */
const TINY_ROOM_TO = 32;

/**
 * What realloc asks malloc for when a block of `usable` bytes cannot hold `size`: a block that
 * grows past REALLOC_SLACK_FROM, or to at most TINY_ROOM_TO, gets twice the size (at most
 * REALLOC_SLACK_TO), so that a block grown a little at a time (a string appended to) moves
 * O(log n) times instead of at every step, and one that doubles (a buffer of a program that
 * doubles its own) moves every other time; the usable size reports the room. Anything else gets
 * `size`. The fast path in heap.ts and reallocImpl both ask here.
 */
export function reallocRequest(size: number, usable: number): number {
  if (size <= usable || size > SLACK_TO || (size > TINY_ROOM_TO && size <= SLACK_FROM)) return size;
  const room = size * 2;
  return room < SLACK_TO ? room : SLACK_TO;
}

/**
 * A small block that grows by realloc to this size or more, by half or more, moves into a large
 * run (reallocToRun). Not from 32 KiB: with that, gawk_records' footprint went 1.84 -> 2.06x its
 * peak live bytes, over the issue's 2.0 (64 KiB: 1.84x, unchanged).
 */
const RUN_FROM = 64 << 10;
export const REALLOC_RUN_FROM = RUN_FROM;

/**
 * Whether realloc moves a small block of `usable` bytes that must grow to `size` into a large run
 * with free slots after it (largeAllocToGrow), where its next growths take those slots in place,
 * instead of into the next size class: a block that grew by half or more at once (a buffer its
 * program doubles: Lua's tables, Tcl's lists) to REALLOC_RUN_FROM or more. tcl_lists: 861 -> 321 KB
 * copied a replay, realloc 125 -> 66 us of it. A block grown a little at a time (gawk's strings)
 * stays in its classes. The fast path in heap.ts and moveBlock both ask here.
 */
export function reallocToRun(size: number, usable: number): boolean {
  return size >= RUN_FROM && size - usable >= usable >>> 1;
}

function checkAttached(t: ThreadContext, fn: string): void {
  if (t.detached) throw new HeapStateError(`${fn}: this thread has detached from the heap`);
}

/** malloc's slow half: argument errors, an empty magazine, and sizes above MAX_SMALL. */
export function mallocSlow(t: ThreadContext, size: unknown): number {
  const n = checkInteger('malloc', 'size', size);
  checkAttached(t, 'malloc(size)');
  if (n <= MAX_SMALL) return allocFromClass(t, classOf(n), true);
  return largeAllocOrFlush(t, n, SLOT_BYTES, true);
}

export function tryMallocImpl(t: ThreadContext, size: unknown): number {
  const n = checkInteger('tryMalloc', 'size', size);
  checkAttached(t, 'tryMalloc(size)');
  if (n <= MAX_SMALL) return allocFromClass(t, classOf(n), false);
  return largeAllocOrFlush(t, n, SLOT_BYTES, false);
}

/** The error for `p` given to `fn(arg)`; the message is built only here, when there is an error. */
function pointerError(fn: string, arg: string, p: number, what: string, double = false): Error {
  const where = `${fn}(${arg}): ${hex(p)}`;
  return double ? new DoubleFreeError(`${where} ${what}`) : new InvalidPointerError(`${where} ${what}`);
}

/**
 * Finds what `block` is. Returns the class of a live small block, or -1 for a live large run;
 * throws InvalidPointerError or DoubleFreeError (naming `fn` and `arg`) otherwise.
 */
export function classifyBlock(t: ThreadContext, fn: string, arg: string, block: unknown): number {
  const p = checkInteger(fn, arg, block);
  t.ensureViews();
  const i32 = t.i32;
  if (p >= t.viewBytes) throw pointerError(fn, arg, p, `is outside the heap (${t.viewBytes} bytes)`);
  if ((p & 15) !== 0) throw pointerError(fn, arg, p, 'is not the start of a block (blocks are 16-byte aligned)');
  const mW = t.metaW(p >>> SLOT_SHIFT);
  const kind = i32[mW + SM_KIND];
  if (p < t.geo.metaSupers * SUPER_BYTES) throw pointerError(fn, arg, p, "is inside the heap's metadata");
  if (kind === K_SLAB) {
    const cls = i32[mW + SM_CLS1] - 1;
    const off = p - i32[mW + SM_DATA];
    if (off < 0) throw pointerError(fn, arg, p, 'is inside a slab header (metadata)');
    const idx = Math.floor(off / SIZE[cls]);
    // The tail first: an offset there that is not a block-size multiple is inside no block.
    if (idx >= COUNT[cls]) throw pointerError(fn, arg, p, "is not the start of a block (past a slab's last block)");
    if (idx * SIZE[cls] !== off) {
      throw pointerError(fn, arg, p, `is not the start of a block (interior to a ${SIZE[cls]}-byte block)`);
    }
    const state = t.bytes[i32[mW + SM_STATE] + idx];
    if (state === ST_ALLOCATED) return cls;
    if (state === ST_CLEAN) throw pointerError(fn, arg, p, 'is not allocated: malloc has not returned it yet (a block never used)');
    if (state === ST_DEEP) throw pointerError(fn, arg, p, "is not allocated: the heap holds it (a thread's magazine); a double free, unless malloc never returned this offset", true);
    // A FREE block was handed out before (a double free) if it starts below its slot's touched
    // mark, which covers every block ever carved there; BUMP cannot tell, as it restarts at 0
    // when an empty slab goes to Stage 1.
    if (state === ST_FREE && (p & (SLOT_BYTES - 1)) >= i32[mW + SM_TOUCHED]) {
      throw pointerError(fn, arg, p, 'is not the start of a block (never allocated)');
    }
    // CACHED, or FREE below the mark: free, and handed out before, unless a refill carved it (from
    // bytes touched before: a CLEAN block, above, is one never used) and no malloc took it yet: a
    // double free unless the caller made the offset up, which the message says.
    throw pointerError(fn, arg, p, 'is not allocated: it is free (a double free, unless malloc never returned this offset)', true);
  }
  if (kind === K_LARGE) {
    const head = i32[mW + SM_HEAD];
    if (p !== head << SLOT_SHIFT) {
      throw pointerError(fn, arg, p, `is not the start of a block (interior to a large block at ${hex(head << SLOT_SHIFT)})`);
    }
    const mark = i32[mW + SM_LARGE];
    if (mark === LARGE_LIVE) return -1;
    if (mark === LARGE_RESIZING) {
      throw pointerError(fn, arg, p, 'is not allocated: another thread is resizing it with realloc (a block passed to realloc is freed by it)', true);
    }
    // Pooled, being freed by another thread, or freed: another thread's give-back (slots.ts
    // giveBack) writes K_FREE, then LARGE_FREED, between this call's read of the kind and of the
    // mark (a free at the same moment as another thread's realloc that moves the block was an
    // InvalidPointerError, "never-allocated space"; an audit).
    if (mark === LARGE_POOLED || mark >= LARGE_CLAIMED || mark === LARGE_FREED) {
      throw pointerError(fn, arg, p, 'is not allocated: the large block there was already freed (double free)', true);
    }
  }
  // Freed, or being given back by the thread that claimed it (K_FREE written, its mark not yet).
  const freedMark = kind === K_FREE && (p & (SLOT_BYTES - 1)) === 0 ? i32[mW + SM_LARGE] : 0;
  if (freedMark === LARGE_FREED || freedMark >= LARGE_CLAIMED) {
    throw pointerError(fn, arg, p, 'is not allocated: the large block there was already freed (double free)', true);
  }
  const freedCls = i32[mW + SM_FREED_CLS] - 1;
  if (kind === K_FREE && freedCls >= 0) {
    const off = p - i32[mW + SM_FREED_DATA];
    if (off >= 0 && off % SIZE[freedCls] === 0 && off / SIZE[freedCls] < COUNT[freedCls]) {
      throw pointerError(fn, arg, p, 'is not allocated: it was freed and its slab given back to the pool (double free)', true);
    }
  }
  // No block of the heap as it is now starts here; one may have before, if this is a stale offset
  // whose memory another slab or run took since (an audit: a second free after such a reuse was
  // told "never-allocated space").
  throw pointerError(fn, arg, p, 'is not the start of a block (none starts there: never allocated, or freed and its memory reused since)');
}

/** free's slow half: free(0), argument errors, large blocks, a block beyond the views. */
export function freeSlow(t: ThreadContext, block: unknown): void {
  if (block === 0) return;
  checkAttached(t, 'free(ptr)');
  const cls = classifyBlock(t, 'free', 'ptr', block);
  const p = block as number;
  if (cls < 0) largeFree(t, p >>> SLOT_SHIFT, true);
  else freeSmall(t, p); // a live small block the fast path did not take: the views were older than the block
}

/**
 * Where free's fast path goes when it does not end there, by its one call out (heap.ts free): `cls`
 * -1, anything free's checks did not pass (freeSlow); otherwise the block was valid and is pushed
 * (ST_CACHED: the drain countdown ran out) or not (the magazine was full).
 */
export function freeMiss(t: ThreadContext, block: unknown, cls: number, st: number): void {
  if (cls < 0) freeSlow(t, block);
  else if (t.bytes[st] === ST_ALLOCATED) freeDrainFull(t, cls, block as number, st);
  else drainPeriodic(t, cls);
}

/** Usable bytes of a live block (`cls` from classifyBlock). */
function usableOf(t: ThreadContext, cls: number, p: number): number {
  if (cls >= 0) return SIZE[cls];
  return t.i32[t.metaW(p >>> SLOT_SHIFT) + SM_SPAN] * SLOT_BYTES;
}

export function usableSizeImpl(t: ThreadContext, block: unknown): number {
  checkAttached(t, 'usableSize(ptr)');
  const cls = classifyBlock(t, 'usableSize', 'ptr', block);
  return usableOf(t, cls, block as number);
}

export function mallocImpl(t: ThreadContext, n: number): number {
  if (n <= MAX_SMALL) return allocFromClass(t, classOf(n), true);
  return largeAllocOrFlush(t, n, SLOT_BYTES, true);
}

/**
 * largeAlloc, and where it finds no room, once more after this thread gave back what it caches
 * (every magazine, every empty slab it keeps: magazine.ts flushThread), as a refill does: a heap
 * this thread filled and freed would otherwise answer 0 until its next periodic look or flush().
 */
function largeAllocOrFlush(t: ThreadContext, n: number, align: number, mayBlock: boolean): number {
  let p = largeAlloc(t, n, align, mayBlock);
  if (p === 0 && t.deepHoldsSuper()) {
    // No fresh memory is carved while this thread's deep magazines hold a SuperSlab's worth (slots.ts carveSuperSlabs).
    giveBackDeep(t);
    p = largeAlloc(t, n, align, mayBlock);
  }
  // tryMalloc's 0 may only mean a busy lock; a request above the heap's data area (its maxBytes
  // less the metadata) fits after no flush, and asking the other threads would wait for their
  // answers (up to 50 ms) for nothing (an audit of growable heaps).
  if (p !== 0 || n > (t.geo.maxSupers - t.geo.metaSupers) * SUPER_BYTES || !mayBlock) return p;
  flushThread(t);
  let q = largeAlloc(t, n, align, mayBlock);
  // Still none: other threads may hold it; ask them to flush (flush-ask.ts askRound).
  for (let round = 0; q === 0 && askRound(t, round); round++) q = largeAlloc(t, n, align, mayBlock);
  return q;
}

export function callocImpl(t: ThreadContext, n: unknown, size: unknown): number {
  const count = checkInteger('calloc', 'n', n);
  const each = checkInteger('calloc', 'size', size);
  checkAttached(t, 'calloc(n, size)');
  const total = count * each;
  if (total > MAX_HEAP_BYTES) return 0; // overflow or simply too large: out of memory
  if (total <= MAX_SMALL) {
    // Whether the entry the pop takes is CLEAN (heap.ts calloc), read before the pop marks it
    // ALLOCATED; magazineTop refills an empty magazine, and allocFromClass then pops that entry.
    const cls = classOf(total);
    const top = magazineTop(t, cls, true);
    if (top < 0) return 0;
    const clean = t.bytes[t.i32[top + MAG_STATE]] === ST_CLEAN;
    const p = allocFromClass(t, cls, true);
    if (!clean) zeroInHeap(t, p, total);
    return p;
  }
  const p = largeAllocOrFlush(t, total, SLOT_BYTES, true);
  // A large run zeroes only what the heap handed out or wrote before: the rest was never touched.
  if (p !== 0) zeroInHeap(t, p, Math.min(total, t.largeDirtyBytes));
  return p;
}

/**
 * Zeroes `n` bytes from the 8-aligned offset `p`, rounded up to whole 8-byte words (every block
 * is 16-aligned and its usable size a multiple of 16, so the rounding stays inside it), through
 * the Float64Array view (+0 is eight zero bytes). Uint8Array.fill on a SharedArrayBuffer is a
 * call into the runtime that stores byte by byte: 33 ns for 16 bytes, 2.4-3.6 bytes/ns from 4 KiB
 * up, against 6.5 ns and 8-10 bytes/ns for this loop (Node 20, node script in the commit message).
 */
export function zeroBytes(f64: Float64Array, p: number, n: number): void {
  for (let w = p >>> 3, end = (p + n + 7) >>> 3; w < end; w++) f64[w] = 0;
}

/**
 * calloc zeroes up to this many bytes with zeroBytes' stores even where it could call memory.fill:
 * a call into WebAssembly costs more than six stores (calloc(1, n) and free in a loop, one
 * process, Node 20: 13.4 against 16.8 ns for 8-16 bytes, 17.1 against 16.6 ns for 32-64, 21.2
 * against 16.3 for 64-128, 130 against 27 for 1-2 KiB).
 */
export const ZERO_LOOP_MAX = 48;

/**
 * calloc's zeroing, its fast path's (heap.ts) and callocImpl's: WebAssembly's memory.fill where
 * this thread has the heap's memory (wasm-copy.ts) above ZERO_LOOP_MAX bytes, else zeroBytes.
 */
export function zeroInHeap(t: ThreadContext, p: number, n: number): void {
  if (t.zero !== null && n > ZERO_LOOP_MAX) t.zero(p, n);
  else zeroBytes(t.f64, p, n);
}

export function reallocImpl(t: ThreadContext, block: unknown, size: unknown): number {
  const n = checkInteger('realloc', 'size', size);
  checkAttached(t, 'realloc(ptr, size)');
  if (block === 0) return mallocImpl(t, n);
  const cls = classifyBlock(t, 'realloc', 'ptr', block);
  const p = block as number;
  const usable = usableOf(t, cls, p);
  // A small block stays put down to a quarter of its size (REALLOC_SHRINK), a large run to half.
  if (n <= usable && (n > usable >>> (cls >= 0 ? REALLOC_SHRINK : REALLOC_SHRINK_LARGE) || usable <= 16)) return p;
  if (n > MAX_HEAP_BYTES) return 0;
  if (cls < 0 && resizeLargeInPlace(t, p, n, usable)) return p;
  // A run that moves: its generation as checked, for the free after the copy (layout.ts SM_RUN_GEN).
  const gen = cls < 0 ? runGeneration(t, p) : 0;
  // A small block's free never waits for the lock; a thread whose waits never give up gets it.
  // A run that moves is freed under the lock after the new block was taken and the contents
  // copied: where a wait may give up (a main thread's LockTimeoutError, the async calls'
  // WOULD_BLOCK), the lock is taken first (the steps take it again, re-entrantly), so that it
  // gives up before anything changed, not after the new block was taken (which was then lost;
  // an audit). Elsewhere the copy is made outside the lock.
  // Out of memory under the lock, its allocation asked the other threads to flush but could not
  // wait for their answers (they take the lock): it waits once the lock is free, and tries again.
  const q = cls >= 0 || !waitsMayGiveUp() ? moveBlock(t, cls, p, n, usable, gen) : moveUnderLock(t, () => moveBlock(t, cls, p, n, usable, gen));
  // Out of memory for the move, whose allocation gave back the runs and slabs kept for reuse and
  // this thread's caches: they may have held the slots right after the run, so once more in place
  // (a realloc answered 0 where the run could grow where it was; an audit).
  return q === 0 && cls < 0 && resizeLargeInPlace(t, p, n, usable) ? p : q;
}

/**
 * A realloc's `move()` (a new block, the copy, the old block's free) under the global lock, for a
 * thread whose waits may give up (reallocImpl; debug mode's realloc, heap.ts), run inside
 * guarded: out of memory there, once more after the answers to the asks to flush that its
 * allocation made under the lock (it could not wait for them there: they take the lock).
 */
export function moveUnderLock(t: ThreadContext, move: () => number): number {
  recordAsksUnderLock();
  const q = underLock(t, move);
  return answersToAsksUnderLock(t, q === 0) ? underLock(t, move) : q;
}

/**
 * `fn` with the global lock taken first, inside guarded (debug mode's free of a run it fills as
 * freed, heap.ts): a wait that gives up (LockTimeoutError, WOULD_BLOCK) does so before `fn` changed anything.
 */
export function lockedFirst(t: ThreadContext, fn: () => void): void {
  underLock(t, () => {
    fn();
    return 0;
  });
}

function underLock(t: ThreadContext, move: () => number): number {
  lockAcquire(t);
  try {
    return move();
  } catch (e) {
    if (e !== WOULD_BLOCK && !(e instanceof HeapError)) t.runner.faulted = true; // a fault keeps the lock (fault.ts); no call here
    throw e;
  } finally {
    lockRelease(t);
  }
}

/**
 * The new block of n bytes that realloc moves a live block of `usable` bytes (class `cls`, -1 for
 * a large run) to (moveBlock; reallocAsync's move of a run): a block growing into or within the
 * large runs, or a small one growing by half or more from REALLOC_RUN_FROM (reallocToRun), goes
 * to a run with free slots after it; anything else to malloc, with reallocRequest's room.
 */
export function reallocTarget(t: ThreadContext, cls: number, n: number, usable: number): number {
  const toRun = n > usable && (n > MAX_SMALL || cls < 0 || reallocToRun(n, usable));
  if (!toRun) return mallocImpl(t, reallocRequest(n, usable));
  return n > MAX_SMALL ? largeAllocToGrowOrFlush(t, n) : smallIntoRun(t, n, usable);
}

/**
 * realloc's move of the live block p (class `cls`, -1 for a large run, `gen` its generation as
 * checked: runGeneration) to a new block of n bytes.
 */
function moveBlock(t: ThreadContext, cls: number, p: number, n: number, usable: number, gen: number): number {
  const q = reallocTarget(t, cls, n, usable);
  if (q === 0) return 0;
  // The new block over the old one (live blocks never overlap): another thread freed the old
  // block since it was checked (while this call waited for the lock, or for answers to its asks
  // to flush) and the allocation took its memory back. The free below would free the new block
  // and return it free (the next malloc handed it out again: an audit); refused as that free
  // refuses it otherwise.
  if (q < p + usable && p < q + n) return reallocFreedMeanwhile(t, p, q);
  copyInHeap(t, q, p, Math.min(n, usable));
  try {
    // A run that moved is not kept for reuse: a block that grows or shrinks rarely comes back to its old size.
    if (cls < 0) largeFree(t, p >>> SLOT_SHIFT, false, 'realloc(ptr, size)', usable / SLOT_BYTES, gen);
    else {
      // freeSmall claims nothing: a small block another thread freed while this call waited (for
      // the lock, or for answers to its asks to flush) is CACHED in that thread's magazine or on
      // a remote list, and a second push put it in two places (check() failed, and malloc handed
      // it out twice: an audit, test/realloc-small-freed-meanwhile.test.ts). Its state is read again.
      let now = -2;
      try {
        now = classifyBlock(t, 'realloc', 'ptr', p);
      } catch (e) {
        if (!(e instanceof HeapError)) throw e; // free, or its slab carved for another class since
      }
      if (now !== cls) throw freedWhileWaited('realloc', p);
      freeSmall(t, p);
    }
  } catch (e) {
    // Another thread freed the old block since it was checked (a DoubleFreeError), or any other
    // HeapError of that free: the new block goes back too, not lost (an audit), and the caller
    // gets the first error (a failure of this second free would only hide it).
    if (e instanceof HeapError) {
      try {
        freeOwnNew(t, q);
      } catch {
        // the caller's error is the one to report
      }
    }
    throw e;
  }
  return q;
}

/**
 * reallocAsync's free of the large run `block` it moved, its contents copied at `span` slots, `gen`
 * its generation as checked: as moveBlock's (largeFree refuses it where another thread resized the
 * run in place meanwhile, or freed it and took it again).
 */
export function freeMovedRun(t: ThreadContext, block: number, span: number, gen: number): void {
  if (classifyBlock(t, 'realloc', 'ptr', block) < 0) largeFree(t, block >>> SLOT_SHIFT, false, 'realloc(ptr, size)', span, gen);
  else freeSmall(t, block);
}

/**
 * A realloc whose old block `p` another thread freed while the allocation of the new block `q`
 * waited (for the lock, or for answers to its asks to flush): found by realloc's fast path (heap.ts;
 * `p` no longer ALLOCATED in its class) and by moveBlock (`q` over `p`). `q` goes back, and the
 * call is refused (a double free).
 */
export function reallocFreedMeanwhile(t: ThreadContext, p: number, q: number): number {
  freeOwnNew(t, q);
  throw freedWhileWaited('realloc', p);
}

/**
 * The DoubleFreeError of a realloc (`fn`: realloc or reallocAsync) whose old block `p` another
 * thread freed while the call waited (for the lock, for answers to its asks to flush, or, async,
 * between its awaits): `what` says so.
 */
export function freedWhileWaited(fn: string, p: number, what = 'the block there was freed by another thread while this call waited'): DoubleFreeError {
  return new DoubleFreeError(`${fn}(ptr, size): ${hex(p)} is not allocated: ${what} (double free)`);
}

/** Frees the block `q` that a realloc took before its old block's free failed (moveBlock). */
function freeOwnNew(t: ThreadContext, q: number): void {
  if (classifyBlock(t, 'realloc', 'ptr', q) < 0) largeFree(t, q >>> SLOT_SHIFT, false, 'realloc(ptr, size)');
  else freeSmall(t, q);
}

/**
 * A run for a block of at most MAX_SMALL bytes that grows (moveBlock): largeAllocToGrow, or where
 * no run of free slots is left, a block of its size class, which a slab with room may still give
 * (a realloc to a small size fails only where malloc of it would).
 */
function smallIntoRun(t: ThreadContext, n: number, usable: number): number {
  const p = largeAllocToGrow(t, n);
  return p !== 0 ? p : mallocImpl(t, reallocRequest(n, usable));
}

/** largeAllocToGrow, or where there is no room, largeAllocOrFlush. */
function largeAllocToGrowOrFlush(t: ThreadContext, n: number): number {
  const p = largeAllocToGrow(t, n);
  return p !== 0 ? p : largeAllocOrFlush(t, n, SLOT_BYTES, true);
}

/**
 * The slow paths' copy of `n` bytes from `from` to `to` within the heap (realloc's moves): with
 * WebAssembly's memory.copy where this thread has the heap's memory (wasm-copy.ts), else
 * copyWithin, the views made current first. realloc's fast path keeps its own copy of this inline (heap.ts).
 */
export function copyInHeap(t: ThreadContext, to: number, from: number, n: number): void {
  t.ensureViews(); // current views for the caller's next steps too (freeSmall expects them)
  // In parts of LOCK_BEAT_BYTES, with the lock's heartbeat between them (ThreadContext.beatLock):
  // under the lock (a realloc on a thread whose waits are bounded moves there), a GiB's copy takes
  // seconds on a busy machine, and a main thread waiting for the lock would give up meanwhile.
  for (let done = 0; done < n; ) {
    const k = Math.min(n - done, LOCK_BEAT_BYTES);
    if (t.copy !== null) t.copy(to + done, from + done, k);
    else t.bytes.copyWithin(to + done, from + done, from + done + k);
    done += k;
    if (done < n) t.beatLock();
  }
}

/**
 * realloc of the live large run `p` (`usable` bytes) to `n` bytes where it is (large.ts
 * largeResize), for a run that grows (whatever the size: a run may hold a block of MAX_SMALL or
 * less, from reallocToRun or alignedAlloc) or shrinks to a size that stays large (a smaller one
 * moves into its class): true when done (the caller returns `p`), false when the run must move.
 */
export function resizeLargeInPlace(t: ThreadContext, p: number, n: number, usable: number): boolean {
  return (n > MAX_SMALL || n > usable) && n <= MAX_HEAP_BYTES && largeResize(t, p >>> SLOT_SHIFT, Math.ceil(n / SLOT_BYTES));
}

/** alignedAlloc's `align` (`a`, an integer): a power of two from 1 to SUPER_BYTES, else a RangeError naming it. */
export function checkAlign(align: unknown, a: number): void {
  if (a === 0 || (a & (a - 1)) !== 0 || a > SUPER_BYTES) {
    throw new RangeError(`alignedAlloc(align): expected a power of two from 1 to ${SUPER_BYTES}, got ${describe(align)}`);
  }
}

export function alignedAllocImpl(t: ThreadContext, align: unknown, size: unknown): number {
  const a = checkInteger('alignedAlloc', 'align', align);
  const n = checkInteger('alignedAlloc', 'size', size);
  checkAlign(align, a);
  checkAttached(t, 'alignedAlloc(align, size)');
  if (a <= 16) return mallocImpl(t, n);
  const cls = alignedClassOf(n, a);
  if (cls >= 0) return allocFromClass(t, cls, true);
  return largeAllocOrFlush(t, Math.max(n, 1), a, true); // slot-aligned, or SuperSlab-aligned for a > 64 KiB
}
