/**
 * Test helper: a realloc on this (main) thread that waits for the global lock while
 * workers/free-while-waited-worker.ts, holding it, frees the block (a double free: the realloc
 * must refuse). Used by test/realloc-small-freed-meanwhile and test/realloc-debug-freed-meanwhile.
 */
import { expect } from 'vitest';
import type { SharedHeap } from '../src/index.js';
import { startWorker } from './remote-heap.js';

/**
 * Fills a 1000-byte block `keep` with 0x5a and `p`'s first `bytes` bytes with 7, starts the worker
 * (it takes the lock, frees p once this thread waits for it, lets the lock go), and calls
 * realloc(p, size) once the worker holds the lock; checks that the worker ran as planned. Returns
 * realloc's result (undefined where it threw), its error, and `keep`.
 */
export async function reallocWhileFreed(heap: SharedHeap, p: number, bytes: number, size: number): Promise<{ got: number | undefined; err: unknown; keep: number }> {
  const keep = heap.malloc(1000);
  heap.u8.fill(0x5a, keep, keep + 1000);
  heap.u8.fill(7, p, p + bytes);
  const ctl = new Int32Array(new SharedArrayBuffer(12));
  const w = startWorker('free-while-waited-worker', { buffer: heap.buffer, ctl, p });
  const exited = new Promise<number>((resolve) => w.once('exit', resolve));
  while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 1));
  let got: number | undefined;
  let err: unknown;
  try {
    got = heap.realloc(p, size);
  } catch (e) {
    err = e;
  }
  expect(await exited).toBe(0);
  expect(Atomics.load(ctl, 0)).toBe(2);
  expect(Atomics.load(ctl, 1), 'the worker saw no waiter for the lock').toBe(0);
  return { got, err, keep };
}
