/**
 * A slab made on slots that held something before starts with every state byte FREE, whatever
 * the slots' bytes were: the program's data of a large run freed there (all 0xff here), or the
 * state bytes of a slab of another class. (slots.ts initSlab zeroes a slab's state bytes, except
 * on a slot the heap never touched, whose bytes read as zero: its SM_TOUCHED mark.) The slabs are
 * only partly carved, so that the states of blocks never handed out are still the ones initSlab
 * left: check() reads them.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { SLOT_SHIFT, SM_TOUCHED } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';

/** Mallocs of `size` until one lands in [from, to), then `more` more; all of them. */
function fillInto(heap: SharedHeap, size: number, from: number, to: number, more: number): number[] {
  const out: number[] = [];
  let hit = -1;
  for (let k = 0; k < 1_000_000 && (hit < 0 || out.length < hit + more); k++) {
    const p = heap.malloc(size);
    if (p === 0) break;
    out.push(p);
    if (hit < 0 && p >= from && p < to) hit = out.length;
  }
  expect(hit, `no block of ${size} bytes landed in the freed region [${from}, ${to})`).toBeGreaterThan(0);
  return out;
}

describe('a slab made on slots used before starts with clean state bytes', () => {
  it('over a large run full of 0xff, and over slabs of another class', () => {
    const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 4 * MiB, maxThreads: 2 });
    const t = internals(heap);
    const big = heap.malloc(2 * MiB);
    expect(big).toBeGreaterThan(0);
    const end = big + heap.usableSize(big);
    heap.u8.fill(0xff, big, end);
    const slot = big >>> SLOT_SHIFT;
    expect(t.i32[t.metaW(slot) + SM_TOUCHED], 'the run counts as touched').toBeGreaterThan(0);
    heap.free(big);
    heap.flush();

    // 16-byte blocks (a 4 KiB header of state bytes) until the heap runs out or they reach the run's
    // slots: out of memory, the run kept for reuse goes back, and slabs are made there.
    const small = fillInto(heap, 16, big, end, 8);
    expect(checked(heap)).toBe('passes');
    for (const p of small) heap.free(p);
    heap.flush();
    expect(checked(heap)).toBe('passes');

    // Now slabs of another class (48 bytes: a header of another size) over the 16-byte class's old
    // slabs, whose headers held CACHED and ALLOCATED states.
    const other = fillInto(heap, 48, big, end, 8);
    expect(checked(heap)).toBe('passes');
    for (const p of other.slice(0, 50)) heap.free(p);
    expect(() => heap.free(other[0]!), 'a double free is still told').toThrow(/free/);
    for (const p of other.slice(50)) heap.free(p);
    heap.flush();
    expect(checked(heap)).toBe('passes');
    expect(heap.stats().liveBytes).toBe(0);
    heap.detach();
  });
});
