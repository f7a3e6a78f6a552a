/** Shared by the single-thread test files: small fresh heaps detached after each test, and a seeded generator. */
import { afterEach } from 'vitest';
import { SharedHeap, type HeapOptions } from '../src/index.js';

export const KiB = 1 << 10;
export const MiB = 1 << 20;

/**
 * Registers an afterEach that detaches every heap made by the returned `fresh` (small by
 * default: 8 MiB, two thread slots) and returns `fresh` and the list (a test that must not
 * detach its heap takes it out of the list).
 */
export function freshHeaps(defaults: HeapOptions = { initialBytes: 8 * MiB, maxThreads: 2 }): {
  fresh: (options?: HeapOptions) => SharedHeap;
  heaps: SharedHeap[];
} {
  const heaps: SharedHeap[] = [];
  afterEach(() => {
    for (const h of heaps.splice(0)) h.detach();
  });
  const fresh = (options: HeapOptions = {}): SharedHeap => {
    const heap = SharedHeap.create({ ...defaults, ...options });
    heaps.push(heap);
    return heap;
  };
  return { fresh, heaps };
}

/** xorshift32, seeded (0 becomes 1). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** check()'s verdict as a value: 'passes', or the message of what it found (to compare in one expect). */
export function checked(heap: SharedHeap): string {
  try {
    heap.check();
    return 'passes';
  } catch (e) {
    return (e as Error).message;
  }
}

/** Frees `blocks` and flushes, then what is wrong: check()'s message, bytes left live; [] when nothing. */
export function freedAndChecked(heap: SharedHeap, blocks: Iterable<number>): string[] {
  for (const p of blocks) heap.free(p);
  heap.flush();
  const out: string[] = [];
  const c = checked(heap);
  if (c !== 'passes') out.push(`check() after freeing all: ${c}`);
  const live = heap.stats().liveBytes;
  if (live !== 0) out.push(`${live} live bytes after freeing all`);
  return out;
}

/**
 * Whether every byte of `u8` in [from, to) is `value`: a plain loop (TypedArray.every calls its
 * callback per byte, which on the megabytes of a large block cost crash-points.test.ts a fifth of its time).
 */
export function allBytes(u8: Uint8Array, from: number, to: number, value: number): boolean {
  for (let i = from; i < to; i++) if (u8[i] !== value) return false;
  return true;
}

/** Waits (polling every 2 ms, the event loop running) until `ok()` holds; throws naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Writes `n` bytes at `p` with a pattern that depends on each byte's place and on `seed`. */
export function fillPattern(heap: SharedHeap, p: number, n: number, seed: number): void {
  const u8 = heap.u8;
  for (let i = 0; i < n; i++) u8[p + i] = (i * 31 + seed) & 0xff;
}

/** The first of the `n` bytes at `p` that does not hold `seed`'s pattern (fillPattern), or -1. */
export function firstWrong(heap: SharedHeap, p: number, n: number, seed: number): number {
  const u8 = heap.u8;
  for (let i = 0; i < n; i++) if (u8[p + i] !== ((i * 31 + seed) & 0xff)) return i;
  return -1;
}

/** A CliIO (bench/cli.ts main) that keeps everything written, stdout and stderr in order, in `text`. */
export function quietIO(): { text: string; isTTY: false; out(s: string): void; err(s: string): void } {
  const io = { text: '', isTTY: false as const, out: (s: string) => void (io.text += s), err: (s: string) => void (io.text += s) };
  return io;
}
