/**
 * The chaos page's shared tables: what each worker holds (so that the page knows it after the
 * worker died), and the mailbox blocks are handed over through.
 */
import type { SharedMemory } from '../../../src/index.js';

export const X_STOP = 0; // ctl: 1 ends every loop
export const X_HELD = 1; // ctl: a worker holds the global lock and spins (holdLock)
export const X_OPS = 8; // ctl: X_OPS + worker index, operations done
export const CTL_WORDS = 32;

/** A held block: its offset, requested size, pattern seed and state. */
export const E_PTR = 0;
export const E_SIZE = 1;
export const E_SEED = 2;
export const E_STATE = 3;
export const ENTRY_WORDS = 4;
export const ENTRIES = 48; // per worker

export const M_STATE = 0;
export const M_PTR = 1;
export const M_SIZE = 2;
export const M_SEED = 3;
export const MAIL_WORDS = 4;
export const MAIL_SLOTS = 32;

export const S_EMPTY = 0;
export const S_LIVE = 1; // held (by the table's worker; in the mailbox: by nobody yet)
export const S_AMBIGUOUS = 2; // changing: a worker that died here may or may not hold a block

export type ChaosRequest =
  | { cmd: 'ping' }
  | { cmd: 'attachAs'; buffer: SharedArrayBuffer | SharedMemory; threadId: number }
  | {
      cmd: 'loop';
      ctl: Int32Array;
      table: Int32Array;
      mail: Int32Array;
      index: number;
      seed: number;
      largeShare: number;
      closeAt: number; // > 0: self.close() after that many operations
    }
  | { cmd: 'freeAll'; table: Int32Array; index: number }
  | { cmd: 'detach' }
  | { cmd: 'holdLock'; ctl: Int32Array }
  | { cmd: 'reclaimWhenGone'; threadId: number }
  | { cmd: 'spawn' };

export interface ChaosReply {
  ops: number;
  bad: number;
  oom: number;
}

/** A block's byte j: independent of where the block is, so realloc's moves keep it. */
export function byteOf(seed: number, j: number): number {
  return (seed * 31 + (seed >>> 24) + j * 7) & 255;
}

/** A small seeded generator (mulberry32). */
export function mix(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
