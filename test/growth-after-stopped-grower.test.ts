/**
 * A grower stopped right after its buf.grow(), before it bumped G_GEN and stored G_BUFFER_SUPERS
 * (slots.ts growBuffer, the first CP_GROWTH crash point), leaves the buffer longer than the header
 * says, which its reclaim does not change. The next carve takes the room the dead grower made; it
 * grew the buffer by another quarter (an audit of growable heaps, 2026-12-04).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_BUFFER_SUPERS, G_CARVED, SUPER_BYTES } from '../src/layout.js';

const MiB = 1 << 20;

describe('growth after a grower stopped between buf.grow() and its header stores', () => {
  it('the next carve takes the room already grown and does not grow the buffer again', () => {
    const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 64 * MiB, maxThreads: 2 });
    const t = internals(heap);
    const blocks: number[] = [];
    // Carve every SuperSlab of the initial buffer (1 MiB blocks: one SuperSlab each).
    while (Atomics.load(t.i32, G_CARVED) < Atomics.load(t.i32, G_BUFFER_SUPERS)) {
      const p = heap.malloc(MiB);
      expect(p).toBeGreaterThan(0);
      blocks.push(p);
    }
    expect(heap.buffer.byteLength).toBe(4 * MiB);
    // What growBuffer does first for the next carve (4 SuperSlabs, a quarter more: 5), and all a
    // grower stopped at its first CP_GROWTH crash point leaves (its reclaim repairs the slot
    // table, which does not touch G_GEN or G_BUFFER_SUPERS).
    (heap.buffer as unknown as { grow(n: number): void }).grow(5 * MiB);
    expect(Atomics.load(t.i32, G_BUFFER_SUPERS)).toBe(4);
    heap.check();
    // The next carve needs 5 SuperSlabs: the buffer holds them already.
    const p = heap.malloc(MiB);
    expect(p).toBeGreaterThan(0);
    expect(p + MiB).toBeLessThanOrEqual(5 * MiB);
    heap.check();
    expect(Atomics.load(t.i32, G_BUFFER_SUPERS) * SUPER_BYTES).toBe(heap.buffer.byteLength);
    expect(heap.buffer.byteLength).toBe(5 * MiB); // not 6 MiB: no second growth
    expect(heap.stats().bufferBytes).toBe(5 * MiB);
    for (const b of [...blocks, p]) heap.free(b);
    heap.check();
  });
});
