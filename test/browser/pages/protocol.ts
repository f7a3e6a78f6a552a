/**
 * Messages between the browser suite's page (suite.ts) and its module Web Workers (worker.ts),
 * and the shared control words they rendezvous on.
 */
import type { SharedMemory } from '../../../src/index.js';

/** Words of the control Int32Array (its own small SharedArrayBuffer). */
export const C_STOP = 0; // set to 1 to end every loop
export const C_READY = 1; // workers that entered their loop (Atomics.add + notify)
export const C_HELD = 2; // 1 while a worker holds the global lock (holdLock)
export const C_COUNT = 8; // C_COUNT + worker index: iterations done (Atomics.add + notify every CHUNK)
export const CTL_WORDS = 32;
export const CHUNK = 64; // a loop publishes its count every CHUNK iterations

export type Request =
  | { cmd: 'attach'; buffer: SharedArrayBuffer | SharedMemory }
  | { cmd: 'attachAs'; buffer: SharedArrayBuffer | SharedMemory; threadId: number }
  | { cmd: 'ping' }
  | { cmd: 'fill'; sizes: number[]; seed: number }
  | { cmd: 'reallocChain'; sizes: number[]; seed: number }
  | { cmd: 'verifyFree'; blocks: [number, number][]; seed: number }
  | { cmd: 'loop'; ctl: Int32Array; index: number; sizes: number[]; seed: number }
  | { cmd: 'holdAndLoop'; ctl: Int32Array; index: number; hold: number; size: number; seed: number }
  | { cmd: 'holdLock'; ctl: Int32Array; ms: number }
  | { cmd: 'view' }
  | { cmd: 'write'; block: number; size: number; seed: number }
  | { cmd: 'check' }
  | { cmd: 'faultLarge' }
  | { cmd: 'flush' }
  | { cmd: 'detach' };

export interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export interface AttachReply {
  threadId: number;
  lockHeld: boolean;
  lockName: string;
  crossOriginIsolated: boolean;
}

export interface ViewReply {
  u8Length: number;
  byteLength: number;
  bufferBytes: number;
}

export interface ChainReply {
  bad: number;
  hasMemory: boolean;
}

export interface LoopReply {
  ops: number;
  bad: number;
}

/** The byte a test block holds at index j: depends on the block, the seed and j. */
export function pattern(block: number, seed: number, j: number): number {
  return ((block >>> 4) + seed + j * 7) & 255;
}

export function fillBlock(u8: Uint8Array, block: number, size: number, seed: number): void {
  for (let j = 0; j < size; j++) u8[block + j] = pattern(block, seed, j);
}

/** Bytes of the block that do not hold the pattern. */
export function badBytes(u8: Uint8Array, block: number, size: number, seed: number): number {
  let bad = 0;
  for (let j = 0; j < size; j++) if (u8[block + j] !== pattern(block, seed, j)) bad++;
  return bad;
}

/** What reallocChain needs of a heap. */
export interface ReallocHeap {
  malloc(size: number): number;
  calloc(n: number, size: number): number;
  realloc(block: number, size: number): number;
  free(block: number): void;
  readonly u8: Uint8Array;
}

/**
 * Grows one block through `sizes` by realloc and shrinks it back (most steps move it), filling it
 * each time with a pattern that does not depend on where it is; then, for each size, callocs the
 * block just freed after filling it with 0xff (calloc zeroes with memory.fill where the thread
 * has the heap's memory). Returns the bytes a step found changed among those it had to keep,
 * plus the bytes calloc left that were not zero.
 */
export function reallocChain(h: ReallocHeap, sizes: number[], seed: number): number {
  const byte = (j: number): number => (seed + j * 7) & 255;
  let p = h.malloc(1);
  let n = 1;
  h.u8[p] = byte(0);
  let bad = 0;
  for (const size of [...sizes, ...[...sizes].reverse()]) {
    const q = h.realloc(p, size);
    if (q === 0) throw new Error(`reallocChain: realloc(${p}, ${size}) returned 0`);
    const u8 = h.u8;
    for (let j = 0, kept = Math.min(n, size); j < kept; j++) if (u8[q + j] !== byte(j)) bad++;
    for (let j = 0; j < size; j++) u8[q + j] = byte(j);
    p = q;
    n = size;
  }
  h.free(p);
  for (const size of sizes) {
    const d = h.malloc(size);
    h.u8.fill(0xff, d, d + size);
    h.free(d);
    const z = h.calloc(1, size);
    if (z === 0) throw new Error(`reallocChain: calloc(1, ${size}) returned 0`);
    const u8 = h.u8;
    for (let j = 0; j < size; j++) if (u8[z + j] !== 0) bad++;
    h.free(z);
  }
  return bad;
}
