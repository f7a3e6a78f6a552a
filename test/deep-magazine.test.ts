/**
 * Deep magazines (src/magazine.ts deepen, DEEP_AFTER_SLABS): a class of a few blocks a slab
 * whose refills take 16 slabs or more from the pool between two periodic looks gets a magazine
 * held in a 64 KiB block of the heap's (ST_DEEP), so that a batch of its frees stays in the
 * thread until the program asks for the blocks again. Here: when it comes and when it goes, that
 * the program never sees its block (not live, refused by free, realloc and usableSize), that
 * check() follows it and finds it overwritten, and that a thread that dies holding one leaves a
 * heap whose reclaim gives everything back.
 */
import { describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { DEEP_CAP, G_CARVED, MAG_FULL_SENTINEL, SLOT_BYTES, SM_TOUCHED, SS_TABLE_W, TH_TOP, deepMagazineBlock, isDeepTop } from '../src/layout.js';
import { NUM_CLASSES, classOf } from '../src/size-classes.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

const KiB = 1024;
const SIZE = 40 * KiB; // one block a slab
const CLS = classOf(SIZE);
const OPTIONS = { initialBytes: 16 * MiB, maxBytes: 40 * MiB, maxThreads: 4, magazineCapacity: 4, refillCount: 2, drainInterval: 8 };

/** The classes whose magazine is deep in this heap's thread, and each one's block. */
function deepMagazines(heap: SharedHeap): Map<number, number> {
  const t = internals(heap);
  const out = new Map<number, number>();
  for (let c = 0; c < NUM_CLASSES; c++) if (t.deep(c)) out.set(c, deepMagazineBlock(t.magazineBase(c)));
  return out;
}

/** Frees `blocks` and flushes: nothing is left live, and check() passes. */
function freeAll(heap: SharedHeap, blocks: number[]): void {
  for (const p of blocks) heap.free(p);
  heap.flush();
  expect(heap.stats().liveBytes).toBe(0);
  heap.check();
}

function stamped(heap: SharedHeap, n: number, size = SIZE): number[] {
  const blocks: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = heap.malloc(size);
    expect(p).toBeGreaterThan(0);
    heap.u8.fill((i % 250) + 1, p, p + size);
    blocks.push(p);
  }
  return blocks;
}

function expectStamped(heap: SharedHeap, blocks: number[], size = SIZE): void {
  blocks.forEach((p, i) => {
    expect(heap.u8[p]).toBe((i % 250) + 1);
    expect(heap.u8[p + size - 1]).toBe((i % 250) + 1);
  });
}

describe('deep magazines', () => {
  it('come after 16 slabs taken between two looks, hold a batch of frees, and hand it back without the pool', () => {
    const heap = SharedHeap.create(OPTIONS);
    const a = stamped(heap, 15);
    expect(deepMagazines(heap).size).toBe(0); // 15 slabs: not yet
    const b = stamped(heap, 5);
    const deep = deepMagazines(heap);
    expect([...deep.keys()]).toEqual([CLS]);
    heap.check();
    // The block is the heap's: not live, and no live block overlaps it.
    const live = [...a, ...b];
    expect(heap.stats().liveBlocks).toBe(live.length);
    expect(heap.stats().liveBytes).toBe(live.length * SIZE);
    const block = deep.get(CLS)!;
    for (const p of live) expect(p + SIZE <= block || p >= block + 64 * KiB).toBe(true);
    expectStamped(heap, a);
    expectStamped(heap, b);
    // The batch freed stays in it (more than the 4 entries the class's magazine has), and comes back
    // without a slab taken from the pool.
    for (const p of live) heap.free(p);
    const t = internals(heap);
    expect((t.i32[t.topW + CLS]! - t.magazineBase(CLS)) / 2).toBe(live.length);
    heap.check();
    const taken = heap.stats().stages;
    const again = stamped(heap, 20);
    const after = heap.stats().stages;
    expect(after.stage1 + after.stage2 + after.stage3).toBe(taken.stage1 + taken.stage2 + taken.stage3);
    expect(new Set(again)).toEqual(new Set(live));
    expectStamped(heap, again);
    heap.check();
  });

  it('go back after looks that find them unused, leaving nothing held', () => {
    const heap = SharedHeap.create(OPTIONS);
    const a = stamped(heap, 20);
    for (const p of a) heap.free(p);
    const block = deepMagazines(heap).get(CLS)!;
    expect(block).toBeGreaterThan(0);
    // Frees of another class: each look takes the deep magazine in turn and finds it unused; once
    // the thread freed twice its entries so, it goes back.
    for (let k = 0; k < 32; k++) heap.free(heap.malloc(64));
    expect(deepMagazines(heap).size).toBe(0);
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
    // Its block serves the program now (the 64 KiB class); the next deep magazine takes a slot no
    // block ever used.
    const big = heap.malloc(64 * KiB);
    expect(big).toBe(block);
    const b = stamped(heap, 20);
    const next = deepMagazines(heap).get(CLS)!;
    expect(next).toBeGreaterThan(0);
    expect(next).not.toBe(block);
    freeAll(heap, [big, ...b]);
  });

  it('go back at a flush', () => {
    const heap = SharedHeap.create(OPTIONS);
    const b = stamped(heap, 20);
    expect(deepMagazines(heap).size).toBe(1);
    const keep = b.slice(0, 5);
    for (const p of b.slice(5)) heap.free(p);
    heap.flush();
    expect(deepMagazines(heap).size).toBe(0);
    heap.check();
    expect(heap.stats().liveBytes).toBe(keep.length * SIZE);
    expectStamped(heap, keep);
    freeAll(heap, keep);
  });

  it('lie on a slot no block ever used, so that writes into blocks the program freed reach none, and carve none while free slots wait', () => {
    const heap = SharedHeap.create(OPTIONS);
    const live = stamped(heap, 16); // 16 slabs taken: the next refill of the class deepens it
    const other = heap.malloc(8 * KiB); // a slab of another class: a SuperSlab with free slots
    // Every free slot carved so far marked touched, as blocks of the program that used them and went
    // back would have left it (and a stale pointer of the program may still write there).
    const t = internals(heap);
    const used = new Set<number>();
    const carved = Atomics.load(t.i32, G_CARVED);
    for (let sup = t.geo.metaSupers; sup < carved; sup++) {
      const mask = t.i32[SS_TABLE_W + sup]!;
      for (let k = 0; k < 16; k++) {
        if ((mask & (1 << k)) === 0) continue;
        const slot = sup * 16 + k;
        t.i32[t.metaW(slot) + SM_TOUCHED] = SLOT_BYTES;
        used.add(slot);
      }
    }
    expect(used.size).toBeGreaterThan(0);
    // Those free slots are memory to reuse: the class stays shallow rather than carve a SuperSlab
    // for its deep magazine (pool.ts takeFreshSlab; a fresh one each time grew a program's
    // footprint without end: test/deep-magazine-footprint.test.ts).
    live.push(...stamped(heap, 4)); // the refill that would deepen it
    expect(deepMagazines(heap).get(CLS)).toBeUndefined();
    expect(Atomics.load(t.i32, G_CARVED)).toBe(carved);
    // A heap being filled: once the free slots are used up and a SuperSlab carved, the deep
    // magazine comes, on one of the fresh SuperSlab's untouched slots.
    const filler: number[] = [];
    for (let p = heap.malloc(60 * KiB); ; p = heap.malloc(60 * KiB)) {
      expect(p).not.toBe(0); // (a heap of OPTIONS carves long before it is full)
      filler.push(p);
      if (Atomics.load(t.i32, G_CARVED) > carved) break; // the fill took the last free slot and carved
    }
    heap.free(filler.pop()!); // back to a heap with no free slot but the fresh SuperSlab's
    for (const p of stamped(heap, 16 + 4)) live.push(p); // 16 slabs taken since the last look, then the refill
    const block = deepMagazines(heap).get(CLS)!;
    expect(block).toBeGreaterThan(0);
    expect(used.has(block >>> 16)).toBe(false);
    for (const p of filler) heap.free(p);
    heap.free(other);
    heap.check();
  });

  it('is refused by free, realloc and usableSize as memory the program never got, the heap intact', () => {
    const heap = SharedHeap.create(OPTIONS);
    const live = stamped(heap, 20);
    const block = deepMagazines(heap).get(CLS)!;
    expect(() => heap.free(block)).toThrow(DoubleFreeError);
    expect(() => heap.free(block)).toThrow(new RegExp(`free\\(ptr\\): 0x${block.toString(16)} is not allocated: the heap holds it`));
    expect(() => heap.realloc(block, 100)).toThrow(/realloc\(ptr\): 0x[0-9a-f]+ is not allocated: the heap holds it/);
    expect(() => heap.usableSize(block)).toThrow(/usableSize\(ptr\).*the heap holds it/);
    heap.check();
    expectStamped(heap, live);
    expect(deepMagazines(heap).get(CLS)).toBe(block);
  });

  it('check() finds a deep magazine whose sentinel a stray write overwrote', () => {
    const heap = SharedHeap.create(OPTIONS);
    stamped(heap, 20);
    const block = deepMagazines(heap).get(CLS)!;
    const i32 = new Int32Array(heap.buffer);
    const cap = i32[(block >>> 2) + 1]!; // the empty sentinel's second word (layout.ts deepMagazineCap)
    expect(cap).toBeGreaterThan(20);
    expect(cap).toBeLessThanOrEqual(DEEP_CAP);
    const fullW = (block >>> 2) + 2 + cap * 2;
    expect(i32[fullW]).toBe(MAG_FULL_SENTINEL);
    i32[fullW] = 12345;
    expect(() => heap.check()).toThrow(/deep magazine of class \d+ in block .*full sentinel is overwritten/);
    i32[fullW] = MAG_FULL_SENTINEL;
    heap.check();
  });

  it('never come in debug mode', () => {
    const heap = SharedHeap.create({ ...OPTIONS, debug: true });
    const a = stamped(heap, 40);
    expect(deepMagazines(heap).size).toBe(0);
    for (const p of a) heap.free(p);
    heap.check();
  });

  it('of a thread that died holding one are given back by its reclaim', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const w = startHeapWorker();
    try {
      const id = await w.remote.attach(heap.buffer);
      const blocks: number[] = [];
      for (let k = 0; k < 20; k++) blocks.push(await w.remote.malloc(SIZE));
      for (const p of blocks.slice(10)) await w.remote.free(p); // ten in its deep magazine
      await w.worker.terminate();
      expect(heap.reclaim(id)).toBe(true);
      heap.check();
      expect(heap.stats().liveBytes).toBe(10 * SIZE); // the ten it left allocated, not its deep block
      freeAll(heap, blocks.slice(0, 10));
    } finally {
      await terminateAll();
    }
  });

  it('of a thread that died holding two, each deeper than a journal area, are both given back by its reclaim', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const w = startHeapWorker();
    const other = 48 * KiB; // another class of one block a slab
    try {
      const id = await w.remote.attach(heap.buffer);
      const blocks: number[] = [];
      const others: number[] = [];
      for (let k = 0; k < 20; k++) blocks.push(await w.remote.malloc(SIZE));
      for (let k = 0; k < 20; k++) others.push(await w.remote.malloc(other));
      for (const p of blocks.slice(8)) await w.remote.free(p); // twelve in each deep magazine
      for (const p of others.slice(8)) await w.remote.free(p);
      const t = internals(heap);
      const tid = heap.stats().threads.find((x) => x.threadId === id)!.tid;
      for (const c of [CLS, classOf(other)]) expect(isDeepTop(t.i32[t.threadW(tid) + TH_TOP + c]!, t.geo.metaSupers), `class ${c} deep`).toBe(true);
      await w.worker.terminate();
      expect(heap.reclaim(id)).toBe(true);
      heap.check();
      expect(heap.stats().liveBytes).toBe(8 * SIZE + 8 * other); // what it left allocated, not its deep blocks
      // Every block it cached went back: 24 blocks of the two classes are handed out again, none twice.
      const again = [...stamped(heap, 12), ...stamped(heap, 12, other)];
      expect(new Set(again).size).toBe(24);
      heap.check();
      freeAll(heap, [...blocks.slice(0, 8), ...others.slice(0, 8), ...again]);
    } finally {
      await terminateAll();
    }
  });
});
