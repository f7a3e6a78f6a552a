/**
 * calloc and the blocks a refill carves from bytes never handed out (layout.ts ST_CLEAN): it
 * returns them as they are, zero as the buffer made them, without writing them, so a fresh
 * block's pages stay untouched until the program touches them (glibc's calloc does the same with
 * memory fresh from the kernel); every other block it zeroes. In a child process, the kernel's
 * resident size of the buffer shows which were written (test/calloc-resident.ts).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';
import { hex } from '../src/errors.js';
import { internals } from '../src/heap.js';
import { MAG_ENTRY_WORDS, MAG_STATE, SLOT_SHIFT, SM_DATA, SM_STATE, ST_CACHED, ST_CLEAN, ST_FREE } from '../src/layout.js';
import { classOf } from '../src/size-classes.js';
import { MiB, checked, freshHeaps } from './fixtures.js';

const { fresh } = freshHeaps(); // detached after each test

const child = fileURLToPath(new URL('./calloc-resident.ts', import.meta.url));

interface Result { n: number; bytes: number; before: number; afterFresh: number; afterAgain: number; zero: boolean; reused: number }

function run(size: number): Result {
  const out = execFileSync(process.execPath, ['--import', 'tsx', child, String(size)], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, out).toBeDefined();
  return JSON.parse(line!.slice(7)) as Result;
}

describe('calloc of a block never handed out', () => {
  it.each([4096, 60 * 1024])('leaves the pages of fresh %i-byte blocks untouched, and zeroes the same blocks once they were used', (size) => {
    const r = run(size);
    expect(r.bytes).toBeGreaterThanOrEqual(8 * MiB - size);
    // Fresh: their headers and state bytes at most (a page of 4 KiB blocks' slab header per slab).
    expect(r.afterFresh - r.before).toBeLessThan(r.bytes / 16);
    // Freed, then calloc'd again: most are the same blocks, written now (zeroed), and read zero.
    expect(r.reused).toBeGreaterThan(r.n / 2);
    expect(r.afterAgain - r.afterFresh).toBeGreaterThan((r.bytes * r.reused) / r.n / 2);
    expect(r.zero).toBe(true);
  }, 60_000);
});

describe('which blocks are CLEAN', () => {
  /** The state byte of the block on top of the magazine of `size`'s class, and the block. */
  function top(heap: SharedHeap, size: number): { block: number; state: number } {
    const t = internals(heap);
    const topW = t.topW + classOf(size);
    const w = t.i32[topW]! - MAG_ENTRY_WORDS;
    return { block: t.i32[w]!, state: t.bytes[t.i32[w + MAG_STATE]!]! };
  }

  it('a refill carves fresh bytes CLEAN; a block free pushed is CACHED; calloc zeroes it, by its fast path and its slow one', () => {
    const heap = fresh({ initialBytes: 16 * MiB });
    const size = 1000;
    const p = heap.malloc(size); // the refill's first block; the rest wait CLEAN
    const usable = heap.usableSize(p);
    const next = top(heap, size);
    expect(next).toEqual({ block: p + usable, state: ST_CLEAN });
    heap.u8.fill(0xa5, p, p + usable);
    heap.free(p);
    expect(top(heap, size)).toEqual({ block: p, state: ST_CACHED });
    // Fast path: the block free pushed, written before, comes back zeroed.
    expect(heap.calloc(1, size)).toBe(p);
    expect(heap.u8.subarray(p, p + size).every((b) => b === 0)).toBe(true);
    // Then the CLEAN one, as it is.
    expect(heap.calloc(1, size)).toBe(next.block);
    expect(heap.u8.subarray(next.block, next.block + size).every((b) => b === 0)).toBe(true);
    // Slow path (an empty magazine): blocks written, freed and flushed back to their slab (FREE)
    // come back CACHED through the refill, and zeroed.
    const t = internals(heap);
    const cls = classOf(size);
    const written: number[] = [];
    while (t.i32[t.topW + cls]! !== t.magazineBase(cls)) written.push(heap.malloc(size));
    for (const q of [p, next.block, ...written]) heap.u8.fill(0x5a, q, q + usable);
    for (const q of [p, next.block, ...written]) heap.free(q);
    heap.flush();
    expect(t.bytes[t.i32[t.metaW(p >>> SLOT_SHIFT) + SM_STATE]! + (p - t.i32[t.metaW(p >>> SLOT_SHIFT) + SM_DATA]!) / usable]).toBe(ST_FREE);
    expect(t.i32[t.topW + cls]).toBe(t.magazineBase(cls));
    const q = heap.calloc(1, size);
    expect([p, next.block, ...written]).toContain(q);
    expect(heap.u8.subarray(q, q + size).every((b) => b === 0)).toBe(true);
    expect(checked(heap)).toBe('passes');
  });

  it('check() reports a write into a CLEAN block (past the end of the block before it), which calloc would return as it is', () => {
    const heap = fresh({ initialBytes: 16 * MiB });
    const p = heap.malloc(48);
    const usable = heap.usableSize(p);
    const next = top(heap, 48);
    expect(next).toEqual({ block: p + usable, state: ST_CLEAN });
    expect(checked(heap)).toBe('passes');
    heap.u8[p + usable + 5] = 0x33; // six bytes past the end of p
    expect(() => heap.check()).toThrow(HeapCorruptionError);
    expect(checked(heap)).toMatch(new RegExp(`${hex(next.block)} was never handed out \\(CLEAN\\), but its byte at ${hex(next.block + 5)} is 51`));
    heap.u8[p + usable + 5] = 0;
    expect(checked(heap)).toBe('passes');
  });

  it('a slab carved again from bytes used before is CACHED, not CLEAN', () => {
    const heap = fresh({ initialBytes: 16 * MiB });
    const size = 64;
    const ps = Array.from({ length: 300 }, () => heap.malloc(size));
    for (const p of ps) heap.free(p);
    heap.flush(); // the slabs empty, back to the pool
    const p = heap.malloc(size);
    expect(ps).toContain(p);
    const next = top(heap, size);
    expect(ps).toContain(next.block);
    expect(next.state).toBe(ST_CACHED);
    heap.u8[next.block + 8] = 0x77; // as a write by the program before it freed the block
    expect(heap.calloc(1, size)).toBe(next.block);
    expect(heap.u8[next.block + 8]).toBe(0);
    expect(checked(heap)).toBe('passes');
  });
});
