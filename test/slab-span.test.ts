/**
 * Slabs that grow with a thread's demand (size-classes.ts GROWN_BLOCKS, pool.ts noteSlabDemand):
 * classes of a few blocks a slot take slabs of one slot while a thread needs few of them, and
 * larger ones (up to SPAN_MAX slots) while it takes many in a row.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { SLOT_BYTES } from '../src/layout.js';
import { COUNT, COUNT_MAX, SIZE, SPAN, SPAN_MAX, classOf } from '../src/size-classes.js';
import { slabOf } from './inspect.js';

const MiB = 1 << 20;
const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});
function fresh(options: Parameters<typeof SharedHeap.create>[0] = {}): SharedHeap {
  const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 2, ...options });
  heaps.push(heap);
  return heap;
}

function stamp(heap: SharedHeap, p: number, n: number, v: number): void {
  heap.u8[p] = v;
  heap.u8[p + n - 1] = v ^ 0x5a;
}
function stamped(heap: SharedHeap, p: number, n: number, v: number): boolean {
  return heap.u8[p] === v && heap.u8[p + n - 1] === (v ^ 0x5a);
}

describe('slabs that grow with demand', () => {
  it.each([8000, 16384, 40000, 65536])('%i-byte blocks taken in a row: slabs of one slot first, then larger, up to SPAN_MAX; each aligned to its span and holding its count', (size) => {
    const heap = fresh();
    const cls = classOf(size);
    expect(SPAN[cls]).toBe(1);
    expect(SPAN_MAX[cls]).toBeGreaterThan(1);
    const n = 400;
    const blocks = Array.from({ length: n }, () => heap.malloc(size));
    expect(blocks.every((p) => p > 0)).toBe(true);
    blocks.forEach((p, i) => stamp(heap, p, size, i & 0xff));
    const spans = blocks.map((p) => slabOf(heap, p).span);
    expect(spans[0]).toBe(1);
    expect(Math.max(...spans)).toBe(SPAN_MAX[cls]);
    // Where no free run of the span is left in the carved SuperSlabs, a slab of one slot fills a hole
    // before the pool carves another: so not every later slab is larger.
    expect(spans.filter((s) => s > 1).length).toBeGreaterThan(n / 2);
    const perSlab = new Map<number, number>();
    for (const p of blocks) {
      const { head, span } = slabOf(heap, p);
      expect(head % span).toBe(0);
      expect(p).toBeLessThan((head + span) * SLOT_BYTES);
      perSlab.set(head, (perSlab.get(head) ?? 0) + 1);
    }
    // Every slab but the last is full: COUNT blocks a slot at first, more in the grown ones.
    const full = [...perSlab.entries()].slice(0, -1);
    for (const [head, k] of full) {
      const span = slabOf(heap, head * SLOT_BYTES + 0).span;
      expect(k).toBe(span === 1 ? COUNT[cls] : Math.floor((span * SLOT_BYTES) / SIZE[cls]!));
    }
    expect(perSlab.size).toBeLessThan((0.75 * n) / COUNT[cls]!); // at one slot a slab: n / COUNT
    heap.check();
    blocks.forEach((p, i) => expect(stamped(heap, p, size, i & 0xff)).toBe(true));
    for (const p of blocks) heap.free(p);
    heap.flush();
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
    // Taken again from Stage 1 with their spans: no new slab.
    const stages = heap.stats().stages;
    const again = Array.from({ length: n }, () => heap.malloc(size));
    for (const p of again) expect(perSlab.has(slabOf(heap, p).head)).toBe(true);
    expect(heap.stats().stages.stage2 + heap.stats().stages.stage3).toBe(stages.stage2 + stages.stage3);
    for (const p of again) heap.free(p);
    heap.check();
  });

  it('a thread that takes a slab now and then keeps slabs of one slot', () => {
    const heap = fresh({ drainInterval: 16 });
    const size = 16384;
    const cls = classOf(size);
    const kept: number[] = [];
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < COUNT[cls]!; k++) kept.push(heap.malloc(size)); // one new slab
      // Two periodic drains between takes (32 frees of small blocks)
      const small = Array.from({ length: 32 }, () => heap.malloc(64));
      for (const p of small) heap.free(p);
    }
    expect(kept.every((p) => slabOf(heap, p).span === 1)).toBe(true);
    expect(new Set(kept.map((p) => slabOf(heap, p).head)).size).toBe(40);
    heap.check();
  });

  it('a burst after a quiet spell starts again from slabs of one slot', () => {
    const heap = fresh({ drainInterval: 16 });
    const size = 20480;
    const cls = classOf(size);
    const burst = (): number[] => Array.from({ length: 200 }, () => heap.malloc(size));
    const first = burst();
    expect(Math.max(...first.map((p) => slabOf(heap, p).span))).toBe(SPAN_MAX[cls]);
    // Quiet: periodic drains and no slab taken
    for (let k = 0; k < 4; k++) {
      const small = Array.from({ length: 32 }, () => heap.malloc(64));
      for (const p of small) heap.free(p);
    }
    const second = burst();
    const before = new Set(first.map((p) => slabOf(heap, p).head));
    const firstNew = second.find((p) => !before.has(slabOf(heap, p).head))!;
    expect(slabOf(heap, firstNew).span).toBe(1);
    expect(Math.max(...second.map((p) => slabOf(heap, p).span))).toBe(SPAN_MAX[cls]);
    for (const p of [...first, ...second]) heap.free(p);
    heap.flush();
    heap.check();
  });

  it('slabs of different spans of one class share Stage 1 and the blocks of each are handed out exactly once', () => {
    const heap = fresh({ maxThreads: 2 });
    const size = 12288;
    const cls = classOf(size);
    const blocks = Array.from({ length: 8 * COUNT_MAX[cls]! }, () => heap.malloc(size));
    const spans = new Set(blocks.map((p) => slabOf(heap, p).span));
    expect(spans.size).toBeGreaterThan(2);
    for (const p of blocks) heap.free(p);
    heap.flush();
    const again = Array.from({ length: blocks.length }, () => heap.malloc(size));
    expect(new Set(again).size).toBe(again.length);
    again.forEach((p, i) => stamp(heap, p, size, i & 0xff));
    again.forEach((p, i) => expect(stamped(heap, p, size, i & 0xff)).toBe(true));
    heap.check();
    for (const p of again) heap.free(p);
    heap.check();
  });
});
