/**
 * LOCK, the lock-storm workload: not one of the reference workloads of
 * shared/workloads.md but a stress whose purpose is to make the global
 * lock's waits visible. Each thread runs the W1 slot loop on its own slots
 * with a size mix that reaches every path that takes the lock:
 *
 *   r = next() % 64
 *   r <  56: size = 16 + next() % 2033          small (16..2048)
 *   r <  62: size = 2049 + next() % 129024      medium (2049..131072, up to MAX_SMALL)
 *   else:    size = 131073 + next() % 917504    large (128 KiB + 1 .. 1 MiB, a run of slab slots)
 *
 * and the harness runs it on a heap with magazines of capacity 1, refills of
 * 1 block and a drain after every free, so nearly every small operation
 * misses its magazine and every large one goes to the pool. Thread t seeds
 * its generator with threadSeed(seed, t) as W2 does.
 *
 * The loop is the same self-checking loop as W1/W2 (markers at both ends,
 * checked before each free); what it leaves live is freed, untimed, with
 * slotCleanup.
 */
import {
  slotCleanup,
  threadRng,
  WorkloadCorruptionError,
  WorkloadOutOfMemoryError,
  type Allocator,
  type SlotRun,
  type SlotState,
} from './workloads.js';

export interface LockStormOptions {
  /** Cycles of this thread, each one malloc or one free (default 200,000). */
  cycles?: number;
  /** Working-set slots of this thread (default 256). */
  ws?: number;
  /** Seed shared by all threads (default 777); thread `thread` uses threadSeed(seed, thread). */
  seed?: number;
  /** 0-based index of this thread (default 0). */
  thread?: number;
}

export const LOCK_DEFAULTS = { cycles: 200_000, ws: 256, seed: 777 } as const;

/** The heap options of a lock storm: magazines that hold one block, refilled one at a time, drained after every free. */
export const LOCK_HEAP_OPTIONS = { magazineCapacity: 1, refillCount: 1, drainInterval: 1 } as const;

/** One thread of the lock storm, timed part. Free what it leaves with {@link lockStormCleanup}. */
export function lockStorm(alloc: Allocator, opts: LockStormOptions = {}): SlotRun {
  const cycles = opts.cycles ?? LOCK_DEFAULTS.cycles;
  const ws = opts.ws ?? LOCK_DEFAULTS.ws;
  const rng = threadRng(opts.seed ?? LOCK_DEFAULTS.seed, opts.thread ?? 0);
  if (!Number.isSafeInteger(cycles) || cycles < 0) throw new RangeError(`LOCK: cycles must be an integer >= 0, got ${cycles}`);
  if (!Number.isSafeInteger(ws) || ws < 1) throw new RangeError(`LOCK: ws must be an integer >= 1, got ${ws}`);
  const slots = new Int32Array(ws);
  const sizes = new Int32Array(ws);
  const tags = new Uint8Array(ws);
  const u8 = alloc.u8;
  let mallocs = 0;
  let bytesRequested = 0;
  let checksum = 0;
  let live = 0;
  let peakLive = 0;

  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    const idx = rng.next() % ws;
    const p = slots[idx]!;
    if (p !== 0) {
      const size = sizes[idx]!;
      const tag = tags[idx]!;
      const b0 = u8[p]!;
      const b1 = u8[p + size - 1]!;
      if (b0 !== tag || b1 !== tag) corrupted(i, p, size, tag, b0, b1);
      checksum = (checksum + b0 + b1) >>> 0;
      alloc.free(p);
      slots[idx] = 0;
      live -= size;
    } else {
      const r = rng.next() % 64;
      const size =
        r < 56 ? 16 + (rng.next() % 2033) : r < 62 ? 2049 + (rng.next() % 129024) : 131073 + (rng.next() % 917504);
      const q = alloc.malloc(size);
      if (q === 0) throw new WorkloadOutOfMemoryError(`LOCK: malloc(${size}) returned 0 (out of memory) at op ${i}`);
      const tag = i & 0xff;
      u8[q] = tag;
      u8[q + size - 1] = tag;
      slots[idx] = q;
      sizes[idx] = size;
      tags[idx] = tag;
      mallocs++;
      bytesRequested += size;
      live += size;
      if (live > peakLive) peakLive = live;
    }
  }
  const elapsedNs = Math.round((performance.now() - t0) * 1e6);
  return {
    workload: 'LOCK',
    slots,
    sizes,
    tags,
    result: { ops: cycles, mallocs, bytesRequested, checksum, peakLiveBytes: peakLive, elapsedNs },
  };
}

/** Untimed cleanup: checks and frees what the storm left live. */
export function lockStormCleanup(alloc: Allocator, state: SlotState): void {
  slotCleanup(alloc, state);
}

function corrupted(i: number, p: number, size: number, tag: number, b0: number, b1: number): never {
  throw new WorkloadCorruptionError(
    `LOCK: block 0x${p.toString(16)} (size ${size}) was overwritten before free at op ${i}: ` +
      `expected marker ${tag}, found ${b0} at the start and ${b1} at the end`,
  );
}
