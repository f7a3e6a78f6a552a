/**
 * Debug mode (SharedHeap.create({ debug: true }); the header word G_DEBUG tells every thread that
 * attaches). It is a separate class chosen at attach (DebugSharedHeap in heap.ts), so the default
 * mode's fast paths carry no test for it. These are its checks, on top of the normal calls:
 *
 * A live block of requested size n is allocated DEBUG_EXTRA bytes larger, and holds:
 *
 *   p                 p + n                                    p + usable - 8      p + usable
 *   | user's n bytes  | canary: CANARY bytes (up to CANARY_MAX) | n | n ^ p ^ SEAL  |
 *
 * free, realloc and check() verify the record and the canary: a write past the end is a
 * HeapCorruptionError naming the block and n. usableSize() answers n.
 *
 * A freed small block of requested size n >= 8 is filled: word 1 (bytes 4..7) holds FREED_MARK ^
 * p ^ usable, and bytes 8 .. n (at most FILL_MAX of them) hold FREED_FILL; its canary and record
 * stay (word 0 is not filled: a block freed by another thread holds the link of its slab's remote
 * list there, and keeps it until handed out). When malloc hands a block out again and finds the
 * mark, the fill, the canary and the record must be intact: a write after free is reported with
 * the offset it hit. A write into bytes 0..7 goes unseen, and so do writes into a freed block of
 * fewer than 8 requested bytes. Every block handed out
 * has the mark positions inside it cleared (one word per 16 bytes), so that no mark of an earlier
 * life of that memory (another class, a large run) survives into a later one; and a slab or run
 * made on slots whose last life had other blocks zeroes them in all the slots' touched bytes
 * first, for the blocks of that life never handed out (slots.ts clearStaleMarks says why). Large runs above
 * MAX_SMALL are not filled when freed (their slots go back to the pool); a run of at most MAX_SMALL
 * bytes (alignedAlloc's, one or two slots) is, as a small block is, and checked when handed out
 * again (debugRecordLarge).
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import type { ThreadContext } from './context.js';
import { HeapCorruptionError, hex } from './errors.js';
import { magazineTop } from './magazine.js';

const { K_LARGE, K_SLAB, LOCK_BEAT_BYTES, LARGE_LIVE, SLOTS_SHIFT_IN_SUPER, SLOT_BYTES, SLOT_SHIFT, SM_BUMP, SM_CLS1, SM_DATA, SM_HEAD,
  SM_KIND, SM_LARGE, SM_SPAN, SM_STATE, ST_ALLOCATED, ST_CACHED, ST_CLEAN, G_CARVED, DEBUG_MARK_W, DEBUG_RECORD_BYTES, MAG_STATE } = layout;
const { COUNT, MAX_SMALL, SIZE } = classes;

/** Bytes added to every request: at least one canary byte and the 8-byte record. */
export const DEBUG_EXTRA = 9;
const CANARY = 0xcb;
const CANARY_MAX = 64; // canary bytes written and checked after the requested size
const SEAL = layout.DEBUG_SEAL;
const FREED_MARK = layout.DEBUG_FREED_MARK;
const FREED_FILL = 0xdf;
const FILL_MAX = 256; // bytes of a freed block filled and checked

function usableOf(t: ThreadContext, p: number): number {
  const mW = t.metaW(p >>> SLOT_SHIFT);
  const cls = t.i32[mW + SM_CLS1] - 1;
  return cls >= 0 ? SIZE[cls] : t.i32[mW + SM_SPAN] * SLOT_BYTES;
}

/**
 * A block of `usable` bytes is handed out for a request of n bytes: checks the freed fill when
 * the block carries the freed mark, then writes the canary and, last, the record. A fill found
 * written to is a HeapCorruptionError, thrown after the record is written: the block stays
 * allocated, a live block of n bytes that no caller was given (something still writes to it, so
 * it is kept out of use; check() passes, and free(ptr) with the offset the error names gives it
 * back).
 *
 * Called for large blocks, whose runs got the same record before they were marked live
 * (debugRecordLarge), so that a thread stopped anywhere in here leaves a block check() accepts.
 * Small blocks get theirs before they leave the magazine (debugTakeSmall): popped first, a block
 * of a slab whose slots held a large run or another class before kept that memory's bytes where its
 * record goes, and check() reported it written past its end (an audit; it once let a record of 0
 * pass, which covered only blocks never handed out before).
 */
export function debugHandOut(t: ThreadContext, fn: string, p: number, n: number): void {
  const err = debugPrepare(t, fn, p, n, p + t.largeDirtyBytes); // (as debugRecordLarge: the take set it)
  if (err !== null) throw err;
}

/**
 * A small block for a request of n bytes (class `cls`, DEBUG_EXTRA included), out of this thread's
 * magazine: its record and canary are written while it still sits there, CACHED, and only then is
 * it popped and marked ALLOCATED, by two stores with no call between them. A thread cut off
 * anywhere before (terminated, or stopped by a fault: fault.ts) leaves the block in its magazine,
 * which the reclaim drains; after, a live block with its record. (Popped first, as the default
 * mode pops, a block cut off before its record held whatever its memory held before: check()
 * then reported it written past its end, 1 run in 5 of an audit's faulting workers.) 0 when out
 * of memory.
 */
export function debugTakeSmall(t: ThreadContext, cls: number, fn: string, n: number, mayBlock: boolean): number {
  const top = magazineTop(t, cls, mayBlock);
  if (top < 0) return 0;
  const i32 = t.i32;
  const p = i32[top];
  const st = i32[top + MAG_STATE];
  // A CLEAN block is one the heap never wrote (check() reads it so); the record written next makes
  // it a CACHED one until the pop below, for a thread stopped in between.
  if (t.bytes[st] === ST_CLEAN) t.bytes[st] = ST_CACHED;
  const err = debugPrepare(t, fn, p, n);
  i32[t.topW + cls] = top;
  t.bytes[st] = ST_ALLOCATED;
  if (err !== null) throw err;
  return p;
}

/**
 * Debug mode's record and canary of a large block p of requested size n, written before the run is
 * marked live (ThreadContext.debugLarge): a thread stopped before the mark leaves a run that is
 * not live, after it a live run with its record. (Written after the mark, as small blocks once
 * were, a run cut off between the two held whatever its last bytes held before: check() reported
 * it written past its end.) Returns the error of a freed fill found written to, or null.
 */
export function debugRecordLarge(t: ThreadContext, fn: string, p: number, n: number): HeapCorruptionError | null {
  // A run of at most MAX_SMALL bytes was filled when freed (debugFillsFreed): a write found in its
  // fill is returned, for the caller to throw once the run is live (as debugTakeSmall does), where
  // it was dropped and the mark cleared, so that the write went unreported (an audit, 2026-12-05).
  // Marks lie only in bytes written before (t.largeDirtyBytes, which the take set): a fresh run's
  // pages stay untouched, and a take under the lock does no work in proportion to a run never
  // used (a 1.9 GiB malloc held the lock for 1-9 s clearing them, and a main thread's wait for
  // the lock gave up on a healthy heap with a LockTimeoutError: an audit).
  return debugPrepare(t, fn, p, n, p + t.largeDirtyBytes);
}

/** debugHandOut's writes; the error of a fill found written to, for the caller to throw once the block is out, or null. */
function debugPrepare(t: ThreadContext, fn: string, p: number, n: number, dirtyEnd = Infinity): HeapCorruptionError | null {
  t.ensureViews();
  const i32 = t.i32;
  const bytes = t.bytes;
  const usable = usableOf(t, p);
  const rec = p + usable - DEBUG_RECORD_BYTES;
  let written = -1;
  let was = '';
  if (usable <= MAX_SMALL && i32[(p >>> 2) + DEBUG_MARK_W] === (FREED_MARK ^ p ^ usable)) {
    // Freed with n >= 8 (the mark): its fill from byte 8, its canary and its record are as free left them.
    const old = i32[rec >>> 2];
    if ((old ^ p ^ SEAL) !== i32[(rec >>> 2) + 1] || old < 8 || p + old >= rec) {
      written = rec;
      was = 'its size record';
    }
    for (let b = p + 8, end = p + Math.min(old, 8 + FILL_MAX); written < 0 && b < end; b++) {
      if (bytes[b] !== FREED_FILL) {
        written = b;
        was = `the fill ${hex(FREED_FILL)}`;
      }
    }
    for (let b = p + old, end = Math.min(rec, p + old + CANARY_MAX); written < 0 && b < end; b++) {
      if (bytes[b] !== CANARY) {
        written = b;
        was = `the canary ${hex(CANARY)}`;
      }
    }
  }
  const found = written >= 0 ? bytes[written] : 0;
  const canaryEnd = Math.min(rec, p + n + CANARY_MAX);
  bytes.fill(CANARY, p + n, canaryEnd);
  // The record: two stores with no call between them, where nothing can stop the thread.
  i32[rec >>> 2] = n; // usable is a multiple of 16: the record is word-aligned
  i32[(rec >>> 2) + 1] = n ^ p ^ SEAL;
  // Marks of earlier lives of this memory, outside the canary and the record (which overwrote
  // theirs), in the bytes written before (`dirtyEnd`: a large run's; a slab's block may hold one anywhere).
  // With the lock's heartbeat every LOCK_BEAT_BYTES (a large run's take holds the lock: ThreadContext.beatLock).
  for (let w = (p >>> 2) + DEBUG_MARK_W, end = Math.min(rec, dirtyEnd) >>> 2, beat = w + (LOCK_BEAT_BYTES >>> 2); w < end; w += 4) {
    if (w >= beat) {
      t.beatLock();
      beat = w + (LOCK_BEAT_BYTES >>> 2);
    }
    const at = w << 2;
    if (at + 4 <= p + n || at >= canaryEnd) i32[w] = 0;
  }
  if (written < 0) return null;
  return new HeapCorruptionError(
    `${fn}: the ${usable}-byte block at ${hex(p)} was written after it was freed: byte ${hex(written)} ` +
      `(offset ${written - p}) is ${hex(found)}, where free left ${was} (use after free; debug mode). ` +
      `The block is kept out of use, allocated; free(${hex(p)}) gives it back`,
  );
}

/** The requested size of the live block p, after checking its record and canary. */
export function debugCheckLive(t: ThreadContext, fn: string, p: number): number {
  t.ensureViews();
  const bytes = t.bytes;
  const usable = usableOf(t, p);
  const rec = p + usable - DEBUG_RECORD_BYTES;
  const n = t.i32[rec >>> 2];
  if ((n ^ p ^ SEAL) !== t.i32[(rec >>> 2) + 1] || n < 0 || p + n >= rec) {
    throw new HeapCorruptionError(
      `${fn}: the block at ${hex(p)} was written past its end: its size record at ${hex(rec)} is overwritten ` +
        `(a write of at least ${rec - p} bytes into a ${usable}-byte block; debug mode)`,
    );
  }
  const end = Math.min(rec, p + n + CANARY_MAX);
  for (let b = p + n; b < end; b++) {
    if (bytes[b] !== CANARY) {
      throw new HeapCorruptionError(
        `${fn}: the block at ${hex(p)} (requested size ${n}) was written past its end: canary byte ${hex(b)} ` +
          `(offset ${b - p}) is ${hex(bytes[b])} (debug mode)`,
      );
    }
  }
  return n;
}

/** Whether debugFillFreed writes into the live block p of requested size n (a large run too: one of at most MAX_SMALL bytes). */
export function debugFillsFreed(t: ThreadContext, p: number, n: number): boolean {
  return n >= 8 && usableOf(t, p) <= MAX_SMALL;
}

/**
 * Fills a small block being freed, of requested size n (after debugCheckLive): bytes 8 up to n
 * (at most FILL_MAX of them), then the mark, when n is at least 8. Its canary and record stay as
 * they are, so a thread stopped here leaves a live block that check() accepts.
 */
export function debugFillFreed(t: ThreadContext, p: number, n: number): void {
  const usable = usableOf(t, p);
  if (usable > MAX_SMALL || n < 8) return;
  t.bytes.fill(FREED_FILL, p + 8, p + Math.min(n, 8 + FILL_MAX));
  t.i32[(p >>> 2) + DEBUG_MARK_W] = FREED_MARK ^ p ^ usable;
}

/** check() in debug mode: the record and canary of every live block. */
export function debugCheckAll(t: ThreadContext): void {
  t.ensureViews();
  const i32 = t.i32;
  const end = Atomics.load(i32, G_CARVED) << SLOTS_SHIFT_IN_SUPER;
  for (let s = t.geo.metaSupers << SLOTS_SHIFT_IN_SUPER; s < end; s++) {
    const mW = t.metaW(s);
    if (i32[mW + SM_HEAD] !== s) continue;
    const kind = i32[mW + SM_KIND];
    if (kind === K_LARGE && i32[mW + SM_LARGE] === LARGE_LIVE) {
      debugCheckLive(t, 'check()', s << SLOT_SHIFT);
    } else if (kind === K_SLAB) {
      const cls = i32[mW + SM_CLS1] - 1;
      const bump = Math.min(i32[mW + SM_BUMP], COUNT[cls]);
      for (let idx = 0; idx < bump; idx++) {
        const p = i32[mW + SM_DATA] + idx * SIZE[cls];
        if (t.bytes[i32[mW + SM_STATE] + idx] === ST_ALLOCATED) debugCheckLive(t, 'check()', p);
      }
    }
  }
}
