/**
 * A deep magazine's block is taken on a slot no block ever used (pool.ts takeFreshSlab, magazine.ts
 * deepen), and given back at a flush or after three idle looks, when it may serve the program and
 * so counts touched for good. A program that frees and asks again for a batch of 16 KiB blocks,
 * with a flush (or another phase) between batches, gets a new deep magazine each round: until an
 * audit of fragmentation over a long life (2026-12-07), each on a fresh SuperSlab carved for it
 * once the carved ones had no untouched slot left: the footprint grew by 64 KiB a round with
 * nothing live, and a growable heap's buffer with it (1,000 rounds: 1.7 -> 64 MiB, a buffer of
 * 8 -> 78 MiB). Now a deep magazine never carves: the footprint stays flat (2.05 MiB from round
 * 20 to 999 in both variants).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const MiB = 1 << 20;

function round(heap: SharedHeap, between: 'flush' | 'idle'): void {
  const ps: number[] = [];
  for (let i = 0; i < 100; i++) {
    const p = heap.malloc(16000);
    expect(p).toBeGreaterThan(0);
    heap.u8[p] = 1;
    ps.push(p);
  }
  for (const p of ps) heap.free(p);
  if (between === 'flush') heap.flush();
  else {
    // Another phase: 64-byte blocks, whose frees bring the periodic looks that give the idle deep magazine back.
    for (let k = 0; k < 8; k++) {
      const q: number[] = [];
      for (let i = 0; i < 1000; i++) q.push(heap.malloc(64));
      for (const p of q) heap.free(p);
    }
  }
}

describe('16 KiB batches freed and asked for again, round after round', () => {
  for (const between of ['flush', 'idle'] as const) {
    it(`keep a flat footprint (${between} between rounds)`, () => {
      const heap = SharedHeap.create({ initialBytes: 128 * MiB });
      for (let r = 0; r < 20; r++) round(heap, between);
      const fp20 = heap.stats().footprintBytes;
      for (let r = 20; r < 300; r++) round(heap, between);
      const s = heap.stats();
      heap.check();
      expect(s.liveBytes).toBe(0);
      // 280 more rounds of the same batch, nothing live between them: at most 1 MiB more (+17.5 MiB before).
      expect(s.footprintBytes - fp20).toBeLessThan(1 * MiB);
      heap.detach();
    });
  }

  it('do not grow a growable buffer', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 256 * MiB });
    for (let r = 0; r < 20; r++) round(heap, 'flush');
    const buf20 = heap.stats().bufferBytes;
    for (let r = 20; r < 300; r++) round(heap, 'flush');
    const s = heap.stats();
    heap.check();
    expect(s.liveBytes).toBe(0);
    expect(s.bufferBytes).toBe(buf20); // 8 -> 27 MiB over these rounds before
    heap.detach();
  });
});
