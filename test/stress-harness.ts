/**
 * The stress harness of test/stress.test.ts, shaped like mimalloc's test-stress: each worker runs
 * stressLoop() until it is terminated, allocating blocks of 8..512 bytes (1% up to 64 KiB), filling
 * each with a pattern derived from its offset, verifying the pattern before every free, and handing
 * blocks to other workers through a shared transfer table with Atomics.exchange, so that most frees
 * are cross-thread (the loop counts them; the test asserts more than half). It takes any allocator
 * with malloc and free over an Int32Array of memory, so the same loop also runs single-threaded
 * against a reference allocator and a broken one.
 *
 * Nothing is lost when a worker is terminated at an arbitrary moment: every block a worker owns is
 * recorded in shared memory, in its row of the `owned` table or in the transfer table, never only
 * in a local variable. The record is a plain store right after the call or exchange that gave the
 * worker the block, with no call and no loop in between: V8 stops a terminated thread only at an
 * interrupt check (a function entry, an Atomics call included, or a loop back-edge), so it cannot
 * stop between the two.
 * A record says what the block is doing (low bits of the entry; blocks are 16-byte aligned):
 *   p           READY: filled with its pattern, came from the transfer table (the only kind found there)
 *   p | FRESH   READY, allocated by this worker and not handed on yet (or handed back to it)
 *   p | FILLING malloc returned it, the pattern may be incomplete
 *   p | FREEING verified and being freed: free may or may not have happened
 * After terminating the workers, resolveAfterDeath() on the main thread settles every record.
 */
export interface StressAllocator {
  malloc(size: number): number;
  free(ptr: number): void;
}

export const FILLING = 1;
export const FREEING = 2;
export const FRESH = 4;
const FLAGS = 7;

/** Words of the control array. */
export const C_MISMATCH = 0; //   blocks whose pattern did not verify
export const C_BAD_BLOCK = 1; //  the first such block
export const C_OPS = 2; //        operations done, in steps of OPS_STEP (Atomics.notify on each step)
export const C_READY = 3; //      workers attached and running
export const C_OOM = 4; //        malloc returned 0
export const C_FREES = 5; //      frees done by workers
export const C_CROSS = 6; //      of those, blocks another thread allocated
export const C_PHASE = 8; //      C_PHASE + w: what worker w is doing (PH_*), a plain store per step
export const CTL_WORDS = C_PHASE + 256;
export const OPS_STEP = 1024;

export const PH_OTHER = 0;
export const PH_MALLOC = 1;
export const PH_FREE = 2;

/** Owned-table entries per worker, and transfer-table entries. */
export const OWNED = 256;
export const TRANSFERS = 8192;

/** Percent of visits that free a block this worker allocated itself, and one it was handed. */
const FREE_FRESH_PCT = 5;
const FREE_RECEIVED_PCT = 25;

export interface StressShared {
  ctl: Int32Array;
  transfer: Int32Array;
  /** Who last put a block at each transfer entry (allocator id; a hint, written after the exchange). */
  putter: Int32Array;
  /** OWNED entries per worker position. */
  owned: Int32Array;
  /** Allocator id of the thread that allocated the block at byte offset p, at index p >>> 4. */
  allocatedBy: Uint16Array;
}

/** Shared tables for `workers` worker positions over `memoryBytes` of heap. */
export function makeShared(workers: number, memoryBytes: number): StressShared {
  const sab = (n: number) => new Int32Array(new SharedArrayBuffer(n * 4));
  return {
    ctl: sab(CTL_WORDS),
    transfer: sab(TRANSFERS),
    putter: sab(TRANSFERS),
    owned: sab(workers * OWNED),
    allocatedBy: new Uint16Array(new SharedArrayBuffer(memoryBytes >>> 3)), // 2 bytes per 16
  };
}

export interface StressWorkerData {
  kind: 'stress';
  buffer: SharedArrayBuffer;
  shared: StressShared;
  /** Worker position: its row of the owned table. */
  w: number;
  /** 1..65535, different for every thread of a run. */
  id: number;
  seed: number;
}

function cookie(p: number): number {
  return Math.imul(p, 0x9e3779b1) ^ 0x5ab5ab5a;
}

/** Fills the `n`-word block at byte offset `p`: word i = (n - i) ^ cookie(p), so word 0 gives n back. */
export function fill(mem: Int32Array, p: number, n: number): void {
  const c = cookie(p);
  const w = p >>> 2;
  for (let i = 0; i < n; i++) mem[w + i] = (n - i) ^ c;
}

/** Whether the block at `p` still holds the pattern fill() wrote. */
export function verify(mem: Int32Array, p: number): boolean {
  const c = cookie(p);
  const w = p >>> 2;
  const n = mem[w]! ^ c;
  if (n < MIN_WORDS || n > MAX_WORDS || w + n > mem.length) return false;
  for (let i = 1; i < n; i++) if (mem[w + i] !== ((n - i) ^ c)) return false;
  return true;
}

const MIN_WORDS = 2; // 8 bytes
const SMALL_WORDS = 128; // 512 bytes
const MAX_WORDS = 16384; // 64 KiB

function reportMismatch(ctl: Int32Array, p: number): void {
  if (Atomics.add(ctl, C_MISMATCH, 1) === 0) Atomics.store(ctl, C_BAD_BLOCK, p);
}

/**
 * Runs `ops` operations (Infinity: until terminated) as worker position `w`, allocator `id`. Each
 * picks a random entry of the worker's owned row: an empty one gets a new block; a block there is
 * freed (5% of the visits when this worker allocated it, 25% when it was handed over) or else
 * exchanged with a transfer entry, preferably one another thread filled; the block that comes back,
 * if any, takes its place.
 */
export function stressLoop(a: StressAllocator, mem: Int32Array, s: StressShared, w: number, id: number, ops: number, seed: number): void {
  const { ctl, transfer, putter, owned, allocatedBy } = s;
  const row = w * OWNED;
  const phaseW = C_PHASE + w;
  let x = seed | 0 || 1; // xorshift32
  for (let op = 0; op < ops; op++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const k = row + ((x >>> 0) & (OWNED - 1));
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = x >>> 0; // a second draw for the decision below
    const e = owned[k]!;
    if (e === 0) {
      const n = r % 100 === 0 ? SMALL_WORDS + 1 + ((r >>> 7) % (MAX_WORDS - SMALL_WORDS)) : MIN_WORDS + ((r >>> 7) % (SMALL_WORDS - 1));
      ctl[phaseW] = PH_MALLOC;
      const p = a.malloc(n * 4);
      owned[k] = p | FILLING; // recorded before anything can stop this thread
      ctl[phaseW] = PH_OTHER;
      if (p === 0) {
        owned[k] = 0;
        Atomics.add(ctl, C_OOM, 1);
      } else {
        fill(mem, p, n);
        allocatedBy[p >>> 4] = id;
        owned[k] = p | FRESH;
      }
    } else if (r % 100 < ((e & FRESH) !== 0 ? FREE_FRESH_PCT : FREE_RECEIVED_PCT)) {
      const p = e & ~FLAGS;
      if (!verify(mem, p)) reportMismatch(ctl, p);
      Atomics.add(ctl, C_FREES, 1);
      if (allocatedBy[p >>> 4] !== id) Atomics.add(ctl, C_CROSS, 1);
      owned[k] = p | FREEING;
      ctl[phaseW] = PH_FREE;
      a.free(p);
      owned[k] = 0;
      ctl[phaseW] = PH_OTHER;
    } else {
      // A worker running alone on a core would mostly take back its own blocks: prefer an entry
      // that another thread filled (the hint may be stale; that only costs a retry).
      let j = (r >>> 7) % TRANSFERS;
      for (let tries = 0; tries < 4 && Atomics.load(putter, j) === id; tries++) j = (j + 1 + ((r >>> 20) % 97)) % TRANSFERS;
      // The block that comes back is recorded at once (a load, no call, in between). One this worker
      // allocated itself (a worker running alone on a core takes back its own) counts as fresh
      // again, freed as rarely and handed on as often as a new one: most frees stay cross-thread
      // however the threads are scheduled (the share had fallen to 48% with the full suite running).
      const got = Atomics.exchange(transfer, j, e & ~FLAGS);
      owned[k] = got !== 0 && allocatedBy[got >>> 4] === id ? got | FRESH : got;
      Atomics.store(putter, j, id);
    }
    if ((op & (OPS_STEP - 1)) === OPS_STEP - 1) {
      Atomics.add(ctl, C_OPS, OPS_STEP);
      Atomics.notify(ctl, C_OPS);
    }
  }
}

export interface ResolveCounts {
  /** READY blocks verified (and kept). */
  verified: number;
  /** Blocks a dead worker was filling: filled again by the main thread and kept. */
  refilled: number;
  /** Blocks a dead worker was freeing whose free had not happened: freed by the main thread. */
  freedForDead: number;
  /** Blocks a dead worker was freeing whose free had happened. */
  alreadyFreed: number;
  /** Blocks recorded twice (a block handed out twice): must be 0. */
  duplicates: number;
}

/**
 * Main thread, after every worker was terminated and reclaimed: settles each record so that the
 * tables hold only READY blocks again (which the next workers inherit) and counts mismatches.
 * `isLive(p)` says whether p is an allocated block now; `free` frees on the main thread.
 */
export function resolveAfterDeath(
  a: StressAllocator & { isLive(p: number): boolean },
  mem: Int32Array,
  s: StressShared,
): ResolveCounts {
  const counts: ResolveCounts = { verified: 0, refilled: 0, freedForDead: 0, alreadyFreed: 0, duplicates: 0 };
  const held = new Set<number>();
  const note = (p: number): void => {
    if (held.has(p)) counts.duplicates++;
    held.add(p);
  };
  for (const e of s.owned) if (e !== 0 && (e & FLAGS) !== FREEING) note(e & ~FLAGS);
  for (const p of s.transfer) if (p !== 0) note(p);
  for (let k = 0; k < s.owned.length; k++) {
    const e = s.owned[k]!;
    if (e === 0) continue;
    const p = e & ~FLAGS;
    if ((e & FLAGS) === FILLING) {
      // The pattern may be partial; the word count is not known: use the smallest.
      fill(mem, p, MIN_WORDS);
      s.owned[k] = p;
      counts.refilled++;
    } else if ((e & FLAGS) === FREEING) {
      // Re-allocated by someone since (so the free happened), or still allocated (it did not).
      if (!held.has(p) && a.isLive(p)) {
        if (!verify(mem, p)) reportMismatch(s.ctl, p);
        a.free(p);
        counts.freedForDead++;
      } else {
        counts.alreadyFreed++;
      }
      s.owned[k] = 0;
    } else {
      if (!verify(mem, p)) reportMismatch(s.ctl, p);
      counts.verified++;
    }
  }
  for (const p of s.transfer) {
    if (p === 0) continue;
    if (!verify(mem, p)) reportMismatch(s.ctl, p);
    counts.verified++;
  }
  return counts;
}

/** Main thread, at the end: verifies and frees every block left in the tables. Returns how many. */
export function freeAllRecorded(a: StressAllocator, mem: Int32Array, s: StressShared): number {
  let n = 0;
  for (let k = 0; k < s.owned.length; k++) {
    const e = s.owned[k]!;
    if (e === 0) continue;
    if ((e & (FILLING | FREEING)) !== 0) throw new Error(`freeAllRecorded: owned[${k}] = ${e} is not settled (call resolveAfterDeath first)`);
    const p = e & ~FLAGS;
    if (!verify(mem, p)) reportMismatch(s.ctl, p);
    a.free(p);
    s.owned[k] = 0;
    n++;
  }
  for (let j = 0; j < s.transfer.length; j++) {
    const p = s.transfer[j]!;
    if (p === 0) continue;
    if (!verify(mem, p)) reportMismatch(s.ctl, p);
    a.free(p);
    s.transfer[j] = 0;
    n++;
  }
  return n;
}
