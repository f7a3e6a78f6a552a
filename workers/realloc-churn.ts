/**
 * Large blocks resized by realloc, with their bytes checked: run in workers (heap-worker.ts) and
 * on the main thread at once by test/threads.test.ts, so that in-place resizes, moves and
 * large allocations of several threads meet under the global lock.
 */
import type { SharedHeap } from '../src/index.js';

export interface ChurnResult {
  /** Resizes after which a byte the block kept did not hold its tag. */
  mismatches: number;
  resizes: number;
  /** Resizes that kept the block where it was. */
  inPlace: number;
}

/**
 * `rounds` large blocks (above 128 KiB), each resized six times to random sizes up to 4 MiB (in
 * place where the slots after it are free), a small block allocated between resizes; the first,
 * middle and last bytes a block keeps are checked after every resize, then the whole block is
 * tagged again. Every block is freed before it returns.
 */
export function reallocChurn(h: SharedHeap, seed: number, rounds: number): ChurnResult {
  let x = seed | 0 || 1;
  const next = (m: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % m;
  };
  const LARGE = (128 << 10) + 1;
  let mismatches = 0;
  let resizes = 0;
  let inPlace = 0;
  const small: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const tag = ((seed * 31 + r) & 0xff) | 1;
    let size = LARGE + next(2 << 20);
    let p = h.malloc(size);
    if (p === 0) throw new Error(`reallocChurn: malloc(${size}) returned 0`);
    h.u8.fill(tag, p, p + size);
    for (let k = 0; k < 6; k++) {
      const n = LARGE + next(4 << 20);
      const q = h.realloc(p, n);
      if (q === 0) throw new Error(`reallocChurn: realloc(${p}, ${n}) returned 0`);
      resizes++;
      if (q === p) inPlace++;
      const keep = Math.min(size, n);
      const u8 = h.u8;
      if (u8[q] !== tag || u8[q + (keep >>> 1)] !== tag || u8[q + keep - 1] !== tag) mismatches++;
      u8.fill(tag, q, q + n);
      p = q;
      size = n;
      small.push(h.malloc(16 + next(4000)));
    }
    h.free(p);
    while (small.length > 8) h.free(small.shift()!);
  }
  for (const b of small) h.free(b);
  return { mismatches, resizes, inPlace };
}
