/**
 * README.md's "How it works" (with "Memory a thread caches" and "Architecture") and "Dead and
 * misbehaving workers" were checked claim by claim against src/ and experiments (an audit,
 * 2026-12-07): six were false or stale, and were corrected. Each test here finds the corrected
 * words (so it breaks when the sentence changes) and checks them against the code's constant or an
 * experiment; each failed against the README's words before (given in its comment).
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { MAG_BYTES_PER_CLASS, MAG_ENTRY_WORDS } from '../src/layout.js';
import { COUNT, NUM_CLASSES, SIZE, SPAN, classOf } from '../src/size-classes.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

const MiB = 1 << 20;
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');

/** The README's words, whitespace-normalized; fails when the sentence is gone. */
function says(words: string): void {
  expect(README, 'the README sentence this test checks').toContain(words.replace(/\s+/g, ' '));
}

/** Entries in the magazine of `cls` of the calling thread (internals, as test/drain.test.ts does). */
function entries(heap: SharedHeap, cls: number): number {
  const t = internals(heap);
  return (t.i32[t.topW + cls]! - t.magazineBase(cls)) / MAG_ENTRY_WORDS;
}

/**
 * One periodic look of the calling thread (magazine.ts drainPeriodic): frees of 64-byte blocks
 * until the countdown ends, the last one of class `last` when given (a block of that class
 * allocated first, then freed last).
 */
function oneLook(heap: SharedHeap, lastSize?: number): void {
  const t = internals(heap);
  const left = t.drainLeft;
  const q = lastSize === undefined ? 0 : heap.malloc(lastSize);
  for (let i = 0; i < (q === 0 ? left : left - 1); i++) heap.free(heap.malloc(64));
  if (q !== 0) heap.free(q);
  expect(t.drainLeft, 'a look came').toBe(t.drainInterval);
}

describe("README 'How it works': claims corrected after an audit", () => {
  it("'a slab is one slab slot of 64 KiB (two for the 80-128 KiB classes)'", () => {
    // The README said "a slab is 1 to 16 slab slots of 64 KiB serving one class". True: since classes from 4 KiB take the fewest slots that hold a block (size-classes.ts
    // FEWEST_SLOTS_FROM), SPAN is 1 for every class up to 64 KiB and 2 for 80-128 KiB: a slab is
    // 1 or 2 slots (64 or 128 KiB). (16 slots is a SuperSlab; large runs, not slabs, span more.)
    says('a slab is one slab slot of 64 KiB (two for the 80-128 KiB classes) serving one class');
    const two = [...SIZE].filter((_, c) => SPAN[c] === 2);
    expect([...SPAN].every((n) => n === 1 || n === 2)).toBe(true);
    expect([Math.min(...two), Math.max(...two)], 'the classes of two-slot slabs').toEqual([80 << 10, 128 << 10]);
  });

  it("the footprint's magazines: 'at most 256 KiB, 512 KiB for the 5-16 KiB classes, of blocks a class'", () => {
    // The README ("Observing") said "(at most 256 KiB of blocks a class)". True: the classes of two per
    // doubling (5, 8, 12, 16 KiB) take twice MAG_BYTES_PER_CLASS (context.ts; "Memory a thread
    // caches" says so: "512 KiB for the 5, 8, 12 and 16 KiB classes"): at the default
    // magazineCapacity 64 the 5 KiB class holds 320 KiB, 8 KiB 512, 12 KiB 504, 16 KiB 512.
    says("each magazine up to its class's capacity (at most 256 KiB, 512 KiB for the 5-16 KiB classes, of blocks a class)");
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
    const t = internals(heap);
    const over: string[] = [];
    for (let c = 0; c < NUM_CLASSES; c++) {
      const bytes = t.magCapCls[c]! * SIZE[c]!;
      if (bytes > MAG_BYTES_PER_CLASS) over.push(`${SIZE[c]! >> 10} KiB: ${bytes >> 10} KiB`);
      expect(bytes, `${SIZE[c]} B`).toBeLessThanOrEqual(2 * MAG_BYTES_PER_CLASS);
    }
    heap.detach();
    expect(over, 'classes whose magazine holds more than 256 KiB of blocks').toEqual(['5 KiB: 320 KiB', '8 KiB: 512 KiB', '12 KiB: 504 KiB', '16 KiB: 512 KiB']);
  });

  it("a deep magazine goes back 'once three periodic looks in a row found it untaken, over which the thread freed twice its entries'", () => {
    // The README ("Magazines") said it "goes back (drained, its block to the 64 KiB class) once the
    // thread has freed twice its entries without taking from it". True (magazine.ts drainIfOnlyFilled, DEEP_IDLE_LOOKS): it goes back only at the third
    // look in a row that finds it idle, and only if the frees of those looks were twice its
    // entries. Here: 80 entries, drainInterval 256; after the thread freed 512 blocks (over
    // twice 80) without taking from it, and two looks, it is still deep; it goes at the fourth look
    // (the first after the mallocs counts as one that took from it: refills since the look before).
    says('goes back (drained, its block to the 64 KiB class) once three periodic looks in a row found it untaken, over which the thread freed twice its entries');
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2, drainInterval: 256 });
    const t = internals(heap);
    const cls = classOf(16384);
    const blocks = Array.from({ length: 80 }, () => heap.malloc(16384));
    expect(t.deep(cls), 'the class got a deep magazine (16 slabs from the pool)').toBe(true);
    for (const p of blocks) heap.free(p);
    expect(entries(heap, cls)).toBe(80);
    let freedSince = 80; // frees since the thread last took from the class
    const before = t.drainLeft;
    oneLook(heap);
    freedSince += before;
    oneLook(heap);
    freedSince += 256;
    expect(freedSince).toBeGreaterThanOrEqual(2 * 80);
    const stillDeep = t.deep(cls);
    oneLook(heap);
    oneLook(heap);
    const goneAfterFour = !t.deep(cls);
    heap.detach();
    expect({ stillDeep, goneAfterFour }, `after ${freedSince} frees (twice its entries: ${2 * 80}) without a take: two looks, then two more`).toEqual({ stillDeep: true, goneAfterFour: true });
  });
});

describe("README 'Memory a thread caches': claims corrected after an audit", () => {
  it("an empty slab stays 'until its next periodic look at that class (a class of four blocks a slab or fewer, 16 KiB and up: the look after that)'", () => {
    // The README said "an empty slab stays with it until its next periodic look at that class, but
    // never more than 2 MiB of them". True for classes of more than four blocks a slab; a class of four
    // or fewer (16 KiB and up: magazine.ts FEW_BLOCKS_MAX, slab.ts releaseEmptyPartials `aged`)
    // keeps an empty slab through the next look and gives it back at the one after. Here 8 slabs of
    // 16 KiB blocks, all freed; frees into a full magazine left 6 of them empty and kept; after
    // one look at the class 6 are still kept (2 in Stage 1), after a second all 8 are back.
    // (The 4 KiB class, 16 blocks a slab: all 8 back at the first look, as the README says.)
    says('an empty slab stays with it until its next periodic look at that class (a class of four blocks a slab or fewer, 16 KiB and up: the look after that)');
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2, drainInterval: 64, magazineCapacity: 8 });
    const t = internals(heap);
    const size = 16384;
    const cls = classOf(size);
    expect(COUNT[cls]).toBe(4);
    const blocks = Array.from({ length: 8 * COUNT[cls]! }, () => heap.malloc(size));
    for (const p of blocks) heap.free(p);
    expect(t.keptBytes, 'empty slabs kept before the look').toBeGreaterThan(0);
    oneLook(heap, size); // the countdown ends on a free of this class: a look at it
    const kept = t.keptBytes >> 16;
    const pooled = heap.stats().classes[cls]!.stage1Slabs;
    oneLook(heap, size);
    const pooledAfterTwo = heap.stats().classes[cls]!.stage1Slabs;
    heap.detach();
    expect(pooledAfterTwo, 'all 8 back after two looks').toBe(8);
    expect(kept, 'empty slabs still kept after one look at the class').toBeGreaterThan(0);
    expect(pooled, 'in Stage 1 after one look').toBeLessThan(8);
  });

  it("memory another thread holds 'comes back at that thread's next periodic looks (each drains the class it freed last and one other in turn)'", () => {
    // The README said it "comes back at that thread's next periodic look or `flush()`: its
    // magazines, ...". True (magazine.ts drainPeriodic; "Magazines" above says so): a look
    // drains the magazine of the class whose free ended the countdown (not if it is at most 1 KiB
    // and in use) and one other class's in turn; the others wait for later looks or a flush().
    // Here blocks cached in three classes (2, 3 and 4 KiB): after one look, two still hold theirs.
    says("Memory that another thread holds comes back at that thread's next periodic looks (each drains the class it freed last and one other in turn;");
    // (The rest of that parenthesis, a consumer's classes it never allocated: test/consumer-drain.test.ts.)
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const sizes = [2048, 3072, 4096];
    for (const s of sizes) {
      const b = Array.from({ length: 10 }, () => heap.malloc(s));
      for (const p of b) heap.free(p);
    }
    expect(sizes.map((s) => entries(heap, classOf(s)))).toEqual([10, 10, 10]);
    oneLook(heap);
    const left = sizes.map((s) => entries(heap, classOf(s)));
    heap.flush();
    const afterFlush = sizes.map((s) => entries(heap, classOf(s)));
    heap.detach();
    expect(left.filter((n) => n === 10).length, 'magazines of 2, 3 and 4 KiB still full after one look (two drained at most)').toBeGreaterThanOrEqual(1);
    expect(left.filter((n) => n === 0).length, 'drained by that look').toBeGreaterThanOrEqual(1);
    expect(afterFlush).toEqual([0, 0, 0]);
  });

  it("'the worker's mallocs right after its frees get all of a fresh heap's 5,040'", async () => {
    // The README said "(an 8 MiB heap of 1000-byte blocks: 4,903 of a fresh heap's 5,040, when the
    // worker mallocs right after its frees and so first reuses the 52 its magazine kept)". True:
    // the worker's last free ends a periodic look that drains its magazine whole (all 5,040 frees
    // are published as remote frees, its magazine keeps none), and its mallocs right after get all
    // 5,040 blocks, as a fresh heap gives.
    says("the worker's mallocs right after its frees get all of a fresh heap's 5,040, its frees having gone to the filler's slabs, none kept in its magazine");
    const heap = SharedHeap.create({ initialBytes: 8 * MiB });
    const filled: number[] = [];
    for (let p = heap.malloc(1000); p !== 0; p = heap.malloc(1000)) filled.push(p);
    expect(filled.length, "a fresh heap's 1000-byte blocks").toBe(5040);
    const w = startHeapWorker((x) => heap.watch(x));
    await w.remote.attach(heap.buffer);
    await w.remote.freeMany(filled);
    const freer = heap.stats().threads.find((x) => x.threadId === w.worker.threadId && x.state === 'attached')!;
    const keptInMagazine = filled.length - freer.remoteFrees;
    const got = await w.remote.fillAndFree(1000);
    await w.remote.detach();
    await w.worker.terminate();
    heap.detach();
    expect({ got, keptInMagazine }, "the worker's mallocs right after its frees").toEqual({ got: 5040, keptInMagazine: 0 });
  });
});
