/**
 * The global pool (src/pool.ts) and the global lock's counters, single thread: scenarios that force
 * each stage and assert its counter, empty slabs going back to Stage 1 and their slots to Stage 2,
 * memory reuse over many rounds, exhaustion and refill, and a growable heap.
 */
import { describe, expect, it } from 'vitest';
import { CLASS_SIZES, DoubleFreeError, SharedHeap } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { G_LARGE_POOLED, PAGE_BYTES, TH_PUSHING, SLOT_SHIFT, SUPER_BYTES, SUPER_SHIFT } from '../src/layout.js';
import { largePoolReserve } from '../src/pool.js';
import { COUNT, SPAN, classOf } from '../src/size-classes.js';
import { KiB, MiB, freshHeaps, rng } from './fixtures.js';

const { fresh, heaps } = freshHeaps();


const slotOf = (p: number): number => p >>> SLOT_SHIFT;
const superOf = (p: number): number => p >>> SUPER_SHIFT;

/** A cheap stamp at both ends of a block, derived from its offset. */
/**
 * Fills `slabs` slabs of the class of `size`, then frees every block (in allocation order) and
 * flushes; returns the blocks and the slabs' slots.
 */
/**
 * `slabs` slabs of `size` filled, then emptied and flushed. `flushEvery`: a flush after every that
 * many slabs' mallocs, so that no refill takes 16 slabs since the last look or flush and the class
 * gets no deep magazine (magazine.ts deepen), whose 64 KiB block would take a slot between them.
 */
function fillThenEmpty(heap: SharedHeap, size: number, slabs: number, flushEvery = 0): { blocks: number[]; slots: Set<number> } {
  const blocks: number[] = [];
  const per = COUNT[classOf(size)];
  for (let i = 0; i < slabs * per; i++) {
    blocks.push(heap.malloc(size));
    if (flushEvery > 0 && (i + 1) % (flushEvery * per) === 0) heap.flush();
  }
  const slots = new Set(blocks.map(slotOf));
  expect(slots.size).toBe(slabs);
  for (const p of blocks) heap.free(p);
  heap.flush();
  heap.check();
  return { blocks, slots };
}

function stamp(heap: SharedHeap, p: number, n: number): void {
  const u8 = heap.u8;
  u8[p] = (p >>> 4) & 0xff;
  if (n > 1) u8[p + n - 1] = (p >>> 12) & 0xff;
}
function stamped(heap: SharedHeap, p: number, n: number): boolean {
  const u8 = heap.u8;
  return u8[p] === ((p >>> 4) & 0xff) && (n <= 1 || u8[p + n - 1] === ((p >>> 12) & 0xff));
}

describe('stages', () => {
  it('Stage 3 carves a fresh SuperSlab for the first slab', () => {
    const heap = fresh();
    const before = heap.stats();
    expect(before.stages).toMatchObject({ stage1: 0, stage2: 0, stage3: 0 });
    expect(before.lock.acquisitions).toBe(0);
    const p = heap.malloc(16);
    heap.check();
    const s = heap.stats();
    expect(s.stages).toMatchObject({ stage1: 0, stage2: 0, stage3: 1 });
    // A SuperSlab, and the metadata pages its slot metas took (a page at most).
    expect(s.carvedBytes - s.metadataBytes).toBe(before.carvedBytes - before.metadataBytes + SUPER_BYTES);
    expect(s.metadataBytes - before.metadataBytes).toBeLessThanOrEqual(PAGE_BYTES);
    expect(s.lock.acquisitions).toBeGreaterThan(0);
    expect(s.lock.contended).toBe(0);
    expect(s.lock.waits).toBe(0);
    expect(superOf(p)).toBe(internals(heap).geo.metaSupers); // the first SuperSlab after the metadata
    heap.free(p);
    heap.check();
  });

  it('Stage 2 gives a second class a slab in the same SuperSlab (multi-class sharing)', () => {
    const heap = fresh();
    const a = heap.malloc(16);
    const acq = heap.stats().lock.acquisitions;
    const b = heap.malloc(1000);
    const c = heap.malloc(5000);
    heap.check();
    const s = heap.stats();
    expect(s.stages).toMatchObject({ stage1: 0, stage2: 2, stage3: 1 });
    expect(s.lock.acquisitions).toBeGreaterThan(acq);
    expect(superOf(b)).toBe(superOf(a));
    expect(superOf(c)).toBe(superOf(a));
    expect(new Set([slotOf(a), slotOf(b), slotOf(c)]).size).toBe(3);
    for (const p of [a, b, c]) heap.free(p);
    heap.check();
  });

  it('Stage 3 again once the SuperSlab is full, Stage 2 inside the new one', () => {
    const heap = fresh();
    const cls = classOf(4096);
    const perSlab = COUNT[cls];
    const slabsPerSuper = 16 / SPAN[cls];
    const blocks: number[] = [];
    for (let i = 0; i < perSlab * slabsPerSuper + 1; i++) blocks.push(heap.malloc(4096));
    heap.check();
    const s = heap.stats();
    expect(s.stages.stage3).toBe(2);
    expect(s.stages.stage2).toBe(slabsPerSuper - 1);
    expect(superOf(blocks[blocks.length - 1])).toBe(superOf(blocks[0]) + 1);
    for (const p of blocks) heap.free(p);
    heap.check();
  });

  it('Stage 1: a slab whose blocks are all freed (and flushed) is reused by its class without the lock', () => {
    const heap = fresh();
    const blocks: number[] = [];
    for (let i = 0; i < 100; i++) blocks.push(heap.malloc(16));
    const slab = slotOf(blocks[0]);
    expect(blocks.every((p) => slotOf(p) === slab)).toBe(true);
    for (const p of blocks) heap.free(p);
    heap.flush();
    heap.check();
    let s = heap.stats();
    expect(s.stages.stage1Pushes).toBe(1);
    expect(s.classes[classOf(16)].stage1Slabs).toBe(1);
    const stage23 = s.stages.stage2 + s.stages.stage3;
    const acq = s.lock.acquisitions;
    const p = heap.malloc(16);
    heap.check();
    s = heap.stats();
    expect(s.stages.stage1).toBe(1);
    expect(s.stages.stage2 + s.stages.stage3).toBe(stage23);
    expect(s.lock.acquisitions).toBe(acq); // Stage 1 is lock-free
    expect(s.classes[classOf(16)].stage1Slabs).toBe(0);
    expect(slotOf(p)).toBe(slab);
    heap.free(p);
    heap.check();
  });

  it('Stage 1 also without flush(): the periodic drain empties the slab', () => {
    const heap = fresh({ drainInterval: 64 });
    const blocks: number[] = [];
    for (let i = 0; i < 200; i++) blocks.push(heap.malloc(48));
    for (const p of blocks) heap.free(p);
    heap.check();
    for (let i = 0; i < 200; i++) heap.free(heap.malloc(2000)); // other classes keep going
    heap.check();
    expect(heap.stats().stages.stage1Pushes).toBeGreaterThanOrEqual(1);
  });

  it('a class keeps stage1Keep empty slabs; further empty slabs give their slots back to Stage 2, where another class takes them', () => {
    const heap = fresh({ stage1Keep: 1 });
    const cls = classOf(4096);
    expect(SPAN[cls]).toBe(1);
    const slabs = fillThenEmpty(heap, 4096, 3).slots;
    let s = heap.stats();
    expect(s.classes[cls].stage1Slabs).toBe(1);
    expect(s.stages.stage1Pushes).toBe(1);
    expect(s.stages.slotsReturned).toBe(2);
    const stage2 = s.stages.stage2;
    const stage3 = s.stages.stage3;
    // another class now takes one of the returned slots
    const q = heap.malloc(2048);
    heap.check();
    s = heap.stats();
    expect(s.stages.stage2).toBe(stage2 + 1);
    expect(s.stages.stage3).toBe(stage3);
    expect(slabs.has(slotOf(q))).toBe(true);
    // and the class of 4096 gets its kept slab back from Stage 1
    const r = heap.malloc(4096);
    expect(heap.stats().stages.stage1).toBe(1);
    expect(slabs.has(slotOf(r))).toBe(true);
    expect(slotOf(r)).not.toBe(slotOf(q));
    heap.free(q);
    heap.free(r);
    heap.check();
  });

  it.each([0, 3, 5])('with stage1Keep %i, a class keeps that many of 6 empty slabs and returns the rest to Stage 2', (keep) => {
    const heap = fresh({ stage1Keep: keep });
    const cls = classOf(4096);
    fillThenEmpty(heap, 4096, 6);
    const s = heap.stats();
    expect(s.classes[cls].stage1Slabs).toBe(keep);
    expect(s.stages.stage1Pushes).toBe(keep);
    expect(s.stages.slotsReturned).toBe((6 - keep) * SPAN[cls]);
  });

  it('with the default stage1Keep, 48 empty slabs wait in Stage 1, and give their slots to other classes and a large run before the pool carves a SuperSlab', () => {
    const heap = fresh({ initialBytes: 8 * MiB, maxBytes: 64 * MiB }); // growable
    const cls = classOf(16384);
    expect(SPAN[cls]).toBe(1);
    const slabs = fillThenEmpty(heap, 16384, 48, 12).slots; // three SuperSlabs' slots
    let s = heap.stats();
    expect(s.classes[cls].stage1Slabs).toBe(48); // more than the 32 kept before 1024 became the default
    expect(s.stages.slotsReturned).toBe(0);
    const carved = s.carvedBytes;
    const footprint = s.peakFootprintBytes;
    // Another class fills those slots, then a large run of 16 slots takes a SuperSlab's worth.
    const other: number[] = [];
    for (let i = 0; i < 32 * COUNT[classOf(1000)]; i++) other.push(heap.malloc(1000));
    const big = heap.malloc(SUPER_BYTES);
    expect(big).toBeGreaterThan(0);
    heap.check();
    s = heap.stats();
    expect(s.carvedBytes).toBe(carved);
    expect(s.peakFootprintBytes).toBe(footprint);
    expect(s.classes[cls].stage1Slabs).toBe(0);
    expect([...other, big].every((p) => slabs.has(slotOf(p)))).toBe(true);
    for (const p of other) heap.free(p);
    heap.free(big);
    heap.check();
  });

  it('an empty slab goes to Stage 1 without its free list: taken again, it hands its blocks out in address order, and a second free of one of them is still a double free', () => {
    const heap = fresh();
    const cls = classOf(16384);
    // Freed in address order: a free list would hand them back in reverse.
    const first = fillThenEmpty(heap, 16384, 2).blocks;
    expect(heap.stats().classes[cls].stage1Slabs).toBe(2);
    for (const p of [first[0], first[first.length - 1]]) {
      expect(() => heap.free(p)).toThrow(DoubleFreeError);
    }
    heap.check();
    const again: number[] = [];
    for (let i = 0; i < 2 * COUNT[cls]; i++) again.push(heap.malloc(16384));
    expect(heap.stats().stages.stage1).toBe(2);
    expect(new Set(again)).toEqual(new Set(first));
    for (const slab of new Set(again.map(slotOf))) {
      const inSlab = again.filter((p) => slotOf(p) === slab);
      expect(inSlab).toEqual([...inSlab].sort((a, b) => a - b));
    }
    for (const p of again) heap.free(p);
    heap.check();
  });

  it('a SuperSlab whose slots are all free again serves any class or a large run (no new carve)', () => {
    const heap = fresh({ initialBytes: 4 * MiB, stage1Keep: 0 });
    const cls = classOf(1000);
    const blocks: number[] = [];
    for (let i = 0; i < 16 * COUNT[cls]; i++) blocks.push(heap.malloc(1000)); // one whole SuperSlab
    expect(new Set(blocks.map(superOf)).size).toBe(1);
    const footprint = heap.stats().footprintBytes;
    for (const p of blocks) heap.free(p);
    heap.flush();
    heap.check();
    expect(heap.stats().stages.slotsReturned).toBe(16);
    const big = heap.malloc(SUPER_BYTES); // a whole SuperSlab
    expect(superOf(big)).toBe(superOf(blocks[0]));
    expect(heap.stats().footprintBytes).toBe(footprint);
    heap.free(big);
    heap.check();
  });

  it('with stage1Keep 0, large runs take slots from Stage 2 and give them back', () => {
    const heap = fresh({ stage1Keep: 0 });
    const small = heap.malloc(100);
    const big = heap.malloc(200 << 10); // 4 slots
    expect(superOf(big)).toBe(superOf(small)); // in the SuperSlab already in use
    const returned = heap.stats().stages.slotsReturned;
    heap.free(big);
    heap.check();
    expect(heap.stats().stages.slotsReturned).toBe(returned + 4);
    const again = heap.malloc(200 << 10);
    expect(again).toBe(big);
    heap.free(again);
    heap.free(small);
    heap.check();
  });
});

describe('large-run lists', () => {
  it('a freed large run waits in its span\'s list and the next allocation of that span takes it without the lock', () => {
    const heap = fresh();
    const small = heap.malloc(100);
    const big = heap.malloc(200 << 10); // 4 slots
    const other = heap.malloc(300 << 10); // 5 slots
    heap.u8.fill(7, big, big + 1000);
    const before = heap.stats();
    heap.free(big);
    heap.check();
    let s = heap.stats();
    expect(s.stages.slotsReturned).toBe(before.stages.slotsReturned);
    expect(s.largePooledBytes).toBe(4 * 65536);
    expect(s.largeLiveBytes).toBe(5 * 65536);
    expect(s.lock.acquisitions).toBe(before.lock.acquisitions);
    expect(() => heap.free(big)).toThrow(DoubleFreeError);
    expect(() => heap.usableSize(big)).toThrow(DoubleFreeError);
    const again = heap.calloc(1, 250 << 10); // 4 slots: the pooled run, zeroed
    expect(again).toBe(big);
    expect(heap.u8.subarray(again, again + 1000).every((b) => b === 0)).toBe(true);
    s = heap.stats();
    expect(s.largePooledBytes).toBe(0);
    expect(s.lock.acquisitions).toBe(before.lock.acquisitions);
    heap.check();
    // A run taken under the lock gives the pooled runs back first (no new page touched while they wait).
    heap.free(again);
    expect(heap.stats().largePooledBytes).toBe(4 * 65536);
    const third = heap.malloc(600 << 10); // 10 slots
    expect(heap.stats().largePooledBytes).toBe(0);
    heap.free(third);
    heap.free(other);
    heap.free(small);
    heap.check();
  });

  it('the large-run lists keep 32 slots of runs in all, a span\'s list at most stage1Keep runs; the others give their slots back', () => {
    for (const [keepOption, span, kept] of [[1024, 4, 8], [1024, 20, 1], [3, 4, 3], [0, 4, 0]] as const) {
      const heap = fresh({ initialBytes: 64 * MiB, stage1Keep: keepOption });
      const runs = Array.from({ length: 10 }, () => heap.malloc(span * 65536 - 1000));
      for (const p of runs) heap.free(p);
      heap.check();
      expect(heap.stats().largePooledBytes, `stage1Keep ${keepOption}, span ${span}`).toBe(kept * span * 65536);
    }
  });

  it('a free that passes the keep test has reserved its slots: two frees under way cannot both overshoot the budget', () => {
    // Two threads freeing at once each test the budget before either pushes; the test reserves, so
    // the second sees the first's slots. (Before: both saw room and the lists held 34 of 32 slots.)
    const heap = fresh({ initialBytes: 64 * MiB });
    const t = internals(heap);
    const runs = Array.from({ length: 3 }, () => heap.malloc(10 * 65536 - 1000)); // 10 slots each
    const big = heap.malloc(11 * 65536 - 1000); // 11 slots
    const other = heap.malloc(11 * 65536 - 1000);
    for (const p of runs) heap.free(p); // 30 of 32 slots kept
    expect(heap.stats().largePooledBytes).toBe(30 * 65536);
    heap.free(big); // 41 > 32: given back
    expect(heap.stats().largePooledBytes).toBe(30 * 65536);
    heap.malloc(10 * 65536 - 1000); // 20 kept: room for one run of 11 slots, not two
    const head = other >>> SLOT_SHIFT;
    expect(largePoolReserve(t, head, 11)).toBe(true); // a free under way, not yet pushed
    expect(largePoolReserve(t, head, 11)).toBe(false); // another thread's free, at the same moment
    expect(largePoolReserve(t, head, 1)).toBe(true); // 20 + 11 + 1 = 32
    Atomics.sub(t.i32, G_LARGE_POOLED, 12); // neither push happens: the reservations taken back
    t.i32[t.thW + TH_PUSHING] = 0;
    heap.free(other);
    expect(heap.stats().largePooledBytes).toBe(31 * 65536);
    heap.check();
  });

  it('pooled runs give their slots back before the heap grows', () => {
    const heap = fresh({ initialBytes: 4 * MiB, maxBytes: 4 * MiB });
    const a = heap.malloc(600 << 10); // 10 slots
    heap.free(a);
    expect(heap.stats().largePooledBytes).toBe(10 * 65536);
    const b = heap.malloc(900 << 10); // 15 slots: the heap has room for them only where the pooled run is
    expect(b).not.toBe(0);
    expect(heap.stats().largePooledBytes).toBe(0);
    heap.free(b);
    heap.check();
  });
});

describe('memory reuse', () => {
  it('100 rounds of "allocate 100,000 mixed blocks (16..1040 bytes), free them all, flush" keep the footprint of round 1', () => {
    const heap = fresh({ initialBytes: 96 * MiB });
    const n = 100_000;
    const rounds = 100;
    const blocks = new Int32Array(n);
    const sizes = new Int32Array(n);
    const footprints: number[] = []; // carved bytes: exactly those of round 1
    const touched: number[] = []; // resident bytes: a little more at first (blocks come back in another order)
    const t0 = performance.now();
    for (let round = 0; round < rounds; round++) {
      // the same sizes every round (so every round needs the same memory), freed in a different order
      const next = rng(20240601);
      for (let i = 0; i < n; i++) {
        const size = 16 + (next() % 1025);
        const p = heap.malloc(size);
        if (p === 0) throw new Error(`round ${round}: out of memory at block ${i}`);
        stamp(heap, p, size);
        blocks[i] = p;
        sizes[i] = size;
      }
      // free in a different order each round (a stride coprime to n) after checking the stamps
      const stride = [1, 3, 7, 9, 11, 13, 17][round % 7];
      for (let k = 0, i = round % n; k < n; k++, i = (i + stride * 7919) % n) {
        if (!stamped(heap, blocks[i], sizes[i])) throw new Error(`round ${round}: block ${blocks[i]} was overwritten`);
        heap.free(blocks[i]);
        blocks[i] = 0;
      }
      heap.flush();
      footprints.push(heap.stats().carvedBytes);
      touched.push(heap.stats().footprintBytes);
      if (round % 10 === 0 || round === rounds - 1) {
        heap.check();
        expect(heap.stats().liveBlocks).toBe(0);
      }
    }
    const ms = performance.now() - t0;
    expect(blocks.every((p) => p === 0)).toBe(true); // the stride visited every block
    const differ = footprints.map((f, r) => [r + 1, f / MiB]).filter(([, f]) => f !== footprints[0] / MiB);
    expect(differ, `rounds whose footprint (MiB) differs from round 1's ${footprints[0] / MiB} MiB`).toEqual([]);
    expect(heap.stats().peakCarvedBytes).toBe(footprints[0]);
    expect(Math.max(...touched), `resident bytes of rounds 1..${rounds} (MiB): ${touched.map((f) => (f / MiB).toFixed(2)).join(' ')}`).toBeLessThan(touched[0]! * 1.02);
    expect(touched[rounds - 1]).toBe(touched[rounds - 11]); // and no longer growing
    // 2 * 10^7 malloc/free calls; report how long they took when running verbosely
    if (process.env.POOL_VERBOSE) console.log(`memory reuse: ${rounds} x ${n} in ${ms.toFixed(0)} ms`);
  });
});

describe('exhaustion', () => {
  const fillUntilFull = (heap: SharedHeap, sizeOf: (i: number) => number, limit: number): number[] => {
    const blocks: number[] = [];
    for (let i = 0; i < limit; i++) {
      const size = sizeOf(i);
      const p = heap.malloc(size); // must return 0, never throw
      if (p === 0) break;
      stamp(heap, p, size);
      blocks.push(p);
    }
    return blocks;
  };

  const patterns: Array<{ name: string; sizeOf: (i: number) => number }> = [
    { name: 'fixed 100-byte blocks', sizeOf: () => 100 },
    { name: '16-byte blocks', sizeOf: () => 16 },
    { name: 'mixed 1..4096-byte blocks', sizeOf: (i) => 1 + ((Math.imul(i, 0x9e3779b1) >>> 0) % 4096) },
    { name: 'mixed 8..32 KiB blocks', sizeOf: (i) => 8192 + ((Math.imul(i, 0x9e3779b1) >>> 0) % 24577) },
    {
      name: 'mixed small and large blocks',
      sizeOf: (i) => ((Math.imul(i, 0x85ebca6b) >>> 0) % 50 === 0 ? 150_000 + (i % 7) * 50_000 : 1 + (i % 2000)),
    },
  ];

  it.each(patterns)('$name: fill until malloc returns 0, check, free all, refill to >= 99%', ({ sizeOf }) => {
    // 7 SuperSlabs of blocks: 112 slab slots, enough for a slab of each of the 64 classes and more
    // (a 3 MiB heap has fewer slots than the 36 classes up to 4 KiB have slabs and magazines).
    const heap = fresh({ initialBytes: 8 * MiB });
    const first = fillUntilFull(heap, sizeOf, 1e6);
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(1e6);
    heap.check();
    expect(heap.stats().liveBytes).toBeGreaterThan(3.5 * MiB); // at least half of the 7 MiB of blocks
    expect(new Set(first).size).toBe(first.length);
    for (let i = 0; i < first.length; i++) {
      if (!stamped(heap, first[i], sizeOf(i))) throw new Error(`block ${i} overwritten`);
      heap.free(first[i]);
    }
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    expect(heap.stats().largeLiveBytes).toBe(0);
    const second = fillUntilFull(heap, sizeOf, 1e6);
    heap.check();
    expect(second.length).toBeGreaterThanOrEqual(Math.ceil(0.99 * first.length));
    for (const p of second) heap.free(p);
    heap.check();
  });

  it('once every block is freed (and flushed), the whole heap serves one large block', () => {
    const heap = fresh({ initialBytes: 4 * MiB }); // 3 SuperSlabs of blocks
    const blocks = fillUntilFull(heap, () => 2000, 1e6);
    for (let i = 0; i < blocks.length; i++) heap.free(blocks[i]);
    heap.flush();
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    const big = heap.malloc(3 * MiB);
    expect(big, 'malloc(3 MiB) in an empty heap with 3 MiB of blocks').toBeGreaterThan(0);
    heap.free(big);
    heap.check();
  });

  it('once every block of one class is freed (and flushed), another class refills to >= 99% of a fresh heap', () => {
    const reference = fresh({ initialBytes: 4 * MiB });
    const capacity = fillUntilFull(reference, () => 100, 1e6).length;
    const heap = fresh({ initialBytes: 4 * MiB });
    const first = fillUntilFull(heap, () => 2000, 1e6);
    for (const p of first) heap.free(p);
    heap.flush();
    heap.check();
    const second = fillUntilFull(heap, () => 100, 1e6);
    heap.check();
    expect(second.length, `100-byte blocks after a fill of 2000-byte blocks, vs ${capacity} in a fresh heap`).toBeGreaterThanOrEqual(
      Math.ceil(0.99 * capacity),
    );
  });

  it('out of memory: malloc, calloc, realloc, alignedAlloc and large blocks return 0, nothing throws, a free makes room', () => {
    const heap = fresh({ initialBytes: 4 * MiB });
    const blocks: number[] = [];
    for (;;) {
      const p = heap.malloc(2000);
      if (p === 0) break;
      blocks.push(p);
    }
    heap.check();
    const keep = blocks[0];
    stamp(heap, keep, 2000);
    expect(heap.malloc(2000)).toBe(0);
    expect(heap.malloc(300_000)).toBe(0);
    expect(heap.malloc(3 * MiB)).toBe(0);
    expect(heap.calloc(10, 200)).toBe(0);
    expect(heap.alignedAlloc(4096, 3000)).toBe(0);
    expect(heap.alignedAlloc(1 << 20, 10)).toBe(0);
    expect(heap.realloc(keep, 100_000)).toBe(0);
    expect(stamped(heap, keep, 2000)).toBe(true);
    heap.check();
    // a free makes room again
    heap.free(blocks.pop()!);
    const again = heap.malloc(2000);
    expect(again).toBeGreaterThan(0);
    heap.check();
    blocks.push(again);
    for (const p of blocks) heap.free(p);
    heap.flush();
    heap.check();
    const big = heap.malloc(2 * MiB);
    expect(big).toBeGreaterThan(0);
    heap.free(big);
    heap.check();
  });
});

describe('growable heap', () => {
  it('grows the buffer past initialBytes, keeps the data, and stops at maxBytes', () => {
    const heap = fresh({ initialBytes: 4 * MiB, maxBytes: 32 * MiB });
    expect(heap.u8.length).toBe(4 * MiB);
    expect(heap.stats().bufferBytes).toBe(4 * MiB);
    expect(heap.stats().maxBytes).toBe(32 * MiB);
    const blocks: Array<[number, number]> = [];
    const next = rng(3);
    let grewAt = -1;
    for (let i = 0; ; i++) {
      const size = next() % 8 === 0 ? 20_000 + (next() % 200_000) : 1 + (next() % 3000);
      const p = heap.malloc(size);
      if (p === 0) break;
      if (grewAt < 0 && heap.u8.length > 4 * MiB) grewAt = i;
      expect(p + size).toBeLessThanOrEqual(heap.u8.length);
      heap.u8.fill(i & 0xff, p, p + size);
      blocks.push([p, size]);
      if (i % 500 === 0) heap.check();
    }
    heap.check();
    expect(grewAt).toBeGreaterThan(0);
    expect(heap.u8.length).toBe(32 * MiB);
    expect(heap.buffer.byteLength).toBe(32 * MiB);
    expect(heap.stats().bufferBytes).toBe(32 * MiB);
    // most of the 31 MiB of blocks were used before malloc returned 0
    const total = blocks.reduce((a, [, n]) => a + n, 0);
    expect(total).toBeGreaterThan(20 * MiB);
    const u8 = heap.u8;
    blocks.forEach(([p, n], i) => {
      for (let k = 0; k < n; k += 97) if (u8[p + k] !== (i & 0xff)) throw new Error(`block ${i} at ${p} lost its data`);
      if (u8[p + n - 1] !== (i & 0xff)) throw new Error(`block ${i} at ${p} lost its data`);
    });
    for (const [p] of blocks) heap.free(p);
    heap.check();
  });

  it('a large block beyond the initial buffer grows it', () => {
    const heap = fresh({ initialBytes: 2 * MiB, maxBytes: 16 * MiB });
    const p = heap.malloc(6 * MiB);
    expect(p).toBeGreaterThan(0);
    expect(heap.u8.length).toBeGreaterThanOrEqual(p + 6 * MiB);
    heap.u8.fill(7, p, p + 6 * MiB);
    heap.check();
    const q = heap.malloc(100);
    expect(q).toBeGreaterThan(0);
    expect(heap.malloc(12 * MiB)).toBe(0); // beyond maxBytes
    heap.check();
    expect(heap.u8[p]).toBe(7);
    expect(heap.u8[p + 6 * MiB - 1]).toBe(7);
    heap.free(p);
    heap.free(q);
    heap.check();
  });
});

describe('lock counters and tryMalloc', () => {
  it('count acquisitions after Stage 2 and Stage 3, none contended on one thread', () => {
    const heap = fresh();
    const blocks: number[] = [];
    for (const size of [16, 100, 1000, 3000, 200_000]) blocks.push(heap.malloc(size));
    const s = heap.stats();
    expect(s.stages.stage3).toBeGreaterThanOrEqual(1);
    expect(s.stages.stage2).toBeGreaterThanOrEqual(1);
    expect(s.lock.acquisitions).toBeGreaterThanOrEqual(s.stages.stage2 + s.stages.stage3 + s.largeAllocations);
    expect(s.lock).toMatchObject({ contended: 0, spins: 0, waits: 0, wakes: 0, waitMs: 0, recoveries: 0 });
    const me = s.threads.find((t) => t.state === 'attached');
    expect(me?.lockAcquisitions).toBe(s.lock.acquisitions);
    expect(me?.slabsTaken).toBe(s.stages.stage1 + s.stages.stage2 + s.stages.stage3);
    for (const p of blocks) heap.free(p);
    heap.check();
  });

  it('tryMalloc allocates like malloc when the lock is free', () => {
    const heap = fresh();
    const a = heap.tryMalloc(100);
    const b = heap.tryMalloc(300_000);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    expect(heap.usableSize(a)).toBeGreaterThanOrEqual(100);
    heap.free(a);
    heap.free(b);
    heap.check();
  });

  it('tryMalloc returns 0 instead of waiting while the lock is held, and still serves cached blocks', () => {
    const heap = fresh();
    const warm = heap.malloc(100); // the magazine of this class now holds blocks
    testHoldGlobalLock(heap);
    const a = heap.tryMalloc(100);
    expect(a).toBeGreaterThan(0);
    expect(heap.tryMalloc(5000)).toBe(0); // needs a slab: the lock is busy
    expect(heap.tryMalloc(300_000)).toBe(0); // large: the lock is busy
    expect(heap.stats().lock.acquisitions).toBeGreaterThan(0);
    heap.free(a);
    heap.free(warm);
    heaps.splice(heaps.indexOf(heap), 1); // the lock stays held: do not detach this heap
  });
});
