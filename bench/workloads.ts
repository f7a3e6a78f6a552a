/**
 * The reference workloads of /work/shared/workloads.md (W1 random_mixed,
 * W2 mid_large, W3 larson), written once against a minimal allocator
 * interface so that the same operation sequence runs on this allocator, on
 * other JavaScript allocators and (via bench/native/workloads.c, which is a
 * line-for-line port) on native allocators.
 *
 * Conventions shared by every workload here and by the C program:
 *
 * - Random numbers: xorshift32 ({@link XorShift32}); thread `t` of a
 *   multi-threaded workload seeds its generator with {@link threadSeed}.
 * - A pointer is a byte offset into `alloc.u8`; 0 is "null" (out of memory
 *   from `malloc`, an empty slot in a slot array). Offsets must be below 2^31
 *   because slot arrays are Int32Arrays.
 * - Timing: each timed function measures its own loop with
 *   `performance.now()` and reports it as `elapsedNs`. Setup (W3's fill) and
 *   cleanup (the final frees) are separate functions and are not timed. A
 *   multi-threaded harness measures wall clock itself, from releasing all
 *   threads to the last one finishing; the per-thread `elapsedNs` is then
 *   informational.
 * - Self-check: every block gets marker bytes when allocated, and the
 *   markers are read back and compared before the block is freed. A mismatch
 *   throws a {@link WorkloadCorruptionError}. The bytes read back are summed
 *   into `checksum` (uint32, wrapping), so the work cannot be optimized away;
 *   the C program computes the same checksum.
 * - `peakLiveBytes` is the peak of live *requested* bytes. For W1 and for
 *   one thread it is exact. With several threads each thread (W2) or each
 *   array (W3) tracks its own peak, and a harness adds the peaks up: an upper
 *   bound of the true global peak, which would need a shared counter on the
 *   hot path to measure exactly. The C program uses the same definition.
 *
 * The hot loops ({@link slotLoop}, {@link larsonRoundLoop}) allocate nothing
 * (typed arrays, locals, no closures) and are self-contained: they refer to
 * nothing but their parameters and globals, so that bench/copies.ts can
 * compile a copy of each one per allocator from its source text (each copy
 * then sees one receiver type at its malloc/free call sites). Their slow
 * paths (errors) go through the {@link LoopFailures} parameter. The
 * generator's state is kept in a local (`rng.state` is read before the loop
 * and written back after it). `alloc.u8` is read once per call and again
 * only when a block ends past its end (a heap that grew), so an allocator
 * must keep every view it handed out valid for the offsets it covers.
 */

/** The allocator under test. `malloc` returns a byte offset into `u8`, or 0 when out of memory. */
export interface Allocator {
  malloc(size: number): number;
  free(ptr: number): void;
  readonly u8: Uint8Array;
}

/** Counts a workload (or one part of it) reports. All counts are plain numbers (exact below 2^53). */
export interface WorkloadResult {
  /** Timed operations: one per malloc or free in the timed part. */
  ops: number;
  /** Every malloc, including W3's untimed initial fill. */
  mallocs: number;
  /** Sum of the sizes passed to those mallocs. */
  bytesRequested: number;
  /** uint32 sum of the marker bytes read back before each timed free. */
  checksum: number;
  /** Peak of live requested bytes (see the module comment for threads). */
  peakLiveBytes: number;
  /** Duration of the timed part, in nanoseconds (from performance.now()). */
  elapsedNs: number;
}

/** Thrown when a block's marker bytes changed between malloc and free: the allocator handed out overlapping memory. */
export class WorkloadCorruptionError extends Error {
  readonly code = 'WORKLOAD_CORRUPTION';
  override name = 'WorkloadCorruptionError';
}

/** Thrown when `malloc` returned 0. */
export class WorkloadOutOfMemoryError extends Error {
  readonly code = 'WORKLOAD_OUT_OF_MEMORY';
  override name = 'WorkloadOutOfMemoryError';
}

// ---------------------------------------------------------------------------
// Random numbers

/**
 * xorshift32 (13, 17, 5). The state is kept as an int32 (the same 32 bits as the spec's uint32)
 * so that V8 keeps it in a register-sized small integer field.
 */
export class XorShift32 {
  /** Current state's bits as an int32; non-zero. */
  private s: number;

  constructor(seed: number) {
    const s = seed >>> 0;
    if (s === 0) throw new RangeError(`XorShift32(seed): seed must be a non-zero uint32, got ${seed}`);
    this.s = s | 0;
  }

  /** Current state, a non-zero uint32. */
  get state(): number {
    return this.s >>> 0;
  }

  /** Sets the state (the timed loops keep it in a local and write it back). */
  set state(v: number) {
    if ((v | 0) === 0) throw new RangeError(`XorShift32.state: must be a non-zero uint32, got ${v}`);
    this.s = v | 0;
  }

  /** Next value, a uint32 in [1, 2^32). */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return x >>> 0;
  }

  /**
   * `next() % m`, exactly, for 1 <= m < 2^31. A uint32 above 2^31 makes V8 compute `%` in
   * floating point through a C call (~9 ns here, half the budget of an allocation); for
   * m <= 32768 this splits the value into 16-bit halves so every step is an int32 operation:
   * x % m == (((x >>> 16) % m) * 65536 + (x & 0xffff)) % m.
   */
  below(m: number): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    if (m <= 32768) return ((((x >>> 16) % m) << 16) | (x & 0xffff)) % m;
    return (x >>> 0) % m;
  }
}

const GOLDEN_GAMMA = 0x9e3779b9;

/** Seed of thread `t`: `seed + t * 0x9E3779B9 (mod 2^32)`, with 0 replaced by 1. */
export function threadSeed(seed: number, t: number): number {
  const s = ((seed >>> 0) + Math.imul(t, GOLDEN_GAMMA)) >>> 0;
  return s === 0 ? 1 : s;
}

/** A generator seeded for thread `t` by {@link threadSeed}. */
export function threadRng(seed: number, t: number): XorShift32 {
  return new XorShift32(threadSeed(seed, t));
}

// ---------------------------------------------------------------------------
// W1 random_mixed and W2 mid_large: the slot loop

/** Sizes drawn by W1: 16..1040 bytes inclusive. */
export const W1_MIN_SIZE = 16;
export const W1_SIZE_SPAN = 1025;
/** Sizes drawn by W2: 8192..32768 bytes inclusive. */
export const W2_MIN_SIZE = 8192;
export const W2_SIZE_SPAN = 24577;
/** Sizes drawn by W3: 8..1000 bytes inclusive. */
export const W3_MIN_SIZE = 8;
export const W3_SIZE_SPAN = 993;

export interface W1Options {
  /** Cycles, each one malloc or one free (default 10,000,000). */
  cycles?: number;
  /** Working-set slots (default 4096). */
  ws?: number;
  /** Seed (default 1234567). */
  seed?: number;
}

export interface W2Options {
  /** Cycles of this thread (default 1,000,000). */
  cycles?: number;
  /** Working-set slots of this thread (default 2048). */
  ws?: number;
  /** Seed shared by all threads (default 42); thread `thread` uses threadSeed(seed, thread). */
  seed?: number;
  /** 0-based index of this thread (default 0). */
  thread?: number;
}

export const W1_DEFAULTS = { cycles: 10_000_000, ws: 4096, seed: 1234567 } as const;
export const W2_DEFAULTS = { threads: 2, cycles: 1_000_000, ws: 2048, seed: 42 } as const;
export const W3_DEFAULTS = { threads: 2, chunks: 1000, rounds: 100, opsPerRound: 10_000, seed: 4141 } as const;

/**
 * Blocks a slot loop left live, to be freed (untimed) by {@link slotCleanup}.
 * Slot i is empty when `slots[i] === 0`; otherwise `sizes[i]` is its
 * requested size and `tags[i]` the marker byte written at both ends.
 */
export interface SlotState {
  readonly workload: string;
  readonly slots: Int32Array;
  readonly sizes: Int32Array;
  readonly tags: Uint8Array;
}

/** The result of a slot loop (W1, or one W2 thread) together with what it left live. */
export interface SlotRun extends SlotState {
  readonly result: WorkloadResult;
}

/** The slow paths of the timed loops, passed in so that the loops stay self-contained. */
export interface LoopFailures {
  corrupted(workload: string, i: number, p: number, size: number, tag: number, b0: number, b1: number): never;
  outOfMemory(workload: string, i: number, size: number): never;
}

/** The failures of this module's loops (WorkloadCorruptionError, WorkloadOutOfMemoryError). */
export const LOOP_FAILURES: LoopFailures = { corrupted, outOfMemory };

/** The signature of {@link slotLoop} (and of its per-allocator copies). */
export type SlotLoop = typeof slotLoop;

/**
 * W1 random_mixed, timed part. Free what it leaves with {@link slotCleanup}.
 * `loop` is {@link slotLoop} or a copy of it compiled for this allocator.
 */
export function w1(alloc: Allocator, opts: W1Options = {}, loop: SlotLoop = slotLoop): SlotRun {
  const cycles = opts.cycles ?? W1_DEFAULTS.cycles;
  const ws = opts.ws ?? W1_DEFAULTS.ws;
  const seed = opts.seed ?? W1_DEFAULTS.seed;
  checkSlotParams('W1', cycles, ws);
  return loop(alloc, 'W1', new XorShift32(seed), cycles, ws, W1_MIN_SIZE, W1_SIZE_SPAN, LOOP_FAILURES);
}

/** One thread of W2 mid_large, timed part. Free what it leaves with {@link slotCleanup}. */
export function w2(alloc: Allocator, opts: W2Options = {}, loop: SlotLoop = slotLoop): SlotRun {
  const cycles = opts.cycles ?? W2_DEFAULTS.cycles;
  const ws = opts.ws ?? W2_DEFAULTS.ws;
  const seed = opts.seed ?? W2_DEFAULTS.seed;
  const thread = opts.thread ?? 0;
  checkSlotParams('W2', cycles, ws);
  return loop(alloc, 'W2', threadRng(seed, thread), cycles, ws, W2_MIN_SIZE, W2_SIZE_SPAN, LOOP_FAILURES);
}

function checkSlotParams(workload: string, cycles: number, ws: number): void {
  checkCount(workload, 'cycles', cycles, 0);
  checkCount(workload, 'ws', ws, 1);
  if (ws > 0x7fff_ffff) throw new RangeError(`${workload}: ws must be below 2^31, got ${ws}`);
}

/**
 * The W1 loop: `cycles` times pick a slot; free it if full, else fill it
 * with `malloc(minSize + next() % sizeSpan)` and write `i & 0xff` at both
 * ends. Before each free both ends are checked. Self-contained (see the
 * module comment): `next() % m` is {@link XorShift32.below} written out on
 * a local state. The caller checks the parameters (cycles >= 0, ws >= 1).
 */
export function slotLoop(
  alloc: Allocator,
  workload: string,
  rng: XorShift32,
  cycles: number,
  ws: number,
  minSize: number,
  sizeSpan: number,
  fail: LoopFailures,
): SlotRun {
  const slots = new Int32Array(ws);
  const sizes = new Int32Array(ws);
  const tags = new Uint8Array(ws);
  let u8 = alloc.u8;
  let x = rng.state | 0;
  let mallocs = 0;
  // The bytes requested, as two int32s: below 2^30, and units of 2^30. One number would pass
  // 2^31 within a run (W1 requests 2.6 GB), and V8 kept that sum in a heap number it made anew
  // at every malloc: a scavenge every 8 ms of W1, charged to every JavaScript allocator and to
  // no native one, and after each native run's fork (which leaves the pages of the young
  // generation copy-on-write) a page fault per young-generation page written again.
  let bytesLow = 0;
  let bytesHigh = 0;
  let checksum = 0;
  let live = 0;
  let peakLive = 0;

  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const idx = ws <= 32768 ? ((((x >>> 16) % ws) << 16) | (x & 0xffff)) % ws : (x >>> 0) % ws;
    const p = slots[idx]!;
    if (p !== 0) {
      const size = sizes[idx]!;
      const tag = tags[idx]!;
      const b0 = u8[p]!;
      const b1 = u8[p + size - 1]!;
      if (b0 !== tag || b1 !== tag) fail.corrupted(workload, i, p, size, tag, b0, b1);
      checksum = (checksum + b0 + b1) | 0; // int32 here (a uint32 above 2^31 would deoptimize the loop), uint32 at the end
      alloc.free(p);
      slots[idx] = 0;
      live -= size;
    } else {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const size =
        minSize + (sizeSpan <= 32768 ? ((((x >>> 16) % sizeSpan) << 16) | (x & 0xffff)) % sizeSpan : (x >>> 0) % sizeSpan);
      const q = alloc.malloc(size);
      if (q === 0) fail.outOfMemory(workload, i, size);
      if (q + size > u8.length) u8 = alloc.u8; // the heap grew
      const tag = i & 0xff;
      u8[q] = tag;
      u8[q + size - 1] = tag;
      slots[idx] = q;
      sizes[idx] = size;
      tags[idx] = tag;
      mallocs++;
      // The carry without a branch: a branch first taken when the sum passes 2^30 (mid-way
      // through W1's first run) had no type feedback when V8 compiled the loop, and threw the
      // cold run's optimized loop away there (--trace-deopt), every JavaScript allocator's alike.
      bytesLow += size; // size < 2^30: one carry at most
      bytesHigh += bytesLow >>> 30;
      bytesLow &= 0x3fff_ffff;
      live += size;
      if (live > peakLive) peakLive = live;
    }
  }
  const elapsedNs = Math.round((performance.now() - t0) * 1e6);
  rng.state = x >>> 0;
  const bytesRequested = bytesHigh * 0x4000_0000 + bytesLow;

  return {
    workload,
    slots,
    sizes,
    tags,
    result: { ops: cycles, mallocs, bytesRequested, checksum: checksum >>> 0, peakLiveBytes: peakLive, elapsedNs },
  };
}

/** Untimed cleanup of a slot loop: checks and frees every live block, leaving all slots empty. */
export function slotCleanup(alloc: Allocator, state: SlotState): void {
  const { workload, slots, sizes, tags } = state;
  const u8 = alloc.u8;
  for (let idx = 0; idx < slots.length; idx++) {
    const p = slots[idx]!;
    if (p === 0) continue;
    const size = sizes[idx]!;
    const tag = tags[idx]!;
    const b0 = u8[p]!;
    const b1 = u8[p + size - 1]!;
    if (b0 !== tag || b1 !== tag) corrupted(`${workload} cleanup`, idx, p, size, tag, b0, b1);
    alloc.free(p);
    slots[idx] = 0;
  }
}

// ---------------------------------------------------------------------------
// W3 larson

/**
 * A W3 array of `chunks` blocks, laid out in one Int32Array of `2 * chunks`
 * words so that it can live in a SharedArrayBuffer and be handed to another
 * thread as a whole: words `[0, chunks)` are the block offsets, words
 * `[chunks, 2 * chunks)` their requested sizes. The byte at each block's
 * start is its size's low byte (`size & 0xff`), checked before it is freed.
 */
export type LarsonBlocks = Int32Array;

/** Number of blocks in a {@link LarsonBlocks} array. */
export function larsonChunks(blocks: LarsonBlocks): number {
  return blocks.length >>> 1;
}

/** Live requested bytes held in a {@link LarsonBlocks} array. */
export function larsonLiveBytes(blocks: LarsonBlocks): number {
  const chunks = blocks.length >>> 1;
  let live = 0;
  for (let k = 0; k < chunks; k++) live += blocks[chunks + k]!;
  return live;
}

/** A fresh tally to accumulate W3 parts into. */
export function emptyResult(): WorkloadResult {
  return { ops: 0, mallocs: 0, bytesRequested: 0, checksum: 0, peakLiveBytes: 0, elapsedNs: 0 };
}

/**
 * W3 setup (untimed): fill a thread's own array with `chunks` blocks of
 * `8 + next() % 993` bytes, drawing from the thread's generator before
 * round 0. Adds its mallocs and bytes to `tally` if given (the reference
 * counts of W3 include the fill). `blocks`, if given, must hold `2 * chunks`
 * words (e.g. a view of a SharedArrayBuffer).
 */
export function larsonFill(
  alloc: Allocator,
  rng: XorShift32,
  chunks: number,
  blocks: LarsonBlocks = new Int32Array(2 * chunks),
  tally?: WorkloadResult,
): LarsonBlocks {
  checkCount('W3', 'chunks', chunks, 1);
  if (blocks.length !== 2 * chunks) {
    throw new RangeError(`larsonFill(blocks): expected ${2 * chunks} words for ${chunks} chunks, got ${blocks.length}`);
  }
  const u8 = alloc.u8;
  let bytes = 0;
  for (let k = 0; k < chunks; k++) {
    const size = W3_MIN_SIZE + rng.below(W3_SIZE_SPAN);
    const p = alloc.malloc(size);
    if (p === 0) outOfMemory('W3 fill', k, size);
    u8[p] = size & 0xff;
    blocks[k] = p;
    blocks[chunks + k] = size;
    bytes += size;
  }
  if (tally !== undefined) {
    tally.mallocs += chunks;
    tally.bytesRequested += bytes;
    if (bytes > tally.peakLiveBytes) tally.peakLiveBytes = bytes;
  }
  return blocks;
}

/** The signature of {@link larsonRoundLoop} (and of its per-allocator copies). */
export type LarsonRoundLoop = typeof larsonRoundLoop;

/**
 * One W3 round (timed) on the array the calling thread holds now:
 * `opsPerRound` times free a random block and replace it with a new one.
 * Adds to `tally` (created if absent) and returns it: `ops` grows by
 * `2 * opsPerRound`, `peakLiveBytes` is raised to this array's peak during
 * the round, and `elapsedNs` grows by the round's duration. `loop` is
 * {@link larsonRoundLoop} or a copy of it compiled for this allocator.
 */
export function larsonRound(
  alloc: Allocator,
  rng: XorShift32,
  blocks: LarsonBlocks,
  opsPerRound: number,
  tally: WorkloadResult = emptyResult(),
  loop: LarsonRoundLoop = larsonRoundLoop,
): WorkloadResult {
  checkCount('W3', 'opsPerRound', opsPerRound, 0);
  return loop(alloc, rng, blocks, opsPerRound, tally, larsonLiveBytes(blocks), W3_MIN_SIZE, W3_SIZE_SPAN, LOOP_FAILURES);
}

/**
 * The loop of {@link larsonRound}; self-contained (see the module comment).
 * `live` is the array's live requested bytes before the round; sizes are
 * `minSize + next() % sizeSpan`.
 */
export function larsonRoundLoop(
  alloc: Allocator,
  rng: XorShift32,
  blocks: LarsonBlocks,
  opsPerRound: number,
  tally: WorkloadResult,
  live: number,
  minSize: number,
  sizeSpan: number,
  fail: LoopFailures,
): WorkloadResult {
  const chunks = blocks.length >>> 1;
  let u8 = alloc.u8;
  let x = rng.state | 0;
  let peakLive = tally.peakLiveBytes > live ? tally.peakLiveBytes : live;
  let bytesRequested = 0;
  let checksum = tally.checksum | 0; // int32 in the loop (see slotLoop), uint32 in the tally

  const t0 = performance.now();
  for (let i = 0; i < opsPerRound; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const k = chunks <= 32768 ? ((((x >>> 16) % chunks) << 16) | (x & 0xffff)) % chunks : (x >>> 0) % chunks;
    const p = blocks[k]!;
    const oldSize = blocks[chunks + k]!;
    const b0 = u8[p]!;
    if (b0 !== (oldSize & 0xff)) fail.corrupted('W3', i, p, oldSize, oldSize & 0xff, b0, b0);
    checksum = (checksum + b0) | 0;
    alloc.free(p);
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const size =
      minSize + (sizeSpan <= 32768 ? ((((x >>> 16) % sizeSpan) << 16) | (x & 0xffff)) % sizeSpan : (x >>> 0) % sizeSpan);
    const q = alloc.malloc(size);
    if (q === 0) fail.outOfMemory('W3', i, size);
    if (q + size > u8.length) u8 = alloc.u8; // the heap grew
    u8[q] = size & 0xff;
    blocks[k] = q;
    blocks[chunks + k] = size;
    bytesRequested += size;
    live += size - oldSize;
    if (live > peakLive) peakLive = live;
  }
  tally.elapsedNs += Math.round((performance.now() - t0) * 1e6);
  rng.state = x >>> 0;

  tally.ops += 2 * opsPerRound;
  tally.mallocs += opsPerRound;
  tally.bytesRequested += bytesRequested;
  tally.checksum = checksum >>> 0;
  tally.peakLiveBytes = peakLive;
  return tally;
}

/** Untimed W3 cleanup: checks and frees every block of an array and zeroes it. */
export function larsonCleanup(alloc: Allocator, blocks: LarsonBlocks): void {
  const chunks = blocks.length >>> 1;
  const u8 = alloc.u8;
  for (let k = 0; k < chunks; k++) {
    const p = blocks[k]!;
    if (p === 0) continue;
    const size = blocks[chunks + k]!;
    if (u8[p] !== (size & 0xff)) corrupted('W3 cleanup', k, p, size, size & 0xff, u8[p]!, u8[p]!);
    alloc.free(p);
    blocks[k] = 0;
    blocks[chunks + k] = 0;
  }
}

export interface W3Options {
  /** Simulated threads (default 2). */
  threads?: number;
  /** Blocks per thread (default 1000). */
  chunks?: number;
  /** Rounds (default 100). */
  rounds?: number;
  /** Operations per round per thread (default 10,000). */
  opsPerRound?: number;
  /** Seed (default 4141). */
  seed?: number;
}

/** Thread `t` holds array `(t + round) % threads` during `round`: the hand-off rule applied `round` times. */
export function larsonHeld(t: number, round: number, threads: number): number {
  return (t + round) % threads;
}

/**
 * W3 with `threads` threads simulated one after the other in this thread:
 * the same operations per thread and the same hand-offs as the real
 * multi-threaded run, but no concurrency. Returns the summed tally (`mallocs`
 * and `bytesRequested` include the fills; `peakLiveBytes` is the sum of the
 * per-array peaks) and the arrays, to be freed with {@link larsonCleanup}.
 */
export function w3Sequential(alloc: Allocator, opts: W3Options = {}): { result: WorkloadResult; arrays: LarsonBlocks[] } {
  const threads = opts.threads ?? W3_DEFAULTS.threads;
  const chunks = opts.chunks ?? W3_DEFAULTS.chunks;
  const rounds = opts.rounds ?? W3_DEFAULTS.rounds;
  const opsPerRound = opts.opsPerRound ?? W3_DEFAULTS.opsPerRound;
  const seed = opts.seed ?? W3_DEFAULTS.seed;
  checkCount('W3', 'threads', threads, 1);
  checkCount('W3', 'rounds', rounds, 0);

  const rngs: XorShift32[] = [];
  const arrays: LarsonBlocks[] = [];
  const perArray: WorkloadResult[] = [];
  const total = emptyResult();
  for (let t = 0; t < threads; t++) {
    rngs.push(threadRng(seed, t));
    perArray.push(emptyResult());
    arrays.push(larsonFill(alloc, rngs[t]!, chunks, undefined, perArray[t]));
  }
  for (let round = 0; round < rounds; round++) {
    for (let t = 0; t < threads; t++) {
      const a = larsonHeld(t, round, threads);
      larsonRound(alloc, rngs[t]!, arrays[a]!, opsPerRound, perArray[a]);
    }
  }
  for (const r of perArray) {
    total.ops += r.ops;
    total.mallocs += r.mallocs;
    total.bytesRequested += r.bytesRequested;
    total.checksum = (total.checksum + r.checksum) >>> 0;
    total.peakLiveBytes += r.peakLiveBytes;
    total.elapsedNs += r.elapsedNs;
  }
  return { result: total, arrays };
}

// ---------------------------------------------------------------------------
// Slow paths: errors (kept out of the loops so that those stay small)

function checkCount(workload: string, name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${workload}: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

function outOfMemory(workload: string, i: number, size: number): never {
  throw new WorkloadOutOfMemoryError(`${workload}: malloc(${size}) returned 0 (out of memory) at op ${i}`);
}

function corrupted(workload: string, i: number, p: number, size: number, tag: number, b0: number, b1: number): never {
  throw new WorkloadCorruptionError(
    `${workload}: block 0x${p.toString(16)} (size ${size}) was overwritten before free at op ${i}: ` +
      `expected marker ${tag}, found ${b0} at the start and ${b1} at the end`,
  );
}
